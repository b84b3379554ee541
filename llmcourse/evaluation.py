"""The evaluation harness: the very same code makes the before (notebook 02) and the after (04) number: same
prompts, greedy decoding, stop rule, grading and question subset."""

from __future__ import annotations

import datetime as dt
import platform
from dataclasses import asdict, dataclass, field

from llmcourse import prompts as prompt_formats
from llmcourse.data import grade, solution_text
from llmcourse.generation import generate_batched
from llmcourse.stats import wilson_interval


@dataclass
class EvalSettings:
    """Everything that decides an evaluation's number; saved with the results and compared later."""

    label: str  # "before", "after", "instruct", ...
    model_id: str
    adapter: str | None
    prompt_format: str
    dataset: str
    split: str
    subset_seed: int
    subset_size: int
    max_new_tokens: int
    batch_size: int
    profile: str
    weight_format: str
    compute_dtype: str
    decoding: str = "greedy"
    stop_strings: list[str] = field(default_factory=list)
    few_shot_ids: list[str] = field(default_factory=list)  # training rows shown as worked examples (none: zero-shot)
    # How far the adapter was trained: "4 of 4 steps", or "PARTIAL: 2 of 4 steps" when cut short.
    adapter_training: str | None = None
    engine: str = "hf"  # "hf": generate_batched; "vllm": scripts/vllm_engine.py (scripts/evaluate.py)

    # What must be equal for a before/after pair to be comparable.
    COMPARED = ("prompt_format", "dataset", "split", "subset_seed", "max_new_tokens", "decoding", "stop_strings",
                "few_shot_ids")


@dataclass
class EvalRun:
    settings: EvalSettings
    summary: dict
    records: list[dict]


def library_versions() -> dict[str, str]:
    from llmcourse.environment import (
        PACKAGES,
        installed_versions,  # of the one package list
    )

    versions = installed_versions((*PACKAGES, "vllm"))  # vllm: in its own environment, for the vllm engine
    return {"python": platform.python_version(), **{k: v or "not installed" for k, v in versions.items()}}


def summarize(records: list[dict], wall_time_s: float) -> dict:
    """Accuracy (strict and flexible) with 95% Wilson intervals, format compliance, stop shares, speed."""
    n, tokens = len(records), sum(r["new_tokens"] for r in records)

    def share(values) -> float:
        return sum(values) / n if n else 0.0

    summary = {"n": n}
    for kind in ("strict", "flexible"):
        correct = sum(r[f"{kind}_correct"] for r in records)
        summary |= {f"{kind}_correct": correct, f"{kind}_accuracy": share([correct]),
                    f"{kind}_ci95": list(wilson_interval(correct, n))}
    return summary | {
        "format_compliance": share(r["format_ok"] for r in records),
        "stopped_share": share(r["stop_reason"] != "length" for r in records),
        "end_token_share": share(r["stop_reason"] == "end_token" for r in records),
        "mean_new_tokens": share(r["new_tokens"] for r in records),
        "wall_time_s": wall_time_s,
        "tokens_per_s": tokens / wall_time_s if wall_time_s > 0 else 0.0,
    }


def evaluate(model, tokenizer, rows: list[dict], settings: EvalSettings, progress: bool = True,
             examples: list[dict] = (), generate=None) -> EvalRun:
    """Answer and grade every row: the summary and per-question records. ``examples`` (the training rows named
    in ``settings.few_shot_ids``) go before every question as worked examples: a few-shot run. ``generate``:
    ``generate_batched`` (the hf engine), or scripts/vllm_engine.py's ``generate_vllm`` (``settings.engine``)."""
    if [e["id"] for e in examples] != list(settings.few_shot_ids):
        raise ValueError("the few-shot examples must be the rows named in settings.few_shot_ids, in that order")
    shots = [(e["question"], solution_text(e["answer"])) for e in examples]
    texts = [prompt_formats.generation_prompt(r["question"], settings.prompt_format, tokenizer, examples=shots)
             for r in rows]
    generations, stats = (generate or generate_batched)(
        model, tokenizer, texts, batch_size=settings.batch_size, max_new_tokens=settings.max_new_tokens,
        end_token_ids=prompt_formats.end_token_ids(tokenizer, settings.prompt_format),
        stop_strings=tuple(settings.stop_strings), progress=progress,
    )
    records = []
    for row, gen in zip(rows, generations, strict=True):
        g = asdict(grade(gen.output, row["answer"]))
        records.append({"id": row["id"], "question": row["question"], "prompt": gen.prompt, "output": gen.output,
                        "gold": g.pop("gold"), **g, "stop_reason": gen.stop_reason, "new_tokens": gen.new_tokens})
    summary = summarize(records, stats.wall_time_s)
    summary["batch_size_used"] = stats.batch_size
    summary["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return EvalRun(settings, summary, records)


def format_summary(run: EvalRun) -> str:
    """A few lines for the learner: accuracy with its interval, format, stops, speed."""
    s, settings, shots = run.summary, run.settings, len(run.settings.few_shot_ids)
    (lo, hi), (flo, fhi) = s["strict_ci95"], s["flexible_ci95"]
    return "\n".join([
        f"{settings.label}: {settings.model_id}" + (f" + adapter {settings.adapter}" if settings.adapter else "")
        + (f" ({settings.adapter_training})" if settings.adapter_training else "")
        + (f", {shots} worked example{'s' if shots > 1 else ''} in the prompt" if shots else ""),
        f"  strict accuracy   {s['strict_accuracy']:6.1%}  (95% CI {lo:.1%} to {hi:.1%}, {s['strict_correct']}/{s['n']})",
        f"  flexible accuracy {s['flexible_accuracy']:6.1%}  (95% CI {flo:.1%} to {fhi:.1%})",
        f"  format '#### N'   {s['format_compliance']:6.1%}",
        f"  stopped by itself {s['stopped_share']:6.1%}  (end token {s['end_token_share']:.1%})",
        f"  mean new tokens   {s['mean_new_tokens']:6.1f}",
        f"  wall time         {s['wall_time_s']:6.1f} s  ({s['tokens_per_s']:.1f} tokens/s)",
    ])


def lm_eval_gsm8k(model, tokenizer, batch_size: int, limit: int, chat: bool = False) -> dict:
    """lm-evaluation-harness's standard gsm8k task (5-shot, its own prompts and filters: the number papers
    report) on the model in memory, with the chat template when ``chat``. Installs lm-eval first; GPU, slow."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "lm-eval==0.4.13"], check=True)
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    harness = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    return lm_eval.simple_evaluate(model=harness, tasks=["gsm8k"], limit=limit, apply_chat_template=chat)["results"]["gsm8k"]
