"""The edge agent that runs on each box beside the cameras."""

__version__ = "0.1.0"
