"""Beyond one Colab (issue 14): 2-process training with accelerate, the FSDP config, --plan, engine checks."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from llmcourse.evaluation import EvalRun, EvalSettings
from llmcourse.troubleshooting import CourseError

ROOT = Path(__file__).resolve().parents[1]
FSDP_CONFIG = ROOT / "configs" / "accelerate" / "fsdp_qlora.yaml"


def _env(home: Path, cache: Path) -> dict:
    return {**os.environ, "COURSE_HOME": str(home), "COURSE_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def _launch(env: dict, *extra: str) -> str:
    """``accelerate launch`` with 2 processes on this machine's CPUs (torchrun underneath; gloo between them).

    ``accelerate launch --cpu --num_processes 2`` starts ONE process (accelerate 1.15's simple launcher; its
    multi-CPU path is mpirun). The multi-process launcher on a machine without GPUs gives 2 processes, and
    scripts/train.py's ``PartialState(cpu=True)`` makes them accelerate's MULTI_CPU with the gloo backend.
    """
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", "29517", str(ROOT / "scripts" / "train.py"), "--profile", "smoke", *extra]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout + result.stderr


def test_two_processes_train_in_sync_resume_and_save_an_adapter_04_loads(tmp_path, tiny_llama_path, tiny_llama_4bit):
    home, cache = tmp_path / "home", tmp_path / "cache"
    cache.mkdir()
    shutil.copytree(tiny_llama_path, cache / "tiny-random-llama3")  # the smoke model, built once by conftest
    env = _env(home, cache)

    first = _launch(env, "--stop-after-steps", "2")  # interrupted, as a disconnect would
    assert "2 process(es): effective batch 4 x 1 x 2 = 8 examples per step" in first
    assert "PARTIAL: 2 of 4 steps" in first
    second = _launch(env)  # run again: resumes from the last checkpoint, as notebook 03 does
    assert "resuming from" in second and "checkpoint-2" in second
    assert "(4 of 4 steps)" in second

    run_dir = next((home / "smoke" / "checkpoints").iterdir())
    assert run_dir.name.endswith("_s4_lr0.001_seed42_p2")
    ranks = [json.loads((run_dir / "ranks" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world_size"] == 2 for r in ranks)
    assert all(r["global_step"] == 4 and r["resumed_from"] for r in ranks)
    # Both ranks computed batches, and different ones (each its share of the data) ...
    assert all(len(r["batches_seen"]) == 2 for r in ranks)
    assert ranks[0]["batches_seen"] != ranks[1]["batches_seen"]
    # ... and still hold the very same LoRA weights: DDP averaged the gradients. lora_B starts at zero: it moved.
    assert ranks[0]["sha256"] == ranks[1]["sha256"]
    assert ranks[0]["lora_B_abs_sum"] > 0

    # The adapter rank 0 saved is the one notebook 04 picks, and loads on the 4-bit base.
    from llmcourse.model_loading import attach_adapter
    from llmcourse.training import find_adapter, training_log

    adapter_dir = find_adapter(home / "smoke" / "adapter", "offline:tiny-random-llama3")
    assert adapter_dir.name == run_dir.name
    log = training_log(adapter_dir)
    assert log["processes"] == 2 and log["steps"] == log["total_steps"] == 4 and not log["partial"]
    model, _ = tiny_llama_4bit
    model = attach_adapter(model, adapter_dir, "offline:tiny-random-llama3")
    assert sum("lora_" in n for n, _ in model.named_parameters()) > 0
    model.unload()


def test_plan_prints_memory_per_gpu_for_8b_and_70b():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "--plan", "--profile", "ampere",
                             "--gpus", "2"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: [float(x) for x in line.split()[1:]] for line in result.stdout.splitlines()
            if line.split() and line.split()[0] in ("8B", "70B")}
    weights_8b, _, _, one_gpu_8b, _ = rows["8B"]
    weights_70b, _, _, one_gpu_70b, fsdp_70b = rows["70B"]
    # 70B: 80 layers of linear weights (68.5 B numbers) at ~0.52 byte each, plus 2.1 B 16-bit embedding numbers.
    assert 38 < weights_70b < 41 and 5 < weights_8b < 6.5
    assert one_gpu_70b > 48 > fsdp_70b  # does not fit one 48 GB GPU, and does when FSDP shards it over two
    assert one_gpu_8b < 24  # 8B with DDP: a whole copy on each 24 GB GPU


def test_fsdp_config_is_what_accelerate_launch_turns_into_fsdp_settings():
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(FSDP_CONFIG), "scripts/train.py"])
    args, _, _ = _validate_launch_command(args)
    assert args.use_fsdp and args.num_processes == 2
    env = prepare_multi_gpu_env(args)
    assert env["ACCELERATE_USE_FSDP"] == "true"
    assert env["FSDP_CPU_RAM_EFFICIENT_LOADING"] == "true" and env["FSDP_SYNC_MODULE_STATES"] == "true"
    assert env["FSDP_AUTO_WRAP_POLICY"] == "TRANSFORMER_BASED_WRAP"
    import transformers.models.llama.modeling_llama as llama

    assert hasattr(llama, env["FSDP_TRANSFORMER_CLS_TO_WRAP"])  # the decoder layer class exists by that name


def _run(engine: str, correct: list[bool]) -> EvalRun:
    settings = EvalSettings(label="x", model_id="m", adapter=None, prompt_format="plain", dataset="local",
                            split="test", subset_seed=1, subset_size=len(correct), max_new_tokens=8, batch_size=2,
                            profile="smoke", weight_format="nf4", compute_dtype="float32", engine=engine)
    records = [{"id": f"q{i}", "output": "", "gold": "1", "strict_correct": c, "flexible_correct": c,
                "stop_reason": "end_token"} for i, c in enumerate(correct)]
    return EvalRun(settings, {}, records)


def test_compare_refuses_runs_of_different_engines_unless_asked():
    from llmcourse.results import compare

    hf, vllm = _run("hf", [False, True]), _run("vllm", [True, True])
    with pytest.raises(CourseError, match="engine: 'hf' before, 'vllm' after"):
        compare(hf, vllm)
    paired, fixed, broken = compare(hf, vllm, allow_engine_difference=True)
    assert paired.fixed == 1 and len(fixed) == 1 and not broken
    compare(hf, dataclasses.replace(hf))  # the same engine: no objection


def test_result_files_record_the_engine_and_old_files_read_as_hf(tmp_path):
    from llmcourse.results import load_run, save_run

    saved = save_run(_run("vllm", [True]), tmp_path)
    assert json.loads(saved.read_text())["settings"]["engine"] == "vllm"
    assert load_run(saved).settings.engine == "vllm"
    data = json.loads(saved.read_text())
    del data["settings"]["engine"]  # a file written before the engine was recorded
    saved.write_text(json.dumps(data))
    assert load_run(saved).settings.engine == "hf"



def _calls(tree: ast.AST) -> dict[str, dict[str, str]]:
    """The keyword arguments (as source) of each LoraConfig / SFTConfig call, and the run_name expression."""
    found: dict[str, dict[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("LoraConfig", "SFTConfig"):
            found[node.func.id] = {k.arg: ast.unparse(k.value) for k in node.keywords}
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "run_name":
            found["run_name"] = {"": ast.unparse(node.value)}
    return found


def test_train_py_sets_what_notebook_03_sets():
    """The script restates 03's taught LoraConfig and SFTConfig and its run name: a drift fails here."""
    cells = nbformat.read(ROOT / "notebooks" / "03_lora_sft_training.ipynb", as_version=4).cells
    lesson = _calls(ast.parse("\n".join(c.source for c in cells if c.get("id") in ("cell-09", "cell-13"))))
    script = _calls(ast.parse((ROOT / "scripts" / "train.py").read_text()))
    assert lesson["LoraConfig"] == script["LoraConfig"]
    differ = {k: (v, script["SFTConfig"].get(k)) for k, v in lesson["SFTConfig"].items() if script["SFTConfig"].get(k) != v}
    # the output folder and the warm-up (the same formula, over N processes' steps) are the script's own variables
    assert set(differ) <= {"output_dir", "warmup_steps"}, differ
    assert script["run_name"][""].startswith(lesson["run_name"][""].rstrip(")")), "the checkpoint folder naming drifted"
