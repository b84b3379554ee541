"""benchmarks/gpu_check.py in its --tiny CPU mode: the code path a GPU machine runs, and the JSON it writes."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
pytestmark = pytest.mark.slow


def test_tiny_run_reports_every_figure(tmp_path):
    out = tmp_path / "gpu_check.json"
    # --gsm8k pointed at nothing: the length distribution stands in for the real files, as on a GPU machine
    result = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--gsm8k", str(tmp_path / "absent"),
                             "--out", str(out)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["stages_done"] == ["build", "generation_t4", "training_t4", "training_levers_t4",
                                     "training_ampere"] and report["finished"]
    assert set(report["versions"]) >= {"torch", "transformers", "bitsandbytes", "peft", "accelerate"}
    generation = report["generation_t4"]
    assert "data absent" in generation["prompts_from"]
    for key in ("peak_gb", "tokens_per_s", "seconds_per_decoding_step", "batch_size", "max_new_tokens",
                "one_at_a_time_s_per_question", "batched_speedup"):
        assert key in generation, key
    assert generation["new_tokens"] == generation["questions"] * generation["max_new_tokens"]  # never stops
    for stage in ("training_t4", "training_ampere"):
        training = report[stage]
        assert training["lora_weights_dtype"] == ["torch.float32"]
        assert training["gradient_checkpointing"] is True
        assert training["padded_tokens"] >= training["real_tokens"] > 0
        for key in ("predicted_peak_gb", "measured_peak_gb", "predicted_padded_tokens_per_s",
                    "measured_padded_tokens_per_s", "predicted_minutes", "minutes_at_measured_rate"):
            assert key in training["budget"], (stage, key)
        assert "peak_gb" in training and "padded_tokens_per_s" in training
    levers = report["training_levers_t4"]
    assert list(levers) == list(module_levers())
    assert "skipped" in levers["Liger kernels (use_liger_kernel)"]  # Triton kernels: no CPU path
    assert levers["gradient checkpointing off"]["gradient_checkpointing"] is False
    assert levers["t4 settings"]["gradient_checkpointing"] is True
    for name in ("padding-free", "packed to 512 tokens", "packed to 1024 tokens"):
        assert levers[name]["padded_tokens"] == levers[name]["real_tokens"], name  # no padding computed
    assert levers["packed to 1024 tokens"]["rows"] < levers["packed to 512 tokens"]["rows"] < levers["t4 settings"]["rows"]


def module_levers():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LEVERS


def test_the_json_is_written_after_each_stage(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("the machine was taken back")

    monkeypatch.setattr(module, "training_check", killed)
    out = tmp_path / "partial.json"
    with pytest.raises(KeyboardInterrupt):
        module.main(["--tiny", "--out", str(out)])
    report = json.loads(out.read_text())
    assert report["stages_done"] == ["build", "generation_t4"] and "finished" not in report
    assert report["generation_t4"]["tokens_per_s"] > 0


def test_the_wheel_list_has_what_the_gpu_machine_lacks():
    script = (ROOT / "benchmarks" / "gpu_wheels.sh").read_text()
    for name in ("bitsandbytes==", "peft==", "accelerate==", "llama-models==", "tiktoken==", "psutil==", "liger-kernel=="):
        assert name in script, name
    assert "trl==" not in script and "datasets==" not in script  # gpu_check.py needs neither
    readme = (ROOT / "benchmarks" / "README.md").read_text()
    assert "pip install --no-index --no-deps --target /tmp/site .whl/*.whl" in readme
