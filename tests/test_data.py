"""Tests for llmcourse.data: the offline data/, subsets, schema checks and their error messages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llmcourse import data
from llmcourse.data import (
    DATA_DIR,
    check_row,
    check_rows,
    extract_gold,
    fixed_subset,
    load_split,
    solution_text,
)
from llmcourse.troubleshooting import CourseError

GOOD = {"question": "Tom has 2 apples and buys 3 more. How many?", "answer": "2+3 = <<2+3=5>>5\n#### 5"}


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def local_test_rows() -> list[dict]:
    return load_split("local", "test")


# --- the project's data/ ----------------------------------------------------------------


def test_local_test_split_has_ids_and_schema(local_test_rows: list[dict]) -> None:
    assert len(local_test_rows) == 200
    for row in local_test_rows:
        assert set(row) == {"id", "question", "answer"}
        assert row["question"].strip()
        extract_gold(row["answer"])  # every answer has a numeric '#### N' line
    ids = [row["id"] for row in local_test_rows]
    assert len(set(ids)) == len(ids)
    assert ids[0] == "test-00000"
    assert all(re.fullmatch(r"test-\d{5}", i) for i in ids)


def test_local_rows_match_the_file(local_test_rows: list[dict]) -> None:
    first = json.loads((DATA_DIR / "test.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert local_test_rows[0] == {"id": first["id"], "question": first["question"], "answer": first["answer"]}


def test_local_train_split_is_disjoint_from_test(local_test_rows: list[dict]) -> None:
    train = load_split("local", "train")
    assert len(train) > len(local_test_rows)
    assert all(row["id"].startswith("train-") for row in train)
    assert not {r["question"] for r in train} & {r["question"] for r in local_test_rows}


def test_unknown_split_raises() -> None:
    with pytest.raises(ValueError, match="validation"):
        load_split("local", "validation")


def test_missing_local_file_says_how_to_regenerate(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make_dataset.py"):
        load_split("local", "test", data_dir=tmp_path)


def test_rows_without_id_get_one_from_their_position(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [json.dumps(GOOD), json.dumps({**GOOD, "id": "mine"})])
    rows = load_split("local", "train", data_dir=tmp_path)
    assert [r["id"] for r in rows] == ["train-00000", "mine"]


# --- fixed_subset -------------------------------------------------------------------------


def test_fixed_subset_is_deterministic(local_test_rows: list[dict]) -> None:
    a = fixed_subset(local_test_rows, 20, seed=0)
    b = fixed_subset(local_test_rows, 20, seed=0)
    assert len(a) == 20
    assert [r["id"] for r in a] == [r["id"] for r in b]


def test_fixed_subset_depends_on_seed(local_test_rows: list[dict]) -> None:
    a = fixed_subset(local_test_rows, 20, seed=0)
    b = fixed_subset(local_test_rows, 20, seed=1)
    assert [r["id"] for r in a] != [r["id"] for r in b]


def test_fixed_subset_keeps_file_order_and_has_no_duplicates(local_test_rows: list[dict]) -> None:
    ids = [r["id"] for r in fixed_subset(local_test_rows, 50, seed=3)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 50
    assert set(ids) <= {r["id"] for r in local_test_rows}


def test_fixed_subset_is_not_just_the_first_rows(local_test_rows: list[dict]) -> None:
    assert fixed_subset(local_test_rows, 10, seed=0) != local_test_rows[:10]


@pytest.mark.parametrize("size", [200, 201, 10_000])
def test_fixed_subset_size_at_least_len_returns_all(local_test_rows: list[dict], size: int) -> None:
    subset = fixed_subset(local_test_rows, size, seed=5)
    assert subset == local_test_rows
    assert subset is not local_test_rows  # a copy: the caller may change it


# --- solution_text ------------------------------------------------------------------------


def test_solution_text_removes_calculator_notes_and_keeps_answer() -> None:
    answer = "She has 48/2 = <<48/2=24>>24 clips.\nIn all 48+24 = <<48+24=72>>72 clips.\n#### 72"
    text = solution_text(answer)
    assert text == "She has 48/2 = 24 clips.\nIn all 48+24 = 72 clips.\n#### 72"
    assert "<<" not in text and ">>" not in text
    assert text.splitlines()[-1] == "#### 72"


def test_solution_text_on_real_rows(local_test_rows: list[dict]) -> None:
    for row in local_test_rows[:20]:
        text = solution_text(row["answer"])
        assert "<<" not in text
        assert extract_gold(text) == extract_gold(row["answer"])


def test_solution_text_strips_surrounding_whitespace() -> None:
    assert solution_text("  1+1 = <<1+1=2>>2\n#### 2\n\n") == "1+1 = 2\n#### 2"


# --- check_row / check_rows ---------------------------------------------------------------


def test_check_row_returns_a_good_row() -> None:
    assert check_row(GOOD, "x row 0") is GOOD


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"answer": GOOD["answer"]}, "question"),
        ({"question": "   ", "answer": GOOD["answer"]}, "question"),
        ({"question": GOOD["question"], "answer": ""}, "answer"),
        ({"question": GOOD["question"]}, "answer"),
        ({"question": GOOD["question"], "answer": 5}, "answer"),
        ({"question": GOOD["question"], "answer": "the answer is 5"}, "answer"),
        ({"question": GOOD["question"], "answer": "so\n#### five"}, "answer"),
        (["not", "a", "dict"], "row"),
    ],
)
def test_check_row_rejects_broken_rows(row: object, field: str) -> None:
    with pytest.raises(CourseError) as info:
        check_row(row, "data/train.jsonl row 7")
    err = info.value
    assert err.key == "bad_dataset_row"
    assert err.values["field"] == field
    assert "row 7" in str(err)
    if field != "row":
        assert repr(field) in err.detail


def test_check_rows_names_the_row_number() -> None:
    rows = [GOOD, GOOD, {"question": "", "answer": GOOD["answer"]}]
    with pytest.raises(CourseError) as info:
        check_rows(rows, "mydata")
    assert "mydata row 3" in info.value.detail  # numbered from 1, as an editor shows
    assert "'question'" in info.value.detail


# --- load_split on broken files ------------------------------------------------------------


def test_a_line_that_is_not_json_is_named_by_its_line(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [json.dumps(GOOD), '{"question": "cut short', json.dumps(GOOD)])
    with pytest.raises(CourseError) as info:
        load_split("local", "train", data_dir=tmp_path)
    err = info.value
    assert err.key == "bad_dataset_row"
    assert err.values["field"] == "(whole line)"
    assert "train.jsonl line 2" in str(err)


def test_blank_lines_do_not_shift_line_numbers(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "test.jsonl", [json.dumps(GOOD), "", "{bad"])
    with pytest.raises(CourseError, match="test.jsonl line 3"):
        load_split("local", "test", data_dir=tmp_path)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"answer": "#### 3"}, "question"),
        ({"question": "How many?", "answer": ""}, "answer"),
        ({"question": "How many?", "answer": "Three."}, "answer"),
    ],
)
def test_load_split_rejects_a_broken_row(tmp_path: Path, bad: dict, field: str) -> None:
    write_jsonl(tmp_path / "test.jsonl", [json.dumps(GOOD), json.dumps(bad)])
    with pytest.raises(CourseError) as info:
        load_split("local", "test", data_dir=tmp_path)
    err = info.value
    assert err.key == "bad_dataset_row"
    assert err.values["field"] == field
    assert "data/test.jsonl line 2" in err.detail  # the file's line number
    assert repr(field) in err.detail


# --- the Hub --------------------------------------------------------------------------------


def test_hub_failure_becomes_hub_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(CourseError) as info:
        load_split(data.HUB_DATASET, "test")
    err = info.value
    assert err.key == "hub_unreachable"
    assert "openai/gsm8k" in err.detail
    assert "Couldn't reach" in err.detail
    assert isinstance(err.__cause__, ConnectionError)


def test_hub_rows_are_checked_and_get_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    calls = []

    def fake_load(name, config=None, split=None, revision=None):
        calls.append((name, config, split, revision))
        return [GOOD, {"question": "What is 3+4?", "answer": "#### 7"}]

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    rows = load_split(data.HUB_DATASET, "train")
    # GSM8K's 'main' configuration, at the pinned revision
    assert calls == [("openai/gsm8k", "main", "train", data.HUB_REVISION)]
    assert re.fullmatch("[0-9a-f]{40}", data.HUB_REVISION)
    assert [r["id"] for r in rows] == ["train-00000", "train-00001"]
    assert rows[0]["question"] == GOOD["question"]


def test_hub_rows_with_a_broken_row_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: [GOOD, {"question": "Q", "answer": "x"}])
    with pytest.raises(CourseError) as info:
        load_split("someone/else", "test")
    assert info.value.key == "bad_dataset_row"
    assert "someone/else test row 2" in info.value.detail


def test_local_broken_row_is_named_by_its_file_line(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "test.jsonl", [json.dumps(GOOD), json.dumps({"question": "Q?", "answer": "no number"})])
    with pytest.raises(CourseError) as info:
        load_split("local", "test", data_dir=tmp_path)
    assert "line 2" in info.value.detail


def test_bad_row_explanation_is_filled() -> None:
    with pytest.raises(CourseError) as info:
        check_row({"question": "Q?", "answer": "no number"}, "data/test.jsonl line 4", number=4,
                  source="data/test.jsonl")
    assert "?" not in info.value.cause
    assert "4" in info.value.cause and "data/test.jsonl" in info.value.cause


def test_dataset_name_says_which_data_a_chart_shows():
    from llmcourse.data import HUB_DATASET, dataset_name

    assert dataset_name(HUB_DATASET) == "GSM8K"
    assert "GSM8K" not in dataset_name("local") and "data/" in dataset_name("local")
