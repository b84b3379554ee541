"""Hardware profiles: one place that turns "what machine is this?" into every default a notebook needs.

A profile fills the parameters cell's defaults; any knob can still be set by hand (parameters cell,
papermill ``-p``) and the profile itself can be forced with the ``COURSE_PROFILE`` environment variable.
Every knob a learner can set has one spec in ``KNOBS`` (type, range, an example), checked by ``check_knob``
where the profile takes its overrides (``Profile.with_overrides``), before anything loads.

| profile | where                          | model                               | compute |
|---------|--------------------------------|-------------------------------------|---------|
| t4      | free Colab, any pre-Ampere GPU | meta-llama/Llama-3.1-8B in NF4      | fp16    |
| ampere  | L4 / A100 / H100               | meta-llama/Llama-3.1-8B in NF4      | bf16    |
| cpu     | a laptop, no GPU, or no Hub    | HuggingFaceTB/SmolLM2-135M-Instruct | fp32    |
| smoke   | CI                             | a tiny random Llama built locally   | fp32    |
"""

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
    few_shot: int  # worked examples in the prompt of 04's optional few-shot before row (0: no such row)
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

        Every value is checked against its knob's spec (``KNOBS``) and converted ("16" -> 16, "2e-4" ->
        0.0002): a bad value raises ``CourseError('bad_parameter')`` naming the knob, what it accepts and an
        example, before anything is loaded. An unknown name raises ``CourseError('unknown_parameter')`` with
        the closest known names, so a typo in a parameters cell is caught instead of silently ignored.
        """
        known = {f.name for f in dataclasses.fields(self)} & {name.lower() for name in KNOBS}
        unknown = [key for key in overrides if key.lower() not in known]
        if unknown:
            raise unknown_parameter(unknown[0], [name.upper() for name in known], "a profile")
        dataset = overrides.get("dataset") or overrides.get("DATASET") or self.dataset
        changes = {}
        for key, value in overrides.items():
            checked = check_knob(key.upper(), value, dataset=dataset)
            if checked is not None:
                changes[key.lower()] = checked
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
        few_shot=0,  # off: a second before-run with prompts several times longer; homework on a T4
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
        few_shot=4,
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
        few_shot=0,  # off: a second before-run with prompts several times longer
        train_size=960,  # 120 steps of 8: training takes about 16 of the cpu series' 19 minutes on 2 cores
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
        few_shot=2,
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


# --- the knobs: one spec each, checked where the profile takes its overrides --------------------------


@dataclass(frozen=True)
class Knob:
    """What one parameters-cell knob accepts: the one spec ``check_knob`` checks it against.

    ``kind``: int (a whole number), ints (a list of them), number, bool, text (no spaces), sentence (any
    text), label (a file-name-safe word), choice (one of ``choices``) or path (a folder or file that must
    exist).
    """

    name: str  # as written in the parameters cells
    kind: str
    accepted: str  # in words, for the message
    example: str  # a good value, as it would be typed in the cell
    minimum: float | None = None
    maximum: float | None = None
    special: tuple = ()  # values accepted beside the range (MAX_STEPS = -1)
    choices: tuple[str, ...] = ()
    clamp_to_split: str | None = None  # "test" / "train": more than the split holds is clamped, with a line


def _whole(name: str, example: str, minimum: int = 1, note: str = "", **kw: Any) -> Knob:
    return Knob(name, "int", f"a whole number >= {minimum}{note}", example, minimum=minimum, **kw)


def _flag(name: str) -> Knob:
    return Knob(name, "bool", "True or False", "True")


def _knob_list() -> list[Knob]:
    from llmcourse.prompts import PROMPT_FORMATS

    return [
        Knob("PROFILE", "choice", "one of " + ", ".join(PROFILE_NAMES), "'t4'", choices=PROFILE_NAMES),
        Knob("MODEL_ID", "text", "a Hugging Face model id or a local folder", repr(LLAMA_BASE)),
        Knob("PROMPT_FORMAT", "choice", "one of " + ", ".join(PROMPT_FORMATS), "'plain'", choices=PROMPT_FORMATS),
        _whole("EVAL_SIZE", "200", note=", at most the number of test questions", clamp_to_split="test"),
        _whole("EVAL_BATCH_SIZE", "16"),
        _whole("MAX_NEW_TOKENS", "256"),
        _whole("FEW_SHOT", "4", minimum=0, note=" (0: no few-shot row)"),
        _whole("SUBSET_SEED", "1234", minimum=0),
        _whole("OTHER_SEED", "99", minimum=0),
        Knob("RUN_LABEL", "label", "a short name of letters, digits, '-' or '_'", "'instruct'"),
        _flag("RUN_LM_EVAL"),
        _whole("TRAIN_SIZE", "2000", note=", at most the number of training rows", clamp_to_split="train"),
        _flag("FULL_EPOCH"),
        Knob("MAX_STEPS", "int", "a whole number >= 1, or -1 for one epoch over TRAIN_SIZE rows", "60",
             minimum=1, special=(-1,)),
        _whole("BATCH_SIZE", "4"),
        _whole("GRAD_ACCUM", "4"),
        Knob("LEARNING_RATE", "number", "a positive number below 1", "2e-4", minimum=0, maximum=1),
        _whole("LORA_R", "16", note=" (usually 8-64)"),
        Knob("LORA_ALPHA", "number", "a positive number (usually 2 x LORA_R)", "32", minimum=0),
        _whole("MAX_LENGTH", "512"),
        _flag("GRADIENT_CHECKPOINTING"),
        _whole("SAVE_STEPS", "10"),
        _whole("STOP_AFTER_STEPS", "5"),
        Knob("ADAPTER_DIR", "path", "the folder of a saved adapter (it must exist)",
             "'/content/drive/MyDrive/llm-reasoning-course/t4/adapter/<run name>'"),
        _whole("DEMO_STEPS", "10"),
        _whole("STOP_AT", "5"),
        _whole("DEMO_BATCH_SIZE", "4"),
        _flag("EVALUATE_REFERENCE"),
        _flag("EVALUATE_FEW_SHOT"),
        Knob("FEW_SHOT_COUNTS", "ints", "a list of whole numbers >= 1", "[1, 4]", minimum=1),
        Knob("REFERENCE_MODEL_ID", "text", "a Hugging Face model id or a local folder", repr(LLAMA_INSTRUCT)),
        # notebook 05 and its solutions
        Knob("QUESTION", "sentence", "a question in words, ending in '?'",
             "'Tom has 5 boxes of 12 pencils and gives away 14. How many pencils does he have now?'"),
        _flag("PUSH_TO_HUB"),
        Knob("HUB_REPO_NAME", "label", "a repository name of letters, digits, '-' or '_' (no '/')",
             "'llama31-gsm8k-lora'"),
        _flag("MERGE"),
        Knob("MERGED_DIR", "text", "a folder to write the merged model to (no spaces)", "'/content/merged'"),
        _flag("VERIFY_MERGE"),
        _flag("EXPORT_GGUF"),
        _flag("COMPARE_4BIT_MERGE"),
        # Profile fields a parameters cell does not show, checked all the same when overridden.
        Knob("WEIGHT_FORMAT", "choice", "nf4", "'nf4'", choices=("nf4",)),
        Knob("COMPUTE_DTYPE", "choice", "one of float16, bfloat16, float32", "'float16'",
             choices=("float16", "bfloat16", "float32")),
        Knob("DATASET", "text", "'local' or a Hub dataset id", "'openai/gsm8k'"),
        Knob("OPTIM", "text", "an optimizer name of transformers' TrainingArguments", "'paged_adamw_8bit'"),
        _flag("FP16"),
        _flag("BF16"),
    ]


KNOBS: dict[str, Knob] = {knob.name: knob for knob in _knob_list()}

_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")


def check_knob(name: str, value: Any, *, dataset: str | None = None, source: str = "", log=print) -> Any:
    """The value converted to what the knob takes (``None`` stays ``None``: the profile's default).

    A bad value raises ``CourseError('bad_parameter')`` that names the knob, the value, what is accepted
    and an example. Strings from a command line are converted ("16" -> 16, "2e-4" -> 0.0002, "true" ->
    True). A number above a limit that can be honoured (more questions than the split holds) is clamped
    to it, with a printed line saying so (``dataset`` tells which split sizes apply).
    """
    if value is None:
        return None
    knob = KNOBS.get(name.upper())
    if knob is None:
        raise unknown_parameter(name, list(KNOBS), "the course")

    def bad(problem: str) -> Exception:
        from llmcourse.troubleshooting import CourseError

        where = f" (from {source})" if source else ""
        return CourseError("bad_parameter", f"{knob.name} = {value!r}{where}: {problem}", name=knob.name,
                           value=repr(value), accepted=knob.accepted, example=knob.example)

    text = value.strip() if isinstance(value, str) else None
    if text == "":
        raise bad("empty")
    if knob.kind == "bool":
        if isinstance(value, bool):
            return value
        if text is not None and text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise bad("not True or False")
    if knob.kind == "ints":  # a list of whole numbers: [1, 4], or "1,4" from a command line
        items = text.strip("[]()").split(",") if text is not None else value
        if not isinstance(items, list | tuple) or not items:
            raise bad("not a list of whole numbers")
        numbers = [_as_number(item.strip() if isinstance(item, str) else item, whole=True) for item in items]
        if any(n is None or (knob.minimum is not None and n < knob.minimum) for n in numbers):
            raise bad(knob.accepted)
        return numbers
    if knob.kind in ("int", "number"):
        number = _as_number(value, whole=knob.kind == "int")
        if number is None:
            raise bad("not a whole number" if knob.kind == "int" else "not a number")
        if number in knob.special:
            return number
        # Whole numbers include their minimum (>= 1); other numbers exclude both ends (> 0, < 1).
        if knob.minimum is not None and (number < knob.minimum or (knob.kind == "number" and number == knob.minimum)):
            raise bad(f"too small: {knob.accepted}")
        if knob.maximum is not None and number >= knob.maximum:
            raise bad(f"too large: {knob.accepted}")
        if knob.clamp_to_split and dataset:
            from llmcourse.data import split_size

            limit = split_size(dataset, knob.clamp_to_split)
            if limit is not None and number > limit:
                where = "the project's data/" if dataset == "local" else dataset
                log(f"{knob.name} = {number} is more than the {limit} rows of the {knob.clamp_to_split} split of "
                    f"{where}: using {limit}.")
                return limit
        return number
    if text is None:
        raise bad(f"not text but a {type(value).__name__}")
    if knob.kind == "choice":
        if text.lower() not in knob.choices:
            raise bad("not one of the choices")
        return text.lower()
    if knob.kind == "label":
        if not re.fullmatch(r"[A-Za-z0-9_-]+", text):
            raise bad("letters, digits, '-' and '_' only (it becomes part of a file name)")
        return text
    if knob.kind == "path":
        path = Path(text).expanduser()
        if not path.exists():
            raise bad(f"no such folder ({path.absolute()})")
        return str(path.absolute())
    if knob.kind == "sentence":  # free text, e.g. a question: anything but empty
        return text
    if any(ch.isspace() for ch in text):
        raise bad("spaces are not allowed here")
    return text


def _as_number(value: Any, whole: bool) -> int | float | None:
    """``value`` as an int (``whole``) or a float, from a number or a string; None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip()) if not re.fullmatch(r"[+-]?\d+", value.strip()) else int(value)
        except ValueError:
            return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        if not whole:
            return value
        return int(value) if value.is_integer() else None
    return None


def unknown_parameter(name: str, known: list[str], where: str, takers: str = "") -> Exception:
    """``CourseError('unknown_parameter')`` with the closest known names (a typo gets "did you mean")."""
    from llmcourse.troubleshooting import CourseError

    close = difflib.get_close_matches(name.upper(), [k.upper() for k in known], n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}?" if close else "no known name is close to it"
    return CourseError("unknown_parameter", f"{name!r} is not a parameter of {where}: {hint}", name=name,
                       closest=", ".join(close) or "none", known=takers or ", ".join(sorted(known)))


def same_weights(model_a: str | None, model_b: str | None) -> bool:
    """True when both ids name the same weights: a Hub id, its ungated mirror and a local copy of it."""
    return base_model_name(model_a) == base_model_name(model_b)


def base_model_name(model_id: str | None) -> str:
    """The name of the original weights: ``SAME_WEIGHTS`` mirrors map to it, a local folder by its name."""
    model_id = SAME_WEIGHTS.get(str(model_id), str(model_id))
    return model_id.rstrip("/").replace(":", "/").split("/")[-1].lower()


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
        if value is not None and not (isinstance(value, str) and not value.strip()):
            name = check_knob("PROFILE", value, source=source)
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
