"""The secret scan (scripts/scan_secrets.sh: detect-secrets with .secrets.baseline and the Hugging Face plugins
of scripts/secret_plugins.py). Every token-like string is built at run time from pieces, so that no
secret-looking literal is committed (and the scan passes on this file)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nbformat
import pytest
import secret_plugins

ROOT = Path(__file__).resolve().parents[1]
HF = "hf_" + "a" * 30 + "QRST"
ORG = "api_org_" + "b" * 34
ASSIGNMENT = "HF_TOKEN" + ' = "' + "x" * 8 + '"'


def scan(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ROOT / "scripts" / "scan_secrets.sh"), *map(str, paths)],
                          capture_output=True, text=True, timeout=300)


def found(line: str) -> list[str]:
    return [kind.secret_type for kind in (secret_plugins.HuggingFaceTokenDetector(),
                                          secret_plugins.HfTokenLiteralDetector()) if list(kind.analyze_string(line))]


@pytest.mark.parametrize(("line", "kind"), [(f"Logged in with {HF}", "Hugging Face Token"),
                                            (f"org {ORG}", "Hugging Face Token"),
                                            (ASSIGNMENT, "HF_TOKEN assigned a literal"),
                                            (json.dumps(ASSIGNMENT), "HF_TOKEN assigned a literal")])  # a notebook's JSON
def test_the_plugins_find_hugging_face_tokens(line, kind):
    assert found(line) == [kind]


@pytest.mark.parametrize("line", ["from huggingface_hub import hf_hub_download", "token = userdata.get('HF_TOKEN')",
                                  "HF_TOKEN = os.environ.get('HF_TOKEN')", "HF_TOKEN" + ' = ""', "hf_" + "short1",
                                  "hf_" + "abc_" * 10])
def test_no_false_alarms(line):
    assert found(line) == []


def test_the_baseline_loads_the_plugins_from_the_repository():
    baseline = json.loads((ROOT / ".secrets.baseline").read_text())
    paths = {p["name"]: p.get("path") for p in baseline["plugins_used"]}
    assert paths["HuggingFaceTokenDetector"] == paths["HfTokenLiteralDetector"] == "file://scripts/secret_plugins.py"
    assert {"GitHubTokenDetector", "OpenAIDetector", "AWSKeyDetector", "KeywordDetector"} <= set(paths)


def test_a_planted_token_in_a_notebook_and_a_log_fails_the_scan(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(ASSIGNMENT)])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"Logged in with {HF}\n")]
    nbformat.write(nb, tmp_path / "01.ipynb")
    (tmp_path / "train.log").write_text("step 1\nghp_" + "c" * 36 + "\n")
    result = scan(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    for expected in ("01.ipynb", "Hugging Face Token", "HF_TOKEN assigned a literal", "train.log", "GitHub Token"):
        assert expected in result.stdout
    assert HF not in result.stdout + result.stderr and "revoke" in result.stderr


def test_a_clean_folder_passes(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("token = userdata.get('HF_TOKEN')")])
    nbformat.write(nb, tmp_path / "01.ipynb")
    result = scan(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
