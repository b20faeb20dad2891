#!/usr/bin/env bash
# The whole system on this machine: Mosquitto, InfluxDB, the hub (ingest + web), a few agents
# and a simulated fleet (dcor-sim), on free 127.0.0.1 ports; prints the fleet page's URL.
# Ctrl-C stops everything.
#   scripts/demo.sh [--agents N] [--sim-devices N] [--port WEB_PORT] [--data-dir DIR]
# Set-up (Debian packages, .venv, Python packages) is done first when missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Bootstrap output goes to stderr, so stdout carries only the demo's own ready line.
bash scripts/bootstrap.sh >&2
# exec: signals (Ctrl-C, SIGTERM from a supervisor or test) reach the demo itself.
exec .venv/bin/dcor-hub demo "$@"
