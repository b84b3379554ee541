"""Plumbing around TRL's SFTTrainer (notebook 03): precision fix, counts, budget, checkpoints, adapters."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import TrainerCallback

from llmcourse.profiles import same_weights
from llmcourse.troubleshooting import CourseError


def keep_trainable_weights_in_fp32(model) -> int:
    """Cast the LoRA weights TRL made bf16 back to fp32 (pitfall 1, trl#4901); return how many tensors."""
    cast = [p for p in model.parameters() if p.requires_grad and p.dtype != torch.float32]
    for param in cast:
        param.data = param.data.float()
    return len(cast)


def _is_4bit(param) -> bool:
    return param.__class__.__name__ == "Params4bit"  # two 4-bit numbers per stored byte


def refuse_weights_packed_for_generation(model) -> None:
    """Pitfall 14: on CPUs with AVX512-BF16, bitsandbytes repacks the 4-bit weights for generation the first time the
    model runs in eval mode without gradients; that layout has no backward pass, so training would learn nothing."""
    packed = [p for p in model.parameters()
              if _is_4bit(p) and getattr(getattr(p, "quant_state", None), "packing_format_for_cpu", False)]
    if packed:
        raise CourseError("trained_after_generating", f"{len(packed)} of its 4-bit weight matrices are in that layout")


def trainable_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts; 4-bit packed weights count as the numbers they hold."""
    counts = [(p.numel() * (2 if _is_4bit(p) else 1), p.requires_grad) for p in model.parameters()]
    return sum(n for n, trainable in counts if trainable), sum(n for n, _ in counts)


def parameter_split(model) -> tuple[int, int]:
    """(weights stored in 4-bit, other frozen weights) of a loaded model, LoRA weights left out."""
    frozen = [p for name, p in model.named_parameters() if "lora_" not in name]
    return sum(2 * p.numel() for p in frozen if _is_4bit(p)), sum(p.numel() for p in frozen if not _is_4bit(p))


def lora_parameter_count(shapes: dict[str, tuple[int, int]], layers: int, rank: int) -> int:
    """LoRA adds A (r x in) and B (out x r) to each adapted matrix: r * (in + out) per matrix per layer."""
    return layers * sum(rank * (n_in + n_out) for n_in, n_out in shapes.values())


def llama_linear_shapes(config) -> dict[str, tuple[int, int]]:
    """(in, out) of each linear layer in one Llama decoder layer, from a ``LlamaConfig``."""
    hidden, inter, heads = config.hidden_size, config.intermediate_size, config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    kv = config.num_key_value_heads * head_dim
    return {"q_proj": (hidden, heads * head_dim), "k_proj": (hidden, kv), "v_proj": (hidden, kv),
            "o_proj": (heads * head_dim, hidden), "gate_proj": (hidden, inter), "up_proj": (hidden, inter),
            "down_proj": (inter, hidden)}


def label_mask_rows(tokenizer, input_ids: list[int], labels: list[int]) -> list[tuple[str, bool]]:
    """(token text, carries loss) for each token of one tokenized training example."""
    tokens = tokenizer.convert_ids_to_tokens(input_ids)
    return [(tokenizer.convert_tokens_to_string([t]), label != -100) for t, label in zip(tokens, labels, strict=True)]


def format_label_mask(rows: list[tuple[str, bool]]) -> str:
    """The example as text with the loss-carrying part in [[...]]: what the model is trained to write."""
    out, inside = [], False
    for text, loss in [*rows, ("", False)]:
        if loss != inside:
            out.append("[[" if loss else "]]")
        inside = loss
        out.append(text)
    return "".join(out)


@dataclass
class Budget:
    """Predicted peak memory (GB = 10^9 bytes, as ``environment`` measures) and minutes (``tokens`` padded)."""

    weights_gb: float
    lora_and_optimizer_gb: float
    activations_gb: float
    peak_gb: float
    tokens: int
    minutes: float
    basis: str
    real_tokens: int = 0
    padded_row: float = 0.0  # the length a row is padded to, on average
    grouped: bool = False  # rows grouped by length (else random batches)
    other_minutes: dict[str, float] = field(default_factory=dict)

    @property
    def notebook_minutes(self) -> float:
        return self.minutes + sum(self.other_minutes.values())

    def table(self) -> str:
        lines = [f"  4-bit base weights      {self.weights_gb:6.2f} GB",
                 f"  LoRA + grads + Adam     {self.lora_and_optimizer_gb:6.2f} GB",
                 f"  activations + logits    {self.activations_gb:6.2f} GB",
                 f"  predicted peak          {self.peak_gb:6.2f} GB  (GB = 10^9 bytes, as measured below)",
                 f"  tokens to train on      {self.real_tokens:,} real, {self.tokens:,} with padding "
                 + (f"(rows grouped by length: a batch padded to about the mean row, {self.padded_row:.0f} tokens)"
                    if self.grouped else f"(a random batch padded to its longest row: {self.padded_row:.0f} tokens)"),
                 f"  predicted training      {self.minutes:6.1f} min  ({self.basis})"]
        lines += [f"  {step:<23} {minutes:6.1f} min" for step, minutes in self.other_minutes.items()]
        if self.other_minutes:
            lines.append(f"  whole notebook          {self.notebook_minutes:6.1f} min  (estimate)")
        return "\n".join(lines)


# Training throughput in padded tokens/s per billion parameters, for QLoRA with each profile's settings.
# cpu: MEASURED on 2 cores (SmolLM2-135M in NF4, fp32, LoRA r16 on all linear layers, batch 4 grouped by length,
# 160 rows of data/: 15,028 tokens in 103.7 s = 145 tokens/s, x 0.139 B parameters; `python benchmarks/
# cpu_levers.py speed --rows 160`, benchmarks/results/cpu_levers.jsonl). t4: an ESTIMATE from the
# T4's 65 fp16 TFLOP/s at the ~12% utilisation commonly reported for QLoRA with gradient checkpointing (8 x
# params FLOPs per token: forward, backward, recompute). ampere: an ESTIMATE for an A100 (312 TFLOP/s at ~20%).
THROUGHPUT_TOKENS_PER_S_PER_BPARAM = {"cpu": 20.1, "smoke": 20.1, "t4": 65e12 * 0.12 / 8 / 1e9,
                                      "ampere": 312e12 * 0.20 / 8 / 1e9}


def expected_longest(lengths: list[int], batch_size: int) -> float:
    """Expected longest of ``batch_size`` rows drawn from ``lengths``: P(longest <= l_(i)) = (i/n)^batch_size."""
    ordered, n = sorted(lengths), len(lengths)
    return float(sum(length * ((i / n) ** batch_size - ((i - 1) / n) ** batch_size)
                     for i, length in enumerate(ordered, start=1)))


def predict_budget(*, quantized_params: float, other_params: float, other_bytes: int, hidden_size: int,
                   layers: int, vocab_size: int, lora_params: int, token_lengths: list[int], batch_size: int,
                   grad_accum: int, steps: int, gradient_checkpointing: bool, profile: str,
                   other_minutes: dict[str, float] | None = None, grouped_by_length: bool = False) -> Budget:
    """Peak memory and minutes from the model's shape and the real token lengths; ``other_params`` (not 4-bit)
    take ``other_bytes`` each; ``other_minutes`` default to ``timings``' other steps of notebook 03. Rows
    ``grouped_by_length`` fill a batch with rows about as long as each other: padded to about the mean; and the
    trainer then runs the batch that holds the longest row first (so an out-of-memory error shows at step 1)."""
    from llmcourse.environment import GB

    weights = (quantized_params * 0.5 * 1.03 + other_params * other_bytes) / GB  # NF4 + ~3% block scales
    lora_opt = lora_params * 4 * 4 / GB  # fp32 weight, gradient and Adam's two moments
    lengths = sorted(token_lengths)
    # A long batch's row: the longest when grouped (transformers' length-grouped sampler runs that batch first),
    # else the 95th percentile of the random order.
    seq = lengths[-1 if grouped_by_length else min(len(lengths) - 1, int(0.95 * len(lengths)))] if lengths else 0
    # Bytes kept for the backward pass per hidden unit, token and layer: the layer input alone with
    # gradient checkpointing; ~34 without (Korthikanti et al. 2022, 16-bit activations).
    acts = batch_size * seq * hidden_size * layers * (2 if gradient_checkpointing else 34) / GB
    logits = batch_size * seq * vocab_size * 4 * 2 / GB  # fp32 logits and their gradient
    overhead = 0.6 if profile in ("t4", "ampere") else 0.0  # CUDA context and allocator slack
    mean = sum(lengths) / max(len(lengths), 1)
    padded_row = mean if grouped_by_length or not lengths else expected_longest(lengths, batch_size)
    tokens = int(padded_row * batch_size * grad_accum * steps)  # what the GPU computes, padding included
    real_tokens = int(mean * batch_size * grad_accum * steps)
    rate = THROUGHPUT_TOKENS_PER_S_PER_BPARAM[profile] / max((quantized_params + other_params) / 1e9, 1e-9)
    basis = "measured rate on a 2-core CPU" if profile in ("cpu", "smoke") else "ESTIMATE, not measured"
    if other_minutes is None:
        from llmcourse.timings import other_steps

        other_minutes = other_steps("03", profile)
    return Budget(weights, lora_opt, acts + logits, weights + lora_opt + acts + logits + overhead, tokens,
                  tokens / rate / 60, basis, real_tokens, padded_row, grouped_by_length, dict(other_minutes))


def steps_for(rows: int, batch_size: int, grad_accum: int, max_steps: int) -> int:
    """Optimizer steps the trainer will take: ``max_steps`` if set, else one epoch."""
    return max_steps if max_steps > 0 else math.ceil(rows / (batch_size * grad_accum))


class StopAfter(TrainerCallback):
    """Save and stop after step ``step``, as a disconnect would (STOP_AFTER_STEPS and the resume exercise)."""

    def __init__(self, step: int | None):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if self.step and state.global_step >= self.step:
            control.should_save = control.should_training_stop = True


# What transformers' Trainer needs to resume: the weights (a LoRA model's adapter), the optimizer and the
# scheduler (a missing one would silently restart from scratch); trainer_state.json is written last.
CHECKPOINT_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "pytorch_model.bin",
                      "model.safetensors.index.json", "pytorch_model.bin.index.json")


def checkpoint_step(checkpoint: Path) -> int:
    """The optimizer step a checkpoint was saved at (from its trainer_state.json)."""
    return int(json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))["global_step"])


def checkpoint_problems(checkpoint: Path) -> list[str]:
    """What a checkpoint folder lacks to resume from (empty when complete)."""
    checkpoint, problems = Path(checkpoint), []
    try:
        checkpoint_step(checkpoint)
    except (OSError, ValueError, KeyError, TypeError):
        problems.append("no readable trainer_state.json")
    weights = [checkpoint / name for name in CHECKPOINT_WEIGHTS if (checkpoint / name).is_file()]
    if not weights or any(w.stat().st_size == 0 for w in weights):
        problems.append("no model weights")
    return problems + [f"no {name}" for name in ("optimizer.pt", "scheduler.pt")
                       if not (checkpoint / name).is_file() or (checkpoint / name).stat().st_size == 0]


def last_checkpoint(output_dir: Path, log=print) -> str | None:
    """The newest complete ``checkpoint-N`` folder, or None; one cut short by a disconnect is skipped, said."""
    from transformers.trainer_utils import sort_checkpoints  # oldest first, by step

    for path in reversed(sort_checkpoints(str(output_dir))):
        if not (problems := checkpoint_problems(path)):
            return path
        log(f"skipping {Path(path).name}: incomplete ({', '.join(problems)}), probably cut short while it was saved")
    return None


# --- adapters: one folder per training run, a pointer to the latest --------------------------------------

LATEST = "latest.json"
TRAINING_LOG = "training_log.json"


def staging_dir(adapter_dir: Path) -> Path:
    """An empty temporary folder beside ``adapter_dir`` to save into; ``publish_adapter`` renames it."""
    staging = Path(adapter_dir).with_name(f".{Path(adapter_dir).name}.incomplete")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def adapter_from_checkpoint(checkpoint: str | Path | None, target: Path, steps_done: int = 0,
                            total_steps: int | None = None) -> int:
    """Copy the adapter of the last complete checkpoint into ``target`` (for a run cut short); return its step."""
    if checkpoint is None:
        raise CourseError("missing_adapter", f"training stopped at step {steps_done} of {total_steps}, before its "
                          "first complete checkpoint (one is saved every SAVE_STEPS steps): run the training cell "
                          "again to go on", path=Path(target).parent)
    Path(target).mkdir(parents=True, exist_ok=True)
    if not [shutil.copy2(path, Path(target) / path.name) for path in Path(checkpoint).glob("adapter_*")]:
        raise CourseError("missing_adapter", f"no adapter files in {checkpoint}", path=Path(checkpoint))
    return checkpoint_step(checkpoint)


def training_label(steps: int, total_steps: int) -> str:
    """"4 of 4 steps", or "PARTIAL: 2 of 4 steps" for an adapter from a run cut short."""
    text = f"{steps} of {total_steps} steps"
    return text if steps >= total_steps else f"PARTIAL: {text}"


def publish_adapter(staging: Path, adapter_dir: Path, log: dict) -> Path:
    """Training log, then the folder's real name, then ``latest.json``: a disconnect leaves old or new, whole."""
    from llmcourse.results import write_text_atomic

    staging, adapter_dir = Path(staging), Path(adapter_dir)
    log = {**log, "saved_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    write_text_atomic(staging / TRAINING_LOG, json.dumps(log, indent=2))
    previous = adapter_dir.with_name(f".{adapter_dir.name}.previous")
    shutil.rmtree(previous, ignore_errors=True)
    if adapter_dir.exists():
        os.replace(adapter_dir, previous)  # the same run saved again (resumed): keep the old until the new is in
    os.replace(staging, adapter_dir)
    shutil.rmtree(previous, ignore_errors=True)
    pointer = {"adapter": adapter_dir.name, **{k: log.get(k) for k in ("model_id", "steps", "total_steps", "partial")},
               "saved_at": log["saved_at"]}
    write_text_atomic(adapter_dir.parent / LATEST, json.dumps(pointer, indent=2))
    return adapter_dir


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def latest_adapter_dir(adapter_root: Path) -> Path:
    """The folder ``latest.json`` names (the newest adapter notebook 03 saved), else ``adapter_root`` itself."""
    name = _read_json(Path(adapter_root) / LATEST).get("adapter")
    return Path(adapter_root) / name if isinstance(name, str) else Path(adapter_root)


def training_log(adapter_dir: Path) -> dict:
    """The training log saved with an adapter by notebook 03 ({} when there is none, e.g. a Hub copy)."""
    return _read_json(Path(adapter_dir) / TRAINING_LOG)


def find_adapter(adapter_root: Path, base_model_id: str, log=print) -> Path:
    """The latest adapter that fits ``base_model_id`` (``latest.json`` first); says which; ``CourseError`` if none."""
    root = Path(adapter_root)
    runs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")] if root.is_dir() else []
    runs = [p for p in [*runs, root] if (p / "adapter_config.json").is_file()]  # root: before one folder per run
    latest = latest_adapter_dir(root)
    runs.sort(key=lambda p: (p == latest, training_log(p).get("saved_at", "")), reverse=True)
    fitting = [p for p in runs if same_weights(_read_json(p / "adapter_config.json").get("base_model_name_or_path")
                                               or base_model_id, base_model_id)]
    chosen = (fitting or runs or [root])[0]
    check_adapter(chosen, base_model_id)  # none at all, or none for this model: the error says which model it fits
    info = training_log(chosen)
    why = "the latest saved" if chosen == latest else \
        f"the newest for {base_model_id} (the latest, {latest.name}, is for another model)"
    steps = f", {training_label(info['steps'], info['total_steps'])}" if {"steps", "total_steps"} <= info.keys() else ""
    log(f"adapter: {chosen.name} ({why}{steps}); {len(runs)} saved in {root}. Set ADAPTER_DIR to use another.")
    return chosen


def check_adapter(adapter_dir: Path, base_model_id: str) -> dict:
    """The adapter's config, after checking it exists and was trained for this base model."""
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").exists():
        raise CourseError("missing_adapter", f"no adapter in {adapter_dir}", path=adapter_dir)
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    trained_on = config.get("base_model_name_or_path")
    if trained_on and not same_weights(trained_on, base_model_id):
        raise CourseError("adapter_base_mismatch", f"the adapter in {adapter_dir} was trained on {trained_on!r}, "
                          f"not {base_model_id!r}", adapter_base=trained_on, model_id=base_model_id, path=adapter_dir)
    return config
