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
    args = parser.parse_args(argv)

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

    try:
        check_secret_files(cfg)
    except (PermissionError, FileNotFoundError) as exc:
        print(f"dcor-agent: {exc}", file=sys.stderr)
        return 2
    return Agent(cfg).run_forever()


if __name__ == "__main__":
    sys.exit(main())
