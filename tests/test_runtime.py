"""Tests for llmcourse.runtime: packages in memory against the installed ones (pitfall 10)."""

from __future__ import annotations

import types
from importlib.metadata import version

import pytest

from llmcourse.runtime import WATCHED, stale_imports, warn_if_restart_needed

INSTALLED_TRANSFORMERS = version("transformers")


def fake_module(name: str, module_version: str | None) -> types.ModuleType:
    module = types.ModuleType(name)
    if module_version is not None:
        module.__version__ = module_version
    return module


def test_old_version_in_memory_is_reported() -> None:
    modules = {"transformers": fake_module("transformers", "0.0.1")}
    assert stale_imports(modules) == [("transformers", "0.0.1", INSTALLED_TRANSFORMERS)]


def test_matching_version_is_not_reported() -> None:
    modules = {"transformers": fake_module("transformers", INSTALLED_TRANSFORMERS)}
    assert stale_imports(modules) == []


def test_local_version_label_is_ignored() -> None:
    # torch reports "2.5.1+cu121" in memory; the comparison is on the public version only.
    modules = {"transformers": fake_module("transformers", INSTALLED_TRANSFORMERS.split("+")[0] + "+cu121")}
    assert stale_imports(modules) == []


def test_modules_without_version_or_not_imported_are_ignored() -> None:
    modules = {"transformers": fake_module("transformers", None), "peft": None}
    assert stale_imports(modules) == []
    assert stale_imports({}) == []


def test_unwatched_modules_are_ignored() -> None:
    assert stale_imports({"numpy": fake_module("numpy", "0.0.1")}) == []


def test_distribution_name_is_reported_not_module_name() -> None:
    hub = pytest.importorskip("huggingface_hub")
    assert WATCHED["huggingface_hub"] == "huggingface-hub"
    modules = {"huggingface_hub": fake_module("huggingface_hub", "0.0.1")}
    assert stale_imports(modules) == [("huggingface-hub", "0.0.1", version("huggingface-hub"))]
    assert hub.__version__.split("+")[0] == version("huggingface-hub").split("+")[0]


def test_not_installed_package_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import PackageNotFoundError

    from llmcourse import runtime

    def missing(dist: str) -> str:
        raise PackageNotFoundError(dist)

    monkeypatch.setattr(runtime, "version", missing)
    assert stale_imports({"transformers": fake_module("transformers", "0.0.1")}) == []


def test_defaults_to_sys_modules() -> None:
    import transformers  # noqa: F401  (the real, current module is in sys.modules)

    assert all(name != "transformers" for name, _, _ in stale_imports())


def test_several_stale_packages_are_all_reported() -> None:
    modules = {
        "transformers": fake_module("transformers", "0.0.1"),
        "torch": fake_module("torch", "0.0.2"),
    }
    assert {name for name, _, _ in stale_imports(modules)} == {"transformers", "torch"}


# --- warn_if_restart_needed ---------------------------------------------------------------------


def test_warn_prints_restart_advice_and_returns_true() -> None:
    printed: list[str] = []
    modules = {"transformers": fake_module("transformers", "0.0.1")}
    assert warn_if_restart_needed(modules, print_fn=printed.append) is True
    assert len(printed) == 1
    text = printed[0]
    assert f"transformers 0.0.1 in memory but {INSTALLED_TRANSFORMERS} installed" in text
    assert "Restart session" in text


def test_warn_is_silent_when_up_to_date() -> None:
    printed: list[str] = []
    modules = {"transformers": fake_module("transformers", INSTALLED_TRANSFORMERS)}
    assert warn_if_restart_needed(modules, print_fn=printed.append) is False
    assert printed == []
