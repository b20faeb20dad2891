"""``dcor-agent``: run the agent, or validate its configuration file."""

from __future__ import annotations

import argparse
import logging
import sys

from edge_agent.config import ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dcor-agent", description="dcor-fleet edge agent")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the agent")
    run.add_argument("--config", required=True, help="agent.yaml")
    run.add_argument("--log-level", default="INFO")
    val = sub.add_parser("validate", help="check a configuration file and print its errors")
    val.add_argument("config")
    models = sub.add_parser("models", help="detection models")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    fetch = models_sub.add_parser(
        "fetch", help="download the COCO SSD MobileNet v1 model and check its digests")
    fetch.add_argument("--dir", default=None, help="target folder (default: where profiles "
                       "expect it)")
    fetch.add_argument("--url", default=None, help="mirror of the official archive")
    args = parser.parse_args(argv)

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

    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
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
