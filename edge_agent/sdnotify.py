"""systemd's notify protocol (``sd_notify``), in plain socket code, no dependency.

Under ``Type=notify`` systemd waits for ``READY=1`` before it calls the unit started, and with
``WatchdogSec=`` it restarts the service when ``WATCHDOG=1`` stops arriving. The socket comes
in ``NOTIFY_SOCKET`` (a path, or ``@name`` for an abstract socket); when it is unset (a shell,
a test, another supervisor) every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping

log = logging.getLogger("dcor.agent.sdnotify")


def _address(raw: str) -> str | bytes | None:
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()  # abstract namespace
    if raw.startswith("/"):
        return raw
    return None  # vsock:... and anything else: not for us


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """The watchdog period systemd asked for (``WATCHDOG_USEC``), or None without one.

    ``WATCHDOG_PID``, when set, names the process meant; a child must not take it."""
    env = os.environ if env is None else env
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1_000_000 if usec > 0 else None


class Notifier:
    """Sends notify messages; silent and harmless without ``NOTIFY_SOCKET``.

    ``ping_every_s`` is half the watchdog period (systemd's advice), None without a watchdog.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self._address = _address(env.get("NOTIFY_SOCKET", ""))
        period = watchdog_interval_s(env)
        self.ping_every_s: float | None = period / 2 if period else None
        self._lock = threading.Lock()
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, message: str) -> bool:
        """Send one datagram (``KEY=value`` lines); False when nothing was sent."""
        if self._address is None:
            return False
        try:
            with self._lock, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.connect(self._address)
                s.sendall(message.encode())
            return True
        except OSError as exc:
            if not self._warned:  # once: a missing socket would repeat every ping
                log.warning("cannot notify systemd at %r: %s", self._address, exc)
                self._warned = True
            return False

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")
