"""GGUF (llama.cpp's format) by llama.cpp's own ``convert_hf_to_gguf.py``; ``Q4_K_M`` needs the compiled llama.cpp
(over 15 minutes to build on 2 cores, measured): notebook 05 gives the commands for one."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from llmcourse.offline_models import cache_dir
from llmcourse.results import write_whole

LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"  # its sdist vendors llama.cpp, converter included
CONVERTER_PARTS = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")


def fetch_converter() -> Path:
    """Download ``llama-cpp-python``'s source from PyPI (75 MB; it vendors llama.cpp) and unpack the converter, once."""
    target = cache_dir() / "llama.cpp"
    if (target / CONVERTER_PARTS[0]).exists():
        return target / CONVERTER_PARTS[0]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        LLAMA_CPP_PYTHON, "-d", tmp], check=True)
        with tarfile.open(next(Path(tmp).glob("*.tar.gz"))) as tar:
            for member in tar.getmembers():
                inside = member.name.partition("/vendor/llama.cpp/")[2]
                if inside.startswith(CONVERTER_PARTS) and member.isfile():
                    member.name = inside
                    tar.extract(member, target, filter="data")
    if importlib.util.find_spec("sentencepiece") is None:  # the converter imports it (Colab has it)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "sentencepiece"], check=True)
    return target / CONVERTER_PARTS[0]


def convert(merged_dir: Path, out_file: Path, outtype: str = "q8_0") -> Path:
    """Run llama.cpp's converter on a merged model folder; return the GGUF file (written whole or not at all)."""
    converter = fetch_converter()
    with write_whole(out_file) as partial:
        done = subprocess.run([sys.executable, str(converter), str(merged_dir), "--outfile", str(partial),
                               "--outtype", outtype], capture_output=True, text=True)
        if done.returncode != 0:  # its log is long: the end is where the error is
            raise RuntimeError(f"convert_hf_to_gguf.py failed:\n{done.stderr[-3000:]}")
    return Path(out_file)
