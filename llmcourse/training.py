"""Plumbing around TRL's SFTTrainer: precision fix, label-mask display, budgets, checkpoints, adapters."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

from llmcourse.profiles import same_weights
from llmcourse.troubleshooting import CourseError


def keep_trainable_weights_in_fp32(model) -> int:
    """Cast the trainable (LoRA) weights to fp32; return how many tensors were cast.

    TRL casts a quantized model's trainable weights to bf16 when it builds the trainer (trl 1.16,
    sft_trainer.py). fp16 mixed precision on a T4 then fails in the gradient scaler with
    ``_amp_foreach_non_finite_check_and_unscale_cuda not implemented for 'BFloat16'`` (trl#4901),
    and on a CPU bf16 LoRA weights are slower. Call this after ``SFTTrainer(...)``, before ``train()``.
    """
    cast = 0
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
            cast += 1
    return cast


def trainable_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts; 4-bit packed weights count as the numbers they hold."""
    trainable = total = 0
    for param in model.parameters():
        count = param.numel()
        if param.__class__.__name__ == "Params4bit":
            count *= 2  # two 4-bit numbers per stored byte
        total += count
        if param.requires_grad:
            trainable += count
    return trainable, total


def lora_parameter_count(shapes: dict[str, tuple[int, int]], layers: int, rank: int) -> int:
    """LoRA adds A (r x in) and B (out x r) to each adapted matrix: r * (in + out) per matrix per layer."""
    return layers * sum(rank * (n_in + n_out) for n_in, n_out in shapes.values())


def llama_linear_shapes(config) -> dict[str, tuple[int, int]]:
    """(in, out) of each linear layer in one Llama decoder layer, from a ``LlamaConfig``."""
    hidden = config.hidden_size
    head_dim = getattr(config, "head_dim", None) or hidden // config.num_attention_heads
    kv = config.num_key_value_heads * head_dim
    inter = config.intermediate_size
    return {
        "q_proj": (hidden, config.num_attention_heads * head_dim),
        "k_proj": (hidden, kv),
        "v_proj": (hidden, kv),
        "o_proj": (config.num_attention_heads * head_dim, hidden),
        "gate_proj": (hidden, inter),
        "up_proj": (hidden, inter),
        "down_proj": (inter, hidden),
    }


def label_mask_rows(tokenizer, input_ids: list[int], labels: list[int]) -> list[tuple[str, bool]]:
    """(token text, carries loss) for each token of one tokenized training example."""
    tokens = tokenizer.convert_ids_to_tokens(input_ids)
    return [(tokenizer.convert_tokens_to_string([t]), label != -100) for t, label in zip(tokens, labels, strict=True)]


def format_label_mask(rows: list[tuple[str, bool]]) -> str:
    """The example as text with the loss-carrying part in [[...]]: what the model is trained to write."""
    out, inside = [], False
    for text, loss in rows:
        if loss and not inside:
            out.append("[[")
        if not loss and inside:
            out.append("]]")
        inside = loss
        out.append(text)
    if inside:
        out.append("]]")
    return "".join(out)


@dataclass
class Budget:
    """A prediction of peak GPU memory and minutes for one training run, with the arithmetic shown.

    Memory is in GB = 10^9 bytes, the unit ``llmcourse.environment`` measures in, so the two compare directly.
    ``tokens`` is what the GPU computes: every batch padded to its longest row; ``real_tokens`` the
    examples' own tokens. ``other_minutes`` are the notebook's other steps (install, download, load,
    saving), so ``notebook_minutes`` is the whole notebook.
    """

    weights_gb: float
    lora_and_optimizer_gb: float
    activations_gb: float
    peak_gb: float
    tokens: int
    minutes: float
    basis: str
    real_tokens: int = 0
    longest_row: float = 0.0  # expected longest row of a batch, in tokens
    other_minutes: dict[str, float] = field(default_factory=dict)

    @property
    def notebook_minutes(self) -> float:
        return self.minutes + sum(self.other_minutes.values())

    def table(self) -> str:
        lines = [
            f"  4-bit base weights      {self.weights_gb:6.2f} GB",
            f"  LoRA + grads + Adam     {self.lora_and_optimizer_gb:6.2f} GB",
            f"  activations + logits    {self.activations_gb:6.2f} GB",
            f"  predicted peak          {self.peak_gb:6.2f} GB  (GB = 10^9 bytes, as measured below)",
            f"  tokens to train on      {self.real_tokens:,} real, {self.tokens:,} with padding "
            f"(batches padded to their longest row, about {self.longest_row:.0f} tokens)",
            f"  predicted training      {self.minutes:6.1f} min  ({self.basis})",
        ]
        if self.other_minutes:
            for step, minutes in self.other_minutes.items():
                lines.append(f"  {step:<23} {minutes:6.1f} min")
            lines.append(f"  whole notebook          {self.notebook_minutes:6.1f} min  (estimate)")
        return "\n".join(lines)


# Training throughput in tokens/s per billion parameters, per profile, for QLoRA with the profile's
# settings, counted in padded tokens (every batch padded to its longest row, which the GPU or CPU computes).
# cpu: MEASURED on a 2-core machine (SmolLM2-135M in NF4, fp32 compute, LoRA r16 on all linear layers,
# batch 8, 960 rows of data/: 86,152 real tokens; batches of 8 pad them to an expected 119.6 tokens a row,
# 114,849 padded tokens, in 21.7 min = 88 tokens/s, x 0.139 B parameters). t4: an ESTIMATE,
# derived from the T4's 65 fp16 TFLOP/s at the ~12% utilisation commonly reported for QLoRA with gradient
# checkpointing (8 x params FLOPs per token: forward, backward, recompute), not measured on a T4.
# ampere: an ESTIMATE for an A100-class GPU (312 bf16 TFLOP/s at ~20%).
THROUGHPUT_TOKENS_PER_S_PER_BPARAM = {
    "cpu": 12.3,
    "smoke": 12.3,
    "t4": 65e12 * 0.12 / 8 / 1e9,
    "ampere": 312e12 * 0.20 / 8 / 1e9,
}


def expected_longest(lengths: list[int], batch_size: int) -> float:
    """The expected longest of ``batch_size`` rows drawn at random from ``lengths``: what a batch pads to.

    Exact for draws with replacement: P(longest <= l_(i)) = (i/n)^batch_size over the sorted lengths.
    """
    ordered = sorted(lengths)
    n = len(ordered)
    if n == 0:
        return 0.0
    return sum(length * ((i / n) ** batch_size - ((i - 1) / n) ** batch_size)
               for i, length in enumerate(ordered, start=1))


def predict_budget(
    *,
    quantized_params: float,
    other_params: float,
    other_bytes: int,
    hidden_size: int,
    layers: int,
    vocab_size: int,
    lora_params: int,
    token_lengths: list[int],
    batch_size: int,
    grad_accum: int,
    steps: int,
    gradient_checkpointing: bool,
    profile: str,
    other_minutes: dict[str, float] | None = None,
) -> Budget:
    """Predict peak memory and minutes from the model's shape and the dataset's real token lengths.

    ``quantized_params`` are the weights stored in 4-bit; ``other_params`` (embeddings, output layer,
    norms) stay in the compute dtype, ``other_bytes`` each. Time counts padded tokens: a batch costs its
    longest row times the batch size. ``other_minutes`` (default: ``llmcourse.timings``' figures for
    notebook 03 on this profile) are added to give the whole notebook's time.
    """
    from llmcourse.environment import GB

    # NF4: half a byte per weight, ~3% more for the (double-quantized) block scales
    weights = (quantized_params * 0.5 * 1.03 + other_params * other_bytes) / GB
    lora_opt = lora_params * 4 * 4 / GB  # fp32 weight, gradient and Adam's two moments
    lengths = sorted(token_lengths)
    # Peak memory comes from the longest batch: take a high percentile of the real lengths.
    seq = lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))] if lengths else 0
    # Bytes kept for the backward pass per hidden unit, token and layer: the layer input alone with
    # gradient checkpointing; ~34 without (Korthikanti et al. 2022, 16-bit activations).
    per_layer = 2 if gradient_checkpointing else 34
    acts = batch_size * seq * hidden_size * layers * per_layer / GB
    logits = batch_size * seq * vocab_size * 4 * 2 / GB  # fp32 logits and their gradient
    activations = acts + logits
    overhead = 0.6 if profile in ("t4", "ampere") else 0.0  # CUDA context and allocator slack
    peak = weights + lora_opt + activations + overhead
    mean_len = sum(lengths) / len(lengths) if lengths else 0
    longest = expected_longest(lengths, batch_size)
    real_tokens = int(mean_len * batch_size * grad_accum * steps)
    tokens = int(longest * batch_size * grad_accum * steps)  # what the GPU computes, padding included
    n_params = quantized_params + other_params
    rate = THROUGHPUT_TOKENS_PER_S_PER_BPARAM[profile] / max(n_params / 1e9, 1e-9)
    minutes = tokens / rate / 60
    basis = "measured rate on a 2-core CPU" if profile in ("cpu", "smoke") else "ESTIMATE, not measured"
    if other_minutes is None:
        from llmcourse.timings import other_steps

        other_minutes = other_steps("03", profile)
    return Budget(weights, lora_opt, activations, peak, tokens, minutes, basis, real_tokens, longest,
                  dict(other_minutes))


def parameter_split(model) -> tuple[int, int]:
    """(weights stored in 4-bit, other frozen weights) of a loaded model, LoRA weights left out."""
    quantized = other = 0
    for name, param in model.named_parameters():
        if "lora_" in name:
            continue
        if param.__class__.__name__ == "Params4bit":
            quantized += param.numel() * 2  # two 4-bit numbers per stored byte
        else:
            other += param.numel()
    return quantized, other


def steps_for(rows: int, batch_size: int, grad_accum: int, max_steps: int) -> int:
    """Optimizer steps the trainer will take: ``max_steps`` if set, else one epoch."""
    return max_steps if max_steps > 0 else math.ceil(rows / (batch_size * grad_accum))


# What transformers' Trainer needs to resume (trainer.py, _save_checkpoint and _load_from_checkpoint /
# _load_optimizer_and_scheduler): the weights (for a LoRA model the adapter), the optimizer and the scheduler;
# trainer_state.json is written last, so a folder without a readable one was cut short. A missing
# optimizer.pt or scheduler.pt would not fail: the Trainer would silently restart them from scratch.
CHECKPOINT_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "pytorch_model.bin",
                      "model.safetensors.index.json", "pytorch_model.bin.index.json")
CHECKPOINT_FILES = ("optimizer.pt", "scheduler.pt")
TRAINER_STATE = "trainer_state.json"
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")


def checkpoint_problems(checkpoint: Path) -> list[str]:
    """What a checkpoint folder lacks to resume from (empty when complete)."""
    checkpoint = Path(checkpoint)
    problems = []
    try:
        json.loads((checkpoint / TRAINER_STATE).read_text(encoding="utf-8"))["global_step"]
    except (OSError, ValueError, KeyError, TypeError):
        problems.append(f"no readable {TRAINER_STATE}")
    weights = [checkpoint / name for name in CHECKPOINT_WEIGHTS if (checkpoint / name).is_file()]
    if not weights or any(w.stat().st_size == 0 for w in weights):
        problems.append("no model weights")
    problems += [f"no {name}" for name in CHECKPOINT_FILES if not (checkpoint / name).is_file()
                 or (checkpoint / name).stat().st_size == 0]
    return problems


def last_checkpoint(output_dir: Path, log=print) -> str | None:
    """The newest ``checkpoint-N`` folder that is complete, or None (then training starts fresh).

    A folder cut short while it was written (a disconnect during a save) is skipped, with a line saying so,
    and the one before it is used.
    """
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    found = sorted(
        (int(m.group(1)), path) for path in output_dir.iterdir()
        if path.is_dir() and (m := _CHECKPOINT.fullmatch(path.name))
    )
    for _, path in reversed(found):
        problems = checkpoint_problems(path)
        if not problems:
            return str(path)
        log(f"skipping {path.name}: incomplete ({', '.join(problems)}), probably cut short while it was saved")
    return None


def checkpoint_step(checkpoint: Path) -> int:
    """The optimizer step a checkpoint was saved at (from its trainer_state.json)."""
    return int(json.loads((Path(checkpoint) / TRAINER_STATE).read_text(encoding="utf-8"))["global_step"])


# --- adapters: one folder per training run, a pointer to the latest --------------------------------------

LATEST = "latest.json"
TRAINING_LOG = "training_log.json"


def staging_dir(adapter_dir: Path) -> Path:
    """An empty temporary folder beside ``adapter_dir`` to save into; ``publish_adapter`` renames it."""
    adapter_dir = Path(adapter_dir)
    staging = adapter_dir.with_name(f".{adapter_dir.name}.incomplete")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def adapter_from_checkpoint(checkpoint: str | Path | None, target: Path, steps_done: int = 0,
                            total_steps: int | None = None) -> int:
    """Copy the adapter of the last complete checkpoint into ``target``; return the step it was saved at.

    For a run cut short (a disconnect, STOP_AFTER_STEPS, a time limit): the model in memory may be past
    the last checkpoint or gone, the checkpoint is a known, complete state.
    """
    if checkpoint is None:
        raise CourseError(
            "missing_adapter",
            f"training stopped at step {steps_done} of {total_steps}, before its first complete checkpoint "
            "(one is saved every SAVE_STEPS steps): run the training cell again to go on",
            path=Path(target).parent,
        )
    checkpoint = Path(checkpoint)
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    copied = [shutil.copy2(path, target / path.name) for path in checkpoint.glob("adapter_*")]
    if not copied:
        raise CourseError("missing_adapter", f"no adapter files in {checkpoint}", path=checkpoint)
    return checkpoint_step(checkpoint)


def training_label(steps: int, total_steps: int) -> str:
    """"4 of 4 steps", or "PARTIAL: 2 of 4 steps" for an adapter from a run cut short."""
    text = f"{steps} of {total_steps} steps"
    return text if steps >= total_steps else f"PARTIAL: {text}"


def publish_adapter(staging: Path, adapter_dir: Path, log: dict) -> Path:
    """Finish a saved adapter: its training log, then the folder under its real name, then ``latest.json``.

    Each step is complete or not done (temporary names, ``os.replace``), so a disconnect leaves either the
    earlier adapter of this run or the new one, and the pointer names a complete folder.
    """
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
    pointer = {"adapter": adapter_dir.name, "model_id": log.get("model_id"), "steps": log.get("steps"),
               "total_steps": log.get("total_steps"), "partial": log.get("partial"), "saved_at": log["saved_at"]}
    write_text_atomic(adapter_dir.parent / LATEST, json.dumps(pointer, indent=2))
    return adapter_dir


def latest_adapter_dir(adapter_root: Path) -> Path:
    """The folder ``latest.json`` names (the newest adapter notebook 03 saved), else ``adapter_root`` itself."""
    adapter_root = Path(adapter_root)
    try:
        return adapter_root / json.loads((adapter_root / LATEST).read_text(encoding="utf-8"))["adapter"]
    except (OSError, ValueError, KeyError, TypeError):
        return adapter_root


def training_log(adapter_dir: Path) -> dict:
    """The training log saved with an adapter by notebook 03 ({} when there is none, e.g. a Hub copy)."""
    try:
        return json.loads((Path(adapter_dir) / TRAINING_LOG).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _adapter_base(adapter_dir: Path) -> str | None:
    try:
        return json.loads((Path(adapter_dir) / "adapter_config.json").read_text()).get("base_model_name_or_path")
    except (OSError, ValueError, AttributeError):
        return None


def find_adapter(adapter_root: Path, base_model_id: str, log=print) -> Path:
    """The adapter to evaluate: the latest saved (``latest.json``) if it fits ``base_model_id``, else the
    newest run folder that does. Prints which one and why. Raises ``CourseError`` when none fits.
    """
    adapter_root = Path(adapter_root)
    runs = [p for p in adapter_root.iterdir() if p.is_dir() and not p.name.startswith(".")
            and (p / "adapter_config.json").is_file()] if adapter_root.is_dir() else []
    if (adapter_root / "adapter_config.json").is_file():
        runs.append(adapter_root)  # the layout before one folder per run

    def saved_at(path: Path) -> str:
        return training_log(path).get("saved_at") or dt.datetime.fromtimestamp(
            (path / "adapter_config.json").stat().st_mtime, dt.timezone.utc).isoformat(timespec="seconds")

    runs.sort(key=saved_at, reverse=True)
    latest = latest_adapter_dir(adapter_root)
    if latest in runs:
        runs.remove(latest)
        runs.insert(0, latest)
    fitting = [p for p in runs if same_weights(_adapter_base(p) or base_model_id, base_model_id)]
    if not fitting:
        if runs:
            check_adapter(runs[0], base_model_id)  # raises adapter_base_mismatch, naming the model it fits
        raise CourseError("missing_adapter", f"no adapter in {adapter_root}", path=adapter_root)
    chosen = fitting[0]
    why = ("the latest saved" if chosen == latest else
           f"the newest for {base_model_id} (the latest, {latest.name if latest else '?'}, is for another model)")
    info = training_log(chosen)
    steps = f", {training_label(info['steps'], info['total_steps'])}" if "steps" in info and "total_steps" in info else ""
    log(f"adapter: {chosen.name} ({why}{steps}); {len(runs)} saved in {adapter_root}. "
        "Set ADAPTER_DIR to use another.")
    return chosen


def check_adapter(adapter_dir: Path, base_model_id: str) -> dict:
    """The adapter's config, after checking it exists and was trained for this base model."""
    adapter_dir = Path(adapter_dir)
    config_path = adapter_dir / "adapter_config.json"
    if not config_path.exists():
        raise CourseError("missing_adapter", f"no adapter in {adapter_dir}", path=adapter_dir)
    config = json.loads(config_path.read_text())
    trained_on = config.get("base_model_name_or_path")
    if trained_on and not same_weights(trained_on, base_model_id):
        raise CourseError(
            "adapter_base_mismatch",
            f"the adapter in {adapter_dir} was trained on {trained_on!r}, not {base_model_id!r}",
            adapter_base=trained_on,
            model_id=base_model_id,
            path=adapter_dir,
        )
    return config
