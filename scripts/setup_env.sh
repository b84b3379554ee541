#!/usr/bin/env bash
# Creates (once) and activates the project's virtual environment in .venv, with everything the series
# and its tests need. Sourced by scripts/run_series.sh and scripts/run_tests.sh; safe to run again.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ ! -x .venv/bin/python ]; then
  echo "Creating the virtual environment in .venv ..."
  "${PYTHON:-python3}" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
export PYTHON="$ROOT/.venv/bin/python"
python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
# torch (a CPU build where there is no GPU), the course with its pins and the dev extras (pip install -e ".[dev]"),
# and the offline artefacts
COURSE_EXTRAS="[dev]" bash "$ROOT/colab_setup.sh"
# The link checker, without its dependency pin pytest<9 (its other dependencies are in requirements-dev.txt)
python -m pip install -q --disable-pip-version-check --no-deps pytest-check-links==0.10.1
python -m ipykernel install --sys-prefix --name python3 >/dev/null 2>&1 || true
