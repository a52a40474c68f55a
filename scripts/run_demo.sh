#!/usr/bin/env bash
# The README's main job: set up the environment if needed, then run rhas_demo
# (node in one process, a clip player in another, over DDS; prints what the node publishes).
# Extra arguments go to rhas_demo, e.g. --person 1 or --everyone.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup_env.sh"
cd "$ROOT"
exec "${RHAS_VENV:-$ROOT/.venv}/bin/python" -m rhas_ros.tools.demo --out "$ROOT/demo_out" "$@"
