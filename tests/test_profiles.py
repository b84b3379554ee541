"""Tests for llmcourse.profiles: choosing a profile, overriding its knobs, the table's consistency."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from llmcourse.profiles import (
    ENV_VAR,
    PROFILE_NAMES,
    PROFILES,
    SMOLLM2,
    TINY_LLAMA,
    TRAINING,
    Profile,
    detect_profile,
    torch_dtype,
)
from llmcourse.troubleshooting import CourseError

# --- detect_profile from the hardware ------------------------------------------------


def test_no_gpu_gives_cpu() -> None:
    profile = detect_profile(env={}, gpu=None)
    assert profile.name == "cpu"
    assert profile.model_id == SMOLLM2
    assert "no CUDA GPU" in profile.reason


def test_t4_gives_t4_with_fp16() -> None:
    profile = detect_profile(env={}, gpu=("Tesla T4", (7, 5)))
    assert profile.name == "t4"
    assert profile.fp16 is True
    assert profile.bf16 is False
    assert profile.compute_dtype == "float16"
    assert "7.5" in profile.reason
    assert "Tesla T4" in profile.reason


@pytest.mark.parametrize(
    ("gpu_name", "capability", "cc"),
    [("NVIDIA A100-SXM4-40GB", (8, 0), "8.0"), ("NVIDIA L4", (8, 9), "8.9"), ("NVIDIA H100 80GB HBM3", (9, 0), "9.0")],
)
def test_ampere_and_newer_give_ampere_with_bf16(gpu_name: str, capability: tuple[int, int], cc: str) -> None:
    profile = detect_profile(env={}, gpu=(gpu_name, capability))
    assert profile.name == "ampere"
    assert profile.bf16 is True
    assert profile.fp16 is False
    assert profile.compute_dtype == "bfloat16"
    assert cc in profile.reason


@pytest.mark.parametrize("capability", [(6, 0), (6, 1), (7, 0), (7, 5)])
def test_pre_ampere_gpus_give_t4(capability: tuple[int, int]) -> None:
    assert detect_profile(env={}, gpu=("Some GPU", capability)).name == "t4"


def test_detected_profile_equals_table_entry_apart_from_reason() -> None:
    # ``reason`` is excluded from equality, everything else must be the table's values.
    assert detect_profile(env={}, gpu=("Tesla T4", (7, 5))) == PROFILES["t4"]
    assert detect_profile(env={}, gpu=None) == PROFILES["cpu"]
    # The table itself is never mutated by detection.
    assert PROFILES["t4"].reason == ""


# --- precedence: requested > env > hardware ------------------------------------------


def test_env_beats_hardware() -> None:
    profile = detect_profile(env={ENV_VAR: "smoke"}, gpu=("NVIDIA A100", (8, 0)))
    assert profile.name == "smoke"
    assert profile.model_id == TINY_LLAMA
    assert ENV_VAR in profile.reason


def test_requested_beats_env_and_hardware() -> None:
    profile = detect_profile("cpu", env={ENV_VAR: "smoke"}, gpu=("NVIDIA A100", (8, 0)))
    assert profile.name == "cpu"
    assert "parameters cell" in profile.reason


def test_requested_name_is_normalised() -> None:
    assert detect_profile("  T4 ", env={}, gpu=None).name == "t4"


def test_empty_request_and_env_fall_through_to_hardware() -> None:
    assert detect_profile("", env={ENV_VAR: ""}, gpu=("NVIDIA H100", (9, 0))).name == "ampere"


def test_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "smoke")
    assert detect_profile(gpu=None).name == "smoke"


@pytest.mark.parametrize(
    ("kwargs", "source"),
    [({"requested": "a100"}, "parameters cell"), ({"env": {ENV_VAR: "gpu"}}, ENV_VAR)],
)
def test_unknown_profile_names_the_choices(kwargs: dict, source: str) -> None:
    kwargs.setdefault("env", {})
    with pytest.raises(CourseError) as info:
        detect_profile(gpu=None, **kwargs)
    assert info.value.key == "bad_parameter"
    message = str(info.value)
    for name in PROFILE_NAMES:
        assert name in message
    assert source in message


# --- with_overrides ------------------------------------------------------------------


def test_with_overrides_replaces_and_keeps_the_rest() -> None:
    base = PROFILES["t4"]
    changed = base.with_overrides(eval_size=50, learning_rate=1e-4)
    assert changed.eval_size == 50
    assert changed.learning_rate == 1e-4
    assert changed.batch_size == base.batch_size
    assert changed.model_id == base.model_id
    # The original is untouched (frozen dataclass, copy returned).
    assert base.eval_size == 200


def test_with_overrides_none_keeps_default() -> None:
    base = PROFILES["cpu"]
    changed = base.with_overrides(eval_size=None, model_id=None, max_steps=7)
    assert changed.eval_size == base.eval_size
    assert changed.model_id == base.model_id
    assert changed.max_steps == 7


def test_with_overrides_is_case_insensitive() -> None:
    changed = PROFILES["ampere"].with_overrides(EVAL_SIZE=10, Model_ID="x/y")
    assert changed.eval_size == 10
    assert changed.model_id == "x/y"


def test_with_overrides_unknown_key_raises() -> None:
    with pytest.raises(CourseError) as info:
        PROFILES["t4"].with_overrides(eval_sise=10)
    assert info.value.key == "unknown_parameter"
    message = str(info.value)
    assert "eval_sise" in message
    assert "did you mean EVAL_SIZE" in message  # the closest known name
    assert "LEARNING_RATE" in message  # and the known ones are listed


def test_with_overrides_unknown_key_raises_even_when_none() -> None:
    with pytest.raises(CourseError):
        PROFILES["t4"].with_overrides(lerning_rate=None)


def test_with_overrides_keeps_reason() -> None:
    detected = detect_profile(env={}, gpu=("Tesla T4", (7, 5)))
    assert detected.with_overrides(eval_size=3).reason == detected.reason


# --- the table ------------------------------------------------------------------------


def test_table_has_every_profile_under_its_own_name() -> None:
    assert set(PROFILES) == set(PROFILE_NAMES)
    for name, profile in PROFILES.items():
        assert profile.name == name


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_a_profile_gives_a_reason_for_each_lesson_setting_it_changes_and_for_no_other(name: str) -> None:
    profile = PROFILES[name]
    changed = {key for key, value in TRAINING.items() if getattr(profile, key) != value}
    assert set(profile.changes) == changed
    assert all(len(reason) > 10 for reason in profile.changes.values())


def test_the_workshop_profile_changes_nothing_of_the_lesson() -> None:
    assert PROFILES["t4"].changes == {}


def test_an_override_is_reported_as_set_in_the_parameters_cell_and_undone_by_the_lessons_value() -> None:
    cpu = PROFILES["cpu"].with_overrides(lora_r=8, learning_rate=TRAINING["learning_rate"], eval_size=5)
    assert cpu.changes["lora_r"] == "set in the parameters cell"
    assert "learning_rate" not in cpu.changes  # back at the lesson's value: nothing to report
    assert "eval_size" not in cpu.changes and "grad_accum" in cpu.changes  # the profile's own change stays


@pytest.mark.parametrize("name", ["cpu", "smoke"])
def test_cpu_profiles_are_fp32_without_checkpointing(name: str) -> None:
    """Pitfall 2: on a CPU, bf16 compute in 4-bit layers is ~7x slower and checkpointing costs time."""
    profile = PROFILES[name]
    assert profile.compute_dtype == "float32" and not (profile.fp16 or profile.bf16)
    assert profile.gradient_checkpointing is False
    assert not profile.uses_gpu


def test_table_lists_every_setting() -> None:
    text = PROFILES["smoke"].table()
    assert text.splitlines()[0].startswith("profile 'smoke':")
    for f in dataclasses.fields(Profile):
        if f.name not in ("description", "changes"):
            assert f"  {f.name}" in text
    assert repr(TINY_LLAMA) in text


# --- torch_dtype ---------------------------------------------------------------------


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_every_profiles_compute_dtype_is_a_torch_dtype(name: str) -> None:
    assert isinstance(torch_dtype(PROFILES[name].compute_dtype), torch.dtype)


@pytest.mark.parametrize("name", ["fp16", "float64", ""])
def test_torch_dtype_unknown_raises(name: str) -> None:
    with pytest.raises(CourseError, match="float16"):
        torch_dtype(name)
