"""Tests for scripts/publish.py: executed copies get a header and lose machine details; the staleness check
fails on a planted stale copy (or a machine path), names the refresh command, and passes on a fresh one.
Also checks the real docs/executed/ folder (skips when absent)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import publish  # scripts/publish.py (pyproject.toml: pytest's pythonpath)
import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSON = "01_load_model_4bit.ipynb"


def _fake_run(source: Path, target_dir: Path, repo_root: Path) -> Path:
    """An "executed" copy of a lesson as papermill leaves it: an injected-parameters cell, outputs that
    print machine paths and a user's home folder, execution counts and run metadata."""
    nb = nbformat.read(source, as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    injected = nbformat.v4.new_code_cell('PROFILE = "cpu"\n')
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, injected)
    for count, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.execution_count = count + 1
        cell.metadata["papermill"] = {"duration": 1.0}
        cell.outputs = [nbformat.v4.new_output(
            "stream", name="stdout",
            text=f"saved to {repo_root}/outputs/cpu/adapter\nwarning from /home/alice/lib/python3.11/site-packages/x.py\n")]
    nb.metadata["papermill"] = {"parameters": {"PROFILE": "cpu"}, "duration": 9.0}
    nb.metadata["widgets"] = {"state": {}}
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / source.name
    nbformat.write(nb, target)
    return target


@pytest.fixture
def published(tmp_path) -> tuple[Path, Path]:
    """(lessons folder, executed folder) with one lesson published from a fake run."""
    lessons = tmp_path / "notebooks"
    lessons.mkdir()
    (lessons / LESSON).write_bytes((ROOT / "notebooks" / LESSON).read_bytes())
    run_dir = _fake_run(lessons / LESSON, tmp_path / "run", tmp_path).parent
    executed = tmp_path / "docs" / "executed" / "cpu"
    written = publish.publish(run_dir, executed, "cpu", notebooks_dir=lessons, repo_root=tmp_path,
                              date="2026-11-29", hardware="2 CPU cores (x86_64), no GPU")
    assert [p.name for p in written] == [LESSON]
    return lessons, executed


def test_published_copy_has_header_outputs_and_no_machine_details(published):
    _, executed = published
    text = (executed / LESSON).read_text()
    nb = nbformat.reads(text, as_version=4)
    header = nb.cells[0]
    assert publish.HEADER_TAG in header.metadata["tags"]
    for needed in ("`cpu` track's outputs", "2026-11-29", "2 CPU cores", "HuggingFaceTB/SmolLM2-135M-Instruct",
                   "Colab T4", publish.REFRESH_COMMAND):
        assert needed in header.source
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "outputs were kept"
    assert "/home/alice" not in text and str(executed.parents[2]) not in text
    assert "<course>/outputs/cpu/adapter" in text and "<python>/site-packages/x.py" in text
    assert "widgets" not in nb.metadata
    assert not publish.MACHINE_DETAILS.search(text), "the check finds no machine detail in a published copy"


def test_strip_machine_details_names_no_user():
    text = publish.strip_machine_details("/Users/bob/x and C-drive-free /home/carol/.cache", Path("/nowhere"),
                                         user="carol")
    assert "bob" not in text and "carol" not in text


def test_fresh_copy_passes_the_check(published):
    lessons, executed = published
    assert publish.stale_copies(executed, lessons) == {}
    ok, lines = publish.check(executed.parent, lessons, lessons=[LESSON])
    assert ok, lines


def test_planted_stale_copy_fails_and_names_the_refresh_command(published):
    lessons, executed = published
    nb = nbformat.read(lessons / LESSON, as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])
                and "REPO_URL" not in c.source)
    code.source += "\nprint('a line the copy does not have')"
    nbformat.write(nb, lessons / LESSON)
    assert publish.stale_copies(executed, lessons) == {LESSON: "code"}
    ok, lines = publish.check(executed.parent, lessons, lessons=[LESSON])
    assert not ok
    assert any(publish.REFRESH_COMMAND in line for line in lines)
    assert not any(publish.SYNC_COMMAND in line for line in lines), "code changed: only a run refreshes it"


def test_parameters_cell_changes_are_not_staleness(published):
    lessons, executed = published
    nb = nbformat.read(lessons / LESSON, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source += "\nEXTRA_KNOB = 1"
    nbformat.write(nb, lessons / LESSON)
    assert publish.stale_copies(executed, lessons) == {}


def test_markdown_change_is_stale_and_sync_refreshes_it(published):
    lessons, executed = published
    nb = nbformat.read(lessons / LESSON, as_version=4)
    md = next(c for c in nb.cells if c.cell_type == "markdown" and "NAVIGATION" not in c.source)
    md.source += "\n\nA new sentence."
    nbformat.write(nb, lessons / LESSON)
    ok, lines = publish.check(executed.parent, lessons, lessons=[LESSON])
    assert not ok and any(publish.SYNC_COMMAND in line for line in lines)
    assert publish.sync_markdown(executed, lessons) == [LESSON]
    assert publish.stale_copies(executed, lessons) == {}
    copy = nbformat.read(executed / LESSON, as_version=4)
    assert any(c.get("outputs") for c in copy.cells if c.cell_type == "code"), "outputs kept by the sync"


def test_missing_copy_of_a_series_lesson_fails(published):
    lessons, executed = published
    ok, lines = publish.check(executed.parent, lessons, lessons=[LESSON, "02_dataset_and_baseline.ipynb"])
    assert not ok and any("02_dataset_and_baseline.ipynb is missing" in line for line in lines)


def test_a_machine_path_left_in_a_copy_fails_the_check(published):
    lessons, executed = published
    copy = executed / LESSON
    copy.write_text(copy.read_text().replace("<course>/outputs", "/home/alice/course/outputs", 1))
    assert publish.stale_copies(executed, lessons) == {LESSON: "machine paths"}
    ok, lines = publish.check(executed.parent, lessons, lessons=[LESSON])
    assert not ok and "alice" not in "\n".join(lines)


def test_repository_executed_copies_are_fresh():
    """The real check the test command runs (it also runs `python scripts/publish.py --check`)."""
    if not publish.EXECUTED_DIR.is_dir():
        pytest.skip(f"no executed copies yet: publish them with `{publish.REFRESH_COMMAND}`")
    ok, lines = publish.check()
    assert ok, "\n".join(lines)
