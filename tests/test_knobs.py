"""Every knob checked (issue 16): one spec per knob in ``profiles.KNOBS``, a course message for every bad
value, strings from a command line converted, limits that can be honoured clamped with a line, and the
runner stopping on an unknown name with the closest one, before any notebook runs."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import run_series  # scripts/run_series.py

from llmcourse.data import HUB_SPLIT_ROWS, load_split, split_size
from llmcourse.profiles import KNOBS, PROFILES, Profile, check_knob
from llmcourse.troubleshooting import PROBLEMS, CourseError

ROOT = Path(__file__).resolve().parents[1]
GSM8K_DIR = ROOT.parent / "shared" / "data" / "gsm8k"

# One bad value of each kind for each kind of knob: the wrong type, out of range, empty.
BAD_VALUES = {
    "int": {"wrong type": "abc", "out of range": -7, "empty": ""},
    "ints": {"wrong type": 3.5, "out of range": [1, 0], "empty": ""},
    "number": {"wrong type": "abc", "out of range": -0.5, "empty": "  "},
    "bool": {"wrong type": "maybe", "out of range": 2, "empty": ""},
    "choice": {"wrong type": 42, "out of range": "nonsense", "empty": ""},
    "text": {"wrong type": 42, "out of range": "two words", "empty": " "},
    "sentence": {"wrong type": 42, "empty": "  "},  # any text is in range
    "label": {"wrong type": 3.5, "out of range": "before/after", "empty": ""},
    "path": {"wrong type": 42, "out of range": "/no/such/folder/anywhere", "empty": ""},
}
CASES = [(name, kind, value) for name, knob in KNOBS.items() for kind, value in BAD_VALUES[knob.kind].items()]


@pytest.mark.parametrize(("name", "kind", "value"), CASES, ids=[f"{n}-{k}" for n, k, _ in CASES])
def test_every_knob_rejects_a_bad_value_of_each_kind_naming_the_knob(name, kind, value):
    knob = KNOBS[name]
    with pytest.raises(CourseError) as info:
        check_knob(name, value, dataset="local")
    err = info.value
    assert err.key == "bad_parameter"
    message = str(err)
    assert f"{name} = {value!r}" in message  # the knob and the value given
    assert knob.accepted in message and knob.example in message  # what is accepted, and an example


def test_a_list_knob_takes_a_list_or_the_command_lines_text():
    assert check_knob("FEW_SHOT_COUNTS", [1, 4]) == [1, 4]
    assert check_knob("FEW_SHOT_COUNTS", "1,4") == [1, 4]
    assert check_knob("FEW_SHOT_COUNTS", "[2, 8]") == [2, 8]
    with pytest.raises(CourseError, match="FEW_SHOT_COUNTS"):
        check_knob("FEW_SHOT_COUNTS", "1,x")


PROFILE_KNOBS = [f.name for f in dataclasses.fields(Profile) if f.name.upper() in KNOBS]


@pytest.mark.parametrize("field", PROFILE_KNOBS)
def test_with_overrides_checks_every_profile_knob_before_anything_loads(field):
    value = BAD_VALUES[KNOBS[field.upper()].kind]["out of range"]
    with pytest.raises(CourseError) as info:
        PROFILES["smoke"].with_overrides(**{field: value})
    assert info.value.key == "bad_parameter" and field.upper() in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "knob"),
    # The raw errors of the issue: each is now the course's message naming the knob.
    [({"eval_size": -3}, "EVAL_SIZE"), ({"lora_r": 0}, "LORA_R"), ({"learning_rate": "abc"}, "LEARNING_RATE"),
     ({"batch_size": 0}, "BATCH_SIZE"), ({"learning_rate": 3}, "LEARNING_RATE"), ({"max_steps": 0}, "MAX_STEPS")],
)
def test_the_issues_cases_get_the_course_message(overrides, knob):
    with pytest.raises(CourseError, match=f"{knob} = "):
        PROFILES["t4"].with_overrides(**overrides)


def test_every_profile_field_a_learner_can_set_has_a_spec():
    fields = {f.name for f in dataclasses.fields(Profile)} - {"name", "description", "changes", "reason"}
    assert {f.upper() for f in fields} <= set(KNOBS)


def test_every_parameter_of_every_notebook_has_a_spec():
    for path in sorted((ROOT / "notebooks").rglob("*.ipynb")):
        missing = run_series.notebook_parameters(path) - set(KNOBS)
        assert not missing, f"{path.name}: add a Knob to profiles.KNOBS for {sorted(missing)}"


@pytest.mark.parametrize(
    ("name", "given", "expected"),
    [("LEARNING_RATE", "2e-4", 2e-4), ("LORA_R", "16", 16), ("BATCH_SIZE", 8.0, 8), ("EVAL_SIZE", " 5 ", 5),
     ("GRADIENT_CHECKPOINTING", "false", False), ("RUN_LM_EVAL", "True", True), ("PROFILE", " T4 ", "t4"),
     ("PROMPT_FORMAT", "chat", "chat"), ("MAX_STEPS", "-1", -1), ("LORA_ALPHA", 32, 32), ("EVAL_SIZE", None, None)],
)
def test_command_line_strings_are_converted(name, given, expected):
    value = check_knob(name, given, dataset="local")
    assert value == expected and type(value) is type(expected)


def test_with_overrides_converts_strings():
    profile = PROFILES["t4"].with_overrides(learning_rate="1e-4", lora_r="8", eval_size="50")
    assert (profile.learning_rate, profile.lora_r, profile.eval_size) == (1e-4, 8, 50)


def test_a_path_knob_must_exist_and_comes_back_absolute(tmp_path, monkeypatch):
    (tmp_path / "my-adapter").mkdir()
    monkeypatch.chdir(tmp_path)
    assert check_knob("ADAPTER_DIR", "my-adapter") == str(tmp_path / "my-adapter")


@pytest.mark.parametrize(("dataset", "rows"), [("local", 200), ("openai/gsm8k", 1319)])
def test_more_questions_than_the_split_holds_are_clamped_with_a_line(dataset, rows, capsys):
    profile = dataclasses.replace(PROFILES["smoke"], dataset=dataset)
    assert profile.with_overrides(eval_size=100_000).eval_size == rows
    line = capsys.readouterr().out
    assert "EVAL_SIZE = 100000" in line and f"using {rows}" in line
    assert profile.with_overrides(eval_size=rows).eval_size == rows  # the limit itself is fine, silently
    assert capsys.readouterr().out == ""


def test_split_sizes_are_the_real_ones():
    for split in ("train", "test"):
        assert split_size("local", split) == len(load_split("local", split))
    assert split_size("someone/other-dataset", "test") is None


def test_gsm8k_split_sizes_match_the_real_files():
    if not GSM8K_DIR.is_dir():
        pytest.skip(f"the real GSM8K is not at {GSM8K_DIR} (shared data folder absent)")
    for split, rows in HUB_SPLIT_ROWS["openai/gsm8k"].items():
        lines = [line for line in (GSM8K_DIR / f"{split}.jsonl").read_text().splitlines() if line.strip()]
        assert len(lines) == rows


def test_both_knob_problems_are_in_the_troubleshooting_table():
    assert {"bad_parameter", "unknown_parameter"} <= set(PROBLEMS)
    readme = (ROOT / "README.md").read_text()
    assert PROBLEMS["bad_parameter"].symptom in readme and PROBLEMS["unknown_parameter"].symptom in readme


# --- the runner ----------------------------------------------------------------------------------------


def test_the_runner_stops_on_a_typo_with_the_closest_name_before_any_notebook(tmp_path):
    """``python scripts/run_series.py --profile smoke -p EVAL_SIZ 5`` used to run to "ok", ignoring it."""
    out = tmp_path / "executed"
    result = subprocess.run(
        [sys.executable, "scripts/run_series.py", "--profile", "smoke", "-p", "EVAL_SIZ", "5", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "did you mean EVAL_SIZE" in result.stderr
    assert "EVAL_SIZE (02)" in result.stderr  # which notebooks take which knob
    assert not out.exists()  # stopped before the first notebook


def test_run_checks_names_and_values_before_papermill(tmp_path, monkeypatch):
    import papermill

    def must_not_run(*args, **kwargs):
        raise AssertionError("a notebook was executed")

    monkeypatch.setattr(papermill, "execute_notebook", must_not_run)
    with pytest.raises(CourseError, match="did you mean LEARNING_RATE"):
        run_series.run("smoke", run_series.NOTEBOOKS, {"LEARNNG_RATE": 1e-4}, tmp_path)
    with pytest.raises(CourseError, match="LORA_R = 0"):
        run_series.run("smoke", run_series.NOTEBOOKS, {"LORA_R": 0}, tmp_path)
    # A knob of a notebook that is not run would be ignored: say which notebook takes it.
    with pytest.raises(CourseError, match="taken by 02 only"):
        run_series.run("smoke", ["04_evaluate_and_compare.ipynb"], {"EVAL_SIZE": 5}, tmp_path)


def test_check_parameters_converts_and_clamps(capsys):
    checked = run_series.check_parameters({"LEARNING_RATE": "2e-4", "EVAL_SIZE": 10**6}, run_series.NOTEBOOKS, "smoke")
    assert checked == {"LEARNING_RATE": 2e-4, "EVAL_SIZE": 200}
    assert "using 200" in capsys.readouterr().out


def test_the_runner_lists_which_notebooks_take_which_knob(capsys):
    assert run_series.main(["--list-parameters"]) == 0
    listing = capsys.readouterr().out
    assert any(line.split() == ["EVAL_SIZE", "02"] for line in listing.splitlines())
    assert any(line.split()[:1] == ["ADAPTER_DIR"] and "04" in line for line in listing.splitlines())
