#!/usr/bin/env bash
# Set up the environment if needed (scripts/setup_env.sh), then run the whole test suite.
# Extra arguments go to pytest, e.g. scripts/run_tests.sh -k metrics -x
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup_env.sh"
cd "$ROOT"
exec "${RHAS_VENV:-$ROOT/.venv}/bin/python" -m pytest "$@"
