"""The vLLM engine for real (no mock): SmolLM2-135M + a LoRA adapter, vLLM against the HF engine on one base.

Slow (vLLM's engine starts in about 1-2 minutes on 2 cores, then answers), and it needs the second environment
that ``bash scripts/setup_vllm.sh`` makes in ``.venv-vllm``: ``python -m pytest -m slow tests/test_vllm_engine.py``.
It runs only when asked for (``-m slow`` or ``RUN_VLLM_TEST=1``): the default test command (CI) skips it.
The adapter is the cpu track's (notebook 03, in the course's outputs) when there is one, else one trained here
for a few steps with scripts/train.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VLLM_PYTHON = Path(os.environ.get("VLLM_VENV", ROOT / ".venv-vllm")) / "bin" / "python"
QUESTIONS = int(os.environ.get("VLLM_TEST_QUESTIONS", "20"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not VLLM_PYTHON.exists(),
                       reason=f"no vLLM environment at {VLLM_PYTHON.parent.parent}: run `bash scripts/setup_vllm.sh`"),
]


def _evaluate(env: dict, engine: str, label: str, results: Path, adapter: Path) -> None:
    command = [sys.executable, str(ROOT / "scripts" / "evaluate.py"), "--profile", "cpu", "--engine", engine,
               "--base-precision", "float32", "--size", str(QUESTIONS), "--label", label, "--adapter", str(adapter),
               "--results-dir", str(results), "--compare-with", "", "--no-progress"]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]


def test_vllm_engine_agrees_with_the_hf_engine_on_the_same_weights(tmp_path, smollm2_path, request):
    if "slow" not in (request.config.getoption("markexpr") or "") and not os.environ.get("RUN_VLLM_TEST"):
        pytest.skip("the vLLM engine test runs when asked for: python -m pytest -m slow tests/test_vllm_engine.py")
    from llmcourse.environment import course_home
    from llmcourse.offline_models import cache_dir
    from llmcourse.results import check_comparable, list_runs, load_run
    from llmcourse.training import find_adapter

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "COURSE_CACHE": str(cache_dir())}
    try:
        adapter = find_adapter(course_home("cpu") / "adapter", "HuggingFaceTB/SmolLM2-135M-Instruct")
    except Exception:  # no cpu-track adapter on this machine: train a small one (a few steps)
        env["COURSE_HOME"] = str(tmp_path / "home")
        subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "--profile", "cpu", "--train-size", "64",
                        "--max-steps", "8", "--save-steps", "8"], env=env, cwd=ROOT, check=True, timeout=1800)
        adapter = find_adapter(tmp_path / "home" / "cpu" / "adapter", "HuggingFaceTB/SmolLM2-135M-Instruct")
    results = tmp_path / "results"
    _evaluate(env, "vllm", "vllm", results, adapter)
    _evaluate(env, "hf", "hf", results, adapter)
    vllm, hf = load_run(list_runs(results, "vllm")[-1]), load_run(list_runs(results, "hf")[-1])

    assert vllm.settings.engine == "vllm" and hf.settings.engine == "hf"
    with pytest.raises(Exception, match="engine"):
        check_comparable(hf, vllm)  # different engines are refused unless asked
    check_comparable(hf, vllm, allow_engine_difference=True)  # otherwise the same questions, asked the same way
    assert all(r["stop_reason"] in ("end_token", "stop_string", "length") for r in vllm.records)
    assert all(r["new_tokens"] <= vllm.settings.max_new_tokens for r in vllm.records)
    same = sum(a["strict_correct"] == b["strict_correct"] for a, b in zip(hf.records, vllm.records, strict=True))
    identical = sum(a["output"] == b["output"] for a, b in zip(hf.records, vllm.records, strict=True))
    print(f"same strict grade {same}/{QUESTIONS}, identical outputs {identical}/{QUESTIONS}")
    assert same >= 0.95 * QUESTIONS
    # The adapter is served: its answers end in the trained '#### N' format, which the base alone never writes.
    assert sum(r["format_ok"] for r in vllm.records) >= QUESTIONS // 2
