"""Where the series keeps what one notebook hands to the next: results, adapter, checkpoints, figures.

On Colab, with Google Drive mounted, everything goes to Drive so a disconnect loses nothing; elsewhere
to ``outputs/`` in the repository (ignored by git). ``$COURSE_HOME`` overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Where Colab mounts Google Drive. $COURSE_DRIVE_MOUNT moves it, for the test that plays a fresh Colab runtime.
DRIVE_ROOT = Path(os.environ.get("COURSE_DRIVE_MOUNT", "/content/drive")) / "MyDrive"
DRIVE_FOLDER = "llm-reasoning-course"


def on_colab() -> bool:
    return "COLAB_RELEASE_TAG" in os.environ or Path("/content").is_dir() and "COLAB_GPU" in os.environ


def mount_drive() -> bool:
    """Mount Google Drive on Colab (asks the learner once); False elsewhere or if they decline."""
    if not on_colab():
        return False
    if DRIVE_ROOT.is_dir():
        return True
    try:
        from google.colab import drive  # type: ignore[import-not-found]

        drive.mount(str(DRIVE_ROOT.parent))
    except Exception as err:  # declined, or a Colab hiccup: carry on with local storage
        print(f"Google Drive not mounted ({err}); results stay in this runtime only.")
        return False
    return DRIVE_ROOT.is_dir()


def course_home(profile: str | None = None) -> Path:
    """The root folder for this profile's artefacts (profiles never mix their results)."""
    if os.environ.get("COURSE_HOME"):
        root = Path(os.environ["COURSE_HOME"])
    elif DRIVE_ROOT.is_dir():
        root = DRIVE_ROOT / DRIVE_FOLDER
    else:
        root = REPO_ROOT / "outputs"
    home = root / profile if profile else root
    home.mkdir(parents=True, exist_ok=True)
    return home


def folder(profile: str, name: str) -> Path:
    """``results``, ``adapter``, ``checkpoints`` or ``figures`` under the profile's home."""
    path = course_home(profile) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_pretrained_whole(folder: Path, *objects, before_rename=None) -> Path:
    """``obj.save_pretrained`` of each object (a model, its tokenizer) into ``folder``, written beside it
    first and renamed at the end, so only a complete folder ever has the final name (a disconnect leaves a
    ``.partial`` folder nobody reads). ``before_rename(path)`` may still edit the files."""
    import shutil

    folder = Path(folder)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for obj in objects:
        obj.save_pretrained(partial)
    if before_rename is not None:
        before_rename(partial)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder
