#!/usr/bin/env bash
# Downloads, into .whl/ (ignored by git), exactly the wheels benchmarks/gpu_check.py needs on a GPU machine
# that has Python 3.12, torch and transformers but no internet and none of: bitsandbytes, peft, accelerate,
# and the offline Llama 3 tokenizer (llama-models ships tokenizer.model; tiktoken reads it). No TRL and no
# datasets: gpu_check.py runs its steps with transformers.Trainer. Everything that travels (the repository
# and these wheels) must stay under 64 MiB. Install and run there with the one line in benchmarks/README.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dest=.whl
mkdir -p "$dest"
binary=(--no-deps --only-binary=:all: --python-version 3.12 --implementation cp
        --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$dest")
# Compiled wheels, for CPython 3.12 on x86-64 Linux (the versions pinned in requirements.txt where pinned).
python3 -m pip download "${binary[@]}" bitsandbytes==0.50.2 tiktoken==0.14.0 psutil==7.2.2
# Pure-Python wheels.
# liger-kernel: Triton kernels for the training_levers_t4 stage (Triton comes with the GPU machine's torch).
python3 -m pip download --no-deps --only-binary=:all: -d "$dest" peft==0.21.2 accelerate==1.15.0 llama-models==0.3.0 \
  liger-kernel==0.8.5
ls -l "$dest"
du -ch "$dest"/*.whl | tail -1
