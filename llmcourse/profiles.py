"""Hardware profiles: the lesson's ``TRAINING`` settings changed where the hardware dictates, saying why
(``Profile.changes``); the one place naming the models; one spec per knob in ``KNOBS``."""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROFILE_NAMES = ("t4", "ampere", "cpu", "smoke")
ENV_VAR = "COURSE_PROFILE"

LLAMA_BASE = "meta-llama/Llama-3.1-8B"
LLAMA_INSTRUCT = "meta-llama/Llama-3.1-8B-Instruct"
# Ungated copies of the same weights (when the token cannot read Meta's): an adapter fits either.
LLAMA_BASE_UNGATED = "unsloth/Meta-Llama-3.1-8B"
LLAMA_INSTRUCT_UNGATED = "unsloth/Meta-Llama-3.1-8B-Instruct"
SAME_WEIGHTS = {LLAMA_BASE_UNGATED: LLAMA_BASE, LLAMA_INSTRUCT_UNGATED: LLAMA_INSTRUCT}
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
# Not a Hub id: built on this machine by llmcourse.offline_models (random weights, real Llama 3 tokenizer).
TINY_LLAMA = "offline:tiny-random-llama3"
PROMPT_FORMATS = ("plain", "chat")  # llmcourse.prompts: for a base model, for an Instruct model's template
# Each family's end-of-turn tokens (Llama 3, SmolLM2), and spare tokens to pad with that are not the end token.
END_OF_TURN_TOKENS = ("<|eot_id|>", "<|im_end|>", "<|end_of_text|>")
PAD_TOKENS = ("<|finetune_right_pad_id|>", "<|endoftext|>", "<pad>", "<unk>", "<|reserved_special_token_0|>")

# The training settings that matter, for Llama 3.1 8B on a T4: notebook 03 writes each out with its reason.
TRAINING = {"lora_r": 16, "lora_alpha": 32, "learning_rate": 2e-4, "batch_size": 4, "grad_accum": 4,
            "max_length": 512, "optim": "paged_adamw_8bit", "gradient_checkpointing": True}


@dataclass(frozen=True)
class Profile:
    """Every default a notebook takes from the hardware. Field names match the parameters cells."""

    name: str
    description: str
    model_id: str
    compute_dtype: str  # "float16" | "bfloat16" | "float32"; the linear layers are stored in NF4
    dataset: str  # "openai/gsm8k" (Hub) or "local" (the project's data/)
    eval_size: int
    eval_batch_size: int
    max_new_tokens: int
    save_steps: int
    few_shot: int = 0  # worked examples in the prompt of 04's optional few-shot before row (0: no such row)
    train_size: int | None = None  # None = the whole training split
    max_steps: int = -1  # -1 = one full epoch over train_size rows
    lora_r: int = TRAINING["lora_r"]
    lora_alpha: int = TRAINING["lora_alpha"]
    learning_rate: float = TRAINING["learning_rate"]
    batch_size: int = TRAINING["batch_size"]
    grad_accum: int = TRAINING["grad_accum"]
    max_length: int = TRAINING["max_length"]
    optim: str = TRAINING["optim"]
    gradient_checkpointing: bool = TRAINING["gradient_checkpointing"]
    changes: dict[str, str] = field(default_factory=dict, compare=False)  # TRAINING key -> why it differs
    reason: str = field(default="", compare=False)  # why this profile (filled by detect_profile)

    fp16 = property(lambda self: self.compute_dtype == "float16")
    bf16 = property(lambda self: self.compute_dtype == "bfloat16")
    uses_gpu = property(lambda self: self.name in ("t4", "ampere"))

    def with_overrides(self, **overrides: Any) -> Profile:
        """A copy with the given knobs replaced (``None`` keeps the default), each checked by ``check_knob``
        first; an unknown name raises ``CourseError('unknown_parameter')`` with the closest known names."""
        known = {f.name for f in dataclasses.fields(self)} & {name.lower() for name in KNOBS}
        if unknown := [key for key in overrides if key.lower() not in known]:
            raise unknown_parameter(unknown[0], [name.upper() for name in known], "a profile")
        dataset = overrides.get("dataset") or overrides.get("DATASET") or self.dataset
        checked = {key.lower(): check_knob(key, value, dataset=dataset) for key, value in overrides.items()
                   if value is not None}
        changes = {key: why for key, why in self.changes.items() if key not in checked}
        changes |= {key: "set in the parameters cell" for key in checked.keys() & TRAINING.keys()
                    if checked[key] != TRAINING[key]}
        return dataclasses.replace(self, **checked, changes=changes)

    def table(self) -> str:
        """The settings in force, one per line, for the learner to check."""
        rows = [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)
                if f.name not in ("description", "changes")]
        width = max(len(k) for k, _ in rows)
        return "\n".join([f"profile {self.name!r}: {self.description}", *(f"  {k:<{width}} = {v!r}" for k, v in rows)])


_NO_PAGING = "no GPU: plain AdamW, as paging moves optimizer states between GPU and CPU memory"
_NO_CHECKPOINTING = "on a CPU, recomputing activations costs time for little memory saved: pitfall 2"
_SHORT_DATA = "the longest training example in data/ is 150 tokens with SmolLM2's tokenizer, 133 with Llama 3's"
_AMPERE_BATCH = "24-80 GB hold 16 rows at once: the T4's 16 examples a step, without accumulating"
_CPU_BATCH = ("no memory to save: 4 rows a step, no accumulation (300 steps over data/'s 1,200 rows); on 480 rows, "
              "twice the steps of 8 a step in the same time taught more (one run each, 50 questions: 20% against 6%; "
              "benchmarks/results/cpu_levers.jsonl)")
PROFILES: dict[str, Profile] = {
    "t4": Profile(
        "t4", "free Colab T4 or any pre-Ampere GPU: Llama 3.1 8B in NF4, fp16 compute", LLAMA_BASE, "float16",
        "openai/gsm8k", eval_size=200, max_new_tokens=256, save_steps=10, train_size=2000, max_steps=60,
        # KV cache of Llama 3.1 8B: 128 KiB a token (2 x 32 layers x 8 heads x 128 x 2 bytes); 32 rows of ~450
        # tokens hold ~1.8 GB beside 5.7 GB of weights. Derived, not measured on a T4 (benchmarks/gpu_check.py).
        eval_batch_size=32),
    "ampere": Profile(
        "ampere", "L4 / A100 / H100: Llama 3.1 8B in NF4, bf16 compute, larger batches", LLAMA_BASE, "bfloat16",
        "openai/gsm8k", eval_size=400, eval_batch_size=64, max_new_tokens=256, save_steps=50, few_shot=4,
        batch_size=16, grad_accum=1, changes={"batch_size": _AMPERE_BATCH, "grad_accum": _AMPERE_BATCH}),
    "cpu": Profile(
        "cpu", "no GPU or no Hub: SmolLM2-135M-Instruct in NF4 with fp32 compute, the project's data/", SMOLLM2,
        # Every decoding step on a CPU pays a fixed cost (the 4-bit weights, whatever the rows) and little more
        # per extra row: 50 a batch amortises it (100 questions in 2 batches; benchmarks/batched_vs_sequential.py).
        "float32", "local", eval_size=100, eval_batch_size=50, save_steps=25,
        max_new_tokens=100,  # the longest worked solution in data/ is 85 tokens
        train_size=None, learning_rate=1e-3, grad_accum=1, max_length=256, optim="adamw_torch",  # all 1,200 rows
        gradient_checkpointing=False,
        changes={"learning_rate": "SmolLM2-135M, the model a CPU can train, is 60x smaller than the 8B: it takes "
                 "a 5x larger step (2e-3 taught less at 4 rows a step, one run on 50 questions: 16% against 20%; "
                 "benchmarks/results/cpu_levers.jsonl)", "grad_accum": _CPU_BATCH, "max_length": _SHORT_DATA, "optim": _NO_PAGING,
                 "gradient_checkpointing": _NO_CHECKPOINTING}),
    "smoke": Profile(
        "smoke", "CI: a tiny random Llama with the real Llama 3 tokenizer, a few rows, minutes", TINY_LLAMA,
        "float32", "local", eval_size=8, eval_batch_size=4, max_new_tokens=12, save_steps=2, few_shot=2,
        train_size=16, max_steps=4, lora_r=4, lora_alpha=8, learning_rate=1e-3, grad_accum=1, max_length=192,
        optim="adamw_torch", gradient_checkpointing=False,
        changes={"lora_r": "a tiny random model in CI: the smallest adapter that still runs every step",
                 "lora_alpha": "2 x LORA_R, as for r = 16", "learning_rate": "a tiny model, as on the cpu track",
                 "grad_accum": "4 examples a step: CI's 4 steps in minutes", "max_length": _SHORT_DATA,
                 "optim": _NO_PAGING, "gradient_checkpointing": _NO_CHECKPOINTING}),
}


# --- the knobs: one spec each, checked where the profile takes its overrides --------------------------


@dataclass(frozen=True)
class Knob:
    """What one knob accepts. ``kind``: int, ints (a list), number, bool, text (no spaces), sentence (any
    text), label (a file-name-safe word), choice (one of ``choices``) or path (it must exist)."""

    name: str  # as written in the parameters cells
    kind: str
    accepted: str  # in words, for the message
    example: str  # a good value, as it would be typed in the cell
    minimum: float | None = None
    maximum: float | None = None
    special: tuple = ()  # values accepted beside the range (MAX_STEPS = -1)
    choices: tuple[str, ...] = ()
    clamp_to_split: str | None = None  # "test" / "train": more than the split holds is clamped, with a line


def _whole(name: str, example: int, minimum: int = 1, note: str = "", clamp_to_split: str | None = None) -> Knob:
    return Knob(name, "int", f"a whole number >= {minimum}{note}", str(example), minimum, clamp_to_split=clamp_to_split)


def _knob_list() -> list[Knob]:
    flags = ("RUN_LM_EVAL", "FULL_EPOCH", "GRADIENT_CHECKPOINTING", "EVALUATE_REFERENCE", "EVALUATE_FEW_SHOT",
             "PUSH_TO_HUB", "MERGE", "VERIFY_MERGE", "EXPORT_GGUF", "COMPARE_4BIT_MERGE")
    wholes = [("EVAL_BATCH_SIZE", 16), ("MAX_NEW_TOKENS", 256), ("BATCH_SIZE", 4), ("GRAD_ACCUM", 4),
              ("MAX_LENGTH", 512), ("SAVE_STEPS", 10), ("STOP_AFTER_STEPS", 5), ("DEMO_STEPS", 10), ("STOP_AT", 5),
              ("DEMO_BATCH_SIZE", 4), ("SUBSET_SEED", 1234, 0), ("OTHER_SEED", 99, 0), ("TRAIN_SEED", 42, 0),
              ("LORA_R", 16, 1, " (usually 8-64)"), ("FEW_SHOT", 4, 0, " (0: no few-shot row)"),
              ("EVAL_SIZE", 200, 1, ", at most the number of test questions", "test"),
              ("TRAIN_SIZE", 2000, 1, ", at most the number of training rows", "train")]
    choices = {"PROFILE": PROFILE_NAMES, "PROMPT_FORMAT": PROMPT_FORMATS,
               "COMPUTE_DTYPE": ("float16", "bfloat16", "float32")}
    model = "a Hugging Face model id or a local folder"
    return [
        *(Knob(name, "bool", "True or False", "True") for name in flags),
        *(_whole(*spec) for spec in wholes),
        *(Knob(name, "choice", "one of " + ", ".join(c), repr(c[0]), choices=c) for name, c in choices.items()),
        Knob("MODEL_ID", "text", model, repr(LLAMA_BASE)),
        Knob("REFERENCE_MODEL_ID", "text", model, repr(LLAMA_INSTRUCT)),
        Knob("MAX_STEPS", "int", "a whole number >= 1, or -1 for one epoch over TRAIN_SIZE rows", "60",
             minimum=1, special=(-1,)),
        Knob("LEARNING_RATE", "number", "a positive number below 1", "2e-4", minimum=0, maximum=1),
        Knob("LORA_ALPHA", "number", "a positive number (usually 2 x LORA_R)", "32", minimum=0),
        Knob("FEW_SHOT_COUNTS", "ints", "a list of whole numbers >= 1", "[1, 4]", minimum=1),
        Knob("RUN_LABEL", "label", "a short name of letters, digits, '-' or '_'", "'instruct'"),
        Knob("HUB_REPO_NAME", "label", "a repository name of letters, digits, '-' or '_' (no '/')",
             "'llama31-gsm8k-lora'"),
        Knob("ADAPTER_DIR", "path", "the folder of a saved adapter (it must exist)",
             "'/content/drive/MyDrive/llm-reasoning-course/t4/adapter/<run name>'"),
        Knob("QUESTION", "sentence", "a question in words, ending in '?'",
             "'Tom has 5 boxes of 12 pencils and gives away 14. How many pencils does he have now?'"),
        Knob("MERGED_DIR", "text", "a folder to write the merged model to (no spaces)", "'/content/merged'"),
        Knob("DATASET", "text", "'local' or a Hub dataset id", "'openai/gsm8k'"),
        Knob("OPTIM", "text", "an optimizer name of transformers' TrainingArguments", "'paged_adamw_8bit'"),
    ]


KNOBS: dict[str, Knob] = {knob.name: knob for knob in _knob_list()}


def check_knob(name: str, value: Any, *, dataset: str | None = None, source: str = "", log=print) -> Any:
    """The value converted to what the knob takes ("16" -> 16, "2e-4" -> 0.0002, "true" -> True; ``None``
    stays ``None``); a bad value raises ``CourseError('bad_parameter')`` naming the knob, what it accepts and
    an example. More rows than the ``dataset``'s split holds are clamped to it, with a printed line."""
    if value is None:
        return None
    knob = KNOBS.get(name.upper())
    if knob is None:
        raise unknown_parameter(name, list(KNOBS), "the course")
    try:
        checked = _convert(knob, value)
    except ValueError as err:
        from llmcourse.troubleshooting import CourseError

        where = f" (from {source})" if source else ""
        raise CourseError("bad_parameter", f"{knob.name} = {value!r}{where}: {err}", name=knob.name,
                          value=repr(value), accepted=knob.accepted, example=knob.example) from None
    if knob.clamp_to_split and dataset:
        from llmcourse.data import split_size

        limit = split_size(dataset, knob.clamp_to_split)
        if limit is not None and checked > limit:
            where = "the project's data/" if dataset == "local" else dataset
            log(f"{knob.name} = {checked} is more than the {limit} rows of the {knob.clamp_to_split} split of "
                f"{where}: using {limit}.")
            return limit
    return checked


def _convert(knob: Knob, value: Any) -> Any:
    """``value`` as ``knob`` takes it; a ``ValueError`` says what is wrong with it."""
    text = value.strip() if isinstance(value, str) else None
    if text == "":
        raise ValueError("empty")
    if knob.kind == "bool":
        word = str(value).strip().lower()  # True, 1, "yes", " False "
        if isinstance(value, int | str) and word in ("true", "yes", "1", "false", "no", "0"):
            return word in ("true", "yes", "1")
        raise ValueError("not True or False")
    if knob.kind == "ints":  # a list of whole numbers: [1, 4], or "1,4" from a command line
        items = text.strip("[]()").split(",") if text is not None else value
        if not isinstance(items, list | tuple) or not items:
            raise ValueError("not a list of whole numbers")
        return [_convert(dataclasses.replace(knob, kind="int"), item) for item in items]
    if knob.kind in ("int", "number"):
        number = _as_number(value, whole=knob.kind == "int")
        if number is None:
            raise ValueError("not a whole number" if knob.kind == "int" else "not a number")
        # Whole numbers include their minimum (>= 1); other numbers exclude both ends (> 0, < 1).
        low = knob.minimum is not None and (number < knob.minimum or knob.kind == "number" and number == knob.minimum)
        if number not in knob.special and (low or knob.maximum is not None and number >= knob.maximum):
            raise ValueError(f"out of range: {knob.accepted}")
        return number
    if text is None:
        raise ValueError(f"not text but a {type(value).__name__}")
    if knob.kind == "choice" and text.lower() not in knob.choices:
        raise ValueError("not one of the choices")
    if knob.kind == "label" and not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise ValueError("letters, digits, '-' and '_' only (it becomes part of a file name)")
    if knob.kind == "path" and not Path(text).expanduser().exists():
        raise ValueError(f"no such folder ({Path(text).expanduser().absolute()})")
    if knob.kind == "text" and any(ch.isspace() for ch in text):
        raise ValueError("spaces are not allowed here")
    return {"choice": text.lower(), "path": str(Path(text).expanduser().absolute())}.get(knob.kind, text)


def _as_number(value: Any, whole: bool) -> int | float | None:
    """``value`` as an int (``whole``) or a float, from a number or a string; None if it is not one."""
    if isinstance(value, str):
        try:
            value = int(value) if re.fullmatch(r"\s*[+-]?\d+\s*", value) else float(value)
        except ValueError:
            return None
    if isinstance(value, float) and math.isfinite(value) and (value.is_integer() or not whole):
        return int(value) if whole else value
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def unknown_parameter(name: str, known: list[str], where: str, takers: str = "") -> Exception:
    """``CourseError('unknown_parameter')`` with the closest known names (a typo gets "did you mean")."""
    from llmcourse.troubleshooting import CourseError

    close = difflib.get_close_matches(name.upper(), [k.upper() for k in known], n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}?" if close else "no known name is close to it"
    return CourseError("unknown_parameter", f"{name!r} is not a parameter of {where}: {hint}", name=name,
                       closest=", ".join(close) or "none", known=takers or ", ".join(sorted(known)))


def same_weights(*model_ids: str | None) -> bool:
    """True when the ids name the same weights: a Hub id, its ``SAME_WEIGHTS`` mirror, a local copy of it."""
    names = {SAME_WEIGHTS.get(str(m), str(m)).rstrip("/").replace(":", "/").split("/")[-1].lower() for m in model_ids}
    return len(names) == 1


def detect_profile(requested: str | None = None, env: dict[str, str] | None = None,
                   gpu: tuple[str, tuple[int, int]] | None | bool = False) -> Profile:
    """The profile requested, else ``$COURSE_PROFILE``, else the one for the GPU found (``gpu``: for tests,
    ``None`` or ``(name, (major, minor))``); its ``reason`` says why it was chosen."""
    env = os.environ if env is None else env
    for source, value in (("the parameters cell", requested), (f"${ENV_VAR}", env.get(ENV_VAR))):
        if value is not None and not (isinstance(value, str) and not value.strip()):
            name = check_knob("PROFILE", value, source=source)
            return dataclasses.replace(PROFILES[name], reason=f"asked for in {source}")
    if gpu is False:
        from llmcourse.environment import detect_gpu  # the one GPU probe

        found = detect_gpu()
        gpu = (found.name, found.capability) if found.present else None
    if gpu is None:
        return dataclasses.replace(PROFILES["cpu"], reason="no CUDA GPU found")
    name, (major, minor) = gpu
    # bf16 is native from compute capability 8.0 (Ampere); torch.cuda.is_bf16_supported() says True on a T4 (7.5).
    if (major, minor) >= (8, 0):
        return dataclasses.replace(PROFILES["ampere"], reason=f"{name}, compute capability {major}.{minor} >= 8.0: bf16")
    return dataclasses.replace(PROFILES["t4"], reason=f"{name}, compute capability {major}.{minor} < 8.0: fp16")


def torch_dtype(name: str):
    """``"float16"`` -> ``torch.float16`` (the COMPUTE_DTYPE knob's choices only)."""
    import torch

    return getattr(torch, check_knob("COMPUTE_DTYPE", name))
