"""The setup cell every notebook starts with (a copy of notebook 01's), and the package it installs.

The cell is run as on a fresh Colab runtime (no checkout above the working folder) with a stand-in for the
kernel's Python that records the pip command and "installs" a minimal course; as in a checkout; and with a
pip that fails. The package itself is built into a wheel and installed into a folder, offline, to show that
it carries data/ and declares requirements.txt's pins."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
import tomllib
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# A kernel's Python that records how it was called and, asked to pip install, puts a minimal course on $SITE.
FAKE_PYTHON = """#!/usr/bin/env bash
printf '%s ' "$@" > "$RECORD"
[ -n "${PIP_FAILS:-}" ] && { echo "ERROR: could not reach the repository" >&2; exit 1; }
mkdir -p "$SITE/llmcourse"
touch "$SITE/llmcourse/__init__.py"
echo "def warn_if_restart_needed(): print('runtime checked')" > "$SITE/llmcourse/environment.py"
"""


def setup_source(path: Path = NOTEBOOKS / "01_load_model_4bit.ipynb") -> str:
    return next(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code" and "REPO_URL" in c.source)


def run_cell(tmp_path: Path, cwd: Path, after: str = "", **env) -> subprocess.CompletedProcess:
    fake = tmp_path / "kernel-python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    (tmp_path / "site").mkdir(exist_ok=True)
    code = f"import sys\nsys.executable = {str(fake)!r}\n{setup_source()}\n{after}"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SITE": str(tmp_path / "site"),
                               "PYTHONPATH": str(tmp_path / "site"), "RECORD": str(tmp_path / "record"), **env})


def test_the_setup_cell_is_at_most_8_lines_and_the_same_in_every_notebook():
    first = setup_source()
    assert len(first.splitlines()) <= 8, first
    for path in sorted(NOTEBOOKS.rglob("*.ipynb")):
        assert setup_source(path) == first, path.name


def test_on_colab_it_pip_installs_the_course_at_the_badges_branch_with_the_kernels_python(tmp_path):
    colab = tmp_path / "content"  # no llmcourse folder here or above: a notebook opened from GitHub
    colab.mkdir()
    result = run_cell(tmp_path, colab)
    assert result.returncode == 0, result.stderr
    url, branch = PYPROJECT["project"]["urls"]["Repository"], PYPROJECT["tool"]["llmcourse"]["branch"]
    assert (tmp_path / "record").read_text().split() == ["-m", "pip", "install", "-q", f"git+{url}@{branch}"]
    assert "runtime checked" in result.stdout


def test_a_failed_install_says_which_address_and_what_to_do(tmp_path):
    colab = tmp_path / "content"
    colab.mkdir()
    result = run_cell(tmp_path, colab, PIP_FAILS="1")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: Could not install the course from " + PYPROJECT["project"]["urls"]["Repository"])
    assert "online" in last and "run this cell again" in last


def test_in_a_checkout_it_uses_the_course_beside_the_notebook_without_pip(tmp_path):
    result = run_cell(tmp_path, NOTEBOOKS / "solutions", after="import llmcourse; print(llmcourse.__file__)")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "record").exists(), "pip was called in a checkout"
    assert result.stdout.strip() == str(ROOT / "llmcourse" / "__init__.py"), "not the checkout's own package first"


def test_every_setup_cell_names_the_address_and_branch_in_pyproject():
    url, branch = PYPROJECT["project"]["urls"]["Repository"], PYPROJECT["tool"]["llmcourse"]["branch"]
    for path in sorted(NOTEBOOKS.rglob("*.ipynb")):
        assert re.search(rf'^REPO_URL, REPO_BRANCH = "{re.escape(url)}", "{re.escape(branch)}"', setup_source(path),
                         re.MULTILINE), path.name


def test_the_branch_and_every_setup_cell_follow_pyproject_and_notebook_01(tmp_path):
    """One place to change when the course is published: pyproject.toml's address and branch; and one setup
    cell to edit: notebook 01's (02-05, 00 and the solutions are rewritten from it)."""
    from test_navigation import IGNORED, nav

    copy = tmp_path / "repo"
    shutil.copytree(ROOT, copy, ignore=IGNORED)
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('branch = "main"', 'branch = "workshop-2026"'))
    lesson = copy / "notebooks" / "03_lora_sft_training.ipynb"
    nb = nbformat.read(lesson, as_version=4)
    nav.setup_cell(nb).source += "\nprint('drift')"
    lesson.write_text(nav.serialize(nb), encoding="utf-8")
    nav.build(copy, check=False)
    first = setup_source(copy / "notebooks" / "01_load_model_4bit.ipynb")
    assert '", "workshop-2026"' in first
    for path in sorted((copy / "notebooks").rglob("*.ipynb")):
        assert setup_source(path) == first, path.name


@pytest.mark.slow
def test_the_package_installs_with_its_data_and_declares_the_pins_of_requirements_txt(tmp_path):
    source = tmp_path / "source"
    for name in ("pyproject.toml", "requirements.txt", "requirements-dev.txt", "README.md", "LICENSE"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    for folder in ("llmcourse", "data"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(source)], check=True)
    wheel = next(tmp_path.glob("llmcourse-*.whl"))
    metadata = zipfile.ZipFile(wheel).read(f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info/METADATA")
    declared = {str(Requirement(line.split(":", 1)[1])) for line in metadata.decode().splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line}
    pinned = {str(Requirement(line.split("#")[0])) for line in (ROOT / "requirements.txt").read_text().splitlines()
              if line.split("#")[0].strip()}
    assert declared == pinned and not any(Requirement(r).name == "torch" for r in declared)  # Colab brings torch
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)], check=True)
    found = subprocess.run([sys.executable, "-c", "from llmcourse.data import DATA_DIR; print(DATA_DIR)"],
                           cwd=tmp_path, capture_output=True, text=True, env={"PYTHONPATH": str(tmp_path / "site")})
    data_dir = Path(found.stdout.strip())
    assert data_dir.is_relative_to(tmp_path / "site") and (data_dir / "train.jsonl").is_file(), found.stderr
