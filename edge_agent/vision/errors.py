"""The vision package's exception family: every error says what to do about it."""

from __future__ import annotations


class VisionError(Exception):
    """Base of every error raised by ``edge_agent.vision``."""


class ModelMissingError(VisionError):
    """The detection model (or its label map) is not where the configuration says."""


class RuntimeMissingError(VisionError):
    """Neither LiteRT nor tflite_runtime can be imported."""


class SourceError(VisionError):
    """A camera source cannot be opened or read (the capture loop retries these)."""


class SourceFinished(VisionError):
    """A non-looping file source reached its end: not a fault, nothing to retry."""


class ClipError(VisionError):
    """A clip cannot be cut from the video ring (no segments cover the asked range...)."""


class ModelFetchError(VisionError):
    """Downloading or verifying the model archive failed."""
