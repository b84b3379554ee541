"""Share the adapter: a model card written from the run's own result files, and Hub uploads whose failures
say what to do.

The card is made from notebook 04's result files (before/after with intervals, the paired test) and
notebook 03's training log, so every figure in it was measured; it is written to disk in every profile.
The upload itself stays in the notebook (``model.push_to_hub``); :func:`hub_push_errors` turns the Hub
client's errors into ``CourseError`` messages, and :func:`check_write_token` catches a read-only token
before anything is uploaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from llmcourse.evaluation import EvalRun
from llmcourse.hub_access import _hub_error_types, _network_error_types, _status_code, mask_token
from llmcourse.merging import lora_scale
from llmcourse.profiles import LLAMA_BASE, LLAMA_INSTRUCT, SAME_WEIGHTS, SMOLLM2
from llmcourse.results import compare
from llmcourse.troubleshooting import CourseError

DEFAULT_REPO_NAME = "llama31-gsm8k-lora"
# The licence each base model comes under (the adapter is a derivative of it), and the licence tag the
# Hub's card metadata uses for it.
BASE_LICENCES = {
    LLAMA_BASE: ("llama3.1", "Llama 3.1 Community License (https://www.llama.com/llama3_1/license/); "
                 "\"Built with Llama\""),
    LLAMA_INSTRUCT: ("llama3.1", "Llama 3.1 Community License (https://www.llama.com/llama3_1/license/); "
                     "\"Built with Llama\""),
    SMOLLM2: ("apache-2.0", "Apache-2.0 (SmolLM2 by Hugging Face)"),
}
DATASETS = {
    "openai/gsm8k": ("openai/gsm8k", "GSM8K (MIT licence, https://github.com/openai/grade-school-math)"),
    "local": (None, "the course's own GSM8K-style dataset in data/ (CC0-1.0, made by data/make_dataset.py)"),
}
REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def _pct(x: float) -> str:
    return f"{x:.1%}"


def model_card(before: EvalRun, after: EvalRun, adapter_config: dict, training_log: dict | None,
               repo_id: str, hardware: str) -> str:
    """The adapter's model card (Markdown with the Hub's YAML metadata), from the run's own files.

    ``before``/``after`` are notebook 02's and 04's result files (``results.load_latest``), compared with
    the same paired test as notebook 04; ``training_log`` is notebook 03's ``training_log.json``.
    """
    paired, fixed, broken = compare(before, after)
    model_id = before.settings.model_id
    # an ungated mirror comes under the licence of the weights it copies
    licence_tag, licence_line = BASE_LICENCES.get(SAME_WEIGHTS.get(model_id, model_id),
                                                  ("other", f"the licence of {model_id}"))
    dataset_tag, dataset_line = DATASETS.get(before.settings.dataset, (None, before.settings.dataset))
    log = training_log or {}
    meta = ["---", f"base_model: {model_id}", "library_name: peft", f"license: {licence_tag}"]
    if dataset_tag:
        meta += ["datasets:", f"- {dataset_tag}"]
    meta += ["tags:", "- lora", "- qlora", "- sft", "- trl", "- gsm8k", "---"]

    def row(name: str, run: EvalRun) -> str:
        s = run.summary
        lo, hi = s["strict_ci95"]
        flo, fhi = s["flexible_ci95"]
        return (f"| {name} | {_pct(s['strict_accuracy'])} ({_pct(lo)} to {_pct(hi)}) | "
                f"{_pct(s['flexible_accuracy'])} ({_pct(flo)} to {_pct(fhi)}) | {_pct(s['format_compliance'])} | "
                f"{_pct(s['stopped_share'])} |")

    settings = [
        f"- LoRA rank r = {adapter_config.get('r')}, alpha = {adapter_config.get('lora_alpha')} "
        f"(scale {lora_scale(adapter_config, adapter_config.get('r') or 1):g}), "
        f"dropout {adapter_config.get('lora_dropout')}, on {_targets(adapter_config.get('target_modules'))}",
        f"- prompt format: {after.settings.prompt_format}; base weights in {after.settings.weight_format} "
        f"(4-bit NormalFloat), compute in {after.settings.compute_dtype}",
    ]
    if log:
        settings.append(f"- {log.get('steps')} optimizer steps on {log.get('train_rows')} training rows "
                        f"(profile {log.get('profile')})")
        if log.get("minutes_measured") is not None:
            settings.append(f"- training time: {log['minutes_measured']:.1f} min measured")
        if log.get("peak_gb_measured") is not None:
            settings.append(f"- peak GPU memory: {log['peak_gb_measured']:.2f} GB measured")
    lines = [
        *meta,
        "",
        f"# {repo_id}",
        "",
        f"A LoRA adapter for [{model_id}](https://huggingface.co/{model_id}) fine-tuned to solve grade-school "
        "math word problems step by step and end with `#### <answer>`, made in the course "
        "\"Fine-tuning Llama 3.1 8B for reasoning\" (notebooks 03-05). It is only the adapter: load the base "
        "model and put it on top.",
        "",
        "```python",
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        f'base = AutoModelForCausalLM.from_pretrained("{model_id}")',
        f'model = PeftModel.from_pretrained(base, "{repo_id}")',
        f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}")',
        "```",
        "",
        "## Training",
        "",
        f"- data: {dataset_line}, training split",
        *settings,
        f"- hardware: {hardware}",
        "",
        "## Evaluation",
        "",
        f"{paired.n} held-out questions of the {before.settings.split} split (the same questions, prompt, "
        f"greedy decoding and stop rule before and after; seed {before.settings.subset_seed}), at most "
        f"{before.settings.max_new_tokens} new tokens. Accuracy with its 95% Wilson interval.",
        "",
        "| model | strict accuracy (`#### N`) | flexible accuracy (last number) | format | stopped by itself |",
        "|---|---|---|---|---|",
        row("base (before)", before),
        row("base + this adapter (after)", after),
        "",
        f"Difference (strict): {paired.difference * 100:+.1f} points; wrong -> right {paired.fixed}, right -> wrong "
        f"{paired.broken}; exact McNemar test p = {paired.p_value:.2g}.",
        "",
        "## Licence",
        "",
        f"- base model: {licence_line}; this adapter is a derivative of it and comes under the same terms",
        f"- data: {dataset_line}",
        "",
        "## Limits",
        "",
        "Measured on the questions above only: a small sample (read the intervals). The adapter learned the "
        "answer format and the step-by-step style of its training data; it is not a general-purpose assistant.",
        "",
    ]
    return "\n".join(lines)


def _targets(target_modules) -> str:
    """The adapted layers by name (``q_proj, v_proj, ...``), whether peft saved names or full module paths."""
    if isinstance(target_modules, str):  # "all-linear" or a regular expression
        return target_modules
    return ", ".join(sorted({str(m).split(".")[-1] for m in target_modules or []}))


def write_model_card(text: str, folder: Path) -> Path:
    """Write the card as ``README.md`` (the name the Hub shows) in ``folder``; return its path."""
    path = Path(folder) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def repo_id_for(name: str, username: str) -> str:
    """``name`` under the learner's account, unless it already names a namespace; checked for the Hub's rules."""
    repo_id = name if "/" in name else f"{username}/{name}"
    if repo_id.count("/") != 1 or not REPO_NAME.match(repo_id.split("/")[1]):
        raise CourseError("hub_repo_name", f"{repo_id!r} is not a valid repository name", repo_id=repo_id)
    return repo_id


def check_write_token(token: str | None, saved_at: Path, api: Any | None = None) -> str:
    """The account name, after checking (``whoami``, one small request) that ``token`` may write.

    Raises ``hub_write_token`` for no token or a read-only one, and the mapped error of
    :func:`push_error` for anything else. ``api`` is for tests: an object with ``whoami()``.
    """
    if not token:
        raise CourseError("hub_write_token", "no token found", reason="none found", saved_at=saved_at)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    try:
        info = api.whoami()
    except Exception as exc:
        error = push_error(exc, "your account", token, saved_at)
        if error is None:
            raise
        raise error from exc
    role = ((info.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise CourseError("hub_write_token", f"token {mask_token(token)} is read-only",
                          reason="a read-only token", saved_at=saved_at)
    return info["name"]


def push_error(exc: BaseException, repo_id: str, token: str | None, saved_at: Path) -> CourseError | None:
    """The ``CourseError`` for a failed upload (looking through wrapped causes), or None if it is not one."""
    from huggingface_hub.errors import HFValidationError

    hub = _hub_error_types()
    network = _network_error_types()
    values = {"repo_id": repo_id, "saved_at": saved_at}
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        status = _status_code(current)
        if isinstance(current, hub["OfflineModeIsEnabled"]):
            return CourseError("hub_push_unreachable", "HF_HUB_OFFLINE=1 is set", reason="offline mode is on",
                               **values)
        if isinstance(current, HFValidationError):
            return CourseError("hub_repo_name", str(current).splitlines()[0], **values)
        if isinstance(current, hub["HfHubHTTPError"]):
            if status == 401:
                return CourseError("hub_write_token", f"token {mask_token(token)} was refused (HTTP 401)",
                                   reason="refused by the Hub", **values)
            if status in (403, 404, 409):
                return CourseError("hub_repo_name", f"{repo_id} (HTTP {status})", **values)
            if status is not None and (status >= 500 or status == 429):
                return CourseError("hub_push_unreachable", f"HTTP {status} from huggingface.co",
                                   reason=f"HTTP {status}", **values)
            return None
        if isinstance(current, network):
            return CourseError("hub_push_unreachable", f"{type(current).__name__}: {current}",
                               reason=type(current).__name__, **values)
        current = current.__cause__ or current.__context__
    return None


@contextmanager
def hub_push_errors(repo_id: str, token: str | None, saved_at: Path) -> Iterator[None]:
    """Turn a failed upload inside the block into a ``CourseError`` that says what to do."""
    try:
        yield
    except Exception as exc:
        error = push_error(exc, repo_id, token, saved_at)
        if error is None:
            raise
        raise error from exc
