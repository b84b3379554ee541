#!/usr/bin/env bash
# The main job: set up, then run notebooks 01-04 headless on the profile the hardware gives
# (no GPU: the cpu track). Extra arguments go to the runner, e.g. --profile smoke or -p EVAL_SIZE 50.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
python scripts/run_series.py "$@"
