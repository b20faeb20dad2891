"""Process and HTTP plumbing of the demo: children with log files, ports, polling, progress."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.localservices.process import free_port


class Progress:
    """One updating line on a terminal; plain lines (changes only) otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._last = ""

    def show(self, text: str) -> None:
        if text == self._last:
            return
        self._last = text
        self._write(f"\r\x1b[K[demo] {text}" if self.tty else f"[demo] {text}\n")

    def done(self) -> None:
        if self.tty and self._last:
            self._write("\r\x1b[K")
        self._last = ""

    @staticmethod
    def _write(text: str) -> None:
        # The terminal may be gone (SIGHUP): that must not stop the clean-up.
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(text)
            sys.stderr.flush()


@dataclass
class Child:
    """A hub or agent process of the demo, logging to its own file."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self) -> None:
        if self.alive():
            self.proc.terminate()

    def stop(self, timeout: float = 10.0) -> None:
        self.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def command(script: str, module: str) -> list[str]:
    """The console script beside this interpreter, else ``python -m module``."""
    exe = Path(sys.executable).parent / script
    return [str(exe)] if os.access(exe, os.X_OK) else [sys.executable, "-m", module]


def spawn(name: str, argv: list[str], log_path: Path) -> Child:
    # DCOR_* of the caller's shell must not override the demo's generated settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCOR_")}
    env["PYTHONUNBUFFERED"] = "1"
    setpriv = shutil.which("setpriv")
    if setpriv:  # children get SIGTERM if the demo dies, even by SIGKILL
        argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
    with open(log_path, "ab") as log:
        # Own session: a terminal's Ctrl-C reaches only the demo, which stops them in order.
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return Child(name, proc, log_path)


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the web server does
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_web_port(preferred: int) -> int:
    """``preferred`` if free, else the next free port above it (0: any free port)."""
    if preferred == 0:
        return free_port()
    for port in range(preferred, min(preferred + 200, 65536)):
        if port_is_free(port):
            return port
    return free_port()


def get_json(port: int, path: str, timeout: float = 2.0) -> Any:
    """GET ``path`` on 127.0.0.1 and decode JSON; None when not (yet) answering."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        return json.loads(body) if resp.status == 200 else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()


_NEXT_LINK = re.compile(r'<([^>]+)>;\s*rel="next"')


def get_list(port: int, path: str, timeout: float = 2.0, max_pages: int = 50) -> list[Any]:
    """GET a JSON list on 127.0.0.1, following ``Link: <...>; rel="next"`` pages; [] when
    not (yet) answering."""
    items: list[Any] = []
    next_path: str | None = path
    for _ in range(max_pages):
        if next_path is None:
            break
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            conn.request("GET", next_path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                return []
            page = json.loads(body)
            link = _NEXT_LINK.search(resp.getheader("Link") or "")
        except (OSError, http.client.HTTPException, ValueError):
            return []
        finally:
            conn.close()
        if not isinstance(page, list):
            return []
        items.extend(page)
        next_path = link.group(1) if link else None
    return items


def answers(port: int, path: str) -> bool:
    return get_json(port, path) is not None


class Interrupted(Exception):
    """The stop event was set (Ctrl-C, SIGTERM) while waiting."""


def wait_for(check: Callable[[], bool], timeout: float, watch: list[Child],
             stop: threading.Event, interval: float = 0.2) -> bool:
    """Poll ``check`` every ``interval`` s on a monotonic clock until true (True) or
    ``timeout`` (False).

    Raises ``Interrupted`` once ``stop`` is set, and ``RuntimeError`` naming the log when a
    watched process dies meanwhile.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stop.is_set():
            raise Interrupted
        if check():
            return True
        for child in watch:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited (code {child.proc.returncode}); "
                                   f"see {child.log_path}")
        stop.wait(interval)
    return False


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read_from(path: Path, offset: int) -> str:
    """What a log gained since ``offset`` (this attempt's lines, not an earlier run's)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""
