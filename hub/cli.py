"""``dcor-hub``: the hub's processes (ingest, alerts, web) and the all-in-one demo."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any

from hub.logs import setup_hub_logging
from hub.settings import HubSettings, SettingsError, load_settings


def _settings(args: argparse.Namespace) -> HubSettings:
    return load_settings(args.config)


def build_influx(settings: HubSettings) -> Any:
    from hub.influx import InfluxClient, InfluxConfig

    return InfluxClient(InfluxConfig(
        url=settings.influx_url, database=settings.influx_db,
        username=settings.influx_username,
        password=settings.influx_password.get_secret_value(),
        token=settings.influx_token.get_secret_value(), timeout_s=settings.influx_timeout_s,
    ))


def cmd_ingest(args: argparse.Namespace) -> int:
    from hub.ingest.mqttlink import worker_client_id
    from hub.ingest.service import IngestService
    from hub.registry.db import open_registry

    settings = _settings(args)
    if args.worker_id:
        # Several workers share one subscription, but each needs its own persistent session.
        settings = settings.model_copy(update={
            "mqtt_client_id": worker_client_id(settings.mqtt_client_id, args.worker_id)})
    registry = open_registry(settings.resolved_database_url())
    service = IngestService(settings, registry, build_influx(settings),
                            worker_id=args.worker_id)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    service.start()
    logging.getLogger("dcor.hub").info(
        "ingest %s: broker %s:%s -> %s/%s", service.worker_id, settings.mqtt_host,
        settings.mqtt_port, settings.influx_url, settings.influx_db)
    stop.wait()
    service.stop()
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    from hub.alerts.rules import RulesError
    from hub.alerts.service import default_worker_id, run_alerts

    settings = _settings(args)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        run_alerts(settings, args.worker_id or default_worker_id(), stop)
    except RulesError as exc:
        print(f"dcor-hub alerts: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    from hub.web import run_web

    settings = _settings(args)
    if args.port is not None:
        settings = settings.model_copy(update={"web_port": args.port})
    run_web(settings, on_ready=lambda url: print(f"dcor-hub web: {url}", flush=True))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from hub.registry.migrations import upgrade_head

    settings = _settings(args)
    url = settings.resolved_database_url()
    upgrade_head(url)
    print(f"dcor-hub migrate: {_safe_url(url)} is at the newest schema", flush=True)
    return 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


SIM_DEVICES_ENV = "DCOR_DEMO_SIM_DEVICES"
DEMO_SIM_DEFAULT = 300  # hub.demo.simfleet.DEFAULT_SIM_DEVICES (not imported: slow to load)


def cmd_demo(args: argparse.Namespace) -> int:
    from hub.demo import run_demo

    sim_devices = args.sim_devices
    if sim_devices is None:
        raw = os.environ.get(SIM_DEVICES_ENV, "")
        try:
            sim_devices = int(raw) if raw.strip() else DEMO_SIM_DEFAULT
        except ValueError:
            print(f"dcor-hub demo: {SIM_DEVICES_ENV} must be a whole number, not {raw!r}",
                  file=sys.stderr)
            return 2
    return run_demo(agents=args.agents, web_port=args.port, data_dir=args.data_dir,
                    sim_devices=sim_devices)


def cmd_security(args: argparse.Namespace) -> int:
    """``users`` / ``tokens`` (hub.security.cli); a user's mistake exits 2 with one line."""
    try:
        result: int = args.security_func(args, _settings(args))
        return result
    except ValueError as exc:  # UserError, PasswordPolicyError, bad durations
        print(f"dcor-hub: {exc}", file=sys.stderr)
        return 2


def cmd_ops(args: argparse.Namespace) -> int:
    """``doctor`` / ``backup`` / ``restore`` (hub.ops.cli)."""
    from hub.ops.cli import run

    return run(args, _settings(args))


def cmd_rollout(args: argparse.Namespace) -> int:
    from hub.rollout.cli import cmd_rollout as run

    return run(args, _settings(args))


def main(argv: list[str] | None = None) -> int:
    from hub.ops.cli import add_parsers as add_ops_parsers
    from hub.rollout.cli import add_parsers as add_rollout_parsers
    from hub.security.cli import add_parsers as add_security_parsers

    parser = argparse.ArgumentParser(prog="dcor-hub", description="dcor-fleet hub")
    parser.add_argument("--config", help="hub settings YAML (or DCOR_HUB_CONFIG)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-format", choices=("text", "json"), default=None,
                        help="text or json lines (default: $DCOR_LOG_FORMAT, else text)")
    sub = parser.add_subparsers(dest="command", required=True)
    ing = sub.add_parser("ingest", help="MQTT -> InfluxDB ingest worker")
    ing.add_argument("--worker-id", default=None, help="stable name for this worker")
    ing.set_defaults(func=cmd_ingest)
    alr = sub.add_parser("alerts", help="evaluate alert rules and deliver notifications")
    alr.add_argument("--worker-id", default=None, help="stable name (default host-pid)")
    alr.set_defaults(func=cmd_alerts)
    web = sub.add_parser("web", help="serve the room's views and the JSON API")
    web.add_argument("--port", type=int, default=None)
    web.set_defaults(func=cmd_web)
    mig = sub.add_parser("migrate", help="bring the registry database to the newest schema")
    mig.set_defaults(func=cmd_migrate)
    demo = sub.add_parser("demo", help="broker, InfluxDB, hub and a fleet of agents, locally")
    demo.add_argument("--agents", type=int, default=6)
    demo.add_argument("--port", type=int, default=8080, help="web port (next free if taken)")
    demo.add_argument("--data-dir", default=None, help="keep state here (default: temporary)")
    demo.add_argument("--sim-devices", type=int, default=None, metavar="N",
                      help="simulated boxes (dcor-sim) beside the real agents; 0: none "
                           f"(default: ${SIM_DEVICES_ENV}, else {DEMO_SIM_DEFAULT})")
    demo.set_defaults(func=cmd_demo)
    add_security_parsers(sub)
    add_ops_parsers(sub)
    for name in ("doctor", "backup", "restore"):
        sub.choices[name].set_defaults(func=cmd_ops)
    add_rollout_parsers(sub)
    sub.choices["rollout"].set_defaults(func=cmd_rollout)
    for name in ("users", "tokens"):
        sub.choices[name].set_defaults(func=cmd_security)
    args = parser.parse_args(argv)
    try:
        setup_hub_logging(args.log_level, args.log_format, f"dcor-hub-{args.command}")
    except ValueError as exc:  # DCOR_LOG_FORMAT or --log-level not understood
        print(f"dcor-hub: {exc}", file=sys.stderr)
        return 2
    try:
        result: int = args.func(args)
        return result
    except SettingsError as exc:
        print(f"dcor-hub: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
