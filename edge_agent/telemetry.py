"""What producers inside the agent (health, vision, config) hand telemetry to.

Producers never talk to MQTT: they give the sink a kind and the payload fields (``ts``
included, taken at capture time); the sink assigns ``seq``, stores the message durably in the
outbox and the uplink sends it when it can.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Protocol


class Priority(IntEnum):
    """Uplink classes, highest first (lower number = sent first, dropped last)."""

    ALARM = 0  # alarm events and state
    HEALTH = 1
    DETECTIONS = 2
    SNAPSHOT = 3
    CLIP = 4


class TelemetrySink(Protocol):
    def put(self, kind: str, fields: dict[str, Any], priority: Priority) -> int:
        """Store one JSON payload of ``kind`` (``health``, ``detections``, ``events``...).

        Returns the ``seq`` assigned. Raises ``ValueError`` if the fields do not validate.
        """
        ...

    def put_snapshot(self, camera_id: str, jpeg: bytes, meta: dict[str, str]) -> int:
        """Store one JPEG for ``snapshot/<camera_id>``, ``meta`` going to user properties."""
        ...
