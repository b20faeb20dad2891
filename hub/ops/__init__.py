"""Running the hub for real: ``dcor-hub doctor`` (checks and what to fix), backup and restore
of the registry, media and keys. Pure conclusions in ``checks``; probes in ``doctor``."""
