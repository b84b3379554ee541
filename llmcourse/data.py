"""Loading the reasoning dataset: GSM8K from the Hub, or the project's own ``data/`` offline.

Every row is checked against GSM8K's schema (``question``, ``answer`` ending in ``#### N``); a broken
row is reported with its row number and field, never silently used.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from llmcourse.grading import extract_gold, strip_calculator_notes
from llmcourse.troubleshooting import CourseError

_INSTALLED = Path(__file__).resolve().with_name("course_data")  # pip install: pyproject.toml ships data/ there
DATA_DIR = _INSTALLED if _INSTALLED.is_dir() else Path(__file__).resolve().parents[1] / "data"  # a checkout
HUB_DATASET = "openai/gsm8k"
REQUIRED_FIELDS = ("question", "answer")
# Rows in each split of the Hub's GSM8K (config "main"), so a knob can be checked before any download.
HUB_SPLIT_ROWS = {HUB_DATASET: {"train": 7473, "test": 1319}}


def check_row(row: object, where: str, number: int | str = "?", source: str = "the dataset") -> dict:
    """Return the row if it follows GSM8K's schema, else raise ``CourseError('bad_dataset_row')``."""

    def bad(field: str, reason: str) -> CourseError:
        return CourseError("bad_dataset_row", f"{where}: field {field!r}: {reason}", row=number, source=source,
                           field=field, reason=reason)

    if not isinstance(row, dict):
        raise bad("row", "expected an object with 'question' and 'answer'")
    for field in REQUIRED_FIELDS:
        value = row.get(field)
        if not isinstance(value, str) or not value.strip():
            raise bad(field, "missing or empty")
    try:
        extract_gold(row["answer"])
    except ValueError as err:
        raise bad("answer", str(err)) from err
    return row


def check_rows(rows: list, source: str, skip_bad: bool = False, numbers: list[int] | None = None,
               unit: str = "row") -> list[dict]:
    """Check every row; with ``skip_bad`` the broken ones are left out and reported, not fatal.

    Rows are numbered from 1, or by ``numbers`` (the file's line numbers for a JSON-lines file), so the
    number in a message is the one an editor shows.
    """
    good, skipped = [], []
    numbers = numbers or list(range(1, len(rows) + 1))
    for number, row in zip(numbers, rows, strict=True):
        try:
            good.append(check_row(row, f"{source} {unit} {number}", number=number, source=source))
        except CourseError as err:
            if not skip_bad:
                raise
            skipped.append(err.detail)
    for detail in skipped:
        print(f"skipped a broken row: {detail}")
    return good


def read_jsonl(path: Path, skip_bad: bool = False) -> list[dict]:
    """Read a JSON-lines file; a line that is not JSON is reported with its line number."""
    return _read_jsonl_numbered(path, skip_bad)[0]


def _read_jsonl_numbered(path: Path, skip_bad: bool = False) -> tuple[list[dict], list[int]]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist. Regenerate the data with: python data/make_dataset.py")
    rows, numbers = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
            numbers.append(number)
        except json.JSONDecodeError as err:
            detail = f"{path.name} line {number}: not valid JSON ({err.msg})"
            if not skip_bad:
                raise CourseError("bad_dataset_row", detail, row=number, source=path.name, field="(whole line)",
                                  reason=f"not valid JSON ({err.msg})") from err
            print(f"skipped a broken row: {detail}")
    return rows, numbers


def load_split(dataset: str, split: str, data_dir: Path = DATA_DIR, skip_bad: bool = False) -> list[dict]:
    """Rows of ``split`` ("train" or "test") with an ``id`` each: from ``data/`` or from the Hub.

    ``dataset`` is ``"local"`` for the project's own data, or a Hub id such as ``"openai/gsm8k"``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"Unknown split {split!r}: use 'train' or 'test'.")
    if dataset == "local":
        rows, numbers = _read_jsonl_numbered(Path(data_dir) / f"{split}.jsonl", skip_bad=skip_bad)
        rows = check_rows(rows, f"data/{split}.jsonl", skip_bad=skip_bad, numbers=numbers, unit="line")
    else:
        rows = check_rows(_load_hub(dataset, split), f"{dataset} {split}", skip_bad=skip_bad)
    return [
        {"id": row.get("id") or f"{split}-{index:05d}", "question": row["question"], "answer": row["answer"]}
        for index, row in enumerate(rows)
    ]


def split_size(dataset: str, split: str, data_dir: Path = DATA_DIR) -> int | None:
    """Rows in a split without loading it (None when unknown): counted in ``data/``, known for GSM8K."""
    if dataset == "local":
        path = Path(data_dir) / f"{split}.jsonl"
        if not path.exists():
            return None
        with path.open(encoding="utf-8") as handle:
            return sum(1 for line in handle if line.strip())
    return HUB_SPLIT_ROWS.get(dataset, {}).get(split)


def _load_hub(dataset: str, split: str) -> list[dict]:
    from datasets import load_dataset

    try:
        loaded = load_dataset(dataset, "main" if dataset == HUB_DATASET else None, split=split)
    except Exception as err:  # datasets wraps network failures in several types
        raise CourseError("hub_unreachable", f"could not load the dataset {dataset!r}: {err}") from err
    return [dict(row) for row in loaded]


def dataset_name(dataset: str) -> str:
    """The name to print on a chart or in a table: "GSM8K", or the course's own data on the cpu track."""
    if dataset == "local":
        return "the course's own word problems (data/)"
    return "GSM8K" if dataset == HUB_DATASET else dataset


def solution_text(answer: str) -> str:
    """The worked solution a model is trained on: GSM8K's ``<<48/2=24>>`` calculator notes removed."""
    return strip_calculator_notes(answer).strip()


def fixed_subset(rows: list[dict], size: int, seed: int) -> list[dict]:
    """The same ``size`` rows for the same ``seed``, every time (the before and after subset)."""
    if size >= len(rows):
        return list(rows)
    indices = random.Random(seed).sample(range(len(rows)), size)
    return [rows[i] for i in sorted(indices)]
