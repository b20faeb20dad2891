"""Running it for real: installers, services, dashboards, the API document, logs."""
