"""``dcor-hub doctor``, ``dcor-hub backup DIR`` and ``dcor-hub restore BACKUP``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from hub.settings import HubSettings


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doc = sub.add_parser("doctor", help="check broker, InfluxDB, database, disks, certificates")
    doc.add_argument("--timeout", type=float, default=5.0, help="per check, seconds")
    doc.add_argument("--influx-data-dir", type=Path, default=Path("/var/lib/influxdb"),
                     help="InfluxDB's folder when it runs on this host (disk check)")
    doc.add_argument("--cert", type=Path, action="append", default=[],
                     help="another certificate to check (e.g. the web server's), repeatable")
    doc.add_argument("--json", action="store_true", help="findings as JSON")
    doc.add_argument("--strict", action="store_true", help="warnings fail too (exit 1)")
    doc.set_defaults(ops_func=cmd_doctor)
    bak = sub.add_parser("backup", help="copy the registry, media and keys into DIR")
    bak.add_argument("dir", type=Path, help="a new dcor-hub-<time> folder is made in it")
    bak.add_argument("--no-secrets", action="store_true",
                     help="leave out the security folder (CA and signing keys) and hub.yaml")
    bak.add_argument("--keep", type=int, default=0,
                     help="then delete all but the newest N backups in DIR (0: keep all)")
    bak.set_defaults(ops_func=cmd_backup)
    res = sub.add_parser("restore", help="put a backup back (stop the hub's services first)")
    res.add_argument("backup", type=Path, help="a dcor-hub-<time> folder")
    res.add_argument("--force", action="store_true",
                     help="replace a registry with devices, media and differing keys "
                          "(moved aside, not deleted)")
    res.set_defaults(ops_func=cmd_restore)


def cmd_doctor(args: argparse.Namespace, settings: HubSettings) -> int:
    from hub.ops.checks import exit_code, format_json, format_report
    from hub.ops.doctor import run_doctor

    logging.getLogger("alembic").setLevel(logging.WARNING)  # its set-up chatter, not findings

    findings = run_doctor(settings, timeout=args.timeout, influx_data_dir=args.influx_data_dir,
                          certs=args.cert)
    print(format_json(findings) if args.json else format_report(findings), flush=True)
    return exit_code(findings, strict=args.strict)


def cmd_backup(args: argparse.Namespace, settings: HubSettings) -> int:
    from hub.ops.backup import backup, prune

    named = getattr(args, "config", None) or os.environ.get("DCOR_HUB_CONFIG")
    config = Path(named) if named else None
    out = backup(settings, args.dir, with_secrets=not args.no_secrets, config_file=config)
    print(f"dcor-hub backup: {out.folder} ({out.files} files, {out.bytes / 1024**2:.1f} MiB, "
          f"{out.database} registry)", flush=True)
    if args.keep > 0:
        for gone in prune(args.dir, args.keep):
            print(f"  removed old backup {gone}")
    return 0


def cmd_restore(args: argparse.Namespace, settings: HubSettings) -> int:
    from hub.ops.backup import restore

    out = restore(settings, args.backup, force=args.force)
    print(f"dcor-hub restore: {out.files} files from {out.folder} ({out.database} registry)")
    for p in out.moved_aside:
        print(f"  moved aside: {p}")
    if (args.backup / "hub.yaml").exists():
        print(f"  the backup's settings are in {args.backup / 'hub.yaml'}: compare by hand")
    print("next: dcor-hub migrate, then start the services (docs/operations.md)", flush=True)
    return 0


def run(args: argparse.Namespace, settings: HubSettings) -> int:
    from hub.ops.backup import BackupError

    try:
        result: Any = args.ops_func(args, settings)
        return int(result)
    except BackupError as exc:
        print(f"dcor-hub {args.command}: {exc}", file=sys.stderr)
        return 2
