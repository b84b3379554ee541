"""Executed copies of the lessons for readers: publish them from a run, and check that they are not stale.

    python scripts/publish.py --profile cpu              # copy outputs/cpu/executed/*.ipynb to docs/executed/cpu/
    python scripts/publish.py --check                    # exit 1 when a copy no longer matches its lesson
    python scripts/run_series.py --profile cpu --publish # run the cpu track, then publish (the refresh)

A published copy is the executed notebook with a header cell first (what made it: hardware, model, profile,
date, and what differs on a T4 with Llama 3.1 8B), machine paths and the user's name replaced by neutral
placeholders, and no run metadata. The check compares each copy's code and markdown cells with its lesson
(ignoring the parameters cells), says whether ``--sync-markdown`` (copy the lessons' markdown, no run) is
enough, and fails on a machine path left in a copy: that is not a secret, so detect-secrets does not look
for it (its plugins run on every file, where such paths are legitimate).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import platform
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXECUTED_DIR = ROOT / "docs" / "executed"
NOTEBOOKS_DIR = ROOT / "notebooks"
HEADER_TAG = "executed-copy-header"
SKIPPED_TAGS = {HEADER_TAG, "injected-parameters", "parameters"}  # papermill tags its injected cell so
REFRESH_COMMAND = "python scripts/run_series.py --profile cpu --publish"
SYNC_COMMAND = "python scripts/publish.py --sync-markdown"
T4_DIFFERENCES = (  # what the cpu track's outputs do not show, said on every executed page
    "**On a free Colab T4 with `meta-llama/Llama-3.1-8B`** (the `t4` profile) the same cells load an "
    "8-billion-parameter model in NF4 (notebook 01 works out its size), compute in fp16 instead of fp32, "
    "use GSM8K instead of the course's own `data/`, and take longer per step. The numbers differ too: the base "
    "8B model already solves many GSM8K problems, and fine-tuning first teaches it the answer format (compare "
    "strict and flexible accuracy), while the 135M model of the cpu track learns a synthetic task nearly from "
    "zero. See *What to expect on each track*."
)
# Machine details no published copy may show: a home folder names the user, an absolute path the machine.
MACHINE_DETAILS = re.compile(r"(?:/home/|/Users/|[A-Za-z]:\\\\?Users\\\\?)[\w.-]+|(?<![\w.~-])/root/"
                             r"|(?:^|(?<=[\s\"'(=\[]))/[^\s\"'<>]+/(?:notebooks|outputs|llmcourse|site-packages|dist-packages)/")


def strip_machine_details(text: str, repo_root: Path = ROOT, user: str | None = None) -> str:
    """``text`` with absolute machine paths and the user's name replaced by placeholders."""
    for path, placeholder in ((repo_root, "<course>"), (Path(sys.prefix), "<python>"),
                              (Path(sys.base_prefix), "<python>"), (Path.home(), "~")):
        if len(str(path)) > 1:
            text = re.sub(re.escape(str(path)) + r"(?=[/\\\s\"'),:]|$)", placeholder, text)
    text = re.sub(r"(?<![\w>.~-])(?:/[^/\s\"'<>]+)+/(?=(?:site|dist)-packages/)", "<python>/", text)
    text = re.sub(r"/(?:home|Users)/[^/\s\"']+|/root(?=/)", "~", text)
    try:
        user = getpass.getuser() if user is None else user
    except Exception:  # no user database entry (some containers)
        user = ""
    if len(user) >= 3 and user not in {"root", "user", "runner", "jovyan"}:
        text = re.sub(rf"(?<!\w){re.escape(user)}(?!\w)", "<user>", text)
    return text


def hardware_description() -> str:
    """A short, anonymous description of the machine: CPU count and kind, GPU name if any."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores ({platform.machine()}), {gpu}"


def header_source(profile: str, model_id: str, hardware: str, date: str, name: str) -> str:
    return (f"> **Executed copy: these are the `{profile}` track's outputs.** Made on {date} by "
            f"`{REFRESH_COMMAND.replace('cpu', profile)}` on {hardware}, with the model `{model_id}` (profile "
            f"`{profile}`). The lesson itself is `notebooks/{name}`, stored without outputs; open it in Colab to "
            f"run it.\n>\n> {T4_DIFFERENCES}")


def publish(source_dir: Path, target_dir: Path, profile: str, notebooks_dir: Path = NOTEBOOKS_DIR,
            repo_root: Path = ROOT, date: str | None = None, hardware: str | None = None) -> list[Path]:
    """Copy the executed lessons in ``source_dir`` to ``target_dir`` with a header cell, machine details
    stripped and run metadata dropped. Returns the files written."""
    from llmcourse.profiles import PROFILES

    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for executed in sorted(p for p in source_dir.glob("*.ipynb") if (notebooks_dir / p.name).is_file()):
        nb = nbformat.read(executed, as_version=4)
        parameters = nb.metadata.pop("papermill", {}).get("parameters", {})
        model = parameters.get("MODEL_ID") or PROFILES[profile].model_id
        header = nbformat.v4.new_markdown_cell(header_source(
            profile, model, hardware or hardware_description(), date or dt.date.today().isoformat(), executed.name))
        header.metadata["tags"], header.id = [HEADER_TAG], HEADER_TAG
        nb.cells = [header, *(c for c in nb.cells if HEADER_TAG not in c.metadata.get("tags", []))]
        nb.metadata.pop("widgets", None)
        nb.metadata["papermill"] = {"parameters": parameters}
        for cell in nb.cells:
            cell.metadata.pop("papermill", None)
            cell.metadata.pop("execution", None)
        text = strip_machine_details(nbformat.writes(nb), repo_root) + "\n"  # outputs included: it is the JSON
        (target_dir / executed.name).write_text(text, encoding="utf-8")
        written.append(target_dir / executed.name)
    return written


def _cells(nb, kind: str) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == kind and not SKIPPED_TAGS & set(c.metadata.get("tags", []))]


def stale_copies(executed_dir: Path, notebooks_dir: Path = NOTEBOOKS_DIR) -> dict[str, str]:
    """``{name: what differs}`` for each copy in ``executed_dir`` that differs from its lesson ("code",
    "markdown", "code and markdown", "its lesson no longer exists", "machine paths")."""
    stale = {}
    for path in sorted(executed_dir.glob("*.ipynb")):
        if not (notebooks_dir / path.name).is_file():
            stale[path.name] = "its lesson no longer exists"
            continue
        copy, lesson = nbformat.read(path, as_version=4), nbformat.read(notebooks_dir / path.name, as_version=4)
        differs = [kind for kind in ("code", "markdown") if _cells(copy, kind) != _cells(lesson, kind)]
        if MACHINE_DETAILS.search(path.read_text(encoding="utf-8")):
            differs.append("machine paths")
        if differs:
            stale[path.name] = " and ".join(differs)
    return stale


def sync_markdown(executed_dir: Path, notebooks_dir: Path = NOTEBOOKS_DIR) -> list[str]:
    """Copy the lessons' markdown cells into the copies whose code cells still match (no run needed)."""
    synced = []
    for name, what in stale_copies(executed_dir, notebooks_dir).items():
        if what != "markdown":
            continue
        copy = nbformat.read(executed_dir / name, as_version=4)
        lesson = nbformat.read(notebooks_dir / name, as_version=4)
        kept = [c for c in copy.cells if not {HEADER_TAG, "injected-parameters"} & set(c.metadata.get("tags", []))]
        if [c.cell_type for c in kept] != [c.cell_type for c in lesson.cells]:
            continue  # cells were added or moved: only a run can refresh it
        for mine, theirs in zip(kept, lesson.cells, strict=True):
            if mine.cell_type == "markdown":
                mine.source = theirs.source
        (executed_dir / name).write_text(nbformat.writes(copy) + "\n", encoding="utf-8")
        synced.append(name)
    return synced


def check(executed_root: Path = EXECUTED_DIR, notebooks_dir: Path = NOTEBOOKS_DIR,
          lessons: list[str] | None = None) -> tuple[bool, list[str]]:
    """(ok, lines to print) for every profile folder under ``executed_root``."""
    from run_series import NOTEBOOKS

    folders = sorted(p for p in executed_root.glob("*") if p.is_dir())
    if not folders:
        return True, [f"no executed copies in {executed_root} yet (publish them with `{REFRESH_COMMAND}`)"]
    lines, kinds = [], set()
    for folder in folders:
        stale = stale_copies(folder, notebooks_dir)
        missing = [n for n in (NOTEBOOKS if lessons is None else lessons) if not (folder / n).is_file()]
        lines += [f"{folder.name}/{name} is stale: {what} differ" for name, what in stale.items()]
        lines += [f"{folder.name}/{name} is missing: the series runs it but no copy is published" for name in missing]
        kinds |= set(stale.values()) | ({"missing"} if missing else set())
        if not stale and not missing:
            lines.append(f"{folder.name}: {len(list(folder.glob('*.ipynb')))} executed copies match their lessons")
    if kinds:
        lines.append(f"Refresh them with `{REFRESH_COMMAND}` (it runs the whole cpu track)"
                     + (f", or, as only markdown changed, with `{SYNC_COMMAND}`" if kinds == {"markdown"} else "") + ".")
    return not kinds, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu", help="the profile whose executed notebooks are published")
    parser.add_argument("--source", type=Path, help="default: outputs/<profile>/executed")
    parser.add_argument("--check", action="store_true", help="only check that the copies match their lessons")
    parser.add_argument("--sync-markdown", action="store_true",
                        help="copy the lessons' markdown into copies whose code cells still match")
    args = parser.parse_args(argv)
    if args.check or args.sync_markdown:
        for folder in sorted(p for p in EXECUTED_DIR.glob("*") if p.is_dir() and args.sync_markdown):
            print("\n".join(f"markdown refreshed: {folder.name}/{name}" for name in sync_markdown(folder)))
        ok, lines = check()
        print("\n".join(lines))
        return 0 if ok else 1
    source = args.source or ROOT / "outputs" / args.profile / "executed"
    written = publish(source, EXECUTED_DIR / args.profile, args.profile)
    print("\n".join(f"published {path.relative_to(ROOT)}" for path in written)
          or f"no executed lessons in {source}: run `{REFRESH_COMMAND.replace('cpu', args.profile)}`")
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
