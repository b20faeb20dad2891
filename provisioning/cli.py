"""``dcor-provision``: the technician's kit and the hub's key set-up.

- ``enroll --hub URL``: enroll one box through the hub's API (personal token), write its
  bundle, print a summary and a QR code of the device id. ``enroll --hub-config`` is the local
  mode (straight into the registry, no broker credentials: development and the demo).
- ``bulk devices.csv``: many boxes, resumable, with a report CSV.
- ``check``: the on-site check, run on the box; reported to the hub.
- ``replace`` / ``revoke``: new credentials for a replaced box; cut a box off.
- ``init-hub``: the hub's CA, broker certificate, signing key and broker admin client.

Each command imports only what it needs: the box has the agent's packages, the laptop may
have neither the hub's nor the agent's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from provisioning.bundle import AGENT_CONFIG_NAME, BundleExistsError, write_bundle
from provisioning.client import HubClient, HubError, TokenError, read_token
from provisioning.profiles import ProfileError, list_profiles


class UsageError(ValueError):
    """A command-line mistake; the message says what to give."""


def _client(args: argparse.Namespace) -> HubClient:
    return HubClient(args.hub, read_token(args.token_file), ca_file=args.hub_ca)


def _site_payload(args: argparse.Namespace) -> dict[str, Any]:
    if (args.lat is None) != (args.lon is None):
        raise UsageError("give both --lat and --lon, or neither")
    site: dict[str, Any] = {"id": args.site, "kecamatan": args.kecamatan,
                            "kelurahan": args.kelurahan, "name": args.site_name or ""}
    if args.lat is not None:
        site.update(lat=args.lat, lon=args.lon)
    return site


def remote_summary(answer: dict[str, Any], out: Path, qr: str) -> str:
    broker = answer.get("broker", {})
    lines = [
        f"enrolled {answer['device_id']} (profile {answer.get('profile') or '-'}, hardware "
        f"{answer.get('hardware') or '-'})",
        f"  broker:   {broker.get('host')}:{broker.get('port')} "
        f"{'TLS' if broker.get('tls') else 'PLAINTEXT (development hub)'}",
        f"  bundle:   {out} (copy it to /etc/dcor-agent/ on the box; files are mode 0600)",
        f"  on the box: dcor-provision check --config /etc/dcor-agent/{AGENT_CONFIG_NAME} "
        "--hub URL",
    ]
    if qr:
        lines += ["  device id as a QR code (compare with the label on the box):", qr]
    return "\n".join(lines)


def cmd_enroll(args: argparse.Namespace) -> int:
    if args.hub:
        return _enroll_remote(args)
    if not (args.hub_config and args.broker_host and args.broker_port):
        raise UsageError("give --hub URL (and a token), or for the local mode --hub-config, "
                         "--broker-host and --broker-port")
    return _enroll_local(args)


def _enroll_remote(args: argparse.Namespace) -> int:
    from provisioning.qr import terminal_qr

    out = Path(args.out)
    if (out / AGENT_CONFIG_NAME).exists() and not args.force:
        raise BundleExistsError(f"{out} already holds a bundle; pass --force to replace it")
    payload: dict[str, Any] = {"device_id": args.device_id, "site": _site_payload(args),
                               "profile": args.profile, "hardware": args.hardware or ""}
    if args.agent_data_dir:
        payload["agent_data_dir"] = args.agent_data_dir
    answer = _client(args).enroll(payload)
    write_bundle(out, answer["files"], force=True)
    print(remote_summary(answer, out, terminal_qr(answer["device_id"])))
    if not answer.get("secure"):
        print("dcor-provision: warning: this hub hands out bundles without broker "
              "credentials (no init-hub); do not use it for real boxes", file=sys.stderr)
    return 0


def _enroll_local(args: argparse.Namespace) -> int:
    from hub.settings import load_settings
    from provisioning.enroll import (
        DEFAULT_AGENT_DATA_DIR,
        EnrollRequest,
        enroll,
        open_hub_registry,
    )
    from provisioning.registry_ops import SiteSpec

    site = _site_payload(args)
    settings = load_settings(args.hub_config)
    req = EnrollRequest(
        device_id=args.device_id,
        site=SiteSpec(id=site["id"], kecamatan=site["kecamatan"], kelurahan=site["kelurahan"],
                      name=site["name"], lat=args.lat, lon=args.lon),
        profile=args.profile, hardware=args.hardware or "",
        broker_host=args.broker_host, broker_port=args.broker_port,
        agent_data_dir=Path(args.agent_data_dir or DEFAULT_AGENT_DATA_DIR),
    )
    out = Path(args.out)
    registry = open_hub_registry(settings)
    try:
        bundle = enroll(registry, req, out, profiles_dir=args.profiles_dir, force=args.force)
    finally:
        registry.close()
    print(local_summary(req, bundle, out, settings.resolved_database_url()))
    print("dcor-provision: local mode: no broker credentials or TLS in this bundle "
          "(development and demo brokers only)", file=sys.stderr)
    return 0


def local_summary(req: Any, bundle: Any, out: Path, registry_url: str) -> str:
    cfg = bundle.config
    where = f"{req.site.kecamatan} / {req.site.kelurahan}"
    return "\n".join([
        f"enrolled {cfg.device_id} at site {req.site.id} ({where}), profile {cfg.profile}, "
        f"hardware {cfg.hardware or '-'}",
        f"  registry: {_redact(registry_url)}",
        f"  broker:   {cfg.mqtt.host}:{cfg.mqtt.port}",
        f"  bundle:   {out / AGENT_CONFIG_NAME}",
        f"  on the box: dcor-agent run --config {AGENT_CONFIG_NAME} "
        "(or install it as /etc/dcor-agent/agent.yaml for the systemd unit)",
    ])


def _redact(url: str) -> str:
    # postgresql://user:secret@host/db -> postgresql://user:***@host/db
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"


def cmd_bulk(args: argparse.Namespace) -> int:
    from provisioning.bulk import TextProgress, read_rows, run_bulk

    csv_path = Path(args.csv)
    report = Path(args.report) if args.report else csv_path.with_suffix(".report.csv")
    client = _client(args)
    client.whoami()  # a bad token fails once, not once per row
    progress = TextProgress(len(read_rows(csv_path)))
    results = run_bulk(client, csv_path, Path(args.out_dir), report, progress.update)
    progress.close()
    for r in results:
        if r.result != "ok":
            print(f"row {r.row} {r.device_id or '-'}: {r.result}: {r.reason}")
    counts = {k: sum(1 for r in results if r.result == k) for k in ("ok", "skipped", "error")}
    print(f"{counts['ok']} enrolled, {counts['skipped']} skipped (already done), "
          f"{counts['error']} failed; report: {report}")
    return 1 if counts["error"] else 0


def cmd_check(args: argparse.Namespace) -> int:
    from edge_agent.config import load_config
    from provisioning.check import format_checklist, run_checks

    cfg = load_config(args.config)
    client = _client(args)
    client.whoami()  # also learns the hub's clock
    run = run_checks(cfg, hub_time=client.last_date, timeout=args.timeout)
    print(format_checklist(run))
    answer = client.install_check(cfg.device_id, run.report())
    if answer.get("verified"):
        print(f"the hub marked {cfg.device_id} as verified")
        return 0
    print(f"the hub did not verify {cfg.device_id}: {'; '.join(answer.get('problems', []))}")
    return 1


def cmd_replace(args: argparse.Namespace) -> int:
    out = Path(args.out)
    answer = _client(args).replace(args.device_id)
    write_bundle(out, answer["files"], force=True)
    print(f"new credentials for {args.device_id}; bundle: {out} (the old box is cut off)")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    _client(args).revoke(args.device_id)
    print(f"revoked {args.device_id}: the broker has disconnected it and refuses it from now")
    return 0


def cmd_init_hub(args: argparse.Namespace) -> int:
    from provisioning.hubinit import (
        MOSQUITTO_SNIPPET,
        hub_settings_lines,
        init_hub,
    )

    material = init_hub(Path(args.dir), args.broker_name, device_port=args.device_port,
                        force=args.force)
    print(f"hub keys and broker files written to {material.folder}")
    print(f"  Mosquitto: include {material.path(MOSQUITTO_SNIPPET)} (restart mosquitto)")
    print("  hub settings (hub.yaml):")
    for line in hub_settings_lines(material, args.broker_name[0], args.device_port).splitlines():
        print(f"    {line}")
    return 0


def cmd_profiles(args: argparse.Namespace) -> int:
    for name in list_profiles(args.profiles_dir):
        print(name)
    return 0


def _hub_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--hub", required=required, default=None,
                   help="the hub's URL, e.g. https://hub.dcor.depok.go.id")
    p.add_argument("--token-file", type=Path, default=None,
                   help="file (mode 0600) with your personal token; or set $DCOR_TOKEN")
    p.add_argument("--hub-ca", type=Path, default=None,
                   help="CA certificate of an https hub with its own CA")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dcor-provision",
                                     description="enroll and check dcor-fleet edge devices")
    parser.add_argument("--profiles-dir", type=Path, default=None,
                        help="profile folder (default: $DCOR_PROFILES_DIR or "
                             "firmware_configs/profiles)")
    sub = parser.add_subparsers(dest="command", required=True)

    en = sub.add_parser("enroll", help="register one box and write its bundle folder")
    _hub_args(en, required=False)
    en.add_argument("--device-id", required=True, help="e.g. beji-kemiri-muka-01")
    en.add_argument("--site", required=True, help="site id, e.g. beji-margonda-01")
    en.add_argument("--site-name", default="", help="human name of the site")
    en.add_argument("--kecamatan", required=True)
    en.add_argument("--kelurahan", required=True)
    en.add_argument("--profile", required=True, help="see `dcor-provision profiles`")
    en.add_argument("--lat", type=float, default=None)
    en.add_argument("--lon", type=float, default=None)
    en.add_argument("--hardware", default="", help="hardware class (default: the profile's)")
    en.add_argument("--agent-data-dir", default="",
                    help="state folder on the box (default /var/lib/dcor-agent)")
    en.add_argument("--out", required=True, help="bundle folder to write")
    en.add_argument("--force", action="store_true", help="replace an existing bundle")
    en.add_argument("--hub-config", default=None, help="local mode: the hub's settings YAML")
    en.add_argument("--broker-host", default=None, help="local mode: broker address")
    en.add_argument("--broker-port", type=int, default=None, help="local mode: broker port")
    en.set_defaults(func=cmd_enroll)

    bu = sub.add_parser("bulk", help="enroll the boxes of a CSV file (resumable)")
    bu.add_argument("csv", help="columns: device_id, site, kecamatan, kelurahan, profile "
                    "[, site_name, lat, lon, hardware]")
    _hub_args(bu)
    bu.add_argument("--out-dir", required=True, help="one bundle folder per device here")
    bu.add_argument("--report", default=None, help="report CSV (default: <csv>.report.csv)")
    bu.set_defaults(func=cmd_bulk)

    ch = sub.add_parser("check", help="on the box: check the install and report to the hub")
    ch.add_argument("--config", required=True, help="the box's agent.yaml")
    _hub_args(ch)
    ch.add_argument("--timeout", type=float, default=20.0, help="seconds per step")
    ch.set_defaults(func=cmd_check)

    rp = sub.add_parser("replace", help="new credentials for a replacement box")
    _hub_args(rp)
    rp.add_argument("--device-id", required=True)
    rp.add_argument("--out", required=True)
    rp.set_defaults(func=cmd_replace)

    rv = sub.add_parser("revoke", help="cut a box off the broker (admins)")
    _hub_args(rv)
    rv.add_argument("--device-id", required=True)
    rv.set_defaults(func=cmd_revoke)

    ih = sub.add_parser("init-hub", help="make the hub's CA, broker certificate, signing key "
                        "and broker admin client")
    ih.add_argument("--dir", required=True, help="e.g. /etc/dcor-hub/security")
    ih.add_argument("--broker-name", action="append", required=True,
                    help="host name or IP the boxes use for the broker (repeatable)")
    ih.add_argument("--device-port", type=int, default=8883)
    ih.add_argument("--force", action="store_true", help="make new keys over old ones")
    ih.set_defaults(func=cmd_init_hub)

    pr = sub.add_parser("profiles", help="list the profiles a device can be enrolled with")
    pr.set_defaults(func=cmd_profiles)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [UsageError, ProfileError, BundleExistsError,
                                         TokenError, HubError, ValueError]
    try:  # present where the hub's or the agent's packages are installed
        from edge_agent.config import ConfigError
        from hub.settings import SettingsError

        errors += [ConfigError, SettingsError]
    except ImportError:
        pass
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except _user_errors() as exc:
        print(f"dcor-provision: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
