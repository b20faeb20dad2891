"""Desired configuration from the hub: verify, validate, apply atomically, watch, keep or
give back, report (see ``docs/configuration.md``)."""
