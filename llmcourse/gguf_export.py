"""GGUF, the file format of llama.cpp: convert the merged model with llama.cpp's own converter.

No converter is written here. llama.cpp's ``convert_hf_to_gguf.py`` (pure Python, with its ``gguf-py``
and ``conversion/`` folders) ships inside the source distribution of ``llama-cpp-python`` on PyPI;
:func:`fetch_converter` downloads that (about 75 MB) and unpacks only the converter. It writes ``f16``,
``bf16`` or ``q8_0`` files by itself. Smaller quantizations (``Q4_K_M``) and running the file need the
compiled llama.cpp (``llama-quantize``, ``llama-cli``) or ``llama-cpp-python``, which PyPI offers only as
source to compile (more than 15 minutes on a 2-core machine, measured): :func:`llama_cpp_commands` prints
the commands for a machine that has it.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from llmcourse.offline_models import cache_dir

LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"  # its sdist vendors llama.cpp, converter included
CONVERTER = "convert_hf_to_gguf.py"
CONVERTER_PARTS = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")


def converter_dir() -> Path:
    return cache_dir() / "llama.cpp"


def find_converter() -> Path | None:
    """The converter script, if it has been fetched before."""
    path = converter_dir() / CONVERTER
    return path if path.exists() else None


def fetch_converter() -> Path:
    """Download ``llama-cpp-python``'s source from PyPI and unpack llama.cpp's converter (once)."""
    found = find_converter()
    if found is not None:
        return found
    target = converter_dir()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        LLAMA_CPP_PYTHON, "-d", tmp], check=True)
        archive = next(Path(tmp).glob("*.tar.gz"))
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                parts = member.name.split("/vendor/llama.cpp/", 1)
                if len(parts) == 2 and parts[1].startswith(CONVERTER_PARTS) and member.isfile():
                    member.name = parts[1]
                    tar.extract(member, target, filter="data")
    # The converter imports sentencepiece at the top (Colab has it; install it elsewhere).
    if importlib.util.find_spec("sentencepiece") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "sentencepiece"], check=True)
    return target / CONVERTER


def convert(merged_dir: Path, out_file: Path, outtype: str = "q8_0") -> Path:
    """Run llama.cpp's converter on a merged model folder; return the GGUF file."""
    converter = fetch_converter()
    out_file = Path(out_file)
    partial = out_file.with_name(out_file.name + ".partial")
    done = subprocess.run([sys.executable, str(converter), str(merged_dir), "--outfile", str(partial),
                           "--outtype", outtype], capture_output=True, text=True)
    if done.returncode != 0:  # its log is long: show the end, where the error is
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"convert_hf_to_gguf.py failed:\n{done.stderr[-3000:]}")
    partial.rename(out_file)
    return out_file


def llama_cpp_commands(merged_dir: Path, name: str = "model") -> str:
    """The commands that convert, quantize to Q4_K_M and run the model on a machine with llama.cpp."""
    return "\n".join([
        "# on a machine with a C++ compiler (about 10 minutes to build llama.cpp):",
        "git clone --depth 1 https://github.com/ggml-org/llama.cpp && cd llama.cpp",
        "cmake -B build && cmake --build build --config Release -j",
        "pip install -r requirements/requirements-convert_hf_to_gguf.txt",
        f"python convert_hf_to_gguf.py {merged_dir} --outfile {name}-f16.gguf --outtype f16",
        f"./build/bin/llama-quantize {name}-f16.gguf {name}-Q4_K_M.gguf Q4_K_M",
        f"./build/bin/llama-cli -m {name}-Q4_K_M.gguf -p \"Question: ...\\nAnswer:\" -n 256 --temp 0",
    ])
