#!/usr/bin/env bash
# The secret scan: detect-secrets, with the known false alarms in .secrets.baseline and the Hugging Face token
# plugins of scripts/secret_plugins.py (the baseline names them). Without arguments it scans the files git tracks
# or would add, plus outputs/ and every *.log, which git ignores but where a printed token usually hides; with
# arguments, those files or folders. Exit 1 on anything not in the baseline (file, line and kind are shown, the
# secret is not). A false alarm: `detect-secrets scan --baseline .secrets.baseline` records it (with the settings
# the baseline holds), `detect-secrets audit .secrets.baseline` marks it; commit the baseline.
set -euo pipefail
args=(); for path in "$@"; do args+=("$(realpath "$path")"); done
cd "$(dirname "${BASH_SOURCE[0]}")/.."
set -- "${args[@]}"
if [ "$#" -eq 0 ]; then
  mapfile -d '' tracked < <(git ls-files -z --cached --others --exclude-standard)
  set -- "${tracked[@]}" $(find . -name '*.log' -not -path './.venv/*' -not -path './.git/*') $([ -d outputs ] && echo outputs)
fi
# Model and tokenizer files are written by save_pretrained, not printed, and take detect-secrets minutes: skipped.
mapfile -d '' files < <(find "$@" -type f -size -10M -not -path '*/.git/*' -not -path '*/.venv/*' \
  -not -name .secrets.baseline -not -name 'tokenizer.json' -not -name '*.safetensors' -not -name '*.gguf' -print0)
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
