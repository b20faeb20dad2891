"""Snapshots and clips received from devices: stored on disk, indexed in the registry."""
