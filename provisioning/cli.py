"""``dcor-provision``: enroll a box (registry record + bundle folder); list profiles."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dcor_wire.topics import TopicError
from edge_agent.config import ConfigError
from hub.settings import SettingsError, load_settings
from provisioning.enroll import (
    AGENT_CONFIG_NAME,
    DEFAULT_AGENT_DATA_DIR,
    Bundle,
    BundleExistsError,
    EnrollRequest,
    enroll,
    open_hub_registry,
)
from provisioning.profiles import ProfileError, list_profiles
from provisioning.registry_ops import EnrollError, SiteSpec

# What a user can fix by changing the command line or a file: one message, exit 2.
_USER_ERRORS = (ProfileError, ConfigError, EnrollError, BundleExistsError, SettingsError,
                TopicError)


def cmd_enroll(args: argparse.Namespace) -> int:
    if (args.lat is None) != (args.lon is None):
        raise EnrollError("give both --lat and --lon, or neither")
    settings = load_settings(args.hub_config)
    req = EnrollRequest(
        device_id=args.device_id,
        site=SiteSpec(id=args.site, kecamatan=args.kecamatan, kelurahan=args.kelurahan,
                      name=args.site_name or "", lat=args.lat, lon=args.lon),
        profile=args.profile, hardware=args.hardware or "",
        broker_host=args.broker_host, broker_port=args.broker_port,
        agent_data_dir=Path(args.agent_data_dir),
    )
    out = Path(args.out)
    registry = open_hub_registry(settings)
    try:
        bundle = enroll(registry, req, out, profiles_dir=args.profiles_dir, force=args.force)
    finally:
        registry.close()
    print(summary(req, bundle, out, settings.resolved_database_url()))
    return 0


def summary(req: EnrollRequest, bundle: Bundle, out: Path, registry_url: str) -> str:
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


def cmd_profiles(args: argparse.Namespace) -> int:
    for name in list_profiles(args.profiles_dir):
        print(name)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dcor-provision",
                                     description="enroll dcor-fleet edge devices")
    parser.add_argument("--profiles-dir", type=Path, default=None,
                        help="profile folder (default: $DCOR_PROFILES_DIR or "
                             "firmware_configs/profiles)")
    sub = parser.add_subparsers(dest="command", required=True)

    en = sub.add_parser("enroll", help="register a device and write its bundle folder")
    en.add_argument("--device-id", required=True, help="e.g. beji-kemiri-muka-01")
    en.add_argument("--site", required=True, help="site id, e.g. beji-margonda-01")
    en.add_argument("--site-name", default="", help="human name of the site")
    en.add_argument("--kecamatan", required=True)
    en.add_argument("--kelurahan", required=True)
    en.add_argument("--profile", required=True, help="see `dcor-provision profiles`")
    en.add_argument("--lat", type=float, default=None)
    en.add_argument("--lon", type=float, default=None)
    en.add_argument("--hardware", default="", help="hardware class (default: the profile's)")
    en.add_argument("--hub-config", required=True, help="the hub's settings YAML")
    en.add_argument("--broker-host", required=True, help="broker address the box connects to")
    en.add_argument("--broker-port", required=True, type=int)
    en.add_argument("--agent-data-dir", default=str(DEFAULT_AGENT_DATA_DIR),
                    help="state folder on the box (outbox); default %(default)s")
    en.add_argument("--out", required=True, help="bundle folder to write")
    en.add_argument("--force", action="store_true", help="replace an existing bundle")
    en.set_defaults(func=cmd_enroll)

    pr = sub.add_parser("profiles", help="list the profiles a device can be enrolled with")
    pr.set_defaults(func=cmd_profiles)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except _USER_ERRORS as exc:
        print(f"dcor-provision: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
