"""Tests for llmcourse.gguf_export: the converter is unpacked from llama-cpp-python's source package (faked
here: no network), and the commands for a machine with llama.cpp are complete."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

from llmcourse import gguf_export


def fake_sdist(folder: Path) -> None:
    """A tar.gz laid out like llama-cpp-python's sdist, with the files the converter needs and others."""
    root = "llama_cpp_python-0.3.36/vendor/llama.cpp/"
    files = {root + "convert_hf_to_gguf.py": "print('converter')", root + "conversion/__init__.py": "",
             root + "gguf-py/gguf/__init__.py": "", root + "src/llama.cpp": "// C++ source, not needed",
             "llama_cpp_python-0.3.36/llama_cpp/__init__.py": ""}
    with tarfile.open(folder / "llama_cpp_python-0.3.36.tar.gz", "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_fetch_converter_unpacks_only_the_converter(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    calls = []

    def fake_run(cmd, check):
        calls.append(cmd)
        if "download" in cmd:
            fake_sdist(Path(cmd[cmd.index("-d") + 1]))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(gguf_export.subprocess, "run", fake_run)
    path = gguf_export.fetch_converter()
    folder = tmp_path / "cache" / "llama.cpp"
    assert path == folder / "convert_hf_to_gguf.py" and path.read_text() == "print('converter')"
    assert (folder / "conversion" / "__init__.py").exists() and (folder / "gguf-py" / "gguf" / "__init__.py").exists()
    assert not (folder / "src").exists()
    assert calls[0][:4] == [sys.executable, "-m", "pip", "download"] and gguf_export.LLAMA_CPP_PYTHON in calls[0]
    calls.clear()
    assert gguf_export.fetch_converter() == path and calls == []  # once
