"""The setup cell every notebook starts with (a copy of notebook 01's), run as on a fresh Colab runtime:
it clones the course's address at the badge's branch, installs with the kernel's own Python, and turns a
failed clone into a CourseError that names the address and says what to do. Offline: the "remote" is a
local git repository reached through a file:// address."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def setup_source() -> str:
    nb = nbformat.read(NOTEBOOKS / "01_load_model_4bit.ipynb", as_version=4)
    return next(c.source for c in nb.cells if c.cell_type == "code" and "REPO_URL = " in c.source)


def run_cell(tmp_path: Path, url: str, branch: str) -> subprocess.CompletedProcess:
    """The setup cell with another address and branch, cloning into tmp_path instead of /content."""
    source = setup_source()
    assert 'Path("/content/course")' in source
    lines = []
    for line in source.replace('Path("/content/course")', f"Path({str(tmp_path / 'course')!r})").splitlines():
        if line.startswith("REPO_URL = "):
            line = f"REPO_URL = {url!r}"
        elif line.startswith("REPO_BRANCH = "):
            line = f"REPO_BRANCH = {branch!r}"
        lines.append(line)
    outside = tmp_path / "colab-content"  # no llmcourse folder here or above: as a notebook opened from GitHub
    outside.mkdir()
    return subprocess.run([sys.executable, "-c", "\n".join(lines)], cwd=outside, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "RECORD": str(tmp_path / "python-used"), "HOME": str(tmp_path)})


def git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.fixture
def remote(tmp_path) -> Path:
    """A course repository whose 'workshop' branch differs from its default branch."""
    repo = tmp_path / "remote"
    (repo / "llmcourse").mkdir(parents=True)
    (repo / "llmcourse" / "__init__.py").write_text("")
    (repo / "llmcourse" / "runtime.py").write_text("def warn_if_restart_needed():\n    print('runtime checked')\n")
    (repo / "colab_setup.sh").write_text('printf %s "${PYTHON:-}" > "$RECORD"\n')
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "main", cwd=repo)
    git("checkout", "-q", "-b", "workshop", cwd=repo)
    (repo / "WORKSHOP_BRANCH").write_text("the badge's branch\n")
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "workshop", cwd=repo)
    git("checkout", "-q", "main", cwd=repo)
    return repo


def test_the_setup_cell_clones_the_badges_branch_and_installs_with_the_kernels_python(tmp_path, remote):
    result = run_cell(tmp_path, remote.as_uri(), "workshop")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "course" / "WORKSHOP_BRANCH").exists(), "the clone did not take REPO_BRANCH"
    assert (tmp_path / "python-used").read_text() == sys.executable  # PYTHON=sys.executable for colab_setup.sh
    assert "runtime checked" in result.stdout


def test_a_failed_clone_is_a_course_error_naming_the_address(tmp_path):
    missing = (tmp_path / "no-such-repository").as_uri()
    result = run_cell(tmp_path, missing, "main")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()
    assert "CalledProcessError" not in result.stderr
    assert any(line.startswith("CourseError: Could not fetch the course from " + missing) for line in last)
    assert "What to do:" in result.stderr


def test_the_setup_cell_clones_the_branch_in_pyproject():
    import re

    import tomllib

    branch = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["llmcourse"]["branch"]
    for path in sorted(NOTEBOOKS.rglob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        setup = next(c.source for c in nb.cells if c.cell_type == "code" and "REPO_URL = " in c.source)
        assert re.search(rf'^REPO_BRANCH = "{re.escape(branch)}"', setup, re.MULTILINE), path.name
        assert '"--branch", REPO_BRANCH' in setup, path.name


def test_the_branch_and_every_setup_cell_follow_pyproject_and_notebook_01(tmp_path):
    """One place to change when the course is published: pyproject.toml's address and branch; and one setup
    cell to edit: notebook 01's (02-04, 00 and the solutions are rewritten from it)."""
    import shutil

    from test_navigation import IGNORED, nav

    copy = tmp_path / "repo"
    shutil.copytree(ROOT, copy, ignore=IGNORED)
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('branch = "main"', 'branch = "workshop-2026"'))
    lesson = copy / "notebooks" / "03_lora_sft_training.ipynb"
    nb = nbformat.read(lesson, as_version=4)
    next(c for c in nb.cells if "REPO_URL = " in c.source).source += "\nprint('drift')"
    lesson.write_text(nav.serialize(nb), encoding="utf-8")
    nav.build(copy, check=False)
    first = next(c.source for c in nbformat.read(copy / "notebooks" / "01_load_model_4bit.ipynb", as_version=4).cells
                 if "REPO_URL = " in c.source)
    assert 'REPO_BRANCH = "workshop-2026"' in first
    for path in sorted((copy / "notebooks").rglob("*.ipynb")):
        setup = next(c.source for c in nbformat.read(path, as_version=4).cells if "REPO_URL = " in c.source)
        assert setup == first, path.name
