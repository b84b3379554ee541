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
codespell --skip "./.venv,./.cache,./outputs,./data/*.jsonl,./.git,docs/executed" README.md docs notebooks data/README.md
echo "== notebooks stored clean (nbstripout --verify), navigation, README tables and Colab badges up to date"
python scripts/build_navigation.py --check
echo "== links to local files in the Markdown and the notebooks (pytest-check-links; web links are not fetched)"
python -m pytest -q -p no:cacheprovider -o addopts="" --check-links --check-links-ignore "https?://.*" \
  README.md docs/*.md data/README.md notebooks
echo "== secrets (detect-secrets with .secrets.baseline)"
bash scripts/scan_secrets.sh
echo "== executed copies match their lessons (and show no machine paths)"
python scripts/publish.py --check
echo "== the course site: built offline, then opened in headless Chromium by tests/test_site.py"
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null && ! command -v google-chrome >/dev/null; then
  if command -v apt-get >/dev/null && { [ "$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
    echo "installing Debian's chromium and chromium-driver with apt (once) ..."
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver; } \
      >/dev/null || echo "could not install chromium: the browser test will skip"
  else
    echo "no chromium and no apt: the browser test will skip (apt-get install chromium chromium-driver)"
  fi
fi
bash scripts/build_site.sh
export SITE_DIR="$ROOT/outputs/site"
# The teaching guard (tests/test_teaching.py: the cpu model trained briefly must learn) takes minutes of torch on
# its own: it runs beside the other tests, each process on one core (two torch processes of two threads each on a
# 2-core machine slow each other several times over). SKIP_TEACHING_GUARD=1 leaves it out (a quick local run).
export OMP_NUM_THREADS=1
guard_pid=""
if [ "${SKIP_TEACHING_GUARD:-0}" != 1 ]; then
  echo "== the teaching guard, in the background (pytest -m teaching; its output follows pytest's)"
  python -c "from llmcourse.offline_models import smollm2_folder; smollm2_folder()"  # built once, before both use it
  mkdir -p outputs
  TQDM_DISABLE=1 python -m pytest -m teaching -q -s -p no:cacheprovider --basetemp=outputs/.pytest-teaching tests/test_teaching.py \
    > outputs/teaching_guard.log 2>&1 &
  guard_pid=$!
fi
echo "== pytest"
set +e
python -m pytest "$@"
status=$?
guard_status=0
if [ -n "$guard_pid" ]; then
  wait "$guard_pid"
  guard_status=$?
  echo "== the teaching guard (outputs/teaching_guard.log)"
  grep -v "Warning\|warn" outputs/teaching_guard.log | tail -n 25
fi
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here"
  exit 1
fi
if [ "$guard_status" -ne 0 ]; then
  echo "the teaching guard failed (exit $guard_status): the course no longer teaches; see above"
  exit 1
fi
exit "$status"
