"""Tests for llmcourse.results (save, load, compare) and evaluation.summarize / format_summary."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from pathlib import Path

import pytest

from llmcourse import results
from llmcourse.evaluation import EvalRun, EvalSettings, format_summary, summarize
from llmcourse.results import (
    RECORD_KEYS,
    SUMMARY_KEYS,
    check_comparable,
    compare,
    list_runs,
    load_latest,
    load_run,
    save_run,
)
from llmcourse.stats import mcnemar_exact, wilson_interval
from llmcourse.troubleshooting import CourseError


def make_settings(label: str = "before", **changes) -> EvalSettings:
    settings = EvalSettings(
        label=label,
        model_id="meta-llama/Llama-3.1-8B",
        adapter=None,
        prompt_format="plain",
        dataset="local",
        split="test",
        subset_seed=0,
        subset_size=6,
        max_new_tokens=256,
        batch_size=16,
        profile="t4",
        weight_format="nf4",
        compute_dtype="float16",
        stop_strings=["\nQuestion:"],
    )
    return dataclasses.replace(settings, **changes)


def make_record(
    qid: str,
    strict: bool,
    flexible: bool | None = None,
    stop_reason: str = "end_token",
    new_tokens: int = 10,
    format_ok: bool | None = None,
) -> dict:
    """A record with exactly the keys evaluate() writes."""
    gold = "42"
    return {
        "id": qid,
        "question": f"question {qid}?",
        "prompt": f"Question: question {qid}?\nAnswer:",
        "output": f"... #### {gold if strict else '41'}",
        "gold": gold,
        "strict": gold if strict else "41",
        "flexible": gold if (strict if flexible is None else flexible) else "41",
        "strict_correct": strict,
        "flexible_correct": strict if flexible is None else flexible,
        "format_ok": True if format_ok is None else format_ok,
        "stop_reason": stop_reason,
        "new_tokens": new_tokens,
    }


def make_run(correct: list[bool], label: str = "before", ids: list[str] | None = None, **setting_changes) -> EvalRun:
    ids = ids or [f"test-{i:05d}" for i in range(len(correct))]
    records = [make_record(qid, ok) for qid, ok in zip(ids, correct, strict=True)]
    return EvalRun(make_settings(label, **setting_changes), summarize(records, wall_time_s=2.0), records)


# --- summarize ---------------------------------------------------------------------------------


def test_summarize_counts_intervals_and_shares() -> None:
    records = [
        make_record("a", True, stop_reason="end_token", new_tokens=10),
        make_record("b", True, flexible=True, stop_reason="stop_string", new_tokens=20),
        make_record("c", False, flexible=True, stop_reason="length", new_tokens=30, format_ok=False),
        make_record("d", False, flexible=False, stop_reason="end_token", new_tokens=40),
        make_record("e", True, stop_reason="length", new_tokens=50),
    ]
    s = summarize(records, wall_time_s=10.0)
    assert s["n"] == 5
    assert s["strict_correct"] == 3
    assert s["strict_accuracy"] == pytest.approx(0.6)
    assert s["flexible_correct"] == 4
    assert s["flexible_accuracy"] == pytest.approx(0.8)
    assert s["strict_ci95"] == pytest.approx(list(wilson_interval(3, 5)))
    assert s["flexible_ci95"] == pytest.approx(list(wilson_interval(4, 5)))
    lo, hi = s["strict_ci95"]
    assert lo < 0.6 < hi
    assert s["format_compliance"] == pytest.approx(0.8)
    # "end_token" and "stop_string" both count as stopping by itself; only "length" does not.
    assert s["stopped_share"] == pytest.approx(3 / 5)
    assert s["end_token_share"] == pytest.approx(2 / 5)
    assert s["mean_new_tokens"] == pytest.approx(30.0)
    assert s["wall_time_s"] == 10.0
    assert s["tokens_per_s"] == pytest.approx(15.0)


def test_summarize_wilson_reference_value() -> None:
    # 81/263: Newcombe (1998) Table I, score interval 0.2553 to 0.3662.
    records = [make_record(str(i), i < 81) for i in range(263)]
    lo, hi = summarize(records, 1.0)["strict_ci95"]
    assert lo == pytest.approx(0.2553, abs=5e-5)
    assert hi == pytest.approx(0.3662, abs=5e-5)


def test_summarize_is_json_serialisable() -> None:
    s = summarize([make_record("a", True)], 1.0)
    assert json.loads(json.dumps(s)) == s


def test_summarize_empty_and_zero_time() -> None:
    s = summarize([], wall_time_s=0.0)
    assert s["n"] == 0
    assert s["strict_accuracy"] == 0.0
    assert s["strict_ci95"] == [0.0, 1.0]
    assert s["stopped_share"] == 0.0
    assert s["tokens_per_s"] == 0.0


def test_format_summary_shows_the_numbers() -> None:
    run = make_run([True, True, False, False], label="after", adapter="outputs/t4/adapter")
    text = format_summary(run)
    assert text.splitlines()[0] == "after: meta-llama/Llama-3.1-8B + adapter outputs/t4/adapter"
    assert "50.0%" in text
    assert "2/4" in text
    lo, hi = run.summary["strict_ci95"]
    assert f"{lo:.1%} to {hi:.1%}" in text
    assert "adapter" not in format_summary(make_run([True])).splitlines()[0]


# --- save_run / load_run -----------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    run = make_run([True, False, True])
    path = save_run(run, tmp_path / "results")
    assert path.suffix == ".json"
    assert path.name.startswith("before_")
    jsonl = path.with_suffix(".jsonl")
    assert jsonl.exists()
    assert len(jsonl.read_text(encoding="utf-8").splitlines()) == 3
    summary = json.loads(path.read_text(encoding="utf-8"))
    assert set(summary) == set(SUMMARY_KEYS)
    assert summary["per_question_file"] == jsonl.name
    assert summary["subset_ids"] == ["test-00000", "test-00001", "test-00002"]
    assert "torch" in summary["versions"]
    loaded = load_run(path)
    assert loaded == run
    assert loaded.settings.stop_strings == ["\nQuestion:"]


def test_save_keeps_non_ascii_text(tmp_path: Path) -> None:
    run = make_run([True])
    run.records[0]["output"] = "Zoë pays 5 € … #### 42"
    loaded = load_run(save_run(run, tmp_path))
    assert loaded.records[0]["output"] == "Zoë pays 5 € … #### 42"


def test_two_saves_never_overwrite(tmp_path: Path) -> None:
    first = make_run([False, False])
    second = make_run([True, True])
    p1 = save_run(first, tmp_path)
    p2 = save_run(second, tmp_path)
    assert p1 != p2
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted([p1.name, p2.name])
    assert len(list(tmp_path.glob("*.jsonl"))) == 2
    assert load_run(p1) == first
    assert load_latest(tmp_path, "before") == second
    assert list_runs(tmp_path, "before") == [p1, p2]


def test_load_latest_picks_newest_by_time(tmp_path: Path) -> None:
    old = save_run(make_run([False]), tmp_path)
    new = save_run(make_run([True]), tmp_path)
    os.utime(old, (2_000_000_000, 2_000_000_000))  # the first file is now the newest
    os.utime(new, (1_000_000_000, 1_000_000_000))
    assert load_latest(tmp_path, "before").summary["strict_correct"] == 0


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every save happens in the same second (a fast notebook cell, or two kernels at once)."""

    class FrozenDatetime(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2024, 7, 26, 12, 0, 0, tzinfo=tz)

    monkeypatch.setattr(results.dt, "datetime", FrozenDatetime)


def test_saves_in_the_same_second_get_a_suffix(tmp_path: Path, frozen_clock: None) -> None:
    paths = [save_run(make_run([i % 2 == 0]), tmp_path) for i in range(3)]
    assert [p.name for p in paths] == [
        "before_20240726-120000.json",
        "before_20240726-120000-2.json",
        "before_20240726-120000-3.json",
    ]
    assert len(list(tmp_path.glob("*.jsonl"))) == 3
    assert [load_run(p).summary["strict_correct"] for p in paths] == [1, 0, 1]


def test_load_latest_same_second_same_mtime(tmp_path: Path, frozen_clock: None) -> None:
    first = save_run(make_run([False]), tmp_path)
    second = save_run(make_run([True]), tmp_path)
    for p in (first, second):
        os.utime(p, (1_000_000_000, 1_000_000_000))  # e.g. a file system with 1 s mtimes
    assert load_latest(tmp_path, "before").summary["strict_correct"] == 1


def test_load_latest_ignores_other_labels(tmp_path: Path) -> None:
    before = make_run([True])
    save_run(before, tmp_path)
    save_run(make_run([False], label="after"), tmp_path)
    assert load_latest(tmp_path, "before") == before
    assert load_latest(tmp_path, "after").settings.label == "after"


@pytest.mark.parametrize(("label", "notebook"), [("before", "notebook 02")])
def test_load_latest_empty_dir_names_the_notebook(tmp_path: Path, label: str, notebook: str) -> None:
    with pytest.raises(CourseError) as info:
        load_latest(tmp_path, label)
    err = info.value
    assert err.key == "missing_results"
    assert notebook in str(err)
    assert f"'{label}'" in err.detail
    assert str(tmp_path) in str(err)


def test_load_latest_after_names_notebook_04(tmp_path: Path) -> None:
    with pytest.raises(CourseError) as info:
        load_latest(tmp_path, "after")
    assert info.value.values["notebook"].startswith("notebook 04")


def test_load_latest_after_message_names_notebook_04(tmp_path: Path) -> None:
    with pytest.raises(CourseError) as info:
        load_latest(tmp_path, "after")
    assert "notebook 04" in str(info.value)
    assert "notebook 02" not in str(info.value)


# --- malformed files ---------------------------------------------------------------------------


def saved(tmp_path: Path) -> tuple[Path, Path]:
    path = save_run(make_run([True, False, True]), tmp_path)
    return path, path.with_suffix(".jsonl")


def assert_malformed(path: Path, name: str) -> CourseError:
    with pytest.raises(CourseError) as info:
        load_run(path)
    assert info.value.key == "malformed_results"
    assert name in str(info.value)
    return info.value


def test_summary_not_json(tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    path.write_text(path.read_text(encoding="utf-8")[:40], encoding="utf-8")  # cut short by a disconnect
    assert_malformed(path, path.name)


def test_summary_not_an_object(tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    path.write_text("[1, 2, 3]", encoding="utf-8")
    assert_malformed(path, path.name)


@pytest.mark.parametrize("key", SUMMARY_KEYS)
def test_summary_missing_a_key(tmp_path: Path, key: str) -> None:
    path, _ = saved(tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    del data[key]
    path.write_text(json.dumps(data), encoding="utf-8")
    err = assert_malformed(path, path.name)
    assert key in err.detail


def test_settings_incomplete(tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["settings"]["model_id"]
    path.write_text(json.dumps(data), encoding="utf-8")
    err = assert_malformed(path, path.name)
    assert "settings" in err.detail


def test_settings_with_unknown_extra_field_still_load(tmp_path: Path) -> None:
    # Results saved by a newer course version may carry more settings: they are ignored.
    path, _ = saved(tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["settings"]["temperature"] = 0.0
    path.write_text(json.dumps(data), encoding="utf-8")
    assert load_run(path).settings == make_settings()


def test_records_file_missing(tmp_path: Path) -> None:
    path, jsonl = saved(tmp_path)
    jsonl.unlink()
    assert_malformed(path, jsonl.name)


def test_record_line_not_json(tmp_path: Path) -> None:
    path, jsonl = saved(tmp_path)
    lines = jsonl.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1][:25]
    jsonl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    err = assert_malformed(path, jsonl.name)
    assert "line 2" in err.detail


@pytest.mark.parametrize("key", RECORD_KEYS)
def test_record_missing_a_key(tmp_path: Path, key: str) -> None:
    path, jsonl = saved(tmp_path)
    lines = jsonl.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[2])
    del record[key]
    lines[2] = json.dumps(record)
    jsonl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    err = assert_malformed(path, jsonl.name)
    assert "line 3" in err.detail
    assert key in err.detail


@pytest.mark.parametrize("change", ["drop_last", "reorder", "rename"])
def test_ids_mismatch(tmp_path: Path, change: str) -> None:
    path, jsonl = saved(tmp_path)
    lines = jsonl.read_text(encoding="utf-8").splitlines()
    if change == "drop_last":
        lines = lines[:-1]
    elif change == "reorder":
        lines = [lines[1], lines[0], lines[2]]
    else:
        record = json.loads(lines[0])
        record["id"] = "test-99999"
        lines[0] = json.dumps(record)
    jsonl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    err = assert_malformed(path, path.name)
    assert jsonl.name in err.detail


# --- check_comparable ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "name"),
    [
        ({"subset_seed": 1}, "subset_seed"),
        ({"prompt_format": "chat"}, "prompt_format"),
        ({"max_new_tokens": 128}, "max_new_tokens"),
        ({"dataset": "openai/gsm8k"}, "dataset"),
        ({"split": "train"}, "split"),
        ({"stop_strings": []}, "stop_strings"),
        ({"few_shot_ids": ["train-1", "train-2"]}, "few_shot_ids"),
    ],
)
def test_check_comparable_rejects_other_settings(changes: dict, name: str) -> None:
    before = make_run([True, False])
    after = make_run([True, True], label="after", **changes)
    with pytest.raises(CourseError) as info:
        check_comparable(before, after)
    assert info.value.key == "results_mismatch"
    assert name in info.value.detail


def test_check_comparable_rejects_other_ids() -> None:
    before = make_run([True, False, True])
    after = make_run([True, False, True], label="after", ids=["test-00000", "test-00001", "test-00007"])
    with pytest.raises(CourseError) as info:
        check_comparable(before, after)
    assert info.value.key == "results_mismatch"
    assert "2 ids differ" in info.value.detail


def test_check_comparable_rejects_same_ids_in_other_order() -> None:
    before = make_run([True, False], ids=["a", "b"])
    after = make_run([True, False], label="after", ids=["b", "a"])
    with pytest.raises(CourseError, match="question subset"):
        check_comparable(before, after)


def test_check_comparable_lists_every_difference() -> None:
    before = make_run([True])
    after = make_run([True], label="after", subset_seed=3, max_new_tokens=64)
    with pytest.raises(CourseError) as info:
        check_comparable(before, after)
    assert "subset_seed: 0 before, 3 after" in info.value.detail
    assert "max_new_tokens: 256 before, 64 after" in info.value.detail


def test_check_comparable_allows_other_batch_size_and_adapter() -> None:
    before = make_run([True, False])
    after = make_run([False, True], label="after", batch_size=4, adapter="outputs/adapter", profile="ampere")
    check_comparable(before, after)  # no exception


# --- compare -------------------------------------------------------------------------------------


def test_compare_fixed_broken_and_p_value() -> None:
    before_ok = [True, True, False, False, False, False, True, False]
    after_ok = [True, False, True, True, True, False, True, True]
    # both right: 0, 6; broken: 1; fixed: 2, 3, 4, 7; both wrong: 5
    before = make_run(before_ok)
    after = make_run(after_ok, label="after", adapter="outputs/adapter")
    paired, fixed, broken = compare(before, after)
    assert [p["id"] for p in fixed] == ["test-00002", "test-00003", "test-00004", "test-00007"]
    assert [p["id"] for p in broken] == ["test-00001"]
    assert paired.n == 8
    assert paired.before_correct == 3
    assert paired.after_correct == 6
    assert (paired.both_right, paired.both_wrong, paired.fixed, paired.broken) == (2, 1, 4, 1)
    assert paired.difference == pytest.approx(3 / 8)
    assert paired.p_value == pytest.approx(mcnemar_exact(4, 1))
    assert paired.p_value == pytest.approx(0.375)  # 2 * (1 + 5) / 32


def test_compare_pairs_carry_question_gold_and_both_outputs() -> None:
    before = make_run([False])
    after = make_run([True], label="after")
    after.records[0]["output"] = "2+2 = 4\n#### 42"
    _, fixed, broken = compare(before, after)
    assert broken == []
    assert fixed == [
        {
            "id": "test-00000",
            "question": "question test-00000?",
            "gold": "42",
            "before": before.records[0]["output"],
            "after": "2+2 = 4\n#### 42",
            "before_flexible": before.records[0]["flexible_correct"],
            "after_flexible": after.records[0]["flexible_correct"],
        }
    ]


def test_compare_uses_strict_not_flexible() -> None:
    before = make_run([False])
    before.records[0]["flexible_correct"] = True
    after = make_run([True], label="after")
    paired, fixed, _ = compare(before, after)
    assert paired.fixed == 1 and len(fixed) == 1


def test_compare_refuses_incomparable_runs() -> None:
    with pytest.raises(CourseError) as info:
        compare(make_run([True]), make_run([True], label="after", prompt_format="chat"))
    assert info.value.key == "results_mismatch"


def test_compare_after_a_round_trip(tmp_path: Path) -> None:
    before = make_run([False, False, True, False])
    after = make_run([True, True, True, False], label="after")
    save_run(before, tmp_path)
    save_run(after, tmp_path)
    paired, fixed, broken = compare(load_latest(tmp_path, "before"), load_latest(tmp_path, "after"))
    assert paired.fixed == 2 and paired.broken == 0
    assert len(fixed) == 2 and broken == []
    assert paired.p_value == pytest.approx(mcnemar_exact(2, 0)) == pytest.approx(0.5)


# --- the same base model (issue 9, item 9) ------------------------------------------------------


def test_compare_refuses_a_before_and_an_after_on_other_base_models() -> None:
    before = make_run([True, False])
    after = make_run([True, True], label="after", model_id="Qwen/Qwen2.5-7B")
    with pytest.raises(CourseError) as info:
        compare(before, after)
    assert info.value.key == "results_mismatch"
    assert "base model" in info.value.detail and "Qwen/Qwen2.5-7B" in info.value.detail


@pytest.mark.parametrize("copy", ["unsloth/Meta-Llama-3.1-8B", "/content/models/Llama-3.1-8B"])
def test_copies_of_the_same_weights_are_comparable(copy: str) -> None:
    compare(make_run([True, False]), make_run([True, True], label="after", model_id=copy))  # no exception


def test_the_model_is_checked_before_it_is_loaded() -> None:
    before = make_run([True])
    results.check_same_model(before, "unsloth/Meta-Llama-3.1-8B")  # the ungated mirror: the same weights
    with pytest.raises(CourseError, match="base model") as info:
        results.check_same_model(before, "meta-llama/Llama-3.1-8B-Instruct")
    assert info.value.key == "results_mismatch"


# --- nothing half-written (issue 16) ------------------------------------------------------------


class Unserialisable:
    """A value json cannot write: the save fails in the middle of the per-question file."""


def test_a_save_that_fails_midway_leaves_no_partial_file_and_the_earlier_run_intact(tmp_path: Path) -> None:
    earlier = save_run(make_run([True, False, True]), tmp_path)
    before_files = sorted(p.name for p in tmp_path.iterdir())
    broken = make_run([True, True, True], label="before")
    broken.records[2]["output"] = Unserialisable()  # the third of three lines cannot be written
    with pytest.raises(TypeError):
        save_run(broken, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == before_files  # no half file, no temporary file
    assert load_latest(tmp_path, "before") == load_run(earlier)


def test_a_disconnect_before_the_rename_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    earlier = save_run(make_run([True, False]), tmp_path)
    before_files = sorted(p.name for p in tmp_path.iterdir())
    calls = []

    def disconnect(fd: int) -> None:  # the second file's data is written, then the runtime goes away
        calls.append(fd)
        if len(calls) == 2:
            raise OSError("Transport endpoint is not connected")

    monkeypatch.setattr(results.os, "fsync", disconnect)
    with pytest.raises(OSError):
        save_run(make_run([False, False], label="before"), tmp_path)
    assert len(calls) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == before_files
    assert load_latest(tmp_path, "before") == load_run(earlier)


def test_write_text_atomic_replaces_whole_or_not_at_all(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "training_log.json"
    results.write_text_atomic(target, "old")
    monkeypatch.setattr(results.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("disconnected")))
    with pytest.raises(OSError):
        results.write_text_atomic(target, "new and longer")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["training_log.json"]


def test_the_after_results_say_when_the_adapter_is_partial(tmp_path: Path) -> None:
    after = make_run([True], label="after", adapter="adapter/run", adapter_training="PARTIAL: 2 of 4 steps")
    loaded = load_run(save_run(after, tmp_path))
    assert loaded.settings.adapter_training == "PARTIAL: 2 of 4 steps"
    assert "(PARTIAL: 2 of 4 steps)" in format_summary(loaded).splitlines()[0]
