"""The one catalogue of failure messages: what the learner sees, why it happened, what to do.

Code that can fail in a way a learner should understand raises ``CourseError(key, detail, **values)`` with a key
of ``PROBLEMS``, so a broken cell ends in three lines (what, why, what to do) instead of a long traceback. Each
problem is three plain templates; every ``{field}`` in them is required. The README's troubleshooting table
(``markdown_table()``) is generated from the same text.
"""

from __future__ import annotations

import string
from typing import NamedTuple

from llmcourse.profiles import LLAMA_BASE, LLAMA_BASE_UNGATED


class Problem(NamedTuple):
    symptom: str  # what the learner sees, short
    cause: str  # why it happened
    fix: str  # exact steps

    def required(self) -> set[str]:  # the {field} names that the code raising the error must fill
        return {name for text in self for _, name, _, _ in string.Formatter().parse(text) if name}


_RESTART = "Runtime > Restart session (Jupyter: Kernel > Restart Kernel)"
_TEXTS = {
    "no_gpu": ("No GPU found",
      "The {profile} profile runs Llama 3.1 8B on a GPU, but PyTorch sees no CUDA device: the runtime has no GPU "
      "attached, or Colab's free GPU quota is used up for today.",
      "In Colab: Runtime > Change runtime type > Hardware accelerator: T4 GPU > Save, then run the notebook from the "
      "top (the runtime restarts, so setup runs again). No GPU available? Set PROFILE = 'cpu' in the parameters cell: "
      "the same steps with SmolLM2-135M on the CPU, offline."),
    "missing_token": ("No Hugging Face token found",
      "{model_id} is a gated model: the Hub serves it only to a logged-in account that accepted Meta's licence, and no"
      " HF_TOKEN was found in Colab Secrets or in the environment.",
      "1) Make a read token at https://huggingface.co/settings/tokens. 2) In Colab, click the key icon (Secrets) in "
      "the left sidebar, add a secret named HF_TOKEN with the token as its value, and switch on 'Notebook access' for "
      "this notebook; outside Colab, export HF_TOKEN in the shell before starting Jupyter. 3) Accept the licence at "
      "https://huggingface.co/{model_id} if you have not yet. 4) Run this cell again. Never paste the token into a "
      "notebook cell: it would be saved with it."),
    "invalid_token": ("Hugging Face rejected the token (401 Unauthorized)",
      "The token found in HF_TOKEN is mistyped, expired or revoked, so the Hub does not accept it.",
      "Make a new read token at https://huggingface.co/settings/tokens, paste it as the value of the HF_TOKEN secret "
      "(key icon panel in Colab; check for spaces before or after it), and run this cell again."),
    "gated_no_access": ("No access to the gated model (403 Forbidden)",
      "Your token works, but your account is not (yet) on the list of users allowed to download {model_id}: Meta's "
      "licence must be accepted on the model page and the request approved, which usually takes minutes to a few "
      "hours.",
      "Open https://huggingface.co/{model_id}, log in, accept the licence, and wait for the approval e-mail (the "
      "status is at https://huggingface.co/settings/gated-repos); then run this cell again. With a fine-grained token,"
      " also tick 'Read access to contents of all public gated repos you can access' in its settings. To go on right "
      "now, set MODEL_ID = '{fallback}' in the parameters cell: an ungated copy of the same weights."),
    "repo_not_found": ("Model not found on the Hugging Face Hub",
      "The Hub has no repository {model_id} that this request may see: the name has a typo (case matters), or it is a "
      "private or gated repository asked for without a valid token.",
      "Check MODEL_ID in the parameters cell against the model page (e.g. {LLAMA_BASE}). For a gated or private model,"
      " add your token as the HF_TOKEN secret (key icon panel in Colab, with 'Notebook access' on) and run this cell "
      "again."),
    "hub_unreachable": ("Cannot reach the Hugging Face Hub",
      "There is no working network connection to huggingface.co: Wi-Fi down, a firewall or proxy, HF_HUB_OFFLINE=1 "
      "set, or the Hub itself is having trouble (the first line says which).",
      "Check the connection and run this cell again (in Colab: Runtime > Disconnect and delete runtime, then "
      "reconnect). If HF_HUB_OFFLINE=1 is set and the model is not cached, unset it. On bad workshop Wi-Fi, set "
      "PROFILE = 'cpu' in the parameters cell: that track uses a small model and the project's own data/ and works "
      "offline."),
    "out_of_memory_training": ("GPU out of memory during training",
      "The activations of a batch (BATCH_SIZE sequences of up to MAX_LENGTH tokens) do not fit in GPU memory next to "
      "the 4-bit model, the LoRA weights and the optimizer state.",
      "In the parameters cell lower BATCH_SIZE to {suggestion} and raise GRAD_ACCUM by the same factor (the effective "
      "batch BATCH_SIZE x GRAD_ACCUM stays the same, so the training is nearly the same; fp16 rounding differs a "
      "little); if that is not enough, lower MAX_LENGTH (e.g. 384) and keep GRADIENT_CHECKPOINTING = True (the t4 "
      "default). Then {RESTART} and run from the top: memory held by the failed step is only given back by a restart. "
      "Checkpoints already saved are kept."),
    "out_of_memory_generation": ("GPU out of memory during generation",
      "Generating for EVAL_BATCH_SIZE questions at once, up to MAX_NEW_TOKENS new tokens each, needs more memory than "
      "is free: the key-value cache grows with batch size x length.",
      "Lower EVAL_BATCH_SIZE to {suggestion} in the parameters cell (or lower MAX_NEW_TOKENS) and run this cell again."
      " It takes longer, and the answers may differ on a few questions (in fp16 and 4-bit, another batch size changes "
      "the kernels and their rounding). If even EVAL_BATCH_SIZE = 1 fails, {RESTART} to free memory left over from "
      "earlier cells, and run from the top."),
    "bad_dataset_row": ("Bad row in the dataset",
      "Row {row} of {source} has a problem in the field '{field}': {reason}.",
      "Fix or delete that row (every line is a JSON object with 'question' and 'answer', and the answer ends in '#### "
      "<number>'), or restore the original file from a fresh copy of the course repository; then run this cell again."),
    "missing_adapter": ("No fine-tuned LoRA adapter found",
      "{path} holds no LoRA adapter (adapter_config.json and adapter_model.safetensors). The adapter is made by "
      "notebook 03 (fine-tuning).",
      "Run notebook 03 first (on Colab it saves the adapter to Google Drive), or set ADAPTER_DIR in the parameters "
      "cell to the folder of a copy (on Google Drive, or downloaded from the Hub), then run this cell again."),
    "missing_results": ("No saved '{label}' results found",
      "{path} holds no '{label}' results. They are made by {notebook}.",
      "Run {notebook} first with the same PROFILE and MODEL_ID (on Colab its results are kept on Google Drive, so a "
      "fresh runtime finds them), then run this cell again."),
    "results_mismatch": ("Saved results are not comparable with this run",
      "The results in {path} were made with other settings ({differences}). A before/after comparison is only fair on "
      "the same questions, the same prompt format and the same base model.",
      "Run notebook 02 again with the current settings (same PROFILE, MODEL_ID, EVAL_SIZE, seed and prompt format), or"
      " set this notebook's parameters to match the saved run. Earlier results are kept, not overwritten."),
    "adapter_base_mismatch": ("The adapter does not fit this base model",
      "The adapter in {path} was trained on {adapter_base}, but this notebook loaded {model_id}. LoRA weights only fit"
      " the base model they were trained on (a copy of the same weights, such as the ungated mirror, is fine; another "
      "model is not).",
      "Set MODEL_ID = '{adapter_base}' in the parameters cell and run from the top, or train an adapter for {model_id}"
      " with notebook 03."),
    "low_disk": ("Not enough free disk space",
      "This step needs about {needed_gb} GB free on {path}, but only {free_gb} GB is free.",
      "Free some space and run this cell again: delete old checkpoints in outputs/ (keep the newest), list cached "
      "models with !hf cache ls and remove ones you do not need with !hf cache rm model/<name>, or in Colab start over"
      " on a fresh disk with Runtime > Disconnect and delete runtime (save anything you need to Google Drive first)."),
    "version_mismatch": ("Package versions do not match what the course needs",
      "{packages}. The setup cell installs the pinned versions, but a package that Python had already imported stays "
      "old in the running session until it restarts.",
      "{RESTART}, then run the notebook from the top, setup cell included. This is needed once: after the restart the "
      "new versions are used. If a package is still missing or wrong after that, run the setup cell (colab_setup.sh) "
      "again and read its output for errors."),
    "malformed_results": ("A results file cannot be read",
      "{path} is not a valid results file (the first line says what is wrong). It may have been cut short by a "
      "disconnect while it was being written, or edited by hand.",
      "Rename or delete {path} and run the notebook that made it again (02 for the baseline, 04 for the fine-tuned "
      "model); other result files beside it are not affected."),
    "bad_parameter": ("A parameter has a value the course cannot use",
      "{name} = {value} is not {accepted}. It was caught before anything was loaded.",
      "Set {name} in the parameters cell (or -p {name} VALUE on the runner's command line) to {accepted}, for example "
      "{name} = {example}, or to None for the profile's default; then run the notebook from the parameters cell on."),
    "unknown_parameter": ("Unknown parameter name",
      "{name} is not the name of a parameter (a typo, or a parameter of another notebook), so it would be silently "
      "ignored. The closest known names: {closest}.",
      "Correct the name (names are upper case, as in the parameters cells) and run again. The known names: {known}. "
      "With the runner, python -m llmcourse.run_series --list-parameters shows them too."),
    "hub_write_token": ("This token cannot upload to the Hugging Face Hub",
      "Pushing creates a repository and uploads files, which needs a token with write access; the token found "
      "({reason}) has none: no token, a read-only token, or one the Hub refused.",
      "Make a token with the 'Write' role at https://huggingface.co/settings/tokens (a fine-grained token needs 'Write"
      " access to contents/settings of all repos under your personal namespace'), store it as the HF_TOKEN secret (key"
      " icon panel in Colab, 'Notebook access' on; elsewhere export HF_TOKEN), and run this cell again. The adapter "
      "and its model card are already saved on disk at {saved_at}."),
    "hub_repo_name": ("The Hub repository name cannot be used",
      "The Hub refused {repo_id}: the name is taken by a repository of another type, the namespace before the '/' is "
      "not your account (or an organisation you may write to), or the name has characters the Hub does not allow "
      "(letters, digits, '-', '_', '.' only, at most 96).",
      "Set HUB_REPO_NAME in the parameters cell to another name (without a '/', it goes under your own account), and "
      "run this cell again. Your repositories are listed at https://huggingface.co/settings/repositories."),
    "hub_push_unreachable": ("Cannot reach the Hugging Face Hub to upload",
      "The upload to huggingface.co failed ({reason}): no network, HF_HUB_OFFLINE=1 set, or a Hub outage.",
      "Nothing is lost: the adapter and its model card are saved on disk at {saved_at}. Check the connection (unset "
      "HF_HUB_OFFLINE) and run this cell again, or upload that folder later from any machine with the command hf "
      "upload, followed by your repository's name and the folder."),
    "merge_target_missing": ("The adapter changes a weight the checkpoint does not have",
      "The adapter has LoRA matrices for {module}, but no shard of {checkpoint} holds that weight: the adapter was "
      "trained on a model with another architecture or other weight names.",
      "Merge into the base model the adapter was trained on (its adapter_config.json names it under "
      "base_model_name_or_path): set MODEL_ID to it in the parameters cell and run from the top. Nothing was written: "
      "the merge keeps its output in a '.partial' folder until the last shard is done."),
    "merge_unsupported": ("This adapter or checkpoint cannot be merged shard by shard",
      "The streaming merge adds scale x B @ A to 16-bit safetensors weights, and {checkpoint} does not fit that (see "
      "the detail above): e.g. a pre-quantized 4-bit checkpoint, a DoRA adapter, or extra trained modules beside LoRA.",
      "Use the 16-bit checkpoint of the base model (MODEL_ID = '{LLAMA_BASE}' or its ungated copy, not a pre-quantized"
      " one), or an adapter trained by notebook 03; or keep the adapter separate and load it on top of the base "
      "(section 2 of notebook 05), which needs no merge."),
}
PROBLEMS = {key: Problem(*(t.replace("{RESTART}", _RESTART).replace("{LLAMA_BASE}", LLAMA_BASE) for t in texts))
            for key, texts in _TEXTS.items()}


class CourseError(RuntimeError):
    """A failure from the catalogue: ``str(err)`` says what happened (with ``detail``), why, and what to do. A field
    left out of ``values`` is a ``TypeError`` (a bug in the caller): the learner never reads a message with blanks."""

    def __init__(self, key: str, detail: str = "", **values) -> None:
        if key not in PROBLEMS:
            raise KeyError(f"Unknown problem key {key!r}. Known keys: {', '.join(PROBLEMS)}.")
        missing = sorted(PROBLEMS[key].required() - set(values))
        if missing:
            raise TypeError(f"CourseError({key!r}) needs a value for {', '.join(missing)}")
        self.key, self.problem, self.detail, self.values = key, PROBLEMS[key], str(detail), values
        self.symptom, self.cause, self.fix = (text.format(**values) for text in self.problem)
        first = f"{self.symptom}: {detail}" if detail else self.symptom
        super().__init__(f"{first}\nWhy: {self.cause}\nWhat to do: {self.fix}")


# How the README's table writes a field: a placeholder, never an invented value (others: <model id>, <path>...).
PLACEHOLDERS = {
    "row": "<N>", "source": "<file>", "differences": "<the settings that differ>", "needed_gb": "<N>",
    "adapter_base": "<the adapter's base model>", "free_gb": "<M>", "packages": "<packages and versions>",
    "name": "<NAME>", "accepted": "<what the knob accepts>", "closest": "<the closest names>", "suggestion": "<N>",
    "known": "<the known names>", "saved_at": "<the share folder>", "fallback": f"<e.g. {LLAMA_BASE_UNGATED}>",
}


def _cell(text: str) -> str:
    """One line, ``|`` escaped, ``<`` outside code spans as ``&lt;`` (Markdown would hide ``<name>`` as a tag)."""
    parts = " ".join(text.split()).replace("\\", "\\\\").replace("|", "\\|").split("`")
    return "`".join(part if i % 2 else part.replace("<", "&lt;") for i, part in enumerate(parts))


def markdown_table() -> str:
    """The README's table "If you see | Why | Do this", fields written as placeholders in code spans."""
    lines = ["| If you see | Why | Do this |", "|---|---|---|"]
    for problem in PROBLEMS.values():
        values = {name: f"`{PLACEHOLDERS.get(name, '<' + name.replace('_', ' ') + '>')}`"
                  for name in problem.required()}
        lines.append("| " + " | ".join(_cell(text.format(**values)) for text in problem) + " |")
    return "\n".join(lines)
