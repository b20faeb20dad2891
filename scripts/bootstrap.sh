#!/usr/bin/env bash
# Idempotent set-up for development, tests and CI:
#   1. the Debian packages mosquitto, mosquitto-clients and influxdb (only if a binary is
#      missing);
#   2. .venv with Python >= 3.11 (only if missing or broken);
#   3. `pip install -e '.[dev]'` (only when pyproject.toml changed since the last install);
#   4. with DCOR_TEST_TOOLS=1 (the test command sets it): Debian's chromium for the browser
#      tests, nginx for the check of the hub's nginx site, and postgresql (server binaries
#      only; tests start their own) for the registry tests.
# It never starts, stops or reconfigures a system Mosquitto/InfluxDB: our code and tests start
# their own on free ports.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=.venv
STAMP="$VENV/.dcor-bootstrap-stamp"
APT_PKGS=(mosquitto mosquitto-clients influxdb)

ADDED_POLICY=""

cleanup() { if [ -n "$ADDED_POLICY" ]; then rm -f "$ADDED_POLICY"; fi; }
trap cleanup EXIT

log() { printf '[bootstrap] %s\n' "$*"; }
die() { printf '[bootstrap] ERROR: %s\n' "$*" >&2; exit 1; }

have_bin() {
    # mosquitto lives in /usr/sbin, which a non-root PATH may lack.
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@" || die "'sudo $*' failed (needs password-less sudo here); run it as root"
    else
        die "not root and no sudo; run as root: $*"
    fi
}

apt_lists_present() {
    compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 \
        || die "apt-get not found; install by hand: ${*} (Debian package names)"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt_lists_present; then
        log "apt package lists are empty: apt-get update"
        as_root apt-get update -q
    fi
    # A package's postinst may try to start its service; a temporary policy-rc.d denies that,
    # so nothing already running (e.g. a Mosquitto on 1883) is disturbed or raced.
    local policy=/usr/sbin/policy-rc.d
    if [ "$(id -u)" -eq 0 ] && [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
        ADDED_POLICY=$policy
    fi
    log "apt-get install -y $*"
    local rc=0
    as_root apt-get install -y -q "$@" || rc=$?
    if [ "$rc" -ne 0 ]; then
        log "install failed; refreshing package lists (apt-get update) and retrying"
        rc=0
        as_root apt-get update -q && as_root apt-get install -y -q "$@" || rc=$?
    fi
    cleanup
    ADDED_POLICY=""
    [ "$rc" -eq 0 ] || die "apt-get install -y $* failed (exit $rc); fix apt, then re-run $0"
}

ensure_services() {
    local missing=()
    for bin in mosquitto mosquitto_pub mosquitto_sub influxd; do
        have_bin "$bin" || missing+=("$bin")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "mosquitto, mosquitto_pub/sub and influxd present"
        return
    fi
    log "missing: ${missing[*]}; installing Debian packages ${APT_PKGS[*]}"
    apt_install "${APT_PKGS[@]}"
    for bin in mosquitto mosquitto_sub influxd; do
        have_bin "$bin" || die "$bin still missing after install; run: apt-get install -y ${APT_PKGS[*]}"
    done
}

python_ok() {  # usable for our venv: >= 3.11 with venv and ensurepip
    "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1
}

pick_python() {
    local candidate
    # 3.11 first: the version the project is developed and checked on.
    for candidate in python3.11 python3.12 python3.13 python3 /usr/bin/python3; do
        if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
            # The real interpreter, not a version-manager shim that may be gone later.
            "$candidate" -c 'import sys; print(sys.executable)'
            return 0
        fi
    done
    return 1
}

ensure_venv() {
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c \
        'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
        return
    fi
    if [ -e "$VENV" ]; then
        log "$VENV is broken or older than Python 3.11: recreating it"
        rm -rf "$VENV"
    fi
    local py
    if ! py=$(pick_python); then
        # Debian's python3 ships without venv/ensurepip until python3-venv is installed.
        if command -v python3 >/dev/null 2>&1 \
            && python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            log "python3 lacks the venv module: installing python3-venv"
            apt_install python3-venv
        fi
        py=$(pick_python) || die "need Python >= 3.11 with venv; on Debian 12: apt-get install -y python3 python3-venv"
    fi
    log "creating $VENV with $py ($("$py" -V 2>&1))"
    "$py" -m venv "$VENV"
    rm -f "$STAMP"
}

ensure_install() {
    local want
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
        log "$VENV up to date with pyproject.toml"
        return
    fi
    log "pyproject.toml changed or never installed: pip install -e '.[dev]'"
    export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
    "$VENV/bin/python" -m pip install -q -e '.[dev]' \
        || die "pip install -e '.[dev]' failed; see the pip output above, fix, re-run $0"
    printf '%s\n' "$want" >"$STAMP"
}

ensure_test_tools() {  # tests only: Chromium drives the browser tests, PostgreSQL's
    # binaries run the registry-on-PostgreSQL tests (each test starts its own server).
    [ "${DCOR_TEST_TOOLS:-0}" = "1" ] || return 0
    local want=()
    have_bin chromium || want+=(chromium)
    have_bin nginx || want+=(nginx)  # the ops tests check the hub's nginx site
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || want+=(postgresql)
    if [ "${#want[@]}" -eq 0 ]; then
        log "chromium, nginx and postgresql present"
        return
    fi
    log "the tests need Debian's ${want[*]}: installing"
    apt_install "${want[@]}"
}

ensure_services
ensure_test_tools
ensure_venv
ensure_install
log "ready: $VENV/bin/python ($("$VENV/bin/python" -V 2>&1))"
