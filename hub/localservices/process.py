"""Process plumbing shared by the local services: ports, polling, start/stop/pause."""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

T = TypeVar("T")

APT_HINT = "apt-get install -y mosquitto mosquitto-clients influxdb"
_SBIN_DIRS = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin", "/sbin")
_POLL_S = 0.05


class LocalServiceError(RuntimeError):
    """A local service could not be found, started or stopped."""


class ServiceNotInstalledError(LocalServiceError):
    """The service's binary is missing; the message names the Debian packages to install."""


class ServiceStartError(LocalServiceError):
    """The process exited or did not become ready in time; the message ends with its log."""


# Service ports come from below the kernel's ephemeral range: a port in that range can be
# handed out as the source port of any outgoing connection while its service restarts (an
# InfluxDB outage in a fault scenario once could not come back: "address already in use").
_SERVICE_PORTS_FROM = 20_000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_rng = random.SystemRandom()  # never the seeded global generator: parallel runs would agree


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, outside the ephemeral range."""
    low = _ephemeral_low()
    if low - _SERVICE_PORTS_FROM >= 1_000:
        for _ in range(200):
            port = _rng.randrange(_SERVICE_PORTS_FROM, low)
            if _bindable(port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # let the kernel pick
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], T], timeout: float = 5.0, interval: float = _POLL_S,
               message: str = "condition") -> T:
    """Poll ``predicate`` on a monotonic clock; return its first truthy value.

    Raises ``TimeoutError`` instead of returning a falsy value, so a caller that forgets
    ``assert`` still fails.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{message} not met within {timeout:.1f}s")
        time.sleep(interval)


def find_binary(name: str, explicit: str | None = None) -> str:
    """Path of ``name`` (PATH, then the sbin dirs a non-root PATH lacks), else a clear error."""
    if explicit is not None:
        if os.access(explicit, os.X_OK) and Path(explicit).is_file():
            return explicit
        raise ServiceNotInstalledError(f"{explicit} is not an executable file; to get the "
                                       f"Debian binaries run: {APT_HINT}")
    found = shutil.which(name)
    if found:
        return found
    for d in _SBIN_DIRS:
        candidate = os.path.join(d, name)
        if os.access(candidate, os.X_OK):
            return candidate
    raise ServiceNotInstalledError(f"`{name}` not found; install it with: {APT_HINT} "
                                   "(or run scripts/bootstrap.sh)")


class ServiceProcess:
    """Start/stop/pause plumbing shared by the two services; subclasses write the config."""

    name = "service"
    binary_name = ""

    def __init__(self, *, data_dir: str | os.PathLike[str] | None, binary: str | None,
                 startup_timeout: float, die_with_parent: bool, fixed_port: bool) -> None:
        self._explicit_binary = binary
        self._owns_dir = data_dir is None
        self._data_dir_arg = Path(data_dir) if data_dir is not None else None
        self._data_dir: Path | None = None
        self.startup_timeout = startup_timeout
        # The kernel kills the child if this process dies, even by SIGKILL. The signal follows
        # the *thread* that started it, so start services from a long-lived thread.
        self.die_with_parent = die_with_parent
        self._fixed_port = fixed_port
        self._proc: subprocess.Popen[bytes] | None = None
        self._atexit_registered = False

    # --- what subclasses provide -------------------------------------------------------
    def _pick_ports(self) -> None:
        raise NotImplementedError

    def _command(self, binary: str) -> list[str]:
        raise NotImplementedError

    def _is_ready(self) -> bool:
        raise NotImplementedError

    # --- public surface ----------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            if self._data_dir_arg is not None:
                self._data_dir_arg.mkdir(parents=True, exist_ok=True)
                self._data_dir = self._data_dir_arg
            else:
                self._data_dir = Path(tempfile.mkdtemp(prefix=f"dcor-{self.name}-"))
        return self._data_dir

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Start and wait until ready; a no-op when already running."""
        if self.is_running():
            return self
        binary = find_binary(self.binary_name, self._explicit_binary)
        # A freshly picked port can be taken by someone else before we bind it: pick again.
        attempts = 1 if self._fixed_port else 3
        for attempt in range(attempts):
            self._spawn(binary)
            try:
                self._wait_ready()
                return self
            except ServiceStartError:
                lost_race = "address already in use" in self.log_tail().lower()
                if not lost_race or attempt == attempts - 1:
                    raise
                self._pick_ports()
        raise AssertionError("unreachable")

    def restart(self) -> Self:
        """Stop (gracefully, if still running) and start again on the same port and data."""
        self.stop()
        self._fixed_port = True
        return self.start()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL. Keeps the data folder."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)  # a paused process cannot act on SIGTERM
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL (a crash, from the clients' point of view) and reap."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.kill()
        proc.wait()

    def pause(self) -> None:
        """SIGSTOP: the port stays bound but nothing answers (a hung service)."""
        os.kill(self._require_proc().pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self._require_proc().pid, signal.SIGCONT)

    def close(self) -> None:
        """Stop, then remove the data folder if this object created it."""
        self.stop()
        if self._owns_dir and self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- internals -------------------------------------------------------------------
    def _require_proc(self) -> subprocess.Popen[bytes]:
        if not self.is_running() or self._proc is None:
            raise LocalServiceError(f"{self.name} is not running")
        return self._proc

    def _spawn(self, binary: str) -> None:
        cmd = self._command(binary)
        setpriv = shutil.which("setpriv") if self.die_with_parent else None
        if setpriv:  # setpriv execs in place, so the PID stays the service's own
            cmd = [setpriv, "--pdeathsig", "KILL", "--", *cmd]
        # Our config must win over INFLUXDB_* overrides that may sit in the environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFLUXDB_")}
        with open(self.log_path, "ab") as log:
            log.write(f"--- starting: {' '.join(cmd)}\n".encode())
            log.flush()
            # New session: a Ctrl-C meant for pytest does not hit the service before teardown.
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, env=env,
                                          start_new_session=True)
        if not self._atexit_registered:
            atexit.register(self._at_exit)
            self._atexit_registered = True

    def _at_exit(self) -> None:
        # The owner forgot close(): no process may outlive the interpreter, no temp dir either.
        self.kill()
        self.close()

    def _wait_ready(self) -> None:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = proc.poll()
            if code is not None:
                raise ServiceStartError(f"{self.name} exited with code {code} while starting;"
                                        f" log {self.log_path}:\n{self.log_tail()}")
            if self._is_ready():
                return
            if time.monotonic() >= deadline:
                self.kill()
                raise ServiceStartError(
                    f"{self.name} not ready within {self.startup_timeout:.1f}s;"
                    f" log {self.log_path}:\n{self.log_tail()}")
            time.sleep(_POLL_S)
