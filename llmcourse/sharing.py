"""Share the adapter: a model card from the run's own result files (every figure in it measured), and upload
failures that say what to do (the upload itself, ``model.push_to_hub``, stays in the notebook)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from llmcourse.data import HUB_DATASET
from llmcourse.evaluation import EvalRun
from llmcourse.hub_access import course_error_from_hub, mask_token
from llmcourse.merging import lora_scale
from llmcourse.profiles import LLAMA_BASE, LLAMA_INSTRUCT, SAME_WEIGHTS, SMOLLM2
from llmcourse.results import compare
from llmcourse.troubleshooting import CourseError

DEFAULT_REPO_NAME = "llama31-gsm8k-lora"
_LLAMA = ("llama3.1", 'Llama 3.1 Community License (https://www.llama.com/llama3_1/license/); "Built with Llama"')
# The licence each base model comes under (the adapter is a derivative of it), with the Hub's metadata tag for it.
BASE_LICENCES = {LLAMA_BASE: _LLAMA, LLAMA_INSTRUCT: _LLAMA,
                 SMOLLM2: ("apache-2.0", "Apache-2.0 (SmolLM2 by Hugging Face)")}
DATASETS = {
    HUB_DATASET: (HUB_DATASET, "GSM8K (MIT licence, https://github.com/openai/grade-school-math)"),
    "local": (None, "the course's own GSM8K-style dataset in data/ (CC0-1.0, made by data/make_dataset.py)"),
}
REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def _row(name: str, run: EvalRun) -> str:
    s = run.summary
    (lo, hi), (flo, fhi) = s["strict_ci95"], s["flexible_ci95"]
    return (f"| {name} | {s['strict_accuracy']:.1%} ({lo:.1%} to {hi:.1%}) | {s['flexible_accuracy']:.1%} ({flo:.1%} "
            f"to {fhi:.1%}) | {s['format_compliance']:.1%} | {s['stopped_share']:.1%} |")


def model_card(before: EvalRun, after: EvalRun, adapter_config: dict, training_log: dict | None,
               repo_id: str, hardware: str) -> str:
    """The adapter's model card (Markdown, the Hub's YAML metadata) from notebook 02's and 04's results, compared
    with notebook 04's paired test, and notebook 03's ``training_log.json``."""
    paired, _, _ = compare(before, after)
    run, model_id, config, log = before.settings, before.settings.model_id, adapter_config, training_log or {}
    # an ungated mirror comes under the licence of the weights it copies
    licence_tag, licence = BASE_LICENCES.get(SAME_WEIGHTS.get(model_id, model_id),
                                             ("other", f"the licence of {model_id}"))
    dataset_tag, dataset = DATASETS.get(run.dataset, (None, run.dataset))
    training = [f"- LoRA rank r = {config.get('r')}, alpha = {config.get('lora_alpha')} (scale "
                f"{lora_scale(config, config.get('r') or 1):g}), dropout {config.get('lora_dropout')}, on "
                f"{_targets(config.get('target_modules'))}",
                f"- prompt format: {after.settings.prompt_format}; base weights in {after.settings.weight_format} "
                f"(4-bit NormalFloat), compute in {after.settings.compute_dtype}"]
    if log:
        training.append(f"- {log.get('steps')} optimizer steps on {log.get('train_rows')} training rows "
                        f"(profile {log.get('profile')})")
    for key, line in (("minutes_measured", "- training time: {:.1f} min measured"),
                      ("peak_gb_measured", "- peak GPU memory: {:.2f} GB measured")):
        if log.get(key) is not None:
            training.append(line.format(log[key]))
    training = "\n".join(training)
    datasets = f"datasets:\n- {dataset_tag}\n" if dataset_tag else ""
    return f"""---
base_model: {model_id}
library_name: peft
license: {licence_tag}
{datasets}tags:
- lora
- qlora
- sft
- trl
- gsm8k
---

# {repo_id}

A LoRA adapter for [{model_id}](https://huggingface.co/{model_id}) fine-tuned to solve grade-school math word \
problems step by step and end with `#### <answer>`, made in the course "Fine-tuning Llama 3.1 8B for reasoning" \
(notebooks 03-05). It is only the adapter: load the base model and put it on top.

```python
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

base = AutoModelForCausalLM.from_pretrained("{model_id}")
model = PeftModel.from_pretrained(base, "{repo_id}")
tokenizer = AutoTokenizer.from_pretrained("{repo_id}")
```

## Training

- data: {dataset}, training split
{training}
- hardware: {hardware}

## Evaluation

{paired.n} held-out questions of the {run.split} split (the same questions, prompt, greedy decoding and stop rule \
before and after; seed {run.subset_seed}), at most {run.max_new_tokens} new tokens. Accuracy with its 95% Wilson \
interval.

| model | strict accuracy (`#### N`) | flexible accuracy (last number) | format | stopped by itself |
|---|---|---|---|---|
{_row("base (before)", before)}
{_row("base + this adapter (after)", after)}

Difference (strict): {paired.difference * 100:+.1f} points; wrong -> right {paired.fixed}, right -> wrong \
{paired.broken}; exact McNemar test p = {paired.p_value:.2g}.

## Licence

- base model: {licence}; this adapter is a derivative of it and comes under the same terms
- data: {dataset}

## Limits

Measured on the questions above only: a small sample (read the intervals). The adapter learned the answer format \
and the step-by-step style of its training data; it is not a general-purpose assistant.
"""


def _targets(target_modules) -> str:  # the adapted layers by name, whether peft saved names or module paths
    if isinstance(target_modules, str):  # "all-linear" or a regular expression
        return target_modules
    return ", ".join(sorted({str(m).split(".")[-1] for m in target_modules or []}))


def write_model_card(text: str, folder: Path) -> Path:
    path = Path(folder) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def repo_id_for(name: str, username: str) -> str:
    """``name`` under the learner's account unless it names a namespace, checked for the Hub's rules."""
    repo_id = name if "/" in name else f"{username}/{name}"
    if repo_id.count("/") != 1 or not REPO_NAME.match(repo_id.split("/")[1]):
        raise CourseError("hub_repo_name", f"{repo_id!r} is not a valid repository name", repo_id=repo_id)
    return repo_id


def check_write_token(token: str | None, saved_at: Path, api: Any | None = None) -> str:
    """The account name, after checking (``whoami``) that ``token`` may write: ``hub_write_token`` for no token or a
    read-only one. ``api``: for tests, anything with ``whoami()``."""
    if not token:
        raise CourseError("hub_write_token", "no token found", reason="none found", saved_at=saved_at)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    with hub_push_errors("your account", token, saved_at):
        info = api.whoami()
    if ((info.get("auth") or {}).get("accessToken") or {}).get("role") == "read":
        raise CourseError("hub_write_token", f"token {mask_token(token)} is read-only", reason="a read-only token",
                          saved_at=saved_at)
    return info["name"]


@contextmanager
def hub_push_errors(repo_id: str, token: str | None, saved_at: Path) -> Iterator[None]:
    """Turn a failed upload inside the block into a ``CourseError`` that says what to do (a taken or refused name,
    a token that may not write, no network: ``hub_access.course_error_from_hub`` with ``saved_at``)."""
    try:
        yield
    except Exception as exc:
        error = course_error_from_hub(exc, repo_id, token, saved_at=saved_at)
        if error is None:
            raise
        raise error from exc
