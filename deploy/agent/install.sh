#!/usr/bin/env bash
# Install dcor-agent on a box (Raspberry Pi OS bookworm, JetPack Ubuntu, Debian 12), from a
# checkout of this repository, as root:
#
#   sudo deploy/agent/install.sh --bundle /media/usb/beji-margonda-01 --start
#
# It only makes sure a Python >= 3.11 with venv is there (JetPack's Ubuntu 22.04 ships 3.10:
# it installs python3.11 and python3.11-venv), then hands over to `python -m edge_agent.install`
# (the same code as `dcor-agent install`; `--help` lists the options). `--root DIR` installs
# into a folder instead of / (an SD-card image, or the tests) and never runs apt or systemctl.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ROOT=/
NO_APT=0
for arg in "$@"; do
    case "$arg" in
        --root=*) ROOT=${arg#--root=} ;;
        --no-apt) NO_APT=1 ;;
    esac
done
prev=""
for arg in "$@"; do
    [ "$prev" = "--root" ] && ROOT=$arg
    prev=$arg
done

die() { printf '[install] ERROR: %s\n' "$*" >&2; exit 1; }

python_ok() {
    "$1" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1
}

pick_python() {
    local c
    for c in python3.11 python3.12 python3.13 python3; do
        if command -v "$c" >/dev/null 2>&1 && python_ok "$c"; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

if [ "$(id -u)" -ne 0 ]; then
    die "run as root (sudo $0 $*): it creates a user and writes /etc and /opt"
fi

if ! PY=$(pick_python); then
    if [ "$ROOT" != "/" ] || [ "$NO_APT" = 1 ]; then
        die "need python3 >= 3.11 with the venv module on this machine"
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    if apt-cache show python3.11-venv >/dev/null 2>&1 && ! python_ok python3; then
        apt-get install -y -q python3.11 python3.11-venv   # JetPack 6 (Ubuntu 22.04)
    else
        apt-get install -y -q python3 python3-venv
    fi
    PY=$(pick_python) || die "no python3 >= 3.11 with venv after apt-get; install one by hand"
fi

cd "$REPO"
exec env PYTHONPATH="$REPO" "$PY" -m edge_agent.install --python "$PY" \
    --firmware-dir "$REPO/firmware_configs" "$@"
