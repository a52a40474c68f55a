#!/usr/bin/env bash
# Set up the environment if needed (scripts/setup_env.sh), then run the whole test suite.
# Extra arguments go to pytest, e.g. scripts/run_tests.sh -k metrics -x
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup_env.sh"
cd "$ROOT"
# Four workers on the 2-core CI machine (the DDS tests mostly wait on other processes and on the
# clock); a test file stays on one worker, so module-scoped fixtures such as the shared DDS node
# start once. RHAS_TEST_WORKERS=0 runs serially.
exec "${RHAS_VENV:-$ROOT/.venv}/bin/python" -m pytest -n "${RHAS_TEST_WORKERS:-4}" --dist loadfile "$@"
