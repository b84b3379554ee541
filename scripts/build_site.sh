#!/usr/bin/env bash
# Builds the course site into outputs/site/ (offline: everything it serves comes from PyPI packages and the
# repository). Sets up what it needs in the project's .venv first; the notebooks are not executed (the pages
# show the executed copies in docs/executed/cpu/ where they exist). Usage: bash scripts/build_site.sh [--out DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ -z "${VIRTUAL_ENV:-}" ]; then
  if [ ! -x .venv/bin/python ]; then
    echo "Creating the virtual environment in .venv ..."
    "${PYTHON:-python3}" -m venv .venv
  fi
  # shellcheck disable=SC1091
  source .venv/bin/activate
fi
python -m pip install -q --disable-pip-version-check -r requirements-site.txt
# MathJax's files, served by the site itself (the package's jupyter-server dependency is not needed for that)
python -m pip install -q --disable-pip-version-check --no-deps jupyter-server-mathjax==0.2.6
python scripts/build_site.py "$@"
