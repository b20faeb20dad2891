"""A throwaway PostgreSQL server on a free 127.0.0.1 port (see ``hub.localservices``).

Its own cluster (``initdb`` into a temporary folder), its own Unix socket folder, the
``postgres`` binary run in the foreground and stopped by its PID: never the machine's own
server on 5432. PostgreSQL refuses to run as root, so as root the cluster belongs to the
``postgres`` user (Debian's package creates it) and the folder is made under /tmp, where
that user can reach it. Durability is off (fsync, synchronous commit): it is for tests and
benchmarks, and it is deleted afterwards anyway.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from hub.localservices.process import (
    LocalServiceError,
    ServiceNotInstalledError,
    ServiceProcess,
    ServiceStartError,
    free_port,
)

APT_HINT_PG = "apt-get install -y postgresql"
_SERVICE_USER = "postgres"


def pg_bindir(explicit: str | None = None) -> Path:
    """The folder with ``initdb`` and ``postgres``: Debian keeps them off PATH, per version."""
    if explicit:
        return Path(explicit)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")  # a full install puts its tools together
    if on_path and Path(on_path).with_name("postgres").exists():
        return Path(on_path).parent
    raise ServiceNotInstalledError(f"PostgreSQL's server binaries not found; install them "
                                   f"with: {APT_HINT_PG}")


def _run_as() -> tuple[int, int] | None:
    """(uid, gid) to run the server as, or None to run as ourselves (not root)."""
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam(_SERVICE_USER)
    except KeyError as exc:
        raise LocalServiceError(f"running as root needs a '{_SERVICE_USER}' user to own the "
                                f"cluster; install PostgreSQL ({APT_HINT_PG})") from exc
    return pw.pw_uid, pw.pw_gid


class PostgresProcess(ServiceProcess):
    """``postgres`` listening on ``127.0.0.1:<port>`` and on a socket in its own folder."""

    name = "postgres"
    binary_name = "postgres"

    def __init__(self, port: int | None = None, *,
                 data_dir: str | os.PathLike[str] | None = None, bindir: str | None = None,
                 startup_timeout: float = 30.0, die_with_parent: bool = True) -> None:
        if data_dir is None:
            # Under /tmp itself: the pytest folders are root's and closed to other users.
            data_dir = tempfile.mkdtemp(prefix="dcor-postgres-")
            owns = True
        else:
            owns = False
        super().__init__(data_dir=data_dir, binary=None, startup_timeout=startup_timeout,
                         die_with_parent=die_with_parent, fixed_port=port is not None)
        self._owns_dir = owns
        self._bindir_arg = bindir
        self.port = port if port is not None else free_port()
        self.user = _SERVICE_USER

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.data_dir / "sock"

    def url(self, database: str = "postgres", driver: str = "psycopg") -> str:
        """SQLAlchemy URL over TCP on loopback (trust authentication, no password)."""
        return f"postgresql+{driver}://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """CREATE DATABASE ``name``; returns its SQLAlchemy URL."""
        self._psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self._psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # --- ServiceProcess -------------------------------------------------------------------

    def start(self) -> PostgresProcess:
        if not self.is_running():
            # ServiceProcess looks on PATH; Debian keeps the server in the version's bindir.
            self._explicit_binary = str(self._bin("postgres"))
            self._initdb()
        super().start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Fast shutdown (SIGINT: clients are disconnected), then SIGKILL after ``timeout``."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def _pick_ports(self) -> None:
        self.port = free_port()

    def _command(self, binary: str) -> list[str]:
        cmd = [binary, "-D", str(self.pgdata), "-p", str(self.port),
               "-k", str(self.socket_dir), "-c", "listen_addresses=127.0.0.1",
               "-c", "fsync=off", "-c", "synchronous_commit=off",
               "-c", "full_page_writes=off", "-c", "max_connections=200"]
        return self._as_service_user(cmd)

    def _is_ready(self) -> bool:
        result = subprocess.run(
            [str(self._bin("pg_isready")), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            check=False)
        return result.returncode == 0

    # --- internals ------------------------------------------------------------------------

    def _bin(self, name: str) -> Path:
        path = pg_bindir(self._bindir_arg) / name
        if not os.access(path, os.X_OK):
            raise ServiceNotInstalledError(f"{path} missing; install it with: {APT_HINT_PG}")
        return path

    def _as_service_user(self, cmd: list[str]) -> list[str]:
        ids = _run_as()
        if ids is None:
            return cmd
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise LocalServiceError("running PostgreSQL as root needs setpriv (util-linux)")
        uid, gid = ids
        return [setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *cmd]

    def _initdb(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(parents=True, exist_ok=True)
        ids = _run_as()
        if ids is not None:
            for p in (self.data_dir, self.pgdata, self.socket_dir):
                os.chown(p, *ids)
            self.pgdata.chmod(0o700)
        cmd = self._as_service_user([
            str(self._bin("initdb")), "-D", str(self.pgdata), "-U", self.user,
            "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"])
        result = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                check=False, cwd=self.data_dir)
        if result.returncode != 0:
            raise ServiceStartError(f"initdb failed ({result.returncode}):\n"
                                    f"{result.stderr.decode(errors='replace')[-2000:]}")
        if ids is not None:  # the server log is written by us, the server only appends
            self.log_path.touch()

    def _psql(self, sql: str) -> None:
        result = subprocess.run(
            [str(self._bin("psql")), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
             "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
            stdin=subprocess.DEVNULL, capture_output=True, check=False)
        if result.returncode != 0:
            raise LocalServiceError(f"psql {sql!r} failed: "
                                    f"{result.stderr.decode(errors='replace')[-500:]}")
