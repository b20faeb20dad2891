"""Alert engine: rules, a pure lifecycle core, persistence in the registry, notifications.

Pure modules (no I/O): ``durations``, ``yamlpos``, ``rules``, ``model``, ``lifecycle``,
``noise``, ``engine``, ``observe``, ``texts``. Boundaries: ``tables``/``store`` (SQL) and
``notify`` (HTTP webhooks, MQTT message building).
"""
