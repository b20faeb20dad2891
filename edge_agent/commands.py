"""Remote commands on ``cmd/<name>``: MQTT 5 request/response.

The hub sends a JSON request with a response topic (under the device's own root, which the
broker's ACL allows it to publish to) and correlation data; the agent answers there with
``{"ok": bool, ...}``. Handlers are plain functions of the request dict, so they are tested
without MQTT.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("dcor.agent.cmd")

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class CommandError(ValueError):
    """The request is invalid; the message goes back to the hub."""


class Commands:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {"ping": lambda _req: {"pong": True}}

    def register(self, name: str, handler: Handler) -> None:
        self._handlers[name] = handler

    def names(self) -> list[str]:
        return sorted(self._handlers)

    def handle(self, name: str, body: bytes) -> dict[str, Any]:
        handler = self._handlers.get(name)
        if handler is None:
            return {"ok": False, "error": f"unknown command {name!r}",
                    "commands": self.names()}
        try:
            request = json.loads(body) if body.strip() else {}
            if not isinstance(request, dict):
                raise CommandError("the request must be a JSON object")
            return {"ok": True, **handler(request)}
        except (CommandError, ValueError) as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # a failing command must answer, not kill the loop
            log.exception("command %s failed", name)
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def require_int(req: dict[str, Any], key: str, lo: int = 0, hi: int = 2**53) -> int:
    value = req.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise CommandError(f"{key!r} must be a whole number in {lo}..{hi}")
    return value
