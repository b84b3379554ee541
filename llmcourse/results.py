"""Result files: a JSON summary with the settings that made it, and one JSON line per question, written whole or
not at all under a time-stamped name (a new run never overwrites one); a malformed file gives a ``CourseError``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from llmcourse.evaluation import EvalRun, EvalSettings, library_versions
from llmcourse.profiles import same_weights
from llmcourse.stats import PairedResult, paired_comparison
from llmcourse.troubleshooting import CourseError

SUMMARY_KEYS = ("settings", "summary", "subset_ids", "versions", "per_question_file")
RECORD_KEYS = ("id", "output", "gold", "strict_correct", "flexible_correct", "stop_reason")
MADE_BY = {"before": "notebook 02 (02_dataset_and_baseline)", "after": "notebook 04 (04_evaluate_and_compare)"}


@contextmanager
def write_whole(path: Path) -> Iterator[Path]:
    """``with write_whole(path) as partial:`` write a file or folder at ``partial``; it takes the name ``path`` when
    the block ends, so readers only ever see the earlier ``path`` or the complete new one (on an error: the old)."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")

    def remove() -> None:
        shutil.rmtree(partial) if partial.is_dir() else partial.unlink(missing_ok=True)

    remove()
    try:
        yield partial
        if path.is_dir() and partial.is_dir():
            shutil.rmtree(path)  # os.replace does not replace a folder that has files
        os.replace(partial, path)
    except BaseException:
        remove()
        raise


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` whole or not at all (:func:`write_whole`), flushed to disk before the rename."""
    with write_whole(path) as partial, partial.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(path)


def save_run(run: EvalRun, results_dir: Path) -> Path:
    """Write ``<label>_<time>.jsonl`` then ``<label>_<time>.json`` (the summary, returned); a failure leaves neither."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{run.settings.label}_{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    base, suffix = results_dir / stem, 1
    while base.with_suffix(".json").exists():  # two runs in the same second: keep both
        suffix += 1
        base = results_dir / f"{stem}-{suffix}"
    jsonl = write_text_atomic(base.with_suffix(".jsonl"),
                              "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in run.records))
    summary = {"settings": dataclasses.asdict(run.settings), "summary": run.summary,
               "subset_ids": [r["id"] for r in run.records], "versions": library_versions(),
               "per_question_file": jsonl.name}
    try:
        return write_text_atomic(base.with_suffix(".json"), json.dumps(summary, indent=2, ensure_ascii=False))
    except BaseException:
        jsonl.unlink(missing_ok=True)
        raise


def _absent(data, keys: tuple[str, ...]) -> list[str]:
    return [k for k in keys if not isinstance(data, dict) or k not in data]


def load_run(path: Path) -> EvalRun:
    """Read a run back, checking that it is complete; a broken file raises ``CourseError('malformed_results')``."""
    path = Path(path)

    def broken(detail: str, where: Path = path) -> CourseError:
        return CourseError("malformed_results", detail, path=where)

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise broken(f"{path}: {err}") from err
    if absent := _absent(data, SUMMARY_KEYS):
        raise broken(f"{path}: missing {', '.join(absent)}")
    known = {f.name for f in dataclasses.fields(EvalSettings)}
    try:
        settings = EvalSettings(**{k: v for k, v in data["settings"].items() if k in known})
    except (AttributeError, TypeError) as err:  # not an object, or a field missing
        raise broken(f"{path}: settings incomplete ({err})") from err
    jsonl = path.with_name(data["per_question_file"])
    try:
        lines = jsonl.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise broken(f"{jsonl}: {err}", jsonl) from err
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise broken(f"{jsonl.name} line {number}: {err.msg}", jsonl) from err
        if absent := _absent(records[-1], RECORD_KEYS):
            raise broken(f"{jsonl.name} line {number}: missing {', '.join(absent)}", jsonl)
    if [r["id"] for r in records] != data["subset_ids"]:
        raise broken(f"{jsonl.name} does not match the ids in {path.name}")
    return EvalRun(settings, data["summary"], records)


def list_runs(results_dir: Path, label: str) -> list[Path]:
    """Summaries with this label, oldest first (by time stamp, then by the same-second suffix)."""
    pattern = re.compile(rf"{re.escape(label)}_(\d{{8}}-\d{{6}})(?:-(\d+))?")
    found = [(p, pattern.fullmatch(p.stem)) for p in Path(results_dir).glob(f"{label}_*.json")]
    return [p for p, m in sorted((x for x in found if x[1]),
                                 key=lambda x: (x[0].stat().st_mtime, x[1].group(1), int(x[1].group(2) or 1)))]


def load_latest(results_dir: Path, label: str) -> EvalRun:
    """The newest run with this label; a clear message naming the notebook that makes it if none."""
    runs = list_runs(results_dir, label)
    if not runs:
        raise CourseError("missing_results", f"no '{label}' results in {results_dir}", label=label,
                          notebook=MADE_BY.get(label, "an earlier notebook"), path=results_dir)
    return load_run(runs[-1])


def _mismatch(problems: list[str]) -> CourseError:
    return CourseError("results_mismatch", "; ".join(problems), differences="; ".join(problems),
                       path="the saved before results")


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
    ids_before, ids_after = [r["id"] for r in before.records], [r["id"] for r in after.records]
    if ids_before != ids_after:
        problems.append(f"question subset: {len(set(ids_before) ^ set(ids_after))} ids differ")
    if problems:
        raise _mismatch(problems)


def check_same_model(before: EvalRun, model_id: str) -> None:
    """Before a model is loaded: ``CourseError('results_mismatch')`` unless it has the before run's weights."""
    if not same_weights(before.settings.model_id, model_id):
        raise _mismatch([f"base model: {before.settings.model_id!r} before, {model_id!r} now"])


def compare(before: EvalRun, after: EvalRun, allow_engine_difference: bool = False
            ) -> tuple[PairedResult, list[dict], list[dict]]:
    """The paired test on strict correctness and the questions that flipped each way (fixed, broken)."""
    check_comparable(before, after, allow_engine_difference)
    paired = paired_comparison(*([r["strict_correct"] for r in run.records] for run in (before, after)))
    fixed, broken = [], []
    for b, a in zip(before.records, after.records, strict=True):
        if a["strict_correct"] != b["strict_correct"]:
            (fixed if a["strict_correct"] else broken).append(
                {"id": b["id"], "question": b.get("question", ""), "gold": b["gold"], "before": b["output"],
                 "after": a["output"], "before_flexible": b["flexible_correct"],
                 "after_flexible": a["flexible_correct"]})
    return paired, fixed, broken
