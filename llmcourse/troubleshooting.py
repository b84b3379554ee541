"""The one catalogue of failure messages: what the learner sees, why it happened, what to do.

Every helper that can fail in a way a learner should understand raises ``CourseError(key, ...)`` with a
key from ``PROBLEMS``, so a broken cell ends in three lines (what, why, what to do) instead of a long
traceback, and the README's troubleshooting table (``markdown_table()``) is generated from the same text.

    >>> err = CourseError("out_of_memory_generation", "batch of 16 did not fit", batch_size=16, suggestion=8)
    >>> print(err)  # doctest: +ELLIPSIS
    GPU out of memory during generation: batch of 16 did not fit
    Why: ...
    What to do: Lower EVAL_BATCH_SIZE to 8 ...
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmcourse.profiles import LLAMA_BASE, LLAMA_BASE_UNGATED


@dataclass(frozen=True)
class Problem:
    """One failure the course knows about. ``symptom``, ``cause`` and ``fix`` may hold ``{name}`` fields.

    A field is required (the code that raises the error must give its value) unless ``defaults`` gives it
    a value that reads as a plain sentence (a knob name such as ``BATCH_SIZE``).
    """

    key: str
    symptom: str  # what the learner sees, short
    cause: str  # why it happened
    fix: str  # exact steps
    defaults: tuple[tuple[str, str], ...] = ()

    def fields(self) -> set[str]:
        """The names of every ``{name}`` field in the symptom, the cause and the fix."""
        return {name for text in (self.symptom, self.cause, self.fix) for name in _field_names(text)}

    def required(self) -> set[str]:
        """The fields a caller must fill: those without a default."""
        return self.fields() - {name for name, _ in self.defaults}

    def render(self, text: str, values: Mapping[str, Any]) -> str:
        """``text`` (this problem's symptom, cause or fix) with its fields filled from ``values``."""
        filled = {**dict(self.defaults), **values}
        missing = sorted(_field_names(text) - set(filled))
        if missing:
            raise TypeError(f"CourseError({self.key!r}) needs a value for {', '.join(missing)}")
        return text.format_map(filled)


def _field_names(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


# How the README's table writes each required field: a placeholder, never an invented value.
PLACEHOLDERS: dict[str, str] = {
    "profile": "<profile>",
    "model_id": "<model id>",
    "row": "<N>",
    "source": "<file>",
    "field": "<field>",
    "reason": "<reason>",
    "path": "<path>",
    "differences": "<the settings that differ>",
    "adapter_base": "<the adapter's base model>",
    "needed_gb": "<N>",
    "free_gb": "<M>",
    "packages": "<packages and versions>",
    "label": "<label>",
    "notebook": "<notebook>",
    "name": "<NAME>",
    "value": "<value>",
    "accepted": "<what the knob accepts>",
    "example": "<example>",
    "closest": "<the closest names>",
    "known": "<the known names>",
    "repo_id": "<repository id>",
    "module": "<module>",
    "saved_at": "<the share folder>",
    "checkpoint": "<the base checkpoint>",
}

_RESTART = "Runtime > Restart session (Jupyter: Kernel > Restart Kernel)"

_PROBLEM_LIST = [
    Problem(
        key="no_gpu",
        symptom="No GPU found",
        cause=(
            "The {profile} profile runs Llama 3.1 8B on a GPU, but PyTorch sees no CUDA device: the runtime "
            "has no GPU attached, or Colab's free GPU quota is used up for today."
        ),
        fix=(
            "In Colab: Runtime > Change runtime type > Hardware accelerator: T4 GPU > Save, then run the "
            "notebook from the top (the runtime restarts, so setup runs again). No GPU available? Set "
            "PROFILE = 'cpu' in the parameters cell: the same steps with SmolLM2-135M on the CPU, offline."
        ),
    ),
    Problem(
        key="missing_token",
        symptom="No Hugging Face token found",
        cause=(
            "{model_id} is a gated model: the Hub serves it only to a logged-in account that accepted Meta's "
            "licence, and no HF_TOKEN was found in Colab Secrets or in the environment."
        ),
        fix=(
            "1) Make a read token at https://huggingface.co/settings/tokens. 2) In Colab, click the key icon "
            "(Secrets) in the left sidebar, add a secret named HF_TOKEN with the token as its value, and switch "
            "on 'Notebook access' for this notebook; outside Colab, export HF_TOKEN in the shell before "
            "starting Jupyter. 3) Accept the licence at https://huggingface.co/{model_id} if you have not yet. "
            "4) Run this cell again. Never paste the token into a notebook cell: it would be saved with it."
        ),
    ),
    Problem(
        key="invalid_token",
        symptom="Hugging Face rejected the token (401 Unauthorized)",
        cause="The token found in HF_TOKEN is mistyped, expired or revoked, so the Hub does not accept it.",
        fix=(
            "Make a new read token at https://huggingface.co/settings/tokens, paste it as the value of the "
            "HF_TOKEN secret (key icon panel in Colab; check for spaces before or after it), and run this "
            "cell again."
        ),
    ),
    Problem(
        key="gated_no_access",
        symptom="No access to the gated model (403 Forbidden)",
        cause=(
            "Your token works, but your account is not (yet) on the list of users allowed to download "
            "{model_id}: Meta's licence must be accepted on the model page and the request approved, which "
            "usually takes minutes to a few hours."
        ),
        fix=(
            "Open https://huggingface.co/{model_id}, log in, accept the licence, and wait for the approval "
            "e-mail (the status is at https://huggingface.co/settings/gated-repos); then run this cell again. "
            "With a fine-grained token, also tick 'Read access to contents of all public gated repos you can "
            "access' in its settings. To go on right now, set MODEL_ID = '{fallback}' in the parameters cell: "
            "an ungated copy of the same weights."
        ),
        defaults=(("fallback", LLAMA_BASE_UNGATED),),
    ),
    Problem(
        key="repo_not_found",
        symptom="Model not found on the Hugging Face Hub",
        cause=(
            "The Hub has no repository {model_id} that this request may see: the name has a typo (case "
            "matters), or it is a private or gated repository asked for without a valid token."
        ),
        fix=(
            "Check MODEL_ID in the parameters cell against the model page (e.g. " + LLAMA_BASE + "). For a "
            "gated or private model, add your token as the HF_TOKEN secret (key icon panel in Colab, with "
            "'Notebook access' on) and run this cell again."
        ),
    ),
    Problem(
        key="hub_unreachable",
        symptom="Cannot reach the Hugging Face Hub",
        cause=(
            "There is no working network connection to huggingface.co: Wi-Fi down, a firewall or proxy, "
            "HF_HUB_OFFLINE=1 set, or the Hub itself is having trouble (the first line says which)."
        ),
        fix=(
            "Check the connection and run this cell again (in Colab: Runtime > Disconnect and delete runtime, "
            "then reconnect). If HF_HUB_OFFLINE=1 is set and the model is not cached, unset it. On bad "
            "workshop Wi-Fi, set PROFILE = 'cpu' in the parameters cell: that track uses a small model and "
            "the project's own data/ and works offline."
        ),
    ),
    Problem(
        key="out_of_memory_training",
        symptom="GPU out of memory during training",
        cause=(
            "The activations for a batch of {batch_size} sequences of up to {max_length} tokens do not fit in "
            "GPU memory next to the 4-bit model, the LoRA weights and the optimizer state."
        ),
        defaults=(("batch_size", "BATCH_SIZE"), ("max_length", "MAX_LENGTH"), ("suggestion", "half its current value")),
        fix=(
            "In the parameters cell lower BATCH_SIZE to {suggestion} and raise GRAD_ACCUM by the same factor "
            "(the effective batch BATCH_SIZE x GRAD_ACCUM stays the same, so the training is nearly the same; "
            "fp16 rounding differs a little); if that is not "
            "enough, lower MAX_LENGTH (e.g. 384) and keep GRADIENT_CHECKPOINTING = True (the t4 default). Then "
            + _RESTART
            + " and run from the top: memory held by the failed step is only given back by a restart. "
            "Checkpoints already saved are kept."
        ),
    ),
    Problem(
        key="out_of_memory_generation",
        symptom="GPU out of memory during generation",
        cause=(
            "Generating for {batch_size} questions at once, up to {max_new_tokens} new tokens each, needs more "
            "memory than is free: the key-value cache grows with batch size x length."
        ),
        defaults=(("batch_size", "EVAL_BATCH_SIZE"), ("max_new_tokens", "MAX_NEW_TOKENS"),
                  ("suggestion", "half its current value")),
        fix=(
            "Lower EVAL_BATCH_SIZE to {suggestion} in the parameters cell (or lower MAX_NEW_TOKENS) and run "
            "this cell again. It takes longer, and the answers may differ on a few questions (in fp16 and "
            "4-bit, another batch size changes the kernels and their rounding). If even EVAL_BATCH_SIZE = 1 "
            "fails, " + _RESTART + " to free memory left over from earlier cells, and run from the top."
        ),
    ),
    Problem(
        key="bad_dataset_row",
        symptom="Bad row in the dataset",
        cause="Row {row} of {source} has a problem in the field '{field}': {reason}.",
        fix=(
            "Fix or delete that row (every line is a JSON object with 'question' and 'answer', and the answer "
            "ends in '#### <number>'), or restore the original file from a fresh copy of the course "
            "repository; then run this cell again."
        ),
    ),
    Problem(
        key="missing_adapter",
        symptom="No fine-tuned LoRA adapter found",
        cause=(
            "{path} holds no LoRA adapter (adapter_config.json and adapter_model.safetensors). The adapter is "
            "made by notebook 03 (fine-tuning)."
        ),
        fix=(
            "Run notebook 03 first (on Colab it saves the adapter to Google Drive), or set ADAPTER_DIR in the "
            "parameters cell to the folder of a copy (on Google Drive, or downloaded from the Hub), then run "
            "this cell again."
        ),
    ),
    Problem(
        key="missing_results",
        symptom="No saved '{label}' results found",
        cause="{path} holds no '{label}' results. They are made by {notebook}.",
        fix=(
            "Run {notebook} first with the same PROFILE and MODEL_ID (on Colab its results are kept on Google "
            "Drive, so a fresh runtime finds them), then run this cell again."
        ),
    ),
    Problem(
        key="results_mismatch",
        symptom="Saved results are not comparable with this run",
        cause=(
            "The results in {path} were made with other settings ({differences}). A before/after comparison "
            "is only fair on the same questions, the same prompt format and the same base model."
        ),
        fix=(
            "Run notebook 02 again with the current settings (same PROFILE, MODEL_ID, EVAL_SIZE, seed and "
            "prompt format), or set this notebook's parameters to match the saved run. Earlier results are "
            "kept, not overwritten."
        ),
    ),
    Problem(
        key="adapter_base_mismatch",
        symptom="The adapter does not fit this base model",
        cause=(
            "The adapter in {path} was trained on {adapter_base}, but this notebook loaded {model_id}. LoRA "
            "weights only fit the base model they were trained on (a copy of the same weights, such as the "
            "ungated mirror, is fine; another model is not)."
        ),
        fix=(
            "Set MODEL_ID = '{adapter_base}' in the parameters cell and run from the top, or train an adapter "
            "for {model_id} with notebook 03."
        ),
    ),
    Problem(
        key="low_disk",
        symptom="Not enough free disk space",
        cause="This step needs about {needed_gb} GB free on {path}, but only {free_gb} GB is free.",
        fix=(
            "Free some space and run this cell again: delete old checkpoints in outputs/ (keep the newest), "
            "list cached models with !hf cache ls and remove ones you do not need with "
            "!hf cache rm model/<name>, or in Colab start over on a fresh disk with Runtime > Disconnect and "
            "delete runtime (save anything you need to Google Drive first)."
        ),
    ),
    Problem(
        key="version_mismatch",
        symptom="Package versions do not match what the course needs",
        cause=(
            "{packages}. The setup cell installs the pinned versions, but a package that Python had already "
            "imported stays old in the running session until it restarts."
        ),
        fix=(
            _RESTART + ", then run the notebook from the top, setup cell included. This is needed once: "
            "after the restart the new versions are used. If a package is still missing or wrong after that, "
            "run the setup cell (colab_setup.sh) again and read its output for errors."
        ),
    ),
    Problem(
        key="malformed_results",
        symptom="A results file cannot be read",
        cause=(
            "{path} is not a valid results file (the first line says what is wrong). It may have been cut "
            "short by a disconnect while it was being written, or edited by hand."
        ),
        fix=(
            "Rename or delete {path} and run the notebook that made it again (02 for the baseline, 04 for the "
            "fine-tuned model); other result files beside it are not affected."
        ),
    ),
    Problem(
        key="amp_bf16_mismatch",
        symptom="fp16 training fails on bfloat16 weights",
        cause=(
            "The error \"_amp_foreach_non_finite_check_and_unscale_cuda not implemented for 'BFloat16'\" means "
            "fp16 mixed precision met trainable LoRA weights in bf16: TRL casts them to bf16 when the model is "
            "quantized, and a T4 trains in fp16."
        ),
        fix=(
            "Run the cell that casts the trainable weights to float32 after building the trainer (the t4 "
            "profile does this), or set PROFILE = 't4' so that fp16 = True goes with fp32 LoRA weights; then "
            "build the trainer again."
        ),
    ),
    Problem(
        key="low_ram",
        symptom="Not enough RAM",
        cause="This step needs about {needed_gb} GB of RAM, but only {free_gb} GB is available.",
        fix=(
            _RESTART + " to free the memory that earlier cells hold, and run notebook 05 from the top (its merge "
            "reads the base model one shard at a time). If it still does not fit, skip the merge: the adapter "
            "works as it is on top of the 4-bit base model (notebook 04 loads it that way); or merge on a "
            "machine with more RAM (Colab's high-RAM runtime or a local machine)."
        ),
    ),
]

# --- the knobs of the parameters cells (checked by llmcourse.profiles.check_knob, issue 16) ----------
_PROBLEM_LIST += [
    Problem(
        key="bad_parameter",
        symptom="A parameter has a value the course cannot use",
        cause="{name} = {value} is not {accepted}. It was caught before anything was loaded.",
        fix=(
            "Set {name} in the parameters cell (or -p {name} VALUE on the runner's command line) to "
            "{accepted}, for example {name} = {example}, or to None for the profile's default; then run the "
            "notebook from the parameters cell on."
        ),
    ),
    Problem(
        key="unknown_parameter",
        symptom="Unknown parameter name",
        cause=(
            "{name} is not the name of a parameter (a typo, or a parameter of another notebook), so it "
            "would be silently ignored. The closest known names: {closest}."
        ),
        fix=(
            "Correct the name (names are upper case, as in the parameters cells) and run again. The known "
            "names: {known}. With the runner, "
            "python -m llmcourse.run_series --list-parameters shows them too."
        ),
    ),
    # --- notebook 05: sharing the adapter on the Hub and merging it (added with lesson 05) ---
    Problem(
        key="hub_write_token",
        symptom="This token cannot upload to the Hugging Face Hub",
        cause=(
            "Pushing creates a repository and uploads files, which needs a token with write access; the token "
            "found ({reason}) has none: no token, a read-only token, or one the Hub refused."
        ),
        fix=(
            "Make a token with the 'Write' role at https://huggingface.co/settings/tokens (a fine-grained token "
            "needs 'Write access to contents/settings of all repos under your personal namespace'), store it as "
            "the HF_TOKEN secret (key icon panel in Colab, 'Notebook access' on; elsewhere export HF_TOKEN), and "
            "run this cell again. The adapter and its model card are already saved on disk at {saved_at}."
        ),
    ),
    Problem(
        key="hub_repo_name",
        symptom="The Hub repository name cannot be used",
        cause=(
            "The Hub refused {repo_id}: the name is taken by a repository of another type, the namespace before "
            "the '/' is not your account (or an organisation you may write to), or the name has characters the "
            "Hub does not allow (letters, digits, '-', '_', '.' only, at most 96)."
        ),
        fix=(
            "Set HUB_REPO_NAME in the parameters cell to another name (without a '/', it goes under your own "
            "account), and run this cell again. Your repositories are listed at https://huggingface.co/settings/"
            "repositories."
        ),
    ),
    Problem(
        key="hub_push_unreachable",
        symptom="Cannot reach the Hugging Face Hub to upload",
        cause="The upload to huggingface.co failed ({reason}): no network, HF_HUB_OFFLINE=1 set, or a Hub outage.",
        fix=(
            "Nothing is lost: the adapter and its model card are saved on disk at {saved_at}. Check the connection "
            "(unset HF_HUB_OFFLINE) and run this cell again, or upload that folder later from any machine with the "
            "command hf upload, followed by your repository's name and the folder."
        ),
    ),
    Problem(
        key="merge_target_missing",
        symptom="The adapter changes a weight the checkpoint does not have",
        cause=(
            "The adapter has LoRA matrices for {module}, but no shard of {checkpoint} holds that weight: the adapter "
            "was trained on a model with another architecture or other weight names."
        ),
        fix=(
            "Merge into the base model the adapter was trained on (its adapter_config.json names it under "
            "base_model_name_or_path): set MODEL_ID to it in the parameters cell and run from the top. Nothing "
            "was written: the merge keeps its output in a '.partial' folder until the last shard is done."
        ),
    ),
    Problem(
        key="merge_unsupported",
        symptom="This adapter or checkpoint cannot be merged shard by shard",
        cause=(
            "The streaming merge adds scale x B @ A to 16-bit safetensors weights, and {checkpoint} does not fit that "
            "(see the detail above): e.g. a pre-quantized 4-bit checkpoint, a DoRA adapter, or extra trained "
            "modules beside LoRA."
        ),
        fix=(
            "Use the 16-bit checkpoint of the base model (MODEL_ID = 'meta-llama/Llama-3.1-8B' or its ungated "
            "copy, not a pre-quantized one), or an adapter trained by notebook 03; or keep the adapter separate "
            "and load it on top of the base (section 2 of notebook 05), which needs no merge."
        ),
    ),
]

PROBLEMS: dict[str, Problem] = {problem.key: problem for problem in _PROBLEM_LIST}


class CourseError(RuntimeError):
    """A failure from the catalogue: ``str(err)`` says what happened, why, and what to do.

    ``CourseError(key, detail="", **values)``: ``key`` picks the ``Problem``; ``detail`` is this case's
    specifics (shown after the symptom); ``values`` fill the ``{name}`` fields of the cause and the fix.
    A required field left out is a ``TypeError``: the learner never reads a message with a blank in it.
    """

    def __init__(self, key: str, detail: str = "", **values: Any) -> None:
        if key not in PROBLEMS:
            raise KeyError(f"Unknown problem key {key!r}. Known keys: {', '.join(PROBLEMS)}.")
        missing = sorted(PROBLEMS[key].required() - set(values))
        if missing:  # a bug in the code that raises, caught by the tests: never a message with blanks
            raise TypeError(f"CourseError({key!r}) needs a value for {', '.join(missing)}")
        self.key = key
        self.problem = PROBLEMS[key]
        self.detail = str(detail)
        self.values = dict(values)
        super().__init__(self.message)

    @property
    def symptom(self) -> str:
        return self.problem.render(self.problem.symptom, self.values)

    @property
    def cause(self) -> str:
        return self.problem.render(self.problem.cause, self.values)

    @property
    def fix(self) -> str:
        return self.problem.render(self.problem.fix, self.values)

    @property
    def message(self) -> str:
        """Three lines: what happened (with the detail), why, what to do."""
        first = f"{self.symptom}: {self.detail}" if self.detail else self.symptom
        return f"{first}\nWhy: {self.cause}\nWhat to do: {self.fix}"

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword values do not survive the default exception pickling (multiprocessing, papermill).
        return (_rebuild, (self.key, self.detail, self.values))


def _rebuild(key: str, detail: str, values: dict[str, Any]) -> CourseError:
    return CourseError(key, detail, **values)


def explain(key: str, detail: str = "", **values: Any) -> str:
    """The message of ``CourseError(key, detail, **values)``, for printing a warning without raising."""
    return CourseError(key, detail, **values).message


def _cell(text: str) -> str:
    """Make text safe inside a Markdown table cell: one line, ``|`` escaped, and a ``<`` outside a code
    span written as ``&lt;`` (Markdown would take ``<name>`` for an HTML tag and hide it)."""
    parts = " ".join(text.split()).replace("\\", "\\\\").replace("|", "\\|").split("`")
    return "`".join(part if i % 2 else part.replace("<", "&lt;") for i, part in enumerate(parts))


def markdown_table() -> str:
    """A Markdown table "If you see | Why | Do this" made from ``PROBLEMS``, for the README.

    Required fields are written as placeholders (``<N> GB``, in code spans so Markdown shows them), optional
    ones with their default.
    """
    lines = ["| If you see | Why | Do this |", "|---|---|---|"]
    for problem in PROBLEMS.values():
        unknown = sorted(problem.required() - set(PLACEHOLDERS))
        if unknown:
            raise KeyError(f"{problem.key}: no placeholder for {', '.join(unknown)} in PLACEHOLDERS")
        values = {name: f"`{PLACEHOLDERS[name]}`" for name in problem.required()}
        cells = (problem.render(text, values) for text in (problem.symptom, problem.cause, problem.fix))
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)
