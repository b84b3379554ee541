"""Executed copies of the lessons for readers: publish them from a run, and check that they are not stale.

    python -m llmcourse.publish --profile cpu            # copy outputs/cpu/executed/*.ipynb to docs/executed/cpu/
    python -m llmcourse.publish --check                  # exit 1 when a copy no longer matches its lesson
    python -m llmcourse.run_series --profile cpu --publish   # run the cpu track, then publish (the refresh)

A published copy is the executed notebook with: a header cell first (what made it: hardware, model,
profile, date, and what differs on a T4 with Llama 3.1 8B), machine paths and the user's name replaced by
neutral placeholders, and no widget state. The staleness check compares the code cells of each copy with
its source lesson, ignoring the parameters cell and the cell papermill injects; markdown cells are compared
too (a copy whose text is old would teach the old text), and ``--sync-markdown`` refreshes only those
without running anything when the code cells still match.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
EXECUTED_DIR = REPO_ROOT / "docs" / "executed"
HEADER_TAG = "executed-copy-header"
INJECTED_TAG = "injected-parameters"  # papermill's tag for the cell it adds after the parameters cell
PARAMETERS_TAG = "parameters"
REFRESH_COMMAND = "python -m llmcourse.run_series --profile cpu --publish"
SYNC_COMMAND = "python -m llmcourse.publish --sync-markdown"

# What the cpu track's outputs do not show, said on every executed page.
T4_DIFFERENCES = (
    "**On a free Colab T4 with `meta-llama/Llama-3.1-8B`** (the `t4` profile) the same cells load an "
    "8-billion-parameter model in NF4 (notebook 01 works out its size), compute in fp16 instead of fp32, "
    "use GSM8K instead of the course's own `data/`, and take longer per step. The numbers differ too: the base "
    "8B model already solves many GSM8K problems, and fine-tuning first teaches it the answer format (compare "
    "strict and flexible accuracy), while the 135M model of the cpu track learns a synthetic task nearly from "
    "zero. See *What to expect on each track*."
)


# ----------------------------------------------------------------------------------------------
# Machine paths and user names
# ----------------------------------------------------------------------------------------------


def _path_replacements(repo_root: Path = REPO_ROOT) -> list[tuple[re.Pattern[str], str]]:
    """(pattern, replacement) pairs, most specific first: the repository, the Python prefix, home folders."""
    pairs: list[tuple[re.Pattern[str], str]] = []
    seen: set[str] = set()
    for path, placeholder in ((repo_root, "<course>"), (Path(sys.prefix), "<python>"),
                              (Path(sys.base_prefix), "<python>"), (Path.home(), "~")):
        text = str(path)
        if len(text) > 1 and text not in seen:
            seen.add(text)
            pairs.append((re.compile(re.escape(text) + r"(?=[/\\\s\"'),:]|$)"), placeholder))
    # site-packages wherever it is, and any other home folder
    pairs.append((re.compile(r"(?<![\w>.~-])(?:/[^/\s\"'<>]+)+/(?=(?:site|dist)-packages/)"), "<python>/"))
    pairs.append((re.compile(r"/(?:home|Users)/[^/\s\"']+"), "~"))
    pairs.append((re.compile(r"/root(?=/)"), "~"))
    return pairs


def strip_machine_details(text: str, repo_root: Path = REPO_ROOT, user: str | None = None) -> str:
    """``text`` with absolute machine paths and the user's name replaced by placeholders."""
    for pattern, placeholder in _path_replacements(repo_root):
        text = pattern.sub(placeholder, text)
    user = user if user is not None else _user_name()
    if user and user not in {"root", "user", "runner", "jovyan"} and len(user) >= 3:
        text = re.sub(rf"(?<![A-Za-z0-9_]){re.escape(user)}(?![A-Za-z0-9_])", "<user>", text)
    return text


def _user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (some containers)
        return ""


def _strip_outputs(nb, repo_root: Path) -> None:
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = strip_machine_details(_joined(output["text"]), repo_root)
            if "traceback" in output:
                output["traceback"] = [strip_machine_details(line, repo_root) for line in output["traceback"]]
            if "evalue" in output:
                output["evalue"] = strip_machine_details(output["evalue"], repo_root)
            for kind, value in output.get("data", {}).items():
                if kind.startswith("text/") or kind in {"application/json"}:
                    if isinstance(value, (str, list)):
                        output["data"][kind] = strip_machine_details(_joined(value), repo_root)


def _joined(value) -> str:
    return "".join(value) if isinstance(value, list) else value


# ----------------------------------------------------------------------------------------------
# Publishing
# ----------------------------------------------------------------------------------------------


def header_source(profile: str, model_id: str, hardware: str, date: str, source_name: str) -> str:
    return (
        f"> **Executed copy: these are the `{profile}` track's outputs.** Made on {date} by "
        f"`{REFRESH_COMMAND.replace('cpu', profile)}` on {hardware}, with the model `{model_id}` "
        f"(profile `{profile}`). The lesson itself is `notebooks/{source_name}`, stored without outputs; open it "
        f"in Colab to run it.\n>\n> {T4_DIFFERENCES}"
    )


def hardware_description() -> str:
    """A short, anonymous description of the machine: CPU count and kind, GPU name if any."""
    cpus = os.cpu_count() or 0
    text = f"{cpus} CPU core{'s' if cpus != 1 else ''} ({platform.machine() or 'unknown'})"
    try:
        import torch

        if torch.cuda.is_available():
            text += f", {torch.cuda.get_device_name(0)}"
        else:
            text += ", no GPU"
    except ImportError:
        pass
    return text


def model_id_of(profile: str) -> str:
    from llmcourse.profiles import PROFILES

    return PROFILES[profile].model_id if profile in PROFILES else "(see the parameters cell)"


def publish(source_dir: Path, target_dir: Path, profile: str, notebooks_dir: Path = REPO_ROOT / "notebooks",
            repo_root: Path = REPO_ROOT, date: str | None = None, hardware: str | None = None,
            model_id: str | None = None) -> list[Path]:
    """Copy the executed notebooks in ``source_dir`` that have a source lesson to ``target_dir``, with a
    header cell, machine details stripped and run metadata dropped. Returns the files written."""
    import nbformat

    date = date or dt.date.today().isoformat()
    hardware = hardware or hardware_description()
    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for executed in sorted(source_dir.glob("*.ipynb")):
        if not (notebooks_dir / executed.name).is_file():
            continue
        nb = nbformat.read(executed, as_version=4)
        passed = nb.metadata.get("papermill", {}).get("parameters", {})
        model = model_id or passed.get("MODEL_ID") or model_id_of(profile)
        nb.cells = [c for c in nb.cells if HEADER_TAG not in c.metadata.get("tags", [])]
        header = nbformat.v4.new_markdown_cell(header_source(profile, model, hardware, date, executed.name))
        header.metadata["tags"] = [HEADER_TAG]
        header.id = "executed-copy-header"
        nb.cells.insert(0, header)
        for key in ("widgets",):
            nb.metadata.pop(key, None)
        if "papermill" in nb.metadata:
            nb.metadata["papermill"] = {"parameters": nb.metadata["papermill"].get("parameters", {})}
        for cell in nb.cells:
            cell.metadata.pop("papermill", None)
            cell.metadata.pop("execution", None)
        _strip_outputs(nb, repo_root)
        target = target_dir / executed.name
        text = strip_machine_details(nbformat.writes(nb), repo_root) + "\n"
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


# ----------------------------------------------------------------------------------------------
# Staleness
# ----------------------------------------------------------------------------------------------


def _compared_cells(nb) -> list[tuple[str, str]]:
    """(type, source) of the cells a copy must share with its lesson: no header, no parameters cells."""
    skip = {HEADER_TAG, INJECTED_TAG, PARAMETERS_TAG}
    return [(c.cell_type, c.source) for c in nb.cells if not skip & set(c.metadata.get("tags", []))]


@dataclass(frozen=True)
class Staleness:
    name: str
    code_differs: bool
    markdown_differs: bool
    detail: str


def stale_copies(executed_dir: Path, notebooks_dir: Path = REPO_ROOT / "notebooks") -> list[Staleness]:
    """Every copy in ``executed_dir`` that differs from its lesson in ``notebooks_dir``."""
    import nbformat

    problems = []
    for copy_path in sorted(executed_dir.glob("*.ipynb")):
        source_path = notebooks_dir / copy_path.name
        if not source_path.is_file():
            problems.append(Staleness(copy_path.name, True, False, "its lesson no longer exists"))
            continue
        copied = _compared_cells(nbformat.read(copy_path, as_version=4))
        source = _compared_cells(nbformat.read(source_path, as_version=4))
        code_copy = [s for t, s in copied if t == "code"]
        code_source = [s for t, s in source if t == "code"]
        md_copy = [s for t, s in copied if t == "markdown"]
        md_source = [s for t, s in source if t == "markdown"]
        code_differs = code_copy != code_source
        markdown_differs = md_copy != md_source
        if code_differs or markdown_differs:
            detail = []
            if code_differs:
                first = next((i for i, (a, b) in enumerate(zip(code_copy, code_source, strict=False)) if a != b),
                             min(len(code_copy), len(code_source)))
                detail.append(f"code cells differ (first at code cell {first + 1}; "
                              f"{len(code_copy)} in the copy, {len(code_source)} in the lesson)")
            if markdown_differs:
                detail.append("markdown cells differ")
            problems.append(Staleness(copy_path.name, code_differs, markdown_differs, "; ".join(detail)))
    return problems


def sync_markdown(executed_dir: Path, notebooks_dir: Path = REPO_ROOT / "notebooks") -> list[str]:
    """Copy the lessons' markdown cells into the copies whose code cells still match (no run needed)."""
    import nbformat

    synced = []
    for problem in stale_copies(executed_dir, notebooks_dir):
        if problem.code_differs or not problem.markdown_differs:
            continue
        copy_path = executed_dir / problem.name
        copied = nbformat.read(copy_path, as_version=4)
        source = nbformat.read(notebooks_dir / problem.name, as_version=4)
        skip = {HEADER_TAG, INJECTED_TAG}
        kept = [c for c in copied.cells if not skip & set(c.metadata.get("tags", []))]
        if len(kept) != len(source.cells) or any(a.cell_type != b.cell_type for a, b in zip(kept, source.cells, strict=True)):
            continue  # cells were added or moved: only a run can refresh it
        for mine, theirs in zip(kept, source.cells, strict=True):
            if mine.cell_type == "markdown":
                mine.source = theirs.source
        copy_path.write_text(nbformat.writes(copied) + "\n", encoding="utf-8")
        synced.append(problem.name)
    return synced


def check(executed_root: Path = EXECUTED_DIR, notebooks_dir: Path = REPO_ROOT / "notebooks",
          lessons: list[str] | None = None) -> tuple[bool, list[str]]:
    """(ok, lines to print) for every profile folder under ``executed_root``."""
    lines: list[str] = []
    folders = sorted(p for p in executed_root.glob("*") if p.is_dir()) if executed_root.is_dir() else []
    if not folders:
        return True, [f"no executed copies in {executed_root.relative_to(REPO_ROOT) if executed_root.is_relative_to(REPO_ROOT) else executed_root}"
                      f" yet: nothing to check (publish them with `{REFRESH_COMMAND}`)"]
    ok = True
    stale_any, code_any, missing_any = False, False, False
    for folder in folders:
        problems = stale_copies(folder, notebooks_dir)
        expected = lessons if lessons is not None else _series_notebooks()
        missing = [name for name in expected if not (folder / name).is_file()]
        for problem in problems:
            ok, stale_any = False, True
            code_any = code_any or problem.code_differs
            lines.append(f"{folder.name}/{problem.name} is stale: {problem.detail}")
        for name in missing:
            ok, missing_any = False, True
            lines.append(f"{folder.name}/{name} is missing: the series runs it but no executed copy is published")
        if not problems and not missing:
            lines.append(f"{folder.name}: {len(list(folder.glob('*.ipynb')))} executed copies match their lessons")
    if not ok:
        only_markdown = stale_any and not code_any and not missing_any
        lines.append(f"Refresh them with `{REFRESH_COMMAND}` (it runs the whole cpu track)"
                     + (f", or, as only markdown changed, with `{SYNC_COMMAND}`" if only_markdown else "") + ".")
    return ok, lines


def _series_notebooks() -> list[str]:
    from llmcourse.run_series import NOTEBOOKS

    return list(NOTEBOOKS)


def publish_run(profile: str, out_dir: Path, log=print) -> list[Path]:
    """The hook ``run_series --publish`` calls after a successful run: publish and say where."""
    written = publish(out_dir, EXECUTED_DIR / profile, profile)
    for path in written:
        log(f"published {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu", help="the profile whose executed notebooks are published")
    parser.add_argument("--source", type=Path, help="default: outputs/<profile>/executed")
    parser.add_argument("--check", action="store_true", help="only check that the copies match their lessons")
    parser.add_argument("--sync-markdown", action="store_true",
                        help="copy the lessons' markdown into copies whose code cells still match")
    args = parser.parse_args(argv)
    if args.check:
        ok, lines = check()
        print("\n".join(lines))
        return 0 if ok else 1
    if args.sync_markdown:
        for folder in sorted(p for p in EXECUTED_DIR.glob("*") if p.is_dir()):
            for name in sync_markdown(folder):
                print(f"markdown refreshed: {folder.name}/{name}")
        ok, lines = check()
        print("\n".join(lines))
        return 0 if ok else 1
    source = args.source or REPO_ROOT / "outputs" / args.profile / "executed"
    written = publish(source, EXECUTED_DIR / args.profile, args.profile)
    if not written:
        print(f"no executed lessons in {source}: run `{REFRESH_COMMAND.replace('cpu', args.profile)}`")
        return 1
    for path in written:
        print(f"published {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
