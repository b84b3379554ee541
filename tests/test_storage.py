"""Tests for llmcourse.storage: where each profile's artefacts go, and Drive off Colab."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmcourse import storage
from llmcourse.storage import course_home, folder, mount_drive, on_colab

COLAB_VARS = ("COLAB_RELEASE_TAG", "COLAB_GPU")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "course"
    monkeypatch.setenv("COURSE_HOME", str(root))
    for name in COLAB_VARS:
        monkeypatch.delenv(name, raising=False)
    return root


def test_course_home_uses_env_and_creates_profile_folder(home: Path) -> None:
    path = course_home("t4")
    assert path == home / "t4"
    assert path.is_dir()


def test_course_home_without_profile_is_the_root(home: Path) -> None:
    assert course_home() == home
    assert home.is_dir()


def test_profiles_never_share_a_folder(home: Path) -> None:
    assert course_home("cpu") != course_home("smoke")
    assert sorted(p.name for p in home.iterdir()) == ["cpu", "smoke"]


@pytest.mark.parametrize("name", ["results", "adapter", "checkpoints", "figures"])
def test_folder_creates_the_subfolder(home: Path, name: str) -> None:
    path = folder("smoke", name)
    assert path == home / "smoke" / name
    assert path.is_dir()


def test_folder_is_idempotent_and_keeps_contents(home: Path) -> None:
    path = folder("cpu", "results")
    (path / "before_x.json").write_text("{}", encoding="utf-8")
    assert folder("cpu", "results") == path
    assert (path / "before_x.json").read_text(encoding="utf-8") == "{}"


def test_without_course_home_falls_back_to_repo_outputs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("COURSE_HOME", raising=False)
    monkeypatch.setattr(storage, "DRIVE_ROOT", tmp_path / "no-drive")
    monkeypatch.setattr(storage, "REPO_ROOT", tmp_path / "repo")
    assert course_home("cpu") == tmp_path / "repo" / "outputs" / "cpu"


def test_drive_is_used_when_mounted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    drive = tmp_path / "MyDrive"
    drive.mkdir()
    monkeypatch.delenv("COURSE_HOME", raising=False)
    monkeypatch.setattr(storage, "DRIVE_ROOT", drive)
    assert course_home("t4") == drive / storage.DRIVE_FOLDER / "t4"


def test_not_on_colab_here(home: Path) -> None:
    assert on_colab() is False


def test_on_colab_when_colab_sets_its_variable(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20240726")
    assert on_colab() is True


def test_mount_drive_off_colab_is_false(home: Path) -> None:
    assert mount_drive() is False


def test_mount_drive_on_colab_without_google_colab_is_false(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20240726")
    monkeypatch.setattr(storage, "DRIVE_ROOT", tmp_path / "not-mounted")
    assert mount_drive() is False
    assert "Google Drive not mounted" in capsys.readouterr().out


def test_mount_drive_on_colab_already_mounted(home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20240726")
    monkeypatch.setattr(storage, "DRIVE_ROOT", tmp_path)
    assert mount_drive() is True
