"""``dcor-agent``: run the agent, or validate its configuration file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_agent.config import ConfigError, load_config
from edge_agent.install import add_install_parser, run_install
from edge_agent.logs import LOG_FORMATS, resolve_format, setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dcor-agent", description="dcor-fleet edge agent")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the agent")
    run.add_argument("--config", required=True, help="agent.yaml")
    run.add_argument("--log-level", default="INFO")
    run.add_argument("--log-format", choices=LOG_FORMATS, default=None,
                     help="text or json (default: $DCOR_LOG_FORMAT, else text)")
    run.add_argument("--log-file", type=Path, default=None,
                     help="also write JSON lines here (rotated by logrotate)")
    val = sub.add_parser("validate", help="check a configuration file and print its errors")
    val.add_argument("config")
    models = sub.add_parser("models", help="detection models")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    fetch = models_sub.add_parser(
        "fetch", help="download the COCO SSD MobileNet v1 model and check its digests")
    fetch.add_argument("--dir", default=None, help="target folder (default: where profiles "
                       "expect it)")
    fetch.add_argument("--url", default=None, help="mirror of the official archive")
    add_install_parser(sub)
    args = parser.parse_args(argv)

    if args.command == "install":
        return run_install(args)

    if args.command == "models":
        return _models_fetch(args.dir, args.url)

    if args.command == "validate":
        try:
            cfg = load_config(args.config)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
        print(f"{args.config}: valid (device {cfg.device_id}, profile {cfg.profile or '-'})")
        return 0

    try:
        log_format = resolve_format(args.log_format)
        cfg = load_config(args.config)
    except (ConfigError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    setup_logging(args.log_level, log_format, log_file=args.log_file,
                  fields={"service": "dcor-agent", "device": cfg.device_id})
    from edge_agent.app import Agent, check_secret_files
    from edge_agent.mqtt_tls import TlsConfigError
    from edge_agent.remoteconf.keys import HubKeyError
    from edge_agent.vision.errors import VisionError

    try:
        check_secret_files(cfg)
        agent = Agent(cfg)
    except (PermissionError, FileNotFoundError, TlsConfigError, VisionError,
            HubKeyError) as exc:
        print(f"dcor-agent: {exc}", file=sys.stderr)
        return 2
    return agent.run_forever()


def _models_fetch(target: str | None, url: str | None) -> int:
    from edge_agent.vision import models_fetch as mf
    from edge_agent.vision.errors import ModelFetchError

    kwargs: dict[str, object] = {"progress": mf.TextProgress()}
    if target:
        kwargs["target_dir"] = target
    if url:
        kwargs["url"] = url
    try:
        paths = mf.fetch_model(**kwargs)  # type: ignore[arg-type]
    except ModelFetchError as exc:
        print(f"dcor-agent: {exc}", file=sys.stderr)
        return 1
    for name, path in sorted(paths.items()):
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
