"""Tests for scripts/scan_secrets.py. Every token-like string is built at runtime from pieces, so that
no secret-looking literal is committed (and the scanner passes on this file)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "scan_secrets.py"

_spec = importlib.util.spec_from_file_location("scan_secrets", SCRIPT)
scan_secrets = importlib.util.module_from_spec(_spec)
sys.modules["scan_secrets"] = scan_secrets  # dataclasses look the module up while building Finding
_spec.loader.exec_module(scan_secrets)

HF = "hf_" + "a" * 30 + "QRST"
ORG = "api_org_" + "b" * 34
GHP = "ghp_" + "c" * 36
GH_PAT = "github_pat_" + "d" * 30
OPENAI = "sk-" + "proj-" + "e" * 40
AWS = "AKIA" + "F" * 16
ASSIGNMENT = "HF_TOKEN" + ' = "' + "x" * 8 + '"'


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=cwd or ROOT, capture_output=True, text=True, timeout=60
    )


def notebook(outputs_text: str, source: str = "print('hello')") -> str:
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# Title"]},
            {
                "cell_type": "code",
                "execution_count": 1,
                "metadata": {},
                "source": [source],
                "outputs": [
                    {"name": "stdout", "output_type": "stream", "text": ["loading...\n", outputs_text]}
                ],
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(nb, indent=1)


@pytest.mark.parametrize(
    ("secret", "kind"),
    [
        (HF, "Hugging Face token"),
        (ORG, "Hugging Face org token"),
        (GHP, "GitHub token"),
        (GH_PAT, "GitHub fine-grained token"),
        (OPENAI, "OpenAI key"),
        (AWS, "AWS access key id"),
        (ASSIGNMENT, "HF_TOKEN assigned a literal"),
    ],
)
def test_find_secrets_kinds(secret, kind):
    text = f"first line\nsomething {secret} here\n"
    assert (2, kind) in scan_secrets.find_secrets(text)


@pytest.mark.parametrize(
    "text",
    [
        "from huggingface_hub import hf_hub_download",
        "token = userdata.get('HF_TOKEN')",
        "HF_TOKEN = os.environ.get('HF_TOKEN')",
        "HF_TOKEN" + ' = ""',
        "hf_" + "short1",
        "scikit-learn and sk-" + "short",
        "task-" + "x" * 40,
        "AKIA" + "lowercase" * 2,
        "hf_" + "abc_" * 10,
    ],
)
def test_no_false_alarms(text):
    assert scan_secrets.find_secrets(text) == []


def test_mask_never_shows_the_secret():
    for secret in (HF, ORG, GHP, GH_PAT, OPENAI, AWS, ASSIGNMENT):
        masked = scan_secrets.mask(secret)
        assert secret not in masked
        assert len(masked) < len(secret)
    assert scan_secrets.mask(HF) == "hf_...QRST"


def test_assignment_hidden_by_json_escaping_in_a_notebook(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text(notebook("ok\n", source=ASSIGNMENT), encoding="utf-8")
    findings = scan_secrets.scan_paths([tmp_path])
    assert [f.kind for f in findings] == ["HF_TOKEN assigned a literal"]
    assert path.read_text(encoding="utf-8").splitlines()[findings[0].line - 1].count("HF_TOKEN") == 1


def test_token_in_notebook_outputs_via_cli(tmp_path):
    path = tmp_path / "notebooks" / "01.ipynb"
    path.parent.mkdir()
    path.write_text(notebook(f"Logged in with {HF}\n"), encoding="utf-8")
    result = run_cli(str(tmp_path))
    assert result.returncode == 1
    assert "01.ipynb:" in result.stdout and "Hugging Face token" in result.stdout
    assert HF not in result.stdout + result.stderr
    line = int(result.stdout.split(":")[1])
    assert HF in path.read_text(encoding="utf-8").splitlines()[line - 1]


def test_token_in_a_log_via_cli(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(f"step 1\nstep 2\nAuthorization: Bearer {HF}\n", encoding="utf-8")
    result = run_cli(str(log))
    assert result.returncode == 1
    assert f"{log}:3: Hugging Face token (hf_...QRST)" in result.stdout
    assert HF not in result.stdout + result.stderr


def test_clean_tree_passes(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01.ipynb").write_text(notebook("4 + 4 = 8\n"), encoding="utf-8")
    (tmp_path / "run.log").write_text("loss 1.23\n", encoding="utf-8")
    result = run_cli(str(tmp_path))
    assert result.returncode == 0, result.stdout
    assert result.stdout == ""


def test_skips_venv_git_binary_and_huge_files(tmp_path, monkeypatch):
    for folder in (".venv", ".git", "__pycache__"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.txt").write_text(HF, encoding="utf-8")
    (tmp_path / "blob.bin").write_bytes(b"\0\1\2" + HF.encode())
    (tmp_path / "big.txt").write_text(HF, encoding="utf-8")
    monkeypatch.setattr(scan_secrets, "MAX_BYTES", 10)
    assert scan_secrets.scan_paths([tmp_path]) == []


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_default_paths_in_a_git_repository(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / ".gitignore").write_text("outputs/\n*.log\n", encoding="utf-8")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01.ipynb").write_text(notebook("fine\n"), encoding="utf-8")
    (tmp_path / "README.md").write_text("clean\n", encoding="utf-8")
    assert run_cli(cwd=tmp_path).returncode == 0

    # ignored by git, but logs and outputs/ are scanned anyway
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "results.json").write_text(json.dumps({"note": GHP}), encoding="utf-8")
    result = run_cli(cwd=tmp_path)
    assert result.returncode == 1 and "results.json:1: GitHub token" in result.stdout
    (tmp_path / "outputs" / "results.json").unlink()

    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "x.log").write_text(AWS, encoding="utf-8")
    assert run_cli(cwd=tmp_path).returncode == 1
    (tmp_path / "deep" / "er" / "x.log").unlink()

    # a file git would add (not ignored), outside the default folders
    (tmp_path / "notes.py").write_text(f"key = '{OPENAI}'\n", encoding="utf-8")
    result = run_cli(cwd=tmp_path)
    assert result.returncode == 1 and "notes.py:1: OpenAI key" in result.stdout


def test_this_modules_files_hold_no_secret_literals():
    own = (
        [
            ROOT / "llmcourse" / name
            for name in ("troubleshooting.py", "hub_access.py", "preflight.py", "memory.py")
        ]
        + [SCRIPT]
        + [
            ROOT / "tests" / f"test_{name}.py"
            for name in ("troubleshooting", "hub_access", "preflight", "memory", "scan_secrets")
        ]
    )
    assert scan_secrets.scan_paths([p for p in own if p.exists()]) == []
