"""Tests for the project's own dataset: data/make_dataset.py and data/{train,test}.jsonl.

Offline and fast: the generator is stdlib-only and makes 1,400 rows in well under a second.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import sys
from collections import Counter
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SCRIPT = DATA / "make_dataset.py"

ANNOTATION = re.compile(r"<<([^<>=]+)=([^<>]+)>>(\d+)")
FINAL_LINE = re.compile(r"^#### (\d+)$")
KEYS = {"id": str, "question": str, "answer": str, "shape": str, "steps": int, "distractor": bool}


def load_generator() -> ModuleType:
    """Import data/make_dataset.py by path (data/ is not a package)."""
    spec = importlib.util.spec_from_file_location("make_dataset", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def safe_eval(expr: str) -> Fraction:
    """Evaluate + - * / and parentheses over integers, exactly; reject anything else."""
    ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
           ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return Fraction(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError(f"not plain arithmetic: {expr!r}")

    return walk(ast.parse(expr, mode="eval").body)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return load_generator()


@pytest.fixture(scope="module")
def files() -> dict[str, list[dict]]:
    return {split: read_jsonl(DATA / f"{split}.jsonl") for split in ("train", "test")}


def all_rows(files: dict[str, list[dict]]) -> list[dict]:
    return files["train"] + files["test"]


def test_generation_is_deterministic(gen: ModuleType) -> None:
    first = gen.generate(200, 50, seed=7)
    second = gen.generate(200, 50, seed=7)
    assert first == second
    assert gen.render(first["train"]) == gen.render(second["train"])
    assert gen.generate(200, 50, seed=8) != first


def test_committed_files_equal_a_fresh_generation(gen: ModuleType) -> None:
    fresh = gen.generate()  # the defaults used to write the committed files
    for split, rows in fresh.items():
        assert (DATA / f"{split}.jsonl").read_bytes() == gen.render(rows).encode("utf-8"), split


def test_check_mode_detects_stale_files(gen: ModuleType, tmp_path: Path) -> None:
    args = ["--out-dir", str(tmp_path), "--n-train", "40", "--n-test", "10", "--seed", "3"]
    assert gen.main(args) == 0
    assert len(read_jsonl(tmp_path / "train.jsonl")) == 40
    assert gen.main(args + ["--check"]) == 0
    with (tmp_path / "test.jsonl").open("a", encoding="utf-8") as f:
        f.write("{}\n")
    assert gen.main(args + ["--check"]) == 1


def test_sizes(files: dict[str, list[dict]]) -> None:
    assert len(files["train"]) == 1200
    assert len(files["test"]) == 200


def test_schema(files: dict[str, list[dict]]) -> None:
    for split, rows in files.items():
        for i, row in enumerate(rows):
            assert set(row) == set(KEYS), row
            for key, kind in KEYS.items():
                assert type(row[key]) is kind, (key, row)
            assert row["id"] == f"{split}-{i:05d}"
            assert row["question"].endswith("?")
            lines = row["answer"].split("\n")
            assert FINAL_LINE.match(lines[-1]), row["answer"]
            assert "," not in lines[-1]
            assert len(lines) - 1 == row["steps"]


def test_every_annotation_is_correct(files: dict[str, list[dict]]) -> None:
    checked = 0
    for row in all_rows(files):
        *work, final = row["answer"].split("\n")
        values = []
        for line in work:
            found = ANNOTATION.findall(line)
            assert len(found) == 1, line  # one calculation per line
            expr, claimed, shown = found[0]
            value = safe_eval(expr)
            assert value == Fraction(claimed) == Fraction(shown), line
            assert value.denominator == 1 and 0 < value < 1000, line  # whole, positive, small
            assert f"{expr} = " in line  # written out before the annotation, GSM8K style
            values.append(int(value))
            checked += 1
        answer = int(FINAL_LINE.match(final).group(1))
        assert answer == values[-1], row["answer"]
    assert checked > 3000


def test_answers_are_positive_integers_below_1000(files: dict[str, list[dict]]) -> None:
    for row in all_rows(files):
        answer = int(row["answer"].rsplit("#### ", 1)[1])
        assert 0 < answer < 1000


def test_no_question_is_shared_or_repeated(files: dict[str, list[dict]]) -> None:
    train = [r["question"] for r in files["train"]]
    test = [r["question"] for r in files["test"]]
    assert len(set(train)) == len(train)
    assert len(set(test)) == len(test)
    assert not set(train) & set(test)


def test_shape_and_step_mix(files: dict[str, list[dict]]) -> None:
    shapes = Counter(r["shape"] for r in files["train"])
    assert len(shapes) >= 20
    assert min(shapes.values()) >= 20  # every shape is well represented
    assert set(shapes) == {r["shape"] for r in files["test"]}
    for split, rows in files.items():
        steps = Counter(r["steps"] for r in rows)
        assert set(steps) == {1, 2, 3, 4}, split
        assert (steps[2] + steps[3]) / len(rows) > 0.5, split  # most problems take 2-3 steps


def test_irrelevant_detail_share(files: dict[str, list[dict]]) -> None:
    for split, rows in files.items():
        share = sum(r["distractor"] for r in rows) / len(rows)
        assert 0.15 <= share <= 0.40, (split, share)


def test_wording_varies(files: dict[str, list[dict]]) -> None:
    """Each shape shows at least two phrasings and many different names."""
    by_shape: dict[str, set[str]] = {}
    for row in files["train"]:
        # the question with names and numbers masked is the phrasing
        masked = re.sub(r"\d+", "N", re.sub(r"\b[A-Z][a-z]+\b", "W", row["question"]))
        by_shape.setdefault(row["shape"], set()).add(masked)
    for shape, phrasings in by_shape.items():
        assert len(phrasings) >= 2, shape
    first_words = {row["question"].split()[0].strip("',") for row in files["train"]}
    assert len(first_words) >= 40
