"""benchmarks/cpu_track_seeds.py without running a notebook: each seed gets a fresh course home and both seed
parameters, the table reports every seed and the median, a rerun replaces its seed and keeps the others, and a
failed seed stops with where to look."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cpu_track_seeds.py"


@pytest.fixture
def seeds(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("cpu_track_seeds", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    calls = []
    monkeypatch.setenv("COURSE_HOME", str(tmp_path / "restored after the test"))  # the script sets it per seed

    def fake_run(profile, notebooks, parameters, out_dir):
        home = Path(module.os.environ["COURSE_HOME"])
        calls.append((profile, notebooks, parameters, home, sorted(p.name for p in home.iterdir())))
        seed = parameters["TRAIN_SEED"]
        return {"status": "ok", "before_strict": 0.0, "after_strict": 0.4 + seed / 100, "difference": 0.4 + seed / 100,
                "mcnemar_p": 1e-9, "after_stopped": 0.99, "questions": 100, "total_minutes": 12.0,
                "minutes": {"02_dataset_and_baseline.ipynb": 1.0, "03_lora_sft_training.ipynb": 10.0,
                            "04_evaluate_and_compare.ipynb": 1.0}}

    monkeypatch.setattr(module, "run", fake_run)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    return module, calls, tmp_path


def test_each_seed_runs_02_to_04_in_a_fresh_home_and_the_table_has_the_median(seeds):
    module, calls, root = seeds
    stale = root / "outputs" / "seeds" / "seed-2" / "checkpoints"
    stale.mkdir(parents=True)  # a finished run of an earlier call: it must not be resumed
    out = root / "results" / "seeds"
    assert module.main(["--seeds", "1", "2", "3", "--out", str(out)]) == 0
    assert [c[2] for c in calls] == [{"SUBSET_SEED": s, "TRAIN_SEED": s} for s in (1, 2, 3)]
    assert all(c[0] == "cpu" and [n[:2] for n in c[1]] == ["02", "03", "04"] for c in calls)
    assert all(c[4] == [] for c in calls)  # every home empty when its run starts
    table = out.with_suffix(".md").read_text()
    assert "| 2 | 0% | 42% | +42% | 1e-09 | 99% | 1.0 / 10.0 / 1.0 | 12.0 min |" in table
    assert "Median difference +42%, smallest +41% (3 seeds, 100 held-out questions each)." in table
    # A rerun of one seed replaces its row and keeps the others.
    assert module.main(["--seeds", "2", "--out", str(out)]) == 0
    assert [r["seed"] for r in json.loads(out.with_suffix(".json").read_text())["seeds"]] == [1, 2, 3]


def test_a_failed_seed_stops_with_where_to_look(seeds, monkeypatch):
    module, _, root = seeds
    monkeypatch.setattr(module, "run", lambda *a: {"status": "failed in 03_lora_sft_training.ipynb"})
    with pytest.raises(SystemExit, match="seed 5: failed in 03_lora_sft_training.ipynb"):
        module.main(["--seeds", "5", "--out", str(root / "results" / "seeds")])
