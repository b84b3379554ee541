"""Result files: a JSON summary with the settings that made it, and one JSON line per question.

A new run never overwrites an earlier one: each file name carries its time stamp, and ``load_latest``
picks the newest. Files are written under a temporary name and renamed when complete. Files that are malformed or were made under other settings give a clear error.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
from pathlib import Path

from llmcourse.evaluation import EvalRun, EvalSettings, library_versions
from llmcourse.profiles import same_weights
from llmcourse.stats import PairedResult, paired_comparison
from llmcourse.troubleshooting import CourseError

SUMMARY_KEYS = ("settings", "summary", "subset_ids", "versions", "per_question_file")
RECORD_KEYS = ("id", "output", "gold", "strict_correct", "flexible_correct", "stop_reason")
MADE_BY = {"before": "notebook 02 (02_dataset_and_baseline)", "after": "notebook 04 (04_evaluate_and_compare)"}


def save_run(run: EvalRun, results_dir: Path) -> Path:
    """Write ``<label>_<time>.json`` and ``<label>_<time>.jsonl``; return the summary's path.

    Each file is written under a temporary name and renamed when complete, so a disconnect (or an error)
    mid-write leaves no half file: the earlier runs beside it stay as they were.
    """
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = results_dir / f"{run.settings.label}_{stamp}"
    suffix = 1
    while base.with_suffix(".json").exists():  # two runs in the same second: keep both
        suffix += 1
        base = results_dir / f"{run.settings.label}_{stamp}-{suffix}"
    jsonl = base.with_suffix(".jsonl")
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in run.records)
    summary = {
        "settings": dataclasses.asdict(run.settings),
        "summary": run.summary,
        "subset_ids": [r["id"] for r in run.records],
        "versions": library_versions(),
        "per_question_file": jsonl.name,
    }
    text = json.dumps(summary, indent=2, ensure_ascii=False)
    path = base.with_suffix(".json")
    write_text_atomic(jsonl, lines)
    try:
        write_text_atomic(path, text)  # the summary last: it is what load_latest looks for
    except BaseException:
        jsonl.unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then rename it (``os.replace``, atomic).

    Readers see the old file or the complete new one, never a half-written one; on any error the
    temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.incomplete")
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def load_run(path: Path) -> EvalRun:
    """Read a run back, checking that it is complete; a broken file raises ``CourseError``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise CourseError("malformed_results", f"{path}: {err}", path=path) from err
    missing = [k for k in SUMMARY_KEYS if not isinstance(data, dict) or k not in data]
    if not missing and not isinstance(data["settings"], dict):
        missing = ["settings (not an object)"]
    if missing:
        raise CourseError("malformed_results", f"{path}: missing {', '.join(missing)}", path=path)
    field_names = {f.name for f in dataclasses.fields(EvalSettings)}
    try:
        settings = EvalSettings(**{k: v for k, v in data["settings"].items() if k in field_names})
    except TypeError as err:
        raise CourseError("malformed_results", f"{path}: settings incomplete ({err})", path=path) from err
    records = []
    jsonl = path.with_name(data["per_question_file"])
    try:
        lines = jsonl.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise CourseError("malformed_results", f"{jsonl}: {err}", path=jsonl) from err
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise CourseError("malformed_results", f"{jsonl.name} line {number}: {err.msg}", path=jsonl) from err
        absent = [k for k in RECORD_KEYS if not isinstance(record, dict) or k not in record]
        if absent:
            raise CourseError(
                "malformed_results", f"{jsonl.name} line {number}: missing {', '.join(absent)}", path=jsonl
            )
        records.append(record)
    if [r["id"] for r in records] != data["subset_ids"]:
        raise CourseError("malformed_results", f"{jsonl.name} does not match the ids in {path.name}", path=path)
    return EvalRun(settings, data["summary"], records)


def list_runs(results_dir: Path, label: str) -> list[Path]:
    """Summaries with this label, oldest first (by time stamp, then by the same-second suffix)."""
    pattern = re.compile(rf"{re.escape(label)}_(\d{{8}}-\d{{6}})(?:-(\d+))?")

    def order(path: Path) -> tuple:
        match = pattern.fullmatch(path.stem)
        return (path.stat().st_mtime, match.group(1), int(match.group(2) or 1)) if match else (path.stat().st_mtime,)

    return sorted(
        (p for p in Path(results_dir).glob(f"{label}_*.json") if pattern.fullmatch(p.stem)), key=order
    )


def load_latest(results_dir: Path, label: str) -> EvalRun:
    """The newest run with this label; a clear message naming the notebook that makes it if none."""
    runs = list_runs(results_dir, label)
    if not runs:
        raise CourseError(
            "missing_results",
            f"no '{label}' results in {results_dir}",
            label=label,
            notebook=MADE_BY.get(label, "an earlier notebook"),
            path=results_dir,
        )
    return load_run(runs[-1])


def check_comparable(before: EvalRun, after: EvalRun, allow_engine_difference: bool = False) -> None:
    """Raise ``CourseError('results_mismatch')`` unless both runs asked the same questions the same way
    (and, unless ``allow_engine_difference``, generated with the same engine: hf and vllm differ on a few)."""
    problems = []
    if before.settings.engine != after.settings.engine and not allow_engine_difference:
        problems.append(f"engine: {before.settings.engine!r} before, {after.settings.engine!r} after "
                        "(compare(..., allow_engine_difference=True) to compare them anyway)")
    if not same_weights(before.settings.model_id, after.settings.model_id):  # a mirror of the same weights is fine
        problems.append(f"base model: {before.settings.model_id!r} before, {after.settings.model_id!r} after")
    for name in EvalSettings.COMPARED:
        a, b = getattr(before.settings, name), getattr(after.settings, name)
        if a != b:
            problems.append(f"{name}: {a!r} before, {b!r} after")
    ids_before = [r["id"] for r in before.records]
    ids_after = [r["id"] for r in after.records]
    if ids_before != ids_after:
        problems.append(f"question subset: {len(set(ids_before) ^ set(ids_after))} ids differ")
    if problems:
        raise CourseError("results_mismatch", "; ".join(problems), differences="; ".join(problems),
                          path="the saved before results")


def check_same_model(before: EvalRun, model_id: str) -> None:
    """Before a model is loaded: ``CourseError('results_mismatch')`` unless it has the before run's weights."""
    if not same_weights(before.settings.model_id, model_id):
        detail = f"base model: {before.settings.model_id!r} before, {model_id!r} now"
        raise CourseError("results_mismatch", detail, differences=detail, path="the saved before results")


def compare(before: EvalRun, after: EvalRun, allow_engine_difference: bool = False
            ) -> tuple[PairedResult, list[dict], list[dict]]:
    """The paired test on strict correctness and the questions that flipped each way (fixed, broken)."""
    check_comparable(before, after, allow_engine_difference)
    paired = paired_comparison(
        [r["strict_correct"] for r in before.records], [r["strict_correct"] for r in after.records]
    )
    fixed, broken = [], []
    for b, a in zip(before.records, after.records, strict=True):
        pair = {"id": b["id"], "question": b.get("question", ""), "gold": b["gold"], "before": b["output"],
                "after": a["output"], "before_flexible": b["flexible_correct"], "after_flexible": a["flexible_correct"]}
        if a["strict_correct"] and not b["strict_correct"]:
            fixed.append(pair)
        elif b["strict_correct"] and not a["strict_correct"]:
            broken.append(pair)
    return paired, fixed, broken
