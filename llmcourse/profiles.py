"""Hardware profiles: one place that turns "what machine is this?" into every default a notebook needs.

A profile fills the parameters cell's defaults; any knob can still be set by hand (parameters cell,
papermill ``-p``) and the profile itself can be forced with the ``COURSE_PROFILE`` environment variable.

| profile | where                          | model                               | compute |
|---------|--------------------------------|-------------------------------------|---------|
| t4      | free Colab, any pre-Ampere GPU | meta-llama/Llama-3.1-8B in NF4      | fp16    |
| ampere  | L4 / A100 / H100               | meta-llama/Llama-3.1-8B in NF4      | bf16    |
| cpu     | a laptop, no GPU, or no Hub    | HuggingFaceTB/SmolLM2-135M-Instruct | fp32    |
| smoke   | CI                             | a tiny random Llama built locally   | fp32    |
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

PROFILE_NAMES = ("t4", "ampere", "cpu", "smoke")
ENV_VAR = "COURSE_PROFILE"

LLAMA_BASE = "meta-llama/Llama-3.1-8B"
LLAMA_INSTRUCT = "meta-llama/Llama-3.1-8B-Instruct"
# Ungated copy of the base model, offered when the token cannot read Meta's gated repository.
LLAMA_BASE_UNGATED = "unsloth/Meta-Llama-3.1-8B"
LLAMA_INSTRUCT_UNGATED = "unsloth/Meta-Llama-3.1-8B-Instruct"
# Ungated copies of the same weights: an adapter trained on one fits the other.
SAME_WEIGHTS = {LLAMA_BASE_UNGATED: LLAMA_BASE, LLAMA_INSTRUCT_UNGATED: LLAMA_INSTRUCT}
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
# Not a Hub id: built on this machine by llmcourse.offline_models (random weights, real Llama 3 tokenizer).
TINY_LLAMA = "offline:tiny-random-llama3"


@dataclass(frozen=True)
class Profile:
    """Every default a notebook takes from the hardware. Field names match the parameters cells."""

    name: str
    description: str
    model_id: str
    weight_format: str  # "nf4": the linear layers stored in 4-bit NormalFloat
    compute_dtype: str  # "float16" | "bfloat16" | "float32"
    dataset: str  # "openai/gsm8k" (Hub) or "local" (the project's data/)
    # evaluation
    eval_size: int
    eval_batch_size: int
    max_new_tokens: int
    # training
    train_size: int | None  # None = the whole training split
    max_steps: int  # -1 = one full epoch over train_size rows
    batch_size: int
    grad_accum: int
    learning_rate: float
    lora_r: int
    lora_alpha: int
    max_length: int
    gradient_checkpointing: bool
    optim: str
    fp16: bool
    bf16: bool
    save_steps: int
    # why this profile (filled by detect_profile)
    reason: str = field(default="", compare=False)

    def with_overrides(self, **overrides: Any) -> Profile:
        """Return a copy with the given knobs replaced; ``None`` means "keep the profile's default".

        Unknown names raise, so a typo in a parameters cell is caught instead of silently ignored.
        """
        known = {f.name for f in dataclasses.fields(self)}
        changes = {}
        for key, value in overrides.items():
            name = key.lower()
            if name not in known:
                raise ValueError(f"Unknown setting {key!r}. Known settings: {', '.join(sorted(known))}.")
            if value is not None:
                changes[name] = value
        return dataclasses.replace(self, **changes)

    @property
    def uses_gpu(self) -> bool:
        return self.name in ("t4", "ampere")

    def table(self) -> str:
        """The settings in force, one per line, for the learner to check."""
        rows = [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "description"]
        width = max(len(k) for k, _ in rows)
        lines = [f"profile {self.name!r}: {self.description}"]
        lines += [f"  {k:<{width}} = {v!r}" for k, v in rows]
        return "\n".join(lines)


PROFILES: dict[str, Profile] = {
    "t4": Profile(
        name="t4",
        description="free Colab T4 or any pre-Ampere GPU: Llama 3.1 8B in NF4, fp16 compute",
        model_id=LLAMA_BASE,
        weight_format="nf4",
        compute_dtype="float16",
        dataset="openai/gsm8k",
        eval_size=200,
        # KV cache of Llama 3.1 8B: 2 x 32 layers x 8 heads x 128 x 2 bytes = 128 KiB a token; 32 rows of
        # ~450 tokens (prompt + 256 new) hold ~1.8 GB beside the 5.7 GB of weights: far under 15 GB.
        # Derived, not yet measured on a T4 (benchmarks/gpu_check.py measures it on a GPU).
        eval_batch_size=32,
        max_new_tokens=256,
        train_size=2000,
        max_steps=60,
        batch_size=4,
        grad_accum=4,
        learning_rate=2e-4,
        lora_r=16,
        lora_alpha=32,
        max_length=512,
        gradient_checkpointing=True,
        optim="paged_adamw_8bit",
        fp16=True,
        bf16=False,
        save_steps=10,
    ),
    "ampere": Profile(
        name="ampere",
        description="L4 / A100 / H100: Llama 3.1 8B in NF4, bf16 compute, larger batches",
        model_id=LLAMA_BASE,
        weight_format="nf4",
        compute_dtype="bfloat16",
        dataset="openai/gsm8k",
        eval_size=400,
        eval_batch_size=64,
        max_new_tokens=256,
        train_size=None,
        max_steps=-1,
        batch_size=16,
        grad_accum=1,
        learning_rate=2e-4,
        lora_r=16,
        lora_alpha=32,
        max_length=512,
        gradient_checkpointing=True,
        optim="paged_adamw_8bit",
        fp16=False,
        bf16=True,
        save_steps=50,
    ),
    "cpu": Profile(
        name="cpu",
        description="no GPU or no Hub: SmolLM2-135M-Instruct in NF4 with fp32 compute, the project's data/",
        model_id=SMOLLM2,
        weight_format="nf4",
        compute_dtype="float32",
        dataset="local",
        eval_size=100,
        eval_batch_size=25,
        max_new_tokens=100,  # the longest worked solution in data/ is 85 tokens
        train_size=960,  # 120 steps of 8: the whole cpu series takes about 28 minutes on 2 cores
        max_steps=-1,
        batch_size=8,
        grad_accum=1,
        learning_rate=1e-3,
        lora_r=16,
        lora_alpha=32,
        max_length=256,  # the longest training example in data/ is 158 tokens
        # On a CPU, checkpointing recomputes activations for little memory saved (pitfall 2).
        gradient_checkpointing=False,
        optim="adamw_torch",
        fp16=False,
        bf16=False,
        save_steps=25,
    ),
    "smoke": Profile(
        name="smoke",
        description="CI: a tiny random Llama with the real Llama 3 tokenizer, a few rows, minutes",
        model_id=TINY_LLAMA,
        weight_format="nf4",
        compute_dtype="float32",
        dataset="local",
        eval_size=8,
        eval_batch_size=4,
        max_new_tokens=12,
        train_size=16,
        max_steps=4,
        batch_size=4,
        grad_accum=1,
        learning_rate=1e-3,
        lora_r=4,
        lora_alpha=8,
        max_length=192,
        gradient_checkpointing=False,
        optim="adamw_torch",
        fp16=False,
        bf16=False,
        save_steps=2,
    ),
}


def gpu_capability() -> tuple[str, tuple[int, int]] | None:
    """Name and compute capability of GPU 0, or None when there is no CUDA GPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0)


def supports_bf16(capability: tuple[int, int]) -> bool:
    """bf16 compute is native from compute capability 8.0 (Ampere) on.

    ``torch.cuda.is_bf16_supported()`` says True on a T4 (7.5) because it emulates bf16, slowly, so
    the decision is taken from the capability instead.
    """
    return tuple(capability) >= (8, 0)


def detect_profile(
    requested: str | None = None,
    env: dict[str, str] | None = None,
    gpu: tuple[str, tuple[int, int]] | None | bool = False,
) -> Profile:
    """Choose a profile: the one requested, else ``$COURSE_PROFILE``, else from the GPU found.

    ``gpu`` is for tests: pass ``None`` for "no GPU" or ``(name, (major, minor))``; leave it out to ask
    torch. The returned profile's ``reason`` says why it was chosen.
    """
    env = os.environ if env is None else env
    for source, value in (("the parameters cell", requested), (f"${ENV_VAR}", env.get(ENV_VAR))):
        if value:
            name = value.strip().lower()
            if name not in PROFILES:
                raise ValueError(
                    f"Unknown profile {value!r} (from {source}). Choose one of: {', '.join(PROFILE_NAMES)}."
                )
            return dataclasses.replace(PROFILES[name], reason=f"asked for in {source}")
    found = gpu_capability() if gpu is False else gpu
    if found is None:
        return dataclasses.replace(PROFILES["cpu"], reason="no CUDA GPU found")
    name, capability = found
    cc = f"{capability[0]}.{capability[1]}"
    if supports_bf16(capability):
        return dataclasses.replace(PROFILES["ampere"], reason=f"{name}, compute capability {cc} >= 8.0: bf16")
    return dataclasses.replace(PROFILES["t4"], reason=f"{name}, compute capability {cc} < 8.0: fp16")


def torch_dtype(name: str):
    """``"float16"`` -> ``torch.float16``, with a clear error for anything else."""
    import torch

    dtypes = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
    if name not in dtypes:
        raise ValueError(f"Unknown compute dtype {name!r}: use one of {', '.join(dtypes)}.")
    return dtypes[name]
