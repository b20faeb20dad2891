"""``dcor-hub rollout ...``: the rollout engine process and the admin's shell commands.

    dcor-hub rollout run                        the engine (holds the signing key, publishes)
    dcor-hub rollout start SPEC.json            start a rollout (see docs/configuration.md)
    dcor-hub rollout pause|resume|abort ID
    dcor-hub rollout status [ID]                rollouts, or one with its waves (JSON)
    dcor-hub rollout drift                      devices not running their desired config
    dcor-hub rollout override SCOPE KEY FILE    set an override layer from YAML ('-' removes)
    dcor-hub rollout model-add NAME FILE [--hardware HW]
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import yaml

from hub.settings import HubSettings

log = logging.getLogger("dcor.hub.rollout")


def _registry(settings: HubSettings) -> Any:
    from hub.registry.db import open_registry

    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return open_registry(settings.resolved_database_url())


def _audit(registry: Any, action: str, target: str, **detail: Any) -> None:
    from hub.security.audit import AuditLog

    AuditLog(registry).record(actor="shell", role="admin", action=action, target=target,
                              source="localhost", result="ok", detail=detail)


def cmd_run(settings: HubSettings) -> int:
    from hub.rollout.engine import RolloutEngine
    from hub.rollout.keys import load_signing_key, signing_key_path
    from hub.rollout.publisher import DesiredPublisher

    key = load_signing_key(signing_key_path(settings))
    registry = _registry(settings)
    publisher = DesiredPublisher(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    publisher.start()
    log.info("rollout engine: broker %s:%s, every %gs", settings.mqtt_host, settings.mqtt_port,
             settings.rollout_interval_s)
    try:
        RolloutEngine(registry, key, publisher).run(stop, settings.rollout_interval_s)
    finally:
        publisher.stop()
        registry.close()
    return 0


def cmd_rollout(args: argparse.Namespace, settings: HubSettings) -> int:
    from hub.rollout import views
    from hub.rollout.keys import SigningKeyError
    from hub.rollout.service import ConfigPushError, ConfigService

    if args.rollout_command == "run":
        try:
            return cmd_run(settings)
        except SigningKeyError as exc:
            print(f"dcor-hub rollout: {exc}", file=sys.stderr)
            return 2
    registry = _registry(settings)
    svc = ConfigService(registry, settings)
    try:
        out: Any
        if args.rollout_command == "start":
            spec = json.loads(Path(args.spec).read_text(encoding="utf-8"))
            out = svc.create_rollout(spec, author="shell")
            _audit(registry, "config_rollout_start", out["id"], devices=out["devices"],
                   waves=out["waves"])
        elif args.rollout_command in ("pause", "resume", "abort"):
            out = svc.steer(args.id, args.rollout_command, author="shell")
            _audit(registry, f"config_rollout_{args.rollout_command}", args.id)
        elif args.rollout_command == "status":
            out = views.rollout_detail(registry, args.id) if args.id else \
                views.rollout_list(registry)
        elif args.rollout_command == "drift":
            out = views.drift(registry)
        elif args.rollout_command == "override":
            data = None if args.file == "-" else yaml.safe_load(
                Path(args.file).read_text(encoding="utf-8"))
            out = {"id": svc.set_override(args.scope, args.key, data, author="shell",
                                          note=args.note)}
            _audit(registry, "config_override", f"{args.scope}/{args.key}", note=args.note)
        else:  # model-add
            out = svc.add_model(args.name, Path(args.file), hardware=args.hardware,
                                author="shell")
            _audit(registry, "config_model_add", args.name, **out)
    except ConfigPushError as exc:
        print(f"dcor-hub rollout: {exc}", file=sys.stderr)
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
        return 2
    finally:
        registry.close()
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("rollout", help="configuration push: the engine and its commands")
    rs = p.add_subparsers(dest="rollout_command", required=True)
    rs.add_parser("run", help="run the rollout engine (signs and publishes)")
    st = rs.add_parser("start", help="start a rollout from a JSON spec")
    st.add_argument("spec")
    for name in ("pause", "resume", "abort"):
        rs.add_parser(name, help=f"{name} a rollout").add_argument("id")
    rs.add_parser("status", help="rollouts, or one in detail").add_argument("id", nargs="?")
    rs.add_parser("drift", help="devices whose reported config differs from the desired")
    ov = rs.add_parser("override", help="set (or with '-' remove) an override layer")
    ov.add_argument("scope", choices=("kecamatan", "kelurahan", "site", "device"))
    ov.add_argument("key")
    ov.add_argument("file", help="YAML mapping of agent.yaml keys, or '-' to remove")
    ov.add_argument("--note", default="")
    ma = rs.add_parser("model-add", help="add a model file to the catalogue")
    ma.add_argument("name")
    ma.add_argument("file")
    ma.add_argument("--hardware", default="", help="hardware class ('' = any)")
