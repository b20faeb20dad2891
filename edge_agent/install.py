"""``dcor-agent install`` (and ``deploy/agent/install.sh``): put the agent on a box.

Raspberry Pi OS (bookworm) and JetPack Ubuntu: a system user, a virtual environment in
``/opt/dcor-agent`` (on a Pi with ``--system-site-packages`` so Raspberry Pi OS's
python3-picamera2 is visible), the hardened systemd unit (watchdog, restart on failure), log
rotation, the enrollment bundle in ``/etc/dcor-agent`` (the password 0600, owned by the agent),
and optionally the detection model. ``--root DIR`` installs into a folder instead of ``/``
(tests, or an SD-card image mounted at DIR); systemctl and apt then stay untouched.

Stdlib only: the installer runs with the system's python3 before the venv exists.
Running it again upgrades in place and keeps the box's state (outbox, configuration).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from edge_agent.rootfs import RootFs, RootFsError

USER: Final = "dcor-agent"
ETC: Final = "/etc/dcor-agent"
STATE: Final = "/var/lib/dcor-agent"
LOGS: Final = "/var/log/dcor-agent"
VENV: Final = "/opt/dcor-agent"
MODEL_DIR: Final = f"{STATE}/models/coco_ssd_mobilenet_v1"
UNIT: Final = "/etc/systemd/system/dcor-agent.service"
PLATFORMS: Final = ("raspberry-pi", "jetson", "debian")
# The enrollment bundle's files (provisioning/bundle.py) -> (mode, owned by the agent user).
# Only the password is secret; the agent refuses to start if others can read it.
BUNDLE_FILES: Final = {"agent.yaml": (0o640, False), "mqtt-password": (0o600, True),
                       "ca.crt": (0o644, False), "hub-signing.pub": (0o644, False)}
MODEL_FILES: Final = ("detect.tflite", "labelmap.txt")
_DEVICE_RE: Final = re.compile(r"^device_id:\s*['\"]?([a-z0-9][a-z0-9-]{2,62})", re.MULTILINE)
REPO: Final = Path(__file__).resolve().parent.parent


class InstallError(RuntimeError):
    """The install cannot go on; the message says what to fix."""


@dataclass(frozen=True)
class Platform:
    kind: str
    groups: tuple[str, ...]  # supplementary groups, those that exist on the target
    system_site_packages: bool
    apt: tuple[str, ...]
    extra: str  # the package's extra for this hardware


PLATFORM_SPECS: Final = {
    # video: /dev/video*, the ISP and encoder; render: the Pi 5 / Jetson GPU nodes.
    "raspberry-pi": Platform("raspberry-pi", ("video", "render"), True,
                             ("python3-venv", "python3-picamera2", "logrotate"), "pi"),
    "jetson": Platform("jetson", ("video", "render"), False, ("logrotate",), "agent"),
    "debian": Platform("debian", ("video",), False, ("python3-venv", "logrotate"), "agent"),
}


def detect_platform(fs: RootFs) -> str:
    """Raspberry Pi OS leaves /etc/rpi-issue, JetPack /etc/nv_tegra_release."""
    if fs.path("/etc/rpi-issue").exists():
        return "raspberry-pi"
    if fs.path("/etc/nv_tegra_release").exists():
        return "jetson"
    model = fs.path("/proc/device-tree/model")
    if model.exists() and b"Raspberry Pi" in model.read_bytes():
        return "raspberry-pi"
    return "debian"


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.lines.append(text)
        print(f"[install] {text}", flush=True)


def device_id_of(agent_yaml: Path) -> str | None:
    m = _DEVICE_RE.search(agent_yaml.read_text(encoding="utf-8"))
    return m.group(1) if m else None


def check_bundle(fs: RootFs, bundle: Path, force: bool) -> str:
    """The bundle's device id, before anything on the box changes."""
    source = bundle / "agent.yaml"
    if not source.is_file():
        raise InstallError(f"{bundle} holds no agent.yaml: give the folder that "
                           "`dcor-provision enroll --out` wrote")
    new_id = device_id_of(source) or ""
    current = fs.path(f"{ETC}/agent.yaml")
    old_id = device_id_of(current) if current.exists() else None
    if old_id and old_id != new_id and not force:
        raise InstallError(f"this box is enrolled as {old_id}; the bundle is for "
                           f"{new_id or '?'}. Pass --force to replace it (the outbox is kept).")
    return new_id


def install_bundle(fs: RootFs, bundle: Path, new_id: str, report: Report) -> None:
    agent = fs.owner(USER)
    root_agent = (0, agent[1])
    for name, (mode, agent_owned) in BUNDLE_FILES.items():
        src = bundle / name
        if src.is_file():
            owner = agent if agent_owned else (root_agent if mode & 0o040 else (0, 0))
            fs.copy(src, f"{ETC}/{name}", mode, owner)
    ignored = sorted(p.name for p in bundle.iterdir() if p.name not in BUNDLE_FILES)
    if ignored:
        report.say(f"bundle files not installed: {', '.join(ignored)}")
    report.say(f"bundle of {new_id or '?'} in {ETC} (password 0600, owned by {USER})")


def render_unit(template: str, venv: str) -> str:
    return template.replace(VENV, venv.rstrip("/")) if venv != VENV else template


def platform_dropin(kind: str) -> str | None:
    if kind == "jetson":
        return ("[Service]\n# Jetson: the GPU's /dev/nvhost-* and /dev/nvmap nodes are not "
                "video4linux devices.\nDevicePolicy=auto\n")
    if kind == "raspberry-pi":
        return ("[Service]\n# libcamera (Pi camera): media controller nodes /dev/media*.\n"
                "DeviceAllow=char-media rw\n")
    return None


def make_venv(fs: RootFs, args: argparse.Namespace, plat: Platform, report: Report) -> Path:
    venv = fs.path(args.venv)
    if (venv / "pyvenv.cfg").exists():
        report.say(f"venv {args.venv} exists: upgrading in place")
    else:
        cmd = [args.python, "-m", "venv"]
        cmd += ["--system-site-packages"] if plat.system_site_packages else []
        cmd += ["--without-pip"] if args.no_pip else []
        _run([*cmd, str(venv)])
        report.say(f"venv {args.venv}" + (" (with system site packages, for picamera2)"
                                          if plat.system_site_packages else ""))
    if not args.no_pip:
        spec = args.package or (f"{REPO}[{plat.extra}]" if (REPO / "pyproject.toml").exists()
                                else f"dcor-fleet[{plat.extra}]")
        _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--upgrade", "--quiet",
              *args.pip_arg, spec], timeout=3600)
        report.say(f"installed {spec} into the venv")
    return venv


def install(args: argparse.Namespace) -> Report:
    fs = RootFs(Path(args.root))
    report = Report()
    firmware = Path(args.firmware_dir)
    if not (firmware / "systemd" / "dcor-agent.service").is_file():
        raise InstallError(f"{firmware} has no systemd/dcor-agent.service: run from a source "
                           "checkout (deploy/agent/install.sh) or pass --firmware-dir")
    device = check_bundle(fs, Path(args.bundle), args.force) if args.bundle else None
    if args.model_from:
        missing = [n for n in MODEL_FILES if not (Path(args.model_from) / n).is_file()]
        if missing:
            raise InstallError(f"{args.model_from} lacks {', '.join(missing)}")
    kind = args.platform if args.platform != "auto" else detect_platform(fs)
    plat = PLATFORM_SPECS[kind]
    report.say(f"platform {kind}, target root {fs.root}")
    if fs.is_host and not args.no_apt:
        _run(["apt-get", "update", "-q"], timeout=1800)
        _run(["apt-get", "install", "-y", "-q", *plat.apt], timeout=1800)
    groups = fs.groups_present(plat.groups)
    created = fs.ensure_system_user(USER, STATE, groups)
    report.say(f"user {USER} {'created' if created else 'exists'} (groups: "
               f"{', '.join(groups) or 'none'})")
    agent = fs.owner(USER)
    fs.mkdir(ETC, 0o750, (0, agent[1]))
    fs.mkdir(STATE, 0o750, agent)
    fs.mkdir(f"{STATE}/models", 0o750, agent)
    fs.mkdir(LOGS, 0o750, agent)
    venv = make_venv(fs, args, plat, report)
    if args.bundle and device is not None:
        install_bundle(fs, Path(args.bundle), device, report)
    elif not fs.path(f"{ETC}/agent.yaml").exists():
        report.next_steps.append(f"put an enrollment bundle in place: dcor-agent install "
                                 f"--bundle DIR (or copy it to {ETC})")
    if args.model_from:
        fs.mkdir(MODEL_DIR, 0o750, agent)
        for name in MODEL_FILES:
            fs.copy(Path(args.model_from) / name, f"{MODEL_DIR}/{name}", 0o640, agent)
        report.say(f"model copied to {MODEL_DIR}")
    template = (firmware / "systemd" / "dcor-agent.service").read_text(encoding="utf-8")
    fs.write(UNIT, render_unit(template, args.venv).encode(), 0o644)
    dropin = platform_dropin(kind)
    if dropin:
        fs.write(f"{UNIT}.d/10-platform.conf", dropin.encode(), 0o644)
    fs.copy(firmware / "logrotate" / "dcor-agent", "/etc/logrotate.d/dcor-agent", 0o644)
    fs.copy(firmware / "journald" / "dcor-agent.conf",
            "/etc/systemd/journald.conf.d/dcor-agent.conf", 0o644)
    report.say(f"unit {UNIT}, logrotate and journald limits installed")
    cli = venv / "bin" / "dcor-agent"
    if cli.exists() and fs.path(f"{ETC}/agent.yaml").exists():
        _run([str(cli), "validate", str(fs.path(f"{ETC}/agent.yaml"))])
        report.say("agent.yaml is valid")
    if fs.is_host and not args.no_systemctl:
        _run(["systemctl", "daemon-reload"])
        _run(["systemctl", "enable", "dcor-agent.service"])
        _run(["systemctl", "try-restart", "systemd-journald.service"])
        if args.start:
            _run(["systemctl", "restart", "dcor-agent.service"])
            report.say("dcor-agent started: journalctl -u dcor-agent -f")
    else:
        report.next_steps.append("systemctl daemon-reload && systemctl enable --now dcor-agent")
    if not fs.path(f"{MODEL_DIR}/detect.tflite").exists():
        report.next_steps.append(f"the model (if the profile has a detector): sudo -u {USER} "
                                 f"{args.venv}/bin/dcor-agent models fetch")
    report.next_steps.append("on site: dcor-provision check --config /etc/dcor-agent/agent.yaml")
    return report


def _run(cmd: list[str], timeout: float = 300) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"{' '.join(cmd)}: {exc}") from exc
    if proc.returncode != 0:
        raise InstallError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                           f"{(proc.stderr or proc.stdout).strip()[-2000:]}")


def add_install_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("install", help="install the agent as a systemd service on this box")
    add_install_arguments(p)


def add_install_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", default=None, help="enrollment bundle folder to put in place")
    p.add_argument("--root", default="/", help="target root folder (default /)")
    p.add_argument("--platform", choices=("auto", *PLATFORMS), default="auto")
    p.add_argument("--venv", default=VENV, help="virtual environment (default %(default)s)")
    p.add_argument("--python", default=getattr(sys, "_base_executable", sys.executable),
                   help="interpreter the venv is made from (>= 3.11)")
    p.add_argument("--package", default=None,
                   help="pip requirement to install (default: this checkout with the "
                        "platform's extra)")
    p.add_argument("--pip-arg", action="append", default=[],
                   help="extra pip argument, repeatable (e.g. --pip-arg=--find-links=DIR)")
    p.add_argument("--no-pip", action="store_true",
                   help="make the venv without pip and install nothing into it")
    p.add_argument("--no-apt", action="store_true", help="do not apt-get install anything")
    p.add_argument("--model-from", default=None,
                   help="folder with detect.tflite and labelmap.txt to copy (offline)")
    p.add_argument("--no-systemctl", action="store_true", help="do not enable the service")
    p.add_argument("--start", action="store_true", help="(re)start the service at the end")
    p.add_argument("--force", action="store_true", help="replace another device's bundle")
    p.add_argument("--firmware-dir", default=str(REPO / "firmware_configs"),
                   help="firmware_configs of this checkout (unit, logrotate)")


def run_install(args: argparse.Namespace) -> int:
    try:
        report = install(args)
    except (InstallError, RootFsError, OSError) as exc:
        print(f"dcor-agent install: {exc}", file=sys.stderr)
        return 2
    for step in report.next_steps:
        print(f"[install] next: {step}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge_agent.install",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    add_install_arguments(parser)
    return run_install(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
