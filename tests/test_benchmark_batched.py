"""benchmarks/batched_vs_sequential.py end to end on the smoke model: the figures the README and notebook 02 quote."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_batched_benchmark_times_each_path_every_round_and_reports_the_median_ratio(tmp_path):
    out = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, "benchmarks/batched_vs_sequential.py", "--profile", "smoke", "--questions", "4",
         "--max-new-tokens", "6", "--rounds", "2", "--also-batch-size", "2", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert "round 1:" in result.stdout and "round 2:" in result.stdout
    assert figures["questions"] == 4 and figures["batch_size"] == 4 and figures["rounds"] == 2
    assert 0 <= figures["identical_answers"] <= 4
    for entry in (figures, figures["also"]):
        assert len(entry["speedup_each_round"]) == 2
        assert abs(entry["speedup"] - statistics.median(entry["speedup_each_round"])) <= 0.01
    assert figures["also"]["batch_size"] == 2
