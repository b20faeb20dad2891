"""``dcor-hub doctor``: is the hub able to work, and if not, what to fix.

Each probe measures one dependency with a short timeout and turns it into findings
(``hub.ops.checks``): the broker (an MQTT 5 login with the hub's own credentials), InfluxDB
(ping, the database), the registry (a query, the migration revision), disks (the data folder,
InfluxDB's folder when local, the spool), ingest workers (their last report), certificates
(expiry of every ``*.crt`` in ``security_dir`` and any given), and the clock.
"""

from __future__ import annotations

import contextlib
import shutil
import ssl
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hub.ops.checks import Finding, cert_finding, disk_finding, fail, ok, warn
from hub.settings import HubSettings

Probe = Callable[[], list[Finding]]


def mqtt_login(settings: HubSettings, timeout: float) -> tuple[bool, str]:
    """Connect as the hub (MQTT 5, TLS when configured); (accepted, reason)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    result: list[str] = []
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="dcor-hub-doctor",
                         protocol=mqtt.MQTTv5)
    if settings.mqtt_username:
        client.username_pw_set(settings.mqtt_username, settings.mqtt_password_value() or None)
    if settings.mqtt_tls_ca_file is not None:
        client.tls_set(ca_certs=str(settings.mqtt_tls_ca_file), cert_reqs=ssl.CERT_REQUIRED,
                       tls_version=ssl.PROTOCOL_TLS_CLIENT)

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        result.append("" if not reason.is_failure else str(reason))
        done.set()

    client.on_connect = on_connect
    try:
        client.connect(settings.mqtt_host, settings.mqtt_port, keepalive=10)
        client.loop_start()
        if not done.wait(timeout):
            return False, f"no CONNACK within {timeout:.0f} s"
        return result[0] == "", result[0] or "accepted"
    except (OSError, ssl.SSLError) as exc:
        return False, str(exc) or type(exc).__name__
    finally:
        with contextlib.suppress(Exception):
            client.disconnect()
        client.loop_stop()


def probe_broker(settings: HubSettings, timeout: float) -> list[Finding]:
    where = f"{settings.mqtt_host}:{settings.mqtt_port}"
    accepted, reason = mqtt_login(settings, timeout)
    if accepted:
        who = settings.mqtt_username or "anonymous"
        return [ok("broker", f"{where} accepted {who} (MQTT 5"
                   f"{', TLS' if settings.mqtt_tls_ca_file else ''})")]
    if "not authori" in reason.lower() or "bad user" in reason.lower():
        return [fail("broker", f"{where} refused the hub's login: {reason}",
                     "check mqtt_username and mqtt_password_file in hub.yaml against the "
                     "broker's dynamic-security clients (docs/security.md)")]
    return [fail("broker", f"{where} unreachable: {reason}",
                 "start the broker (systemctl start mosquitto; journalctl -u mosquitto) or "
                 "correct mqtt_host/mqtt_port in hub.yaml")]


def probe_influx(settings: HubSettings, timeout: float) -> list[Finding]:
    from hub.influx import InfluxClient, InfluxConfig, InfluxError

    client = InfluxClient(InfluxConfig(
        url=settings.influx_url.rstrip("/"), database=settings.influx_db,
        username=settings.influx_username,
        password=settings.influx_password.get_secret_value(),
        token=settings.influx_token.get_secret_value(), timeout_s=timeout))
    try:
        if not client.ping():
            return [fail("influxdb", f"{settings.influx_url} does not answer /ping",
                         "start InfluxDB (systemctl start influxdb; journalctl -u influxdb) "
                         "or correct influx_url; meanwhile ingest spools to disk")]
        try:
            client.query("SHOW MEASUREMENTS LIMIT 1")
        except InfluxError as exc:
            return [fail("influxdb", f"database {settings.influx_db!r}: {exc}",
                         "create it (dcor-hub ingest does on start) or fix the credentials "
                         "/ token in hub.yaml")]
        return [ok("influxdb", f"{settings.influx_url} database {settings.influx_db!r}")]
    finally:
        client.close()


def probe_database(settings: HubSettings) -> list[Finding]:
    from sqlalchemy import create_engine, inspect, text

    from hub.registry.migrations import alembic_config, current_revision

    url = settings.resolved_database_url()
    engine = create_engine(url, connect_args={"timeout": 5} if url.startswith("sqlite") else {})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            tables = set(inspect(conn).get_table_names())
    except Exception as exc:  # any driver error: the registry is not usable
        return [fail("database", f"registry unreachable: {str(exc).splitlines()[0][:300]}",
                     "check database_url (PostgreSQL running? credentials?) or the SQLite "
                     "file's folder and permissions")]
    finally:
        engine.dispose()
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    rev = current_revision(url)
    where = _safe_url(url)
    if rev in heads:
        return [ok("database", f"{where} at schema revision {rev}")]
    if rev is None and "devices" in tables:
        return [warn("database", f"{where}: tables but no migration revision",
                     "a registry made before migrations: stamp it once (docs/operations.md, "
                     "'Upgrades'), then dcor-hub migrate")]
    return [fail("database", f"{where} at revision {rev or 'none'}, newest "
                 f"{', '.join(sorted(heads))}", "stop the hub and run dcor-hub migrate")]


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def probe_disks(settings: HubSettings, influx_data_dir: Path | None) -> list[Finding]:
    out = []
    data = settings.data_dir
    if data.exists():
        u = shutil.disk_usage(data)
        out.append(disk_finding("hub data", str(data), u.free, u.total,
                                "free space: lower media_max_bytes / media_max_age_s, move "
                                "data_dir to a larger disk (docs/operations.md)"))
    else:
        out.append(warn("disk", f"data_dir {data} does not exist",
                        "create it or correct data_dir (ingest and web make it on start)"))
    if influx_data_dir is not None and influx_data_dir.exists():
        u = shutil.disk_usage(influx_data_dir)
        out.append(disk_finding("InfluxDB", str(influx_data_dir), u.free, u.total,
                                "InfluxDB disk: shorten the retention policy or grow the "
                                "disk (runbook 'InfluxDB disk full')"))
    spool = data / "spool"
    batches = sorted(spool.glob("*/*.lp")) if spool.exists() else []
    if batches:
        size = sum(p.stat().st_size for p in batches)
        out.append(warn("spool", f"{len(batches)} batches ({size // 1024} KiB) waiting in "
                        f"{spool}", "InfluxDB is refusing or was down: fix it and the "
                        "ingest replays the spool by itself (runbook 'Hub spool growing')"))
    else:
        out.append(ok("spool", "empty"))
    return out


def probe_workers(settings: HubSettings, now: datetime) -> list[Finding]:
    from hub.registry.db import open_registry
    from hub.web.data import load_worker_stats
    from hub.web.stats import STALE_WORKER_S
    from hub.web.timefmt import as_utc

    try:
        registry = open_registry(settings.resolved_database_url(), create=False)
        try:
            workers = load_worker_stats(registry)
        finally:
            registry.close()
    except Exception as exc:  # reported by the database probe already
        return [warn("ingest", f"worker reports unreadable: {str(exc)[:200]}",
                     "see the database finding")]
    live = []
    for w in workers:
        at = as_utc(w.updated_at)
        if at is not None and (now - at).total_seconds() <= STALE_WORKER_S:
            live.append(w.worker_id)
    if live:
        return [ok("ingest", f"{len(live)} live worker(s): {', '.join(sorted(live))}")]
    return [fail("ingest", f"no ingest worker reported in the last {STALE_WORKER_S:.0f} s",
                 "systemctl status 'dcor-hub-ingest@*'; journalctl -u dcor-hub-ingest@1")]


def probe_certificates(settings: HubSettings, extra: Sequence[Path], now: datetime
                       ) -> list[Finding]:
    from cryptography import x509

    folder = settings.resolved_security_dir()
    files = sorted(folder.glob("*.crt")) if folder.is_dir() else []
    if settings.mqtt_tls_ca_file is not None:
        files.append(settings.mqtt_tls_ca_file)
    files += list(extra)
    if not files:
        return [warn("certificates", f"no certificates in {folder}",
                     "run dcor-provision init-hub (TLS for the boxes), or set security_dir")]
    out = []
    for path in dict.fromkeys(files):
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError) as exc:
            out.append(fail("certificates", f"{path}: unreadable ({exc})",
                            "replace the file with a PEM certificate"))
            continue
        sans: list[str] = []
        with contextlib.suppress(x509.ExtensionNotFound):
            ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            sans = [str(v) for v in ext.value.get_values_for_type(x509.DNSName)]
            sans += [str(v) for v in ext.value.get_values_for_type(x509.IPAddress)]
        host = settings.device_broker_host if path.name == "broker.crt" else ""
        out.append(cert_finding(path.name if path.parent == folder else str(path),
                                cert.not_valid_after_utc, now, sans, host))
    return out


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def probe_settings(settings: HubSettings) -> list[Finding]:
    """Settings that work on a laptop and hurt in the room."""
    out = []
    key = settings.secret_key.get_secret_value()
    if len(key) < 32 or "REPLACE" in key:
        out.append(warn("settings", "secret_key is unset or a placeholder",
                        "set a random secret_key in hub.yaml (python3 -c 'import secrets; "
                        "print(secrets.token_hex(32))'): each web worker otherwise makes its "
                        "own and logins break between workers and restarts"))
    if settings.mqtt_host not in _LOOPBACK and settings.mqtt_tls_ca_file is None:
        out.append(warn("settings", f"the hub talks to the broker at {settings.mqtt_host} "
                        "in plaintext", "set mqtt_tls_ca_file (docs/security.md, TLS)"))
    if not settings.web_cookie_secure and settings.web_host not in _LOOPBACK:
        out.append(warn("settings", "web_cookie_secure is off on a non-loopback address",
                        "serve over HTTPS (nginx) and set web_cookie_secure: true"))
    return out or [ok("settings", "no risky settings")]


def probe_clock() -> list[Finding]:
    from edge_agent.health import clock_synced

    synced = clock_synced()
    if synced is False:
        return [warn("clock", "the hub's clock is not NTP-synchronised",
                     "timedatectl; systemctl status systemd-timesyncd (device times are "
                     "judged against this clock)")]
    return [ok("clock", "synchronised" if synced else "sync state unknown")]


def run_doctor(settings: HubSettings, *, timeout: float = 5.0,
               influx_data_dir: Path | None = None, certs: Sequence[Path] = (),
               now: datetime | None = None) -> list[Finding]:
    now = now or datetime.now(UTC)
    probes: list[Probe] = [
        lambda: probe_broker(settings, timeout),
        lambda: probe_influx(settings, timeout),
        lambda: probe_database(settings),
        lambda: probe_workers(settings, now),
        lambda: probe_disks(settings, influx_data_dir),
        lambda: probe_certificates(settings, certs, now),
        lambda: probe_settings(settings),
        probe_clock,
    ]
    findings: list[Finding] = []
    for probe in probes:
        try:
            findings += probe()
        except Exception as exc:  # a probe's own bug must not hide the other checks
            findings.append(fail("doctor", f"a check crashed: {type(exc).__name__}: {exc}",
                                 "report this; the other checks still ran"))
    return findings
