"""The task (another dataset with numeric answers changes this module only): GSM8K's rows from the Hub (pinned
revision) or ``data/``, checked against its schema; the answer format; the grader (notebook 02 writes it out).
Grading uses lm-evaluation-harness 0.4.x's gsm8k regexes (strict-match: the first ``#### N``; flexible-extract:
the last number) but compares numbers: ``5.0``, ``$1,234.00.`` and a unicode minus count as the numbers they
are. tests/test_lm_eval_agreement.py lists where the verdicts differ."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from llmcourse.troubleshooting import CourseError

_INSTALLED = Path(__file__).resolve().with_name("course_data")  # pip install: pyproject.toml ships data/ there
DATA_DIR = _INSTALLED if _INSTALLED.is_dir() else Path(__file__).resolve().parents[1] / "data"  # a checkout
HUB_DATASET = "openai/gsm8k"
# The Hub dataset's commit, so that a row id means the same question in every run. Taken from public
# references (inspect_evals 0.20.0 pins it; Hub cache paths show it), not read from the Hub here.
HUB_REVISION = "cc7b047b6e5bb11b4f1af84efc572db110a51b3c"  # pragma: allowlist secret (a commit sha)
# Rows in each split, so a knob can be checked before any download.
HUB_SPLIT_ROWS = {HUB_DATASET: {"train": 7473, "test": 1319}}
# The answer format: the chat format asks for it in words; the plain format teaches it by example.
ANSWER_FORMAT_INSTRUCTION = ("Solve the math problem step by step. Put each step on its own line and end with a last "
                             "line of the form '#### <number>'.")

# Verbatim from lm_eval/tasks/gsm8k/gsm8k.yaml; the patterns we run also accept a unicode minus.
LM_EVAL_STRICT_PATTERN = r"#### (\-?[0-9\.\,]+)"
LM_EVAL_FLEXIBLE_PATTERN = r"(-?[$0-9.,]{2,})|(-?[0-9]+)"
_MINUS = "\\-\u2212\ufe63\uff0d"  # in free text only real minus signs: "the answer—18" is punctuation
_STRICT_RE = re.compile(rf"#### ([{_MINUS}]?[0-9.,]+)")
_FLEXIBLE_RE = re.compile(rf"([{_MINUS}]?[$0-9.,]{{2,}})|([{_MINUS}]?[0-9]+)")
# In an isolated number any dash before the digits is a sign; [0-9], not \d (no other scripts' digits).
_DASHES = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d", "-"))
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def normalize_number(text: str) -> str | None:
    """Canonical number string, or None: ``" $1,234.50. "`` -> ``"1234.5"``, ``"−7"`` -> ``"-7"``, ``"5.0"`` -> ``"5"``."""
    cleaned = "".join(text.split()).translate(_DASHES).replace("$", "").replace(",", "").rstrip(".")
    if not _NUMBER_RE.fullmatch(cleaned):
        return None
    value = Decimal(cleaned)
    return str(int(value)) if value == value.to_integral_value() else format(value, "f").rstrip("0")


def to_number(text: str | None) -> Decimal | None:
    normalized = None if text is None else normalize_number(text)
    return None if normalized is None else Decimal(normalized)


def extract_strict(output: str) -> str | None:
    """The number on the first ``#### N`` (one space, then the number), normalised, or None."""
    match = _STRICT_RE.search(output)
    return None if match is None else normalize_number(match.group(1))


def extract_flexible(output: str) -> str | None:
    """The last match of lm-eval's flexible regex that is a number, normalised, or None."""
    for match in reversed(_FLEXIBLE_RE.findall(output)):
        if (normalized := normalize_number(match[0] or match[1])) is not None:
            return normalized
    return None


def extract_gold(answer: str) -> str:
    """The normalised number of a GSM8K answer's last ``#### N`` line; ValueError when there is none."""
    lines = re.findall(r"^####(.*)$", answer, re.MULTILINE)
    if not lines:
        raise ValueError(f"GSM8K answer has no '#### N' line: {answer[-200:]!r}")
    if (normalized := normalize_number(lines[-1].strip())) is None:
        raise ValueError(f"GSM8K answer's '####' line is not a number: {lines[-1].strip()!r}")
    return normalized


def answers_match(predicted: str | None, gold: str) -> bool:
    """Equal as numbers; ValueError when ``gold`` is not a number (a data bug, not a wrong answer)."""
    if (gold_value := to_number(gold)) is None:
        raise ValueError(f"gold answer is not a number: {gold!r}")
    return to_number(predicted) == gold_value


@dataclass(frozen=True)
class Grade:
    strict: str | None
    flexible: str | None
    gold: str
    strict_correct: bool
    flexible_correct: bool
    format_ok: bool  # a "#### N" answer is present


def grade(output: str, gold_answer: str) -> Grade:
    """Grade one generation against a GSM8K answer field or a bare gold number."""
    gold = normalize_number(gold_answer) or extract_gold(gold_answer)
    strict, flexible = extract_strict(output), extract_flexible(output)
    return Grade(strict, flexible, gold, answers_match(strict, gold), answers_match(flexible, gold), strict is not None)


def solution_text(answer: str) -> str:
    """The worked solution a model is trained on: GSM8K's calculator notes removed (``48/2 = <<48/2=24>>24``)."""
    return re.sub(r"<<[^<>]*>>", "", answer).strip()


def check_row(row: object, where: str, number: int | str = "?", source: str = "the dataset") -> dict:
    """The row if it follows GSM8K's schema, else ``CourseError('bad_dataset_row')``."""

    def bad(field: str, reason: str) -> CourseError:
        return CourseError("bad_dataset_row", f"{where}: field {field!r}: {reason}", row=number, source=source,
                           field=field, reason=reason)

    if not isinstance(row, dict):
        raise bad("row", "expected an object with 'question' and 'answer'")
    for field in ("question", "answer"):
        if not isinstance(row.get(field), str) or not row[field].strip():
            raise bad(field, "missing or empty")
    try:
        extract_gold(row["answer"])
    except ValueError as err:
        raise bad("answer", str(err)) from err
    return row


def check_rows(rows: list, source: str, numbers: list[int] | None = None, unit: str = "row") -> list[dict]:
    """Every row checked, numbered from 1 or by ``numbers`` (a file's lines)."""
    return [check_row(row, f"{source} {unit} {number}", number, source)
            for number, row in zip(numbers or range(1, len(rows) + 1), rows, strict=True)]


def _json_line(path: Path, number: int, line: str) -> object:
    try:
        return json.loads(line)
    except json.JSONDecodeError as err:
        raise CourseError("bad_dataset_row", f"{path.name} line {number}: not valid JSON ({err.msg})", row=number,
                          source=path.name, field="(whole line)", reason=f"not valid JSON ({err.msg})") from err


def load_split(dataset: str, split: str, data_dir: Path = DATA_DIR) -> list[dict]:
    """Checked rows of ``split`` ("train"/"test") with an ``id`` each; ``dataset`` is "local" or a Hub id."""
    if split not in ("train", "test"):
        raise ValueError(f"Unknown split {split!r}: use 'train' or 'test'.")
    if dataset == "local":
        path = Path(data_dir) / f"{split}.jsonl"
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist. Regenerate the data with: python data/make_dataset.py")
        lines = [(n, line) for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if line.strip()]
        rows = check_rows([_json_line(path, n, line) for n, line in lines], f"data/{split}.jsonl",
                          [n for n, _ in lines], "line")
    else:
        rows = check_rows(_load_hub(dataset, split), f"{dataset} {split}")
    return [{"id": row.get("id") or f"{split}-{index:05d}", "question": row["question"], "answer": row["answer"]}
            for index, row in enumerate(rows)]


def _load_hub(dataset: str, split: str) -> list[dict]:
    from datasets import load_dataset

    gsm8k = dataset == HUB_DATASET  # its "main" config at the pinned revision
    try:
        return [dict(row) for row in load_dataset(dataset, "main" if gsm8k else None, split=split,
                                                  revision=HUB_REVISION if gsm8k else None)]
    except Exception as err:  # datasets wraps network failures in several types
        raise CourseError("hub_unreachable", f"could not load the dataset {dataset!r}: {err}") from err


def split_size(dataset: str, split: str, data_dir: Path = DATA_DIR) -> int | None:
    """Rows in a split without loading it (None when unknown): counted in ``data/``, known for GSM8K."""
    if dataset != "local":
        return HUB_SPLIT_ROWS.get(dataset, {}).get(split)
    path = Path(data_dir) / f"{split}.jsonl"
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip()) if path.exists() else None


def dataset_name(dataset: str) -> str:
    """The name on a chart or in a table."""
    if dataset == "local":
        return "the course's own word problems (data/)"
    return "GSM8K" if dataset == HUB_DATASET else dataset


def fixed_subset(rows: list[dict], size: int, seed: int) -> list[dict]:
    """The same ``size`` rows for the same ``seed``, in file order (the before and after subset)."""
    if size >= len(rows):
        return list(rows)
    return [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), size))]
