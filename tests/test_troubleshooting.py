"""Tests for llmcourse.troubleshooting: the catalogue, CourseError's message, the README table."""

from __future__ import annotations

import re

import pytest

from llmcourse.profiles import LLAMA_BASE, LLAMA_BASE_UNGATED
from llmcourse.troubleshooting import PROBLEMS, CourseError, Problem, markdown_table

REQUIRED_KEYS = {
    "no_gpu",
    "missing_token",
    "invalid_token",
    "gated_no_access",
    "repo_not_found",
    "hub_unreachable",
    "out_of_memory_training",
    "out_of_memory_generation",
    "bad_dataset_row",
    "missing_adapter",
    "missing_results",
    "results_mismatch",
    "adapter_base_mismatch",
    "low_disk",
    "version_mismatch",
    "malformed_results",
}


def test_catalogue_covers_the_common_failures():
    assert REQUIRED_KEYS <= set(PROBLEMS)
    for problem in PROBLEMS.values():
        assert isinstance(problem, Problem)
        assert problem.symptom and problem.cause and problem.fix
        assert len(problem.symptom) <= 60, f"{problem.symptom}: the symptom should be short"
        assert "\n" not in problem.symptom


def test_problem_is_frozen():
    with pytest.raises(AttributeError):
        PROBLEMS["no_gpu"].fix = "nothing"  # type: ignore[misc]


def example_values(problem: Problem) -> dict:
    return {name: f"value-of-{name}" for name in problem.required()}


@pytest.mark.parametrize("key", sorted(PROBLEMS))
def test_every_message_fills_without_leftover_fields(key):
    values = example_values(PROBLEMS[key])
    message = str(CourseError(key, "detail here", **values))
    assert not re.search(r"[{}]", message), message
    assert all(v in message for v in values.values())


@pytest.mark.parametrize("key", sorted(k for k, p in PROBLEMS.items() if p.required()))
def test_a_required_field_left_out_is_an_error_in_the_code_not_a_blank_in_the_message(key):
    values = example_values(PROBLEMS[key])
    left_out = sorted(values)[0]
    del values[left_out]
    with pytest.raises(TypeError, match=left_out):
        CourseError(key, "detail", **values)


def test_message_has_three_parts():
    err = CourseError("out_of_memory_generation", "batch of 16 did not fit", batch_size=16, suggestion=8)
    lines = str(err).splitlines()
    assert lines[0] == "GPU out of memory during generation: batch of 16 did not fit"
    assert lines[1].startswith("Why: ")
    assert lines[2].startswith("What to do: ")
    assert "EVAL_BATCH_SIZE to 8" in lines[2]
    assert "may differ on a few questions" in lines[2]  # not "the answers are the same": fp16 rounding
    assert err.key == "out_of_memory_generation"
    assert err.problem is PROBLEMS["out_of_memory_generation"]
    assert err.detail == "batch of 16 did not fit"
    assert isinstance(err, RuntimeError)


def test_without_detail_the_first_line_is_the_symptom():
    assert str(CourseError("no_gpu", profile="t4")).splitlines()[0] == "No GPU found"


def test_every_field_is_required():
    text = str(CourseError("out_of_memory_training", suggestion=2))
    assert "BATCH_SIZE to 2" in text and "GRAD_ACCUM" in text and "MAX_LENGTH" in text
    assert PROBLEMS["bad_dataset_row"].required() == {"row", "source", "field", "reason"}
    with pytest.raises(TypeError, match="suggestion"):
        CourseError("out_of_memory_training")


def test_no_gpu_says_how_to_switch_the_runtime_or_profile():
    fix = CourseError("no_gpu", profile="t4").fix
    assert "Runtime > Change runtime type" in fix and "T4 GPU" in fix
    assert "PROFILE = 'cpu'" in fix


def test_gated_fix_names_licence_page_and_fallback():
    err = CourseError("gated_no_access", model_id=LLAMA_BASE, fallback=LLAMA_BASE_UNGATED)
    assert f"https://huggingface.co/{LLAMA_BASE}" in err.fix
    assert "accept the licence" in err.fix and "approval e-mail" in err.fix
    assert f"MODEL_ID = '{LLAMA_BASE_UNGATED}'" in err.fix


def test_token_fixes_name_the_colab_secret():
    fix = CourseError("missing_token", model_id=LLAMA_BASE).fix
    assert "HF_TOKEN" in fix and "Secrets" in fix and "key icon" in fix and "Notebook access" in fix
    assert "https://huggingface.co/settings/tokens" in CourseError("invalid_token").fix
    assert "{model_id}" in PROBLEMS["missing_token"].fix and LLAMA_BASE in PROBLEMS["repo_not_found"].fix


def test_specific_fixes_name_the_setting_to_change():
    assert "BATCH_SIZE" in PROBLEMS["out_of_memory_training"].fix
    assert "GRAD_ACCUM" in PROBLEMS["out_of_memory_training"].fix
    assert "Restart session" in PROBLEMS["out_of_memory_training"].fix
    assert "MAX_NEW_TOKENS" in PROBLEMS["out_of_memory_generation"].fix
    assert "PROFILE = 'cpu'" in PROBLEMS["hub_unreachable"].fix
    assert (
        "notebook 03" in PROBLEMS["missing_adapter"].cause
        and "ADAPTER_DIR" in PROBLEMS["missing_adapter"].fix
    )
    assert "{notebook}" in PROBLEMS["missing_results"].cause  # results.MADE_BY names the notebook
    assert (
        "Restart session" in PROBLEMS["version_mismatch"].fix and "once" in PROBLEMS["version_mismatch"].fix
    )


def test_values_fill_cause_and_fix():
    err = CourseError("low_disk", needed_gb=20, free_gb="3.5", path="/content")
    assert "20 GB" in err.cause and "3.5 GB" in err.cause and "/content" in err.cause
    err = CourseError(
        "bad_dataset_row", row=17, field="answer", reason="no '#### N' line", source="data/x.jsonl"
    )
    assert "Row 17 of data/x.jsonl" in err.cause and "'answer'" in err.cause
    err = CourseError("adapter_base_mismatch", path="adapter/", adapter_base="a/b", model_id="c/d")
    assert "MODEL_ID = 'a/b'" in err.fix and "trained on a/b" in err.cause


def test_unknown_key_is_a_clear_error():
    with pytest.raises(KeyError, match="Unknown problem key"):
        CourseError("no_such_problem")


def test_markdown_table():
    table = markdown_table()
    lines = table.splitlines()
    assert lines[0] == "| If you see | Why | Do this |"
    assert lines[1] == "|---|---|---|"
    assert len(lines) == 2 + len(PROBLEMS)
    for line in lines[2:]:
        # every row has exactly 3 cells: 4 unescaped pipes
        assert len(re.findall(r"(?<!\\)\|", line)) == 4, line
    assert "No GPU found" in table and "Runtime > Change runtime type" in table
    assert "{" not in table.replace("{{", "")
    # Placeholders read as placeholders, never as invented values ("about more GB", "Row ?").
    assert "needs about `<N>` GB free on `<path>`, but only `<M>` GB is free" in table
    assert "Row `<N>` of `<file>`" in table and "'?'" not in table and "more GB" not in table
    assert "MODEL_ID = '`<the adapter's base model>`'" in table
    assert not re.search(r"(?<!`)<[a-z]", table)  # every <placeholder> is in a code span, so Markdown shows it

