#!/usr/bin/env bash
# The secret scan: detect-secrets, with the known false alarms in .secrets.baseline and the Hugging Face token
# plugins of scripts/secret_plugins.py (the baseline names them). Without arguments it scans the files git tracks
# or would add, plus outputs/ and every *.log, which git ignores but where a printed token usually hides; with
# arguments, those files or folders. Exit 1 on anything not in the baseline (file, line and kind are shown, the
# secret is not). A false alarm: `detect-secrets scan --baseline .secrets.baseline --exclude-lines '^\s*"image/'`,
# then `detect-secrets audit .secrets.baseline` to mark it, and commit the baseline.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ "$#" -eq 0 ]; then
  mapfile -d '' tracked < <(git ls-files -z --cached --others --exclude-standard)
  set -- "${tracked[@]}" $(find . -name '*.log' -not -path './.venv/*' -not -path './.git/*') $([ -d outputs ] && echo outputs)
fi
mapfile -d '' files < <(find "$@" -type f -size -20M -not -path '*/.git/*' -not -path '*/.venv/*' -not -name .secrets.baseline -print0)
# The hook rewrites a baseline whose line numbers moved (exit 3): give it a copy, so the scan never edits the repository.
baseline="$(mktemp)"
trap 'rm -f "$baseline"' EXIT
cp .secrets.baseline "$baseline"
status=0
detect-secrets-hook --baseline "$baseline" "${files[@]}" || status=$?
if [ "$status" -eq 0 ] || [ "$status" -eq 3 ]; then
  echo "detect-secrets: no secret in ${#files[@]} files"
  exit 0
fi
echo "Remove them (clear the notebook's outputs, delete the log), and revoke a real token at once: https://huggingface.co/settings/tokens" >&2
exit 1
