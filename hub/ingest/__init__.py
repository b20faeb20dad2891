"""MQTT ingest: validate device telemetry, store it in InfluxDB, acknowledge end to end."""
