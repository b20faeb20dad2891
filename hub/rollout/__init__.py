"""Configuration push: overrides, rendering, signed documents, rollouts in waves, reports
(see ``docs/configuration.md``)."""
