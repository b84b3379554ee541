"""The headless runner (scripts/run_series.py) without running a notebook: a failing cell is reported from
papermill's own PapermillExecutionError fields, and --profile, --only and --publish reach the run and the
publishing. (The knob checks are in test_knobs.py, the real runs in test_notebooks.py.)"""

from __future__ import annotations

import json

import papermill
import publish
import run_series

LESSON = "01_load_model_4bit.ipynb"


def test_a_failing_cell_is_reported_from_papermills_error(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_HOME", str(tmp_path / "home"))

    def fails(*args, **kwargs):
        raise papermill.PapermillExecutionError(cell_index=7, exec_count=3, source="x = 1 / 0",
                                                ename="ZeroDivisionError", evalue="division by zero", traceback=[])

    monkeypatch.setattr(papermill, "execute_notebook", fails)
    lines: list[str] = []
    summary = run_series.run("smoke", [LESSON, "02_dataset_and_baseline.ipynb"], {}, tmp_path / "out", log=lines.append)
    assert summary["status"] == f"failed in {LESSON}" and list(summary["minutes"]) == [LESSON]
    log = "\n".join(lines)
    assert f"{LESSON}, cell 7 (In [3])" in log and "x = 1 / 0" in log and "ZeroDivisionError: division by zero" in log
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["status"] == summary["status"]


def test_profile_only_and_publish_reach_the_run_and_the_publishing(tmp_path, monkeypatch):
    calls = {}

    def fake_run(profile, notebooks, parameters, out_dir, **kwargs):
        calls["run"] = (profile, notebooks, parameters, out_dir)
        return {"status": "ok", "minutes": {LESSON: 0.1}, "total_minutes": 0.1, "results": "not available"}

    monkeypatch.setattr(run_series, "run", fake_run)
    def fake_publish(*args):
        calls["publish"] = args
        return []

    monkeypatch.setattr(publish, "publish", fake_publish)
    # EVAL_SIZE is a knob of 02, not of 01: the runner stops before running anything.
    assert run_series.main(["--profile", "smoke", "--only", LESSON, "-p", "EVAL_SIZE", "5", "--publish"]) == 2
    assert calls == {}
    assert run_series.main(["--profile", "smoke", "--only", LESSON, "--out", str(tmp_path), "--publish"]) == 0
    assert calls["run"] == ("smoke", [LESSON], {}, tmp_path)
    assert calls["publish"] == (tmp_path, publish.EXECUTED_DIR / "smoke", "smoke")
