"""Generated navigation, Colab badges, README tables and clean notebooks.

    python scripts/build_navigation.py           # rewrite the notebooks and the README's generated sections
    python scripts/build_navigation.py --check   # change nothing; exit 1 on anything out of date

For every notebook under ``notebooks/`` (the lessons ``NN_*.ipynb``, the day-before check ``00_*`` and
``solutions/*``) it writes a first and a last markdown cell marked ``<!--NAVIGATION-->`` (the Colab badge and a
"< previous | contents | next >" line, as the Python Data Science Handbook's ``tools/add_navigation.py``), writes
the address and branch of ``pyproject.toml`` (``[project.urls] Repository``, ``[tool.llmcourse] branch``) into
the setup cell's ``REPO_URL, REPO_BRANCH = ...`` line, keeps every other setup cell identical to the first
lesson's, writes the "Time and hardware" tables from ``scripts/time_tables.py``, and stores the notebooks clean
with nbstripout (cell ids kept). In the README it writes the sections between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->`` (site link, notebook table, times, troubleshooting table). Links to local files are
checked by pytest-check-links (scripts/run_tests.sh); this script checks only what that cannot: that each Colab
badge and GitHub link to this repository names its branch and a file that exists.
"""

from __future__ import annotations

import argparse
import json
import posixpath
import re
import subprocess
import sys
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!--NAVIGATION-->"
TOP_ID, BOTTOM_ID = "navigation-top", "navigation-bottom"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
DEFAULT_CONTENTS_ANCHOR = "the-notebooks"
# Each generated README section and where it comes from (said in the section, so nobody edits it by hand).
GENERATED_FROM = {
    "site": "pyproject.toml's Repository address",
    "notebooks": "the notebooks' titles and objectives",
    "troubleshooting": "llmcourse/troubleshooting.py",
    "times": "scripts/time_tables.py",
    "seeds": "benchmarks/results/cpu_track_seeds.md",
    "batched": "benchmarks/results/batched_vs_sequential.json",
}
MADE_BY = {"seeds": "benchmarks/cpu_track_seeds.py", "batched": "benchmarks/batched_vs_sequential.py"}
# The "Time and hardware" table of a notebook: the heading line, a blank line, then the table's lines.
TIME_TABLE = re.compile(r"(\*\*Time and hardware\*\*\n\n)((?:\|[^\n]*\|[ \t]*(?:\n|$))+)")
REPO_LINE = re.compile(r'^REPO_URL, REPO_BRANCH = "[^"]*", "[^"]*"', re.MULTILINE)
# nbstripout, keeping cell ids (the lead merges notebooks with git) and dropping what papermill records too.
NBSTRIPOUT = [sys.executable, "-m", "nbstripout", "--keep-id", "--extra-keys", "metadata.papermill cell.metadata.papermill"]
# A Colab badge or a GitHub link to a file of a repository: (owner/name, branch, path).
REPO_LINK = re.compile(r"https://(?:colab\.research\.google\.com/github|github\.com)/([^/\s)]+/[^/\s)]+)/"
                       r"(?:blob|tree|raw)/([^/\s)]+)/([^\s)#?\"'>]*)")


@dataclass(frozen=True)
class RepoInfo:
    """Where the course lives on GitHub: ``https://github.com/<owner>/<name>``, branch ``branch``."""

    url: str
    branch: str = "main"

    @property
    def slug(self) -> str:
        """``owner/name``."""
        match = re.fullmatch(r"https://github\.com/([^/\s]+/[^/\s]+?)(?:\.git)?/?", self.url)
        if not match:
            raise ValueError(f"[project.urls] Repository must be https://github.com/<owner>/<repo>, got {self.url!r}")
        return match.group(1)

    @property
    def pages_url(self) -> str:
        """The course site's address on GitHub Pages: ``https://<owner>.github.io/<name>/``."""
        owner, name = self.slug.split("/")
        return f"https://{owner.lower()}.github.io/{name}/"

    def colab_url(self, path: str) -> str:
        """The Colab address that opens ``path`` (relative to the repository root) from GitHub."""
        return f"https://colab.research.google.com/github/{self.slug}/blob/{self.branch}/{path}"


def repo_info(root: Path = ROOT) -> RepoInfo:
    """The address from ``pyproject.toml``: ``[project.urls] Repository`` and ``[tool.llmcourse] branch``."""
    import tomllib

    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    info = RepoInfo(data["project"]["urls"]["Repository"].rstrip("/"), data["tool"]["llmcourse"]["branch"])
    info.slug  # noqa: B018 - validates the address early, with a clear message
    return info


def lesson_notebooks(root: Path = ROOT) -> list[Path]:
    """``notebooks/NN_*.ipynb`` in order: ``00_*`` (the day-before check) first, then the lessons."""
    return sorted(p for p in (root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def solution_notebooks(root: Path = ROOT) -> list[Path]:
    return sorted((root / "notebooks" / "solutions").glob("*.ipynb"))


def all_notebooks(root: Path = ROOT) -> list[Path]:
    """Every notebook the script manages, in navigation order (lessons, then solutions)."""
    return lesson_notebooks(root) + solution_notebooks(root)


def lesson_of(solution: Path, root: Path = ROOT) -> Path | None:
    """``solutions/03_x_solutions.ipynb`` -> ``notebooks/03_x.ipynb`` (when it exists)."""
    name = solution.name.removesuffix(".ipynb").removesuffix("_solutions") + ".ipynb"
    lesson = root / "notebooks" / name
    return lesson if lesson.exists() else None


def solution_of(lesson: Path, root: Path = ROOT) -> Path | None:
    candidate = root / "notebooks" / "solutions" / f"{lesson.stem}_solutions.ipynb"
    return candidate if candidate.exists() else None


# ----------------------------------------------------------------------------------------------
# Reading a notebook's title and objectives
# ----------------------------------------------------------------------------------------------


def is_navigation_cell(cell) -> bool:
    return cell.cell_type == "markdown" and cell.source.lstrip().startswith(MARKER)


def content_cells(nb) -> list:
    return [c for c in nb.cells if not is_navigation_cell(c)]


def title_of(nb, fallback: str = "") -> str:
    """The first H1 of the notebook's markdown (navigation cells excluded)."""
    lines = (line for c in content_cells(nb) if c.cell_type == "markdown" for line in c.source.splitlines())
    return next((line[2:].strip() for line in lines if line.startswith("# ")), fallback)


def plain(text: str) -> str:
    """Markdown emphasis and code marks removed, for link texts: ``The **before** number`` -> ``The before number``."""
    return re.sub(r"\*\*|__|`|(?<!\w)[*_](?=\S)|(?<=\S)[*_](?!\w)", "", text).strip()


def learning_objectives(nb, limit: int = 2) -> list[str]:
    """The first ``limit`` bullets under "What you will learn" (joined across wrapped lines)."""
    for cell in content_cells(nb):
        if cell.cell_type != "markdown" or "what you will learn" not in cell.source.lower():
            continue
        lines = cell.source.splitlines()
        start = next(i for i, line in enumerate(lines) if "what you will learn" in line.lower())
        bullets: list[str] = []
        for line in lines[start + 1 :]:
            if re.match(r"\s*[-*] ", line):
                bullets.append(re.sub(r"^\s*[-*] ", "", line).strip())
            elif bullets and line.startswith((" ", "\t")) and line.strip():
                bullets[-1] += " " + line.strip()
            elif bullets or (line.strip() and not line.strip().startswith("**")):
                break
        return [b.rstrip(";.,") for b in bullets[:limit]]
    return []


# ----------------------------------------------------------------------------------------------
# Navigation cells
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NavEntry:
    """One notebook in a navigation chain: its path from the repository root and its link text."""

    path: str  # e.g. "notebooks/01_load_model_4bit.ipynb"
    title: str


def _relative(target: str, start: str) -> str:
    """``target`` relative to the folder of ``start`` (both relative to the repository root), with ``/``."""
    return posixpath.relpath(target, posixpath.dirname(start) or ".")


def navigation_line(this: str, previous: NavEntry | None, following: NavEntry | None,
                    contents_anchor: str = DEFAULT_CONTENTS_ANCHOR, lesson: NavEntry | None = None) -> str:
    """``< [previous](..) | [Contents](../README.md#..) | [next](..) >`` with links relative to ``this``."""
    parts = [f"[{previous.title}]({_relative(previous.path, this)})"] if previous else []
    parts.append(f"[Contents]({_relative('README.md', this)}#{contents_anchor})")
    if lesson is not None:
        parts.append(f"[Back to the lesson: {lesson.title}]({_relative(lesson.path, this)})")
    if following is not None:
        parts.append(f"[{following.title}]({_relative(following.path, this)})")
    return ("< " if previous is not None else "") + " | ".join(parts) + (" >" if following is not None else "")


def expected_navigation(this: str, repo: RepoInfo, previous: NavEntry | None, following: NavEntry | None,
                        contents_anchor: str = DEFAULT_CONTENTS_ANCHOR, lesson: NavEntry | None = None) -> tuple[str, str]:
    """The sources of the top cell (badge and navigation line) and of the bottom cell (navigation line)."""
    line = navigation_line(this, previous, following, contents_anchor, lesson)
    return f"{MARKER}\n[![Open In Colab]({BADGE_IMAGE})]({repo.colab_url(this)})\n\n{line}", f"{MARKER}\n{line}"


def set_navigation(nb, top: str, bottom: str) -> bool:
    """Replace every navigation cell by ``top`` (first cell) and ``bottom`` (last cell); True if it changed."""
    before = [(c.cell_type, c.source, c.get("id")) for c in nb.cells]
    cells = [nbformat.v4.new_markdown_cell(top, id=TOP_ID), *content_cells(nb),
             nbformat.v4.new_markdown_cell(bottom, id=BOTTOM_ID)]
    nb.cells = cells
    return [(c.cell_type, c.source, c.get("id")) for c in nb.cells] != before


# ----------------------------------------------------------------------------------------------
# The setup cell, clean notebooks, time tables
# ----------------------------------------------------------------------------------------------


def setup_cell(nb):
    """The code cell that names ``REPO_URL`` (the setup cell every notebook starts with), or None."""
    return next((c for c in nb.cells if c.cell_type == "code" and "REPO_URL" in c.source), None)


def serialize(nb) -> str:
    """The stored form: nbformat's JSON (indent 1, sorted keys) and a final newline."""
    return nbformat.writes(nb) + "\n"


def unclean(paths: Sequence[Path], check: bool) -> list[Path]:
    """The notebooks nbstripout finds outputs, execution counts or run metadata in (cleaned unless ``check``)."""
    if not paths:
        return []
    found = subprocess.run([*NBSTRIPOUT, "--dry-run", *map(str, paths)], capture_output=True, text=True, check=True)
    dirty = [Path(line.removeprefix("Dry run: would have stripped ")) for line in found.stdout.splitlines()]
    if dirty and not check:
        subprocess.run([*NBSTRIPOUT, *map(str, dirty)], check=True)
    return dirty


def _timings(root: Path):
    """``scripts/time_tables.py`` of the repository at ``root``: the tables of ``scripts/time_tables.py``'s figures."""
    for path in (root, root / "scripts"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    import time_tables

    return time_tables


def set_time_table(nb, table: str) -> bool | None:
    """Replace the table under "**Time and hardware**" by ``table``; True if it changed, None if there is none."""
    for cell in nb.cells:
        match = TIME_TABLE.search(cell.source) if cell.cell_type == "markdown" else None
        if match:
            ending = "\n" if match.group(2).endswith("\n") else ""
            new = cell.source[: match.start(2)] + table + ending + cell.source[match.end(2) :]
            changed, cell.source = new != cell.source, new
            return changed
    return None


# ----------------------------------------------------------------------------------------------
# README sections
# ----------------------------------------------------------------------------------------------


def slugify(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_~]|<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def contents_anchor(readme_text: str | None) -> str:
    """The anchor of the README heading just above the notebook table (``the-notebooks`` without one)."""
    if not readme_text or "<!-- notebooks:start -->" not in readme_text:
        return DEFAULT_CONTENTS_ANCHOR
    above = readme_text.split("<!-- notebooks:start -->", 1)[0]
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", above, re.MULTILINE)
    return slugify(headings[-1]) if headings else DEFAULT_CONTENTS_ANCHOR


def _cell_text(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")

def notebooks_table(root: Path, repo: RepoInfo, notebooks: dict) -> str:
    """The README's table of notebooks: number and title, Colab badge, what it teaches, its solutions."""
    rows = ["| Notebook | Open | What you will learn | Solutions |", "|---|---|---|---|"]
    for path in lesson_notebooks(root):
        nb, rel = notebooks[path], path.relative_to(root).as_posix()
        solution = solution_of(path, root)
        srel = solution.relative_to(root).as_posix() if solution else None
        solved = f"[solutions]({srel}) ([Colab]({repo.colab_url(srel)}))" if srel else "-"
        teaches = " ".join(("; ".join(learning_objectives(nb)) or "-").split()).replace("|", "\\|")
        rows.append(f"| [{plain(title_of(nb, path.stem))}]({rel}) | [![Open In Colab]({BADGE_IMAGE})]"
                    f"({repo.colab_url(rel)}) | {teaches} | {solved} |")
    return "\n".join(rows)


def readme_sections(root: Path, repo: RepoInfo, notebooks: dict) -> dict[str, str]:
    """The body of each generated README section."""
    from llmcourse.troubleshooting import markdown_table

    return {"site": f"**Read the course online**, with the lessons' outputs, a glossary and a reading list: "
                    f"<{repo.pages_url}> (built by `bash scripts/build_site.sh`, published by "
                    "`.github/workflows/pages.yml`).",
            "notebooks": notebooks_table(root, repo, notebooks),
            "troubleshooting": markdown_table(),
            "times": _timings(root).readme_table(),
            "seeds": result_text(root, "seeds"), "batched": result_text(root, "batched")}


def result_text(root: Path, name: str) -> str:
    """A benchmark's result file (``GENERATED_FROM[name]``), for the README and the lessons that quote it."""
    path = root / GENERATED_FROM[name]
    if not path.is_file():
        return f"Not measured yet: `python {MADE_BY[name]}` writes `{GENERATED_FROM[name]}`."
    if path.suffix == ".json":  # batched_vs_sequential.py's figures
        f = json.loads(path.read_text())

        def batched(figures: dict) -> str:
            count = -(-f["questions"] // figures["batch_size"])
            return f"batched (up to {figures['batch_size']} a batch: {count} batch{'es' * (count > 1)})"

        text = (f"Measured on the cpu track ({f['threads']} threads, `{MADE_BY[name]}`): {f['questions']} questions "
                f"{batched(f)} took {f['batched_s']:.0f} s, one at a time {f['one_at_a_time_s']:.0f} s: "
                f"**{f['speedup']:.1f}x faster**, with {f['identical_answers']} of {f['questions']} answers identical.")
        if rounds := f.get("speedup_each_round"):
            text += (f" (Times are medians of {len(rounds)} rounds, each path once a round; the rounds' ratios: "
                     f"{', '.join(f'{r:.1f}x' for r in rounds)}.)")
        if also := f.get("also"):  # the same questions at another batch size, in the same run
            text += (f" The same questions {batched(also)} took {also['batched_s']:.0f} s ({also['speedup']:.1f}x): "
                     "every decoding step pays a fixed cost whatever the number of rows, so fewer, fuller batches win.")
        return text
    return path.read_text().strip()


def _section(text: str, name: str) -> str | None:
    match = re.search(rf"<!-- {name}:start -->(.*?)<!-- {name}:end -->", text, re.DOTALL)
    return match.group(1) if match else None


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with the part between ``<!-- name:start -->`` and ``<!-- name:end -->`` replaced (if it has one)."""
    note = f"<!-- generated by scripts/build_navigation.py from {GENERATED_FROM[name]}: do not edit by hand -->"
    return re.sub(rf"(<!-- {name}:start -->)(.*?)(<!-- {name}:end -->)",
                  lambda m: f"{m.group(1)}\n{note}\n{body}\n{m.group(3)}", text, count=1, flags=re.DOTALL)


# ----------------------------------------------------------------------------------------------
# Links to this repository on Colab and GitHub (pytest-check-links checks the local ones)
# ----------------------------------------------------------------------------------------------


def broken_links(paths: Iterable[Path], root: Path, repo: RepoInfo) -> list[str]:
    """One line per Colab badge or GitHub link to this repository that names another branch or a missing
    file (pytest-check-links would fetch them from the web, which a test run offline cannot)."""
    problems = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        for match in REPO_LINK.finditer(text):
            slug, branch, target = match.groups()
            if slug.lower() != repo.slug.lower():
                if "colab.research" in match.group(0):
                    problems.append(f"{shown}: {match.group(0)} -> Colab badge points at another repository ({slug})")
                continue
            if branch != repo.branch:
                problems.append(f"{shown}: {match.group(0)} -> points at branch {branch!r}, the course's is {repo.branch!r}")
            elif not (root / urllib.parse.unquote(target)).exists():
                problems.append(f"{shown}: {match.group(0)} -> {target} does not exist in this repository")
    return problems


def checked_documents(root: Path = ROOT) -> list[Path]:
    """README.md, docs/*.md, data/README.md and the notebooks."""
    docs = [root / "README.md", *sorted((root / "docs").glob("*.md")), root / "data" / "README.md"]
    return [p for p in docs if p.is_file()] + all_notebooks(root)


# ----------------------------------------------------------------------------------------------
# The whole build
# ----------------------------------------------------------------------------------------------


@dataclass
class Result:
    problems: list[str]  # what --check reports (each one fails it)
    written: list[str]  # files written (empty with check=True)


def build(root: Path = ROOT, check: bool = False) -> Result:
    """Bring every notebook and the README up to date (or, with ``check``, only say what is not)."""
    repo = repo_info(root)
    problems = [f"{p.relative_to(root).as_posix()}: not clean (nbstripout finds outputs, execution counts or run "
                "metadata)" for p in unclean(all_notebooks(root), check)]
    written: list[str] = []
    readme = root / "README.md"
    texts = {path: path.read_text(encoding="utf-8") for path in all_notebooks(root)}
    notebooks = {path: nbformat.reads(text, as_version=4) for path, text in texts.items()}
    lessons, solutions = lesson_notebooks(root), solution_notebooks(root)
    entries = {p: NavEntry(p.relative_to(root).as_posix(), plain(title_of(nb, p.stem))) for p, nb in notebooks.items()}
    anchor = contents_anchor(readme.read_text(encoding="utf-8"))
    first_lesson = next(p for p in lessons if not p.name.startswith("00_"))
    canonical = REPO_LINE.sub(f'REPO_URL, REPO_BRANCH = "{repo.url}", "{repo.branch}"',
                              setup_cell(notebooks[first_lesson]).source, count=1)
    timings = _timings(root)

    for chain in (lessons, solutions):
        for index, path in enumerate(chain):
            nb, rel = notebooks[path], path.relative_to(root).as_posix()
            previous = entries[chain[index - 1]] if index > 0 else None
            following = entries[chain[index + 1]] if index + 1 < len(chain) else None
            lesson = entries.get(lesson_of(path, root)) if chain is solutions else None
            reasons = ["navigation cells out of date"] if set_navigation(
                nb, *expected_navigation(rel, repo, previous, following, anchor, lesson)) else []
            cell = setup_cell(nb)
            if cell is None:
                problems.append(f"{rel}: no setup cell (a code cell that names REPO_URL)")
            elif cell.source != canonical:
                cell.source = canonical
                reasons.append(f"setup cell differs from {first_lesson.name}'s (or REPO_URL / REPO_BRANCH from "
                               "pyproject.toml)")
            for name, cell in [(n, c) for n in MADE_BY for c in nb.cells if f"<!-- {n}:start -->" in c.source]:
                cell.source, old = replace_section(cell.source, name, result_text(root, name)), cell.source
                reasons += [f"{name} section differs from {GENERATED_FROM[name]}"] if cell.source != old else []
            if chain is lessons and path.name[:2] in timings.NOTEBOOKS:
                if set_time_table(nb, timings.notebook_table(path.name[:2])):
                    reasons.append("Time and hardware table differs from scripts/time_tables.py")
            new_text = serialize(nb)
            if new_text != texts[path]:
                if check:
                    problems.append(f"{rel}: {'; '.join(reasons) or 'not stored in nbformat canonical JSON'}")
                else:
                    path.write_text(new_text, encoding="utf-8")
                    written.append(rel)

    generated = [(readme, readme_sections(root, repo, notebooks))]
    guide = root / "docs" / "INSTRUCTOR_GUIDE.md"
    if guide.is_file():
        generated.append((guide, {"times": timings.guide_table()}))
    for path, sections in generated:
        text = path.read_text(encoding="utf-8")
        new = text
        for name, body in sections.items():
            new = replace_section(new, name, body)
        if new != text:
            rel = path.relative_to(root).as_posix()
            if check:
                changed = [n for n in sections if _section(text, n) != _section(new, n)]
                problems.append(f"{rel}: generated section(s) out of date: {', '.join(changed)}")
            else:
                path.write_text(new, encoding="utf-8")
                written.append(rel)
    problems += broken_links(checked_documents(root), root, repo)
    return Result(problems, written)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is out of date")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this script's)")
    args = parser.parse_args(argv)
    result = build(args.root.resolve(), check=args.check)
    for name in result.written:
        print(f"wrote {name}")
    if result.problems:
        print("\n  ".join([f"{len(result.problems)} problem(s):", *result.problems]))
        print("Run `python scripts/build_navigation.py` to rewrite what is generated; fix the links by hand.")
        return 1
    print(f"{len(all_notebooks(args.root))} notebooks clean (nbstripout) and up to date; badges OK.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
