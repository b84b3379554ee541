#!/usr/bin/env bash
# The tests: set up, then lint, check the notebooks' hygiene and links, scan for secrets, and run pytest
# (unit tests, then every notebook and solution notebook executed in the smoke profile).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
echo "== ruff (package, tests, scripts, notebooks)"
ruff check .
echo "== codespell (Markdown and notebooks)"
codespell --skip "./.venv,./.cache,./outputs,./data/*.jsonl,./.git" README.md docs notebooks data/README.md
echo "== notebooks stored clean, navigation and links up to date"
python scripts/build_navigation.py --check
echo "== secrets (and machine paths in the published executed copies)"
python scripts/scan_secrets.py
echo "== executed copies match their lessons"
python -m llmcourse.publish --check
echo "== pytest"
set +e
python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here"
  exit 1
fi
exit "$status"
