#!/usr/bin/env bash
# The whole check: set-up, lint, types, tests. Arguments go to pytest.
# Runs every stage even after a failure (one run shows everything), exits non-zero if any fails;
# when lint and types pass, the exit code is pytest's own (5 = no tests collected).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DCOR_TEST_TOOLS=1 bash scripts/bootstrap.sh || { echo "[test] bootstrap failed" >&2; exit 1; }

failed=()
echo "[test] ruff check ."
.venv/bin/ruff check . || failed+=(ruff)
echo "[test] mypy"
.venv/bin/mypy || failed+=(mypy)
echo "[test] pytest $*"
pytest_rc=0
.venv/bin/pytest "$@" || pytest_rc=$?
[ "$pytest_rc" -eq 0 ] || failed+=("pytest(exit $pytest_rc)")

if [ "${#failed[@]}" -eq 0 ]; then
    echo "[test] all checks passed"
    exit 0
fi
echo "[test] FAILED: ${failed[*]}" >&2
if [ "${#failed[@]}" -eq 1 ] && [ "$pytest_rc" -ne 0 ]; then
    exit "$pytest_rc"
fi
exit 1
