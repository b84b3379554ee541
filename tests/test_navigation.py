"""Tests for scripts/build_navigation.py: navigation cells, Colab badges, clean notebooks (nbstripout), README
tables; and the local link check of the test command (pytest-check-links).

The script runs on a copy of the repository in tmp_path (never on the real files), except one test that runs
``--check`` on the repository as it is. Planted defects (an output, an execution count, widget state, a broken
link, a badge pointing at a moved file...) must each make a check fail and say where.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "build_navigation.py"
IGNORED = shutil.ignore_patterns(".git", ".venv", ".cache", "outputs", ".hypothesis", ".pytest_cache",
                                 ".ruff_cache", "__pycache__", "*.egg-info", ".ipynb_checkpoints")


def _load_script():
    spec = importlib.util.spec_from_file_location("build_navigation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_navigation"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


nav = _load_script()


@pytest.fixture
def repo(tmp_path) -> Path:
    """A copy of the repository (without environments and outputs)."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT, copy, ignore=IGNORED)
    return copy


# Problems the copy has right after the build (a broken link written by hand elsewhere in the repository):
# they belong to test_check_passes_on_the_repository, so the tests on the copy look only at what they plant.
_BASELINE: dict[Path, list[str]] = {}


@pytest.fixture
def built(repo) -> Path:
    """The copy after the script has written it: everything generated is up to date."""
    nav.build(repo, check=False)
    _BASELINE[repo] = nav.build(repo, check=True).problems
    return repo


def check(root: Path) -> list[str]:
    """What --check reports on the copy, beyond what it reported right after the build."""
    problems = nav.build(root, check=True).problems
    return [p for p in problems if p not in _BASELINE.get(root, [])]


def read(path: Path):
    return nbformat.read(path, as_version=4)


def write(path: Path, nb) -> None:
    path.write_text(nav.serialize(nb), encoding="utf-8")


def first_lesson(root: Path) -> Path:
    return next(p for p in nav.lesson_notebooks(root) if not p.name.startswith("00_"))


# ----------------------------------------------------------------------------------------------
# The repository as it is
# ----------------------------------------------------------------------------------------------


def test_check_passes_on_the_repository():
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_repository_address_comes_from_pyproject():
    info = nav.repo_info(ROOT)
    assert info.url.startswith("https://github.com/") and info.slug.count("/") == 1
    assert info.colab_url("notebooks/x.ipynb") == (
        f"https://colab.research.google.com/github/{info.slug}/blob/{info.branch}/notebooks/x.ipynb"
    )


# ----------------------------------------------------------------------------------------------
# Navigation cells
# ----------------------------------------------------------------------------------------------


def _links(source: str) -> list[str]:
    return re.findall(r"\]\(([^)]+)\)", source)


def test_navigation_cells_are_first_and_last_and_match(built):
    info = nav.repo_info(built)
    for chain in (nav.lesson_notebooks(built), nav.solution_notebooks(built)):
        assert chain, "no notebooks found"
        for index, path in enumerate(chain):
            nb = read(path)
            top, bottom = nb.cells[0], nb.cells[-1]
            assert nav.is_navigation_cell(top) and nav.is_navigation_cell(bottom), path.name
            assert [c for c in nb.cells if nav.is_navigation_cell(c)] == [top, bottom], path.name
            assert top.id == nav.TOP_ID and bottom.id == nav.BOTTOM_ID
            line = bottom.source.splitlines()[-1]
            assert top.source.splitlines()[-1] == line, "top and bottom carry the same navigation line"
            # The badge opens this very notebook from this repository.
            badge = re.search(r"\(https://colab\.research\.google\.com/github/([^)]+)\)", top.source).group(1)
            assert badge == f"{info.slug}/blob/{info.branch}/{path.relative_to(built).as_posix()}"
            targets = _links(line)
            has_previous, has_next = index > 0, index + 1 < len(chain)
            assert line.startswith("< ") == has_previous, f"{path.name}: {line}"
            assert line.endswith(" >") == has_next, f"{path.name}: {line}"
            if has_previous:
                assert (path.parent / targets[0]).resolve() == chain[index - 1].resolve()
            if has_next:
                assert (path.parent / targets[-1]).resolve() == chain[index + 1].resolve()
            contents = [t for t in targets if "README.md#" in t]
            assert len(contents) == 1 and (path.parent / contents[0].split("#")[0]).resolve() == built / "README.md"


def test_solutions_link_back_to_their_lesson(built):
    solutions = nav.solution_notebooks(built)
    assert solutions, "no solution notebooks"
    for path in solutions:
        line = read(path).cells[-1].source
        lesson = nav.lesson_of(path, built)
        assert lesson is not None, f"{path.name} has no lesson notebook"
        assert f"(../{lesson.name})" in line and "Back to the lesson" in line
        assert "(../../README.md#" in line


def test_navigation_line_in_memory():
    a = nav.NavEntry("notebooks/01_a.ipynb", "01 · A")
    b = nav.NavEntry("notebooks/02_b.ipynb", "02 · B")
    c = nav.NavEntry("notebooks/03_c.ipynb", "03 · C")
    assert nav.navigation_line(b.path, a, c) == (
        "< [01 · A](01_a.ipynb) | [Contents](../README.md#the-notebooks) | [03 · C](03_c.ipynb) >"
    )
    assert nav.navigation_line(a.path, None, b) == "[Contents](../README.md#the-notebooks) | [02 · B](02_b.ipynb) >"
    assert nav.navigation_line(c.path, b, None) == "< [02 · B](02_b.ipynb) | [Contents](../README.md#the-notebooks)"
    sol = nav.navigation_line("notebooks/solutions/02_b_solutions.ipynb", None, None, "the-notebooks", b)
    assert sol == "[Contents](../../README.md#the-notebooks) | [Back to the lesson: 02 · B](../02_b.ipynb)"


def test_set_navigation_replaces_old_cells_and_keeps_ids():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("<!--NAVIGATION-->\nold"), nbformat.v4.new_markdown_cell("# T"),
                nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("<!--NAVIGATION-->\nold")]
    ids = [c.id for c in nb.cells[1:3]]
    assert nav.set_navigation(nb, "<!--NAVIGATION-->\ntop", "<!--NAVIGATION-->\nbottom")
    assert [c.source for c in nb.cells] == ["<!--NAVIGATION-->\ntop", "# T", "x = 1", "<!--NAVIGATION-->\nbottom"]
    assert [c.id for c in nb.cells[1:3]] == ids
    assert not nav.set_navigation(nb, "<!--NAVIGATION-->\ntop", "<!--NAVIGATION-->\nbottom")


def test_the_contents_anchor_follows_the_readme_heading():
    assert nav.contents_anchor("# X\n\n## The notebooks\n\n<!-- notebooks:start -->\n") == "the-notebooks"
    assert nav.contents_anchor("## Course map: 4 notebooks\n<!-- notebooks:start -->") == "course-map-4-notebooks"
    assert nav.contents_anchor(None) == "the-notebooks"


# ----------------------------------------------------------------------------------------------
# The setup cell, the README and the objectives
# ----------------------------------------------------------------------------------------------


def test_build_writes_repo_url_and_readme_tables(built):
    info = nav.repo_info(built)
    for path in nav.all_notebooks(built):
        assert f'REPO_URL, REPO_BRANCH = "{info.url}", "{info.branch}"' in nav.setup_cell(read(path)).source, path.name
    readme = (built / "README.md").read_text(encoding="utf-8")
    table = nav._section(readme, "notebooks")
    for path in nav.lesson_notebooks(built):
        assert f"]({path.relative_to(built).as_posix()})" in table
        assert info.colab_url(path.relative_to(built).as_posix()) in table
    for path in nav.solution_notebooks(built):
        assert f"]({path.relative_to(built).as_posix()})" in table
    assert "| If you see | Why | Do this |" in nav._section(readme, "troubleshooting")
    assert check(built) == []


def test_learning_objectives_and_title():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(
        "# 09 · The **title**\n\n**What you will learn**\n- one thing;\n- another thing that is\n  wrapped;\n"
        "- a third.\n\n**Time**\n")]
    assert nav.plain(nav.title_of(nb)) == "09 · The title"
    assert nav.learning_objectives(nb) == ["one thing", "another thing that is wrapped"]


def test_readme_without_markers_is_left_alone(repo):
    readme = repo / "README.md"
    readme.write_text("# Course\n\nNo generated sections here.\n", encoding="utf-8")
    nav.build(repo, check=False)
    assert readme.read_text(encoding="utf-8") == "# Course\n\nNo generated sections here.\n"


def test_solution_setup_cells_follow_the_first_lesson(built):
    path = nav.solution_notebooks(built)[0]
    nb = read(path)
    nav.setup_cell(nb).source += "\nprint('drift')"
    write(path, nb)
    assert any(path.name in p and "setup cell differs" in p for p in check(built))
    nav.build(built, check=False)
    assert nav.setup_cell(read(path)).source == nav.setup_cell(read(first_lesson(built))).source
    assert check(built) == []


# ----------------------------------------------------------------------------------------------
# Planted defects: each one fails the check, naming the file
# ----------------------------------------------------------------------------------------------


def _plant_output(nb):
    cell = next(c for c in nb.cells if c.cell_type == "code")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]


def _plant_execution_count(nb):
    next(c for c in nb.cells if c.cell_type == "code").execution_count = 3


def _plant_widgets(nb):
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}


def _plant_execution_metadata(nb):
    next(c for c in nb.cells if c.cell_type == "code").metadata["papermill"] = {"duration": 1.5}


def _plant_old_repo_url(nb):
    cell = nav.setup_cell(nb)
    cell.source = nav.REPO_LINE.sub('REPO_URL, REPO_BRANCH = "https://github.com/someone/old-name", "main"', cell.source)


def _plant_edited_navigation(nb):
    nb.cells[0].source = nb.cells[0].source.replace("Contents", "Table of contents")


@pytest.mark.parametrize(
    ("plant", "expected"),
    [
        (_plant_output, "not clean (nbstripout"),
        (_plant_execution_count, "not clean (nbstripout"),
        (_plant_widgets, "not clean (nbstripout"),
        (_plant_execution_metadata, "not clean (nbstripout"),
        (_plant_old_repo_url, "setup cell differs"),
        (_plant_edited_navigation, "navigation cells out of date"),
    ],
)
def test_planted_notebook_defects_fail_the_check_and_the_build_fixes_them(built, plant, expected):
    path = nav.lesson_notebooks(built)[-1]
    nb = read(path)
    plant(nb)
    write(path, nb)
    problems = check(built)
    assert any(path.name in p and expected in p for p in problems), problems
    assert subprocess.run([sys.executable, str(SCRIPT), "--check", "--root", str(built)],
                          capture_output=True, text=True).returncode == 1
    nav.build(built, check=False)
    assert check(built) == []
    nb = read(path)
    assert not any(c.get("outputs") or c.get("execution_count") for c in nb.cells if c.cell_type == "code")
    assert "widgets" not in nb.metadata and not any("papermill" in c.metadata for c in nb.cells)


def test_a_badge_pointing_at_a_moved_notebook_fails(built):
    info = nav.repo_info(built)
    path = nav.lesson_notebooks(built)[1]
    nb = read(path)
    moved = info.colab_url("notebooks/99_moved_away.ipynb")
    nb.cells.insert(2, nbformat.v4.new_markdown_cell(f"[![Open In Colab]({nav.BADGE_IMAGE})]({moved})"))
    nb.cells[2].id = "planted-badge"
    write(path, nb)
    problems = check(built)
    assert any(path.name in p and "99_moved_away.ipynb" in p and "does not exist" in p for p in problems), problems


def test_renaming_a_notebook_breaks_its_old_badge_until_rebuilt(built):
    old = nav.lesson_notebooks(built)[-1]
    new = old.with_name(old.name.replace(old.name[:2], "98", 1))
    old.rename(new)
    problems = check(built)
    # The notebook's own badge still points at the old path, and so does the README's table.
    assert any(new.name in p and old.name in p and "does not exist" in p for p in problems), problems
    assert any(p.startswith("README.md") for p in problems), problems
    nav.build(built, check=False)
    remaining = check(built)
    # Badges written by hand to the old name still need fixing (relative links: pytest-check-links).
    assert all(old.name in p for p in remaining), remaining


def test_badges_of_another_repository_or_branch_fail(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_a.ipynb").write_text("{}", encoding="utf-8")
    info = nav.RepoInfo("https://github.com/owner/course", "main")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "[a](https://colab.research.google.com/github/owner/course/blob/main/notebooks/01_a.ipynb)\n"
        "[b](https://colab.research.google.com/github/other/course/blob/main/notebooks/01_a.ipynb)\n"
        "[c](https://colab.research.google.com/github/owner/course/blob/dev/notebooks/01_a.ipynb)\n"
        "[d](https://github.com/owner/course/blob/main/notebooks/missing.ipynb)\n",
        encoding="utf-8",
    )
    problems = nav.broken_links([doc], tmp_path, info)
    assert len(problems) == 3
    assert "another repository" in problems[0] and "branch 'dev'" in problems[1] and "missing.ipynb" in problems[2]


def test_the_link_check_fails_on_a_broken_local_link_and_skips_code_and_web_links(tmp_path):
    """The test command's link check: pytest-check-links, offline (web links are not fetched)."""
    (tmp_path / "exists.md").write_text("# Here\n", encoding="utf-8")
    (tmp_path / "doc.md").write_text(
        "[ok](exists.md#here) [web](https://example.invalid/x) `[code](missing-in-span.md)`\n\n"
        "```\n[fenced](missing-in-fence.md)\n```\n\n[bad](notes/missing.md)\n", encoding="utf-8")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("See ![fig](figures/missing.png).")])
    nbformat.write(nb, tmp_path / "lesson.ipynb")
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "--check-links",
                             "--check-links-ignore", "https?://.*", str(tmp_path / "doc.md"), str(tmp_path / "lesson.ipynb")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 2, result.stdout
    assert "notes/missing.md" in failed[0] + failed[1] and "figures/missing.png" in failed[0] + failed[1]


def test_benchmark_results_are_quoted_where_the_markers_are(built):
    """The seeds table goes into the README and notebook 03, the batched ratio into notebook 02; a changed result
    file makes --check fail until the build copies it; a missing one says which script writes it."""
    nav = _load_script()
    readme, lesson = (built / "README.md").read_text(), read(built / "notebooks/03_lora_sft_training.ipynb")
    table = nav.result_text(built, "seeds")
    assert table in readme and any(table in c.source for c in lesson.cells)
    seeds = built / nav.GENERATED_FROM["seeds"]
    seeds.write_text(seeds.read_text() + "\nA planted line.\n") if seeds.exists() else seeds.write_text("A planted line.\n")
    assert any("README.md: generated section(s) out of date: seeds" in p for p in check(built))
    assert any("03_lora_sft_training.ipynb: seeds section differs" in p for p in check(built))
    seeds.unlink()
    assert "`python benchmarks/cpu_track_seeds.py` writes" in nav.result_text(built, "seeds")
    batched = built / nav.GENERATED_FROM["batched"]
    batched.write_text('{"threads": 2, "questions": 32, "batch_size": 25, "batched_s": 10.0, '
                       '"one_at_a_time_s": 80.0, "speedup": 8.0, "identical_answers": 31}')
    assert "batched (up to 25 a batch: 2 batches) took 10 s" in nav.result_text(built, "batched")
    assert "**8.0x faster**, with 31 of 32 answers identical" in nav.result_text(built, "batched")
    batched.write_text('{"threads": 2, "questions": 32, "batch_size": 50, "batched_s": 10.0, "one_at_a_time_s": 80.0, '
                       '"speedup": 8.0, "identical_answers": 31, "also": {"batch_size": 16, "batched_s": 20.0, "speedup": 4.0}}')
    assert ("batched (up to 50 a batch: 1 batch) took 10 s" in nav.result_text(built, "batched")
            and "The same questions batched (up to 16 a batch: 2 batches) took 20 s (4.0x)" in nav.result_text(built, "batched"))
    assert any("02_dataset_and_baseline.ipynb: batched section differs" in p for p in check(built))
