"""The hub in the operations room: ingest, registry, web views."""
