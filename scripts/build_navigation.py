"""Generated navigation, Colab badges, README tables and clean notebooks; link checks.

    python scripts/build_navigation.py           # rewrite the notebooks and the README's generated sections
    python scripts/build_navigation.py --check   # change nothing; exit 1 on anything out of date or broken

For every notebook under ``notebooks/`` (the lessons ``NN_*.ipynb``, the day-before check ``00_*`` and
``solutions/*``) it:

- writes a first markdown cell marked ``<!--NAVIGATION-->`` with the Colab badge and a
  "< previous | contents | next >" line, and the same line as a last cell (in the style of the Python Data
  Science Handbook's ``tools/add_navigation.py``: the marked cells are rewritten on every run, never edited
  by hand);
- rewrites the ``REPO_URL = "..."`` line of the setup cell to the address in ``pyproject.toml``
  (``[project.urls] Repository``, the only place that holds it; the branch is ``[tool.llmcourse] branch``);
- rewrites its ``REPO_BRANCH = "..."`` line to ``[tool.llmcourse] branch`` (the branch the setup cell clones);
- keeps the setup cell of every other notebook (lessons, ``00_*``, solutions) identical to the first lesson's;
- stores the notebook clean: no outputs, no execution counts, no widget state, no execution metadata,
  cell ids kept (a missing id gets a deterministic one).

It rewrites the README's link to the course site (``<!-- site:start -->`` / ``<!-- site:end -->``, the GitHub
Pages address derived from the Repository address), its notebook table (between ``<!-- notebooks:start -->`` and
``<!-- notebooks:end -->``) and troubleshooting table (``<!-- troubleshooting:start -->`` / ``<!-- troubleshooting:end -->``, from
``llmcourse.troubleshooting.markdown_table()``), and checks that every relative link and every Colab badge
in the README, ``docs/*.md``, ``data/README.md`` and the notebooks' markdown points at a file that exists.
"""

from __future__ import annotations

import argparse
import copy
import re
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
COLAB_PREFIX = "https://colab.research.google.com/github/"
DEFAULT_CONTENTS_ANCHOR = "the-notebooks"
SECTIONS = ("site", "notebooks", "troubleshooting", "times")
# Said inside each generated README section, so nobody edits it by hand.
GENERATED_FROM = {
    "notebooks": "the notebooks' titles and objectives",
    "troubleshooting": "llmcourse/troubleshooting.py",
    "times": "llmcourse/timings.py",
    "site": "pyproject.toml's Repository address",
}
# The "Time and hardware" table of a notebook: the heading line, a blank line, then the table's lines.
TIME_TABLE = re.compile(r"(\*\*Time and hardware\*\*\n\n)((?:\|[^\n]*\|[ \t]*(?:\n|$))+)")
# Cell metadata written by papermill, nbclient or Jupyter when a notebook runs: not part of the source.
EXECUTION_METADATA = ("execution", "papermill", "ExecuteTime")
# Notebook metadata a run leaves behind: widget state (often megabytes) and papermill's record.
RUN_METADATA = ("widgets", "papermill")
REPO_URL_LINE = re.compile(r'^REPO_URL = ".*"[ \t]*$', re.MULTILINE)
REPO_BRANCH_LINE = re.compile(r'^REPO_BRANCH = "[^"]*"', re.MULTILINE)


# ----------------------------------------------------------------------------------------------
# Settings: the repository's address, in one place
# ----------------------------------------------------------------------------------------------


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
        return f"{COLAB_PREFIX}{self.slug}/blob/{self.branch}/{path}"


def _read_toml(path: Path) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    return tomllib.loads(path.read_text(encoding="utf-8"))


def repo_info(root: Path = ROOT) -> RepoInfo:
    """The address from ``pyproject.toml``: ``[project.urls] Repository`` and ``[tool.llmcourse] branch``."""
    data = _read_toml(root / "pyproject.toml")
    url = data.get("project", {}).get("urls", {}).get("Repository")
    if not url:
        raise SystemExit("pyproject.toml has no [project.urls] Repository: the notebooks' badges need it.")
    branch = data.get("tool", {}).get("llmcourse", {}).get("branch", "main")
    info = RepoInfo(url.rstrip("/"), branch)
    info.slug  # noqa: B018 - validates the address early, with a clear message
    return info


# ----------------------------------------------------------------------------------------------
# Which notebooks, in which order
# ----------------------------------------------------------------------------------------------


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
    for cell in content_cells(nb):
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return fallback


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
    start_dir = Path(start).parent
    parts_target, parts_start = Path(target).parts, start_dir.parts
    common = 0
    while common < min(len(parts_target), len(parts_start)) and parts_target[common] == parts_start[common]:
        common += 1
    up = [".."] * (len(parts_start) - common)
    return "/".join([*up, *parts_target[common:]]) or "."


def navigation_line(
    this: str,
    previous: NavEntry | None,
    following: NavEntry | None,
    contents_anchor: str = DEFAULT_CONTENTS_ANCHOR,
    lesson: NavEntry | None = None,
) -> str:
    """``< [previous](..) | [Contents](../README.md#..) | [next](..) >`` with links relative to ``this``."""
    parts = []
    if previous is not None:
        parts.append(f"[{previous.title}]({_relative(previous.path, this)})")
    parts.append(f"[Contents]({_relative('README.md', this)}#{contents_anchor})")
    if lesson is not None:
        parts.append(f"[Back to the lesson: {lesson.title}]({_relative(lesson.path, this)})")
    if following is not None:
        parts.append(f"[{following.title}]({_relative(following.path, this)})")
    return ("< " if previous is not None else "") + " | ".join(parts) + (" >" if following is not None else "")


def colab_badge(repo: RepoInfo, path: str) -> str:
    return f"[![Open In Colab]({BADGE_IMAGE})]({repo.colab_url(path)})"


def expected_navigation(
    this: str,
    repo: RepoInfo,
    previous: NavEntry | None,
    following: NavEntry | None,
    contents_anchor: str = DEFAULT_CONTENTS_ANCHOR,
    lesson: NavEntry | None = None,
) -> tuple[str, str]:
    """The sources of the top cell (badge and navigation line) and of the bottom cell (navigation line)."""
    line = navigation_line(this, previous, following, contents_anchor, lesson)
    top = f"{MARKER}\n{colab_badge(repo, this)}\n\n{line}"
    bottom = f"{MARKER}\n{line}"
    return top, bottom


def _markdown_cell(source: str, cell_id: str):
    cell = nbformat.v4.new_markdown_cell(source)
    cell["id"] = cell_id
    return cell


def set_navigation(nb, top: str, bottom: str) -> bool:
    """Replace every navigation cell by ``top`` (first cell) and ``bottom`` (last cell); True if it changed."""
    before = [(c.cell_type, c.source, c.get("id")) for c in nb.cells]
    cells = content_cells(nb)
    nb.cells = [_markdown_cell(top, TOP_ID), *cells, _markdown_cell(bottom, BOTTOM_ID)]
    return [(c.cell_type, c.source, c.get("id")) for c in nb.cells] != before


# ----------------------------------------------------------------------------------------------
# Setup cell and REPO_URL
# ----------------------------------------------------------------------------------------------


def setup_cell(nb):
    """The code cell that assigns ``REPO_URL`` (the setup cell every notebook starts with), or None."""
    for cell in nb.cells:
        if cell.cell_type == "code" and REPO_URL_LINE.search(cell.source):
            return cell
    return None


def set_repo_url(nb, url: str, branch: str | None = None) -> bool:
    """Rewrite the ``REPO_URL = "..."`` line (and ``REPO_BRANCH = "..."``, the branch the setup cell clones,
    when ``branch`` is given); True if it changed. Raises if the notebook has none."""
    cell = setup_cell(nb)
    if cell is None:
        raise LookupError('no setup cell with a REPO_URL = "..." line')
    new = REPO_URL_LINE.sub(f'REPO_URL = "{url}"', cell.source, count=1)
    if branch is not None:
        new = REPO_BRANCH_LINE.sub(f'REPO_BRANCH = "{branch}"', new, count=1)
    changed = new != cell.source
    cell.source = new
    return changed


def set_setup_source(nb, source: str) -> bool:
    """Make the setup cell's source equal ``source``; True if it changed."""
    cell = setup_cell(nb)
    if cell is None or cell.source == source:
        return False
    cell.source = source
    return True


# ----------------------------------------------------------------------------------------------
# Clean notebooks
# ----------------------------------------------------------------------------------------------


def clean_notebook(nb) -> bool:
    """Remove outputs, execution counts, widget state and execution metadata; give missing ids. True if changed."""
    changed = False
    for key in RUN_METADATA:
        if key in nb.metadata:
            del nb.metadata[key]
            changed = True
    used = {c.get("id") for c in nb.cells if c.get("id")}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            if cell.get("outputs"):
                cell.outputs = []
                changed = True
            if cell.get("execution_count") is not None:
                cell.execution_count = None
                changed = True
        for key in EXECUTION_METADATA:
            if key in cell.metadata:
                del cell.metadata[key]
                changed = True
        if not cell.metadata.get("tags", True):  # an empty tag list left by an editor
            del cell.metadata["tags"]
            changed = True
        if nb.nbformat_minor >= 5 and not cell.get("id"):
            new_id, n = f"cell-{index:02d}", 1
            while new_id in used:
                n += 1
                new_id = f"cell-{index:02d}-{n}"
            cell["id"] = new_id
            used.add(new_id)
            changed = True
    return changed


def dirt(nb) -> list[str]:
    """What makes ``nb`` not clean, in words (empty when it is clean)."""
    found = []
    if any(c.cell_type == "code" and c.get("outputs") for c in nb.cells):
        found.append("has outputs")
    if any(c.cell_type == "code" and c.get("execution_count") is not None for c in nb.cells):
        found.append("has execution counts")
    if "widgets" in nb.metadata:
        found.append("has widget state")
    if "papermill" in nb.metadata or any(k in c.metadata for c in nb.cells for k in EXECUTION_METADATA):
        found.append("has execution metadata")
    if nb.nbformat_minor >= 5 and any(not c.get("id") for c in nb.cells):
        found.append("has cells without an id")
    return found


def serialize(nb) -> str:
    """The stored form: nbformat's JSON (indent 1, sorted keys) and a final newline."""
    return nbformat.writes(nb) + "\n"


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


def notebooks_table(root: Path, repo: RepoInfo, notebooks: dict[Path, object] | None = None) -> str:
    """The README's table of notebooks: number and title, Colab badge, what it teaches, its solutions."""
    rows = ["| Notebook | Open | What you will learn | Solutions |", "|---|---|---|---|"]
    for path in lesson_notebooks(root):
        nb = notebooks[path] if notebooks and path in notebooks else nbformat.read(path, as_version=4)
        rel = path.relative_to(root).as_posix()
        title = plain(title_of(nb, path.stem))
        teaches = "; ".join(learning_objectives(nb)) or "-"
        solution = solution_of(path, root)
        if solution is not None:
            srel = solution.relative_to(root).as_posix()
            solved = f"[solutions]({srel}) ([Colab]({repo.colab_url(srel)}))"
        else:
            solved = "-"
        badge = f"[![Open In Colab]({BADGE_IMAGE})]({repo.colab_url(rel)})"
        rows.append(f"| [{_cell_text(title)}]({rel}) | {badge} | {_cell_text(teaches)} | {solved} |")
    return "\n".join(rows)


def _timings(root: Path):
    """``llmcourse.timings`` of the repository at ``root``: the one table every time figure comes from."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from llmcourse import timings

    return timings


def notebook_number(path: Path) -> str:
    """``notebooks/03_x.ipynb`` -> ``"03"``."""
    return path.name[:2]


def set_time_table(nb, table: str) -> bool | None:
    """Replace the table under "**Time and hardware**" by ``table``; True if it changed, None if there is none."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        match = TIME_TABLE.search(cell.source)
        if match is None:
            continue
        ending = "\n" if match.group(2).endswith("\n") else ""
        new = cell.source[: match.start(2)] + table + ending + cell.source[match.end(2) :]
        changed = new != cell.source
        cell.source = new
        return changed
    return None


def site_line(repo: RepoInfo) -> str:
    """The README's link to the course site on GitHub Pages."""
    return (f"**Read the course online**, with the lessons' outputs, a glossary and a reading list: "
            f"<{repo.pages_url}> (built by `bash scripts/build_site.sh`, published by `.github/workflows/pages.yml`).")


def troubleshooting_table(root: Path) -> str:
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from llmcourse.troubleshooting import markdown_table

    return markdown_table()


def replace_section(text: str, name: str, body: str) -> str | None:
    """``text`` with the part between ``<!-- name:start -->`` and ``<!-- name:end -->`` replaced (None: no markers)."""
    pattern = re.compile(rf"(<!-- {name}:start -->)(.*?)(<!-- {name}:end -->)", re.DOTALL)
    if not pattern.search(text):
        return None
    source = GENERATED_FROM.get(name, "the repository")
    note = f"<!-- generated by scripts/build_navigation.py from {source}: do not edit by hand -->"
    return pattern.sub(lambda m: f"{m.group(1)}\n{note}\n{body}\n{m.group(3)}", text, count=1)


def expected_readme(root: Path, repo: RepoInfo, text: str, notebooks: dict | None = None) -> tuple[str, list[str]]:
    """The README with its generated sections up to date, and notes on sections whose markers are missing."""
    notes = []
    bodies = {
        "notebooks": lambda: notebooks_table(root, repo, notebooks),
        "troubleshooting": lambda: troubleshooting_table(root),
        "times": lambda: _timings(root).readme_table(),
        "site": lambda: site_line(repo),
    }
    for name in SECTIONS:
        new = replace_section(text, name, bodies[name]())
        if new is None:
            notes.append(f"README.md has no <!-- {name}:start --> / <!-- {name}:end --> markers: section left alone")
        else:
            text = new
    return text, notes


MINIMAL_README = """# Fine-tuning Llama 3.1 8B for reasoning

<!-- site:start -->
<!-- site:end -->

## The notebooks

<!-- notebooks:start -->
<!-- notebooks:end -->

## Time and hardware

<!-- times:start -->
<!-- times:end -->

## Troubleshooting

<!-- troubleshooting:start -->
<!-- troubleshooting:end -->
"""


# ----------------------------------------------------------------------------------------------
# Links
# ----------------------------------------------------------------------------------------------

_INLINE_LINK = re.compile(r"\]\(\s*<?([^()\s<>]+(?:\([^()\s]*\)[^()\s<>]*)*)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
_REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
_HTML_LINK = re.compile(r"<(?:img|a|source|image)\b[^>]*?\b(?:src|href)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
# A fenced block: an opening fence, then everything up to a closing fence of the same kind (or the end).
_FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,})[^\n]*\n.*?(?:^[ \t]*\2[`~]*[ \t]*$|\Z)", re.DOTALL | re.MULTILINE)
_CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)  # applied within one paragraph at a time
_GITHUB_FILE = re.compile(r"^https://github\.com/([^/]+/[^/]+)/(?:blob|tree|raw)/([^/]+)/([^#?]*)")


def links_in_markdown(text: str) -> list[str]:
    """Link targets of Markdown and HTML links and images, outside code blocks and code spans."""
    text = _FENCE.sub("", text)
    # A code span never crosses a blank line: a lone backtick must not hide the rest of the file.
    text = "\n\n".join(_CODE_SPAN.sub("", block) for block in re.split(r"\n[ \t]*\n", text))
    found = _INLINE_LINK.findall(text) + _REFERENCE_LINK.findall(text) + _HTML_LINK.findall(text)
    return [link.strip() for link in found]


def _markdown_sources(path: Path) -> list[tuple[str, str]]:
    """(where, markdown text) pairs: the whole file, or each markdown cell of a notebook."""
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        return [
            (f"cell {i} ({c.get('id', '?')})", c.source) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
        ]
    return [("", path.read_text(encoding="utf-8"))]


def link_problem(link: str, source: Path, root: Path, repo: RepoInfo | None) -> str | None:
    """Why ``link`` (found in ``source``) is broken, or None when it is fine or cannot be checked offline."""
    if link.startswith(COLAB_PREFIX):
        rest = link[len(COLAB_PREFIX) :].split("#")[0].split("?")[0]
        match = re.fullmatch(r"([^/]+/[^/]+)/blob/([^/]+)/(.+)", rest)
        if not match:
            return "Colab badge URL is not .../github/<owner>/<repo>/blob/<branch>/<path>"
        slug, branch, target = match.groups()
        if repo is not None and slug != repo.slug:
            return f"Colab badge points at another repository ({slug}, this one is {repo.slug})"
        if repo is not None and branch != repo.branch:
            return f"Colab badge points at branch {branch!r}, the course's is {repo.branch!r}"
        if not (root / urllib.parse.unquote(target)).is_file():
            return f"Colab badge points at {target}, which does not exist in this repository"
        return None
    match = _GITHUB_FILE.match(link)
    if match and repo is not None and match.group(1) == repo.slug:
        target = urllib.parse.unquote(match.group(3)).rstrip("/")
        if target and not (root / target).exists():
            return f"GitHub link points at {target}, which does not exist in this repository"
        return None
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", link) or link.startswith(("#", "//")):
        return None  # http(s), mailto and other schemes are not fetched; an anchor stays in the page
    target = urllib.parse.unquote(link.split("#")[0].split("?")[0])
    if not target:
        return None
    resolved = (root / target.lstrip("/")) if target.startswith("/") else (source.parent / target)
    if not resolved.exists():
        return "relative link to a file that does not exist"
    return None


def broken_links(paths: Iterable[Path], root: Path = ROOT, repo: RepoInfo | None = None) -> list[str]:
    """One line per broken relative link or Colab badge in the given Markdown files and notebooks."""
    problems = []
    for path in paths:
        path = Path(path)
        shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        for where, text in _markdown_sources(path):
            for link in links_in_markdown(text):
                problem = link_problem(link, path, root, repo)
                if problem:
                    problems.append(f"{shown}{', ' + where if where else ''}: {link} -> {problem}")
    return problems


def checked_documents(root: Path = ROOT) -> list[Path]:
    """Every file whose links are checked: README.md, docs/*.md, data/README.md and the notebooks."""
    docs = [root / "README.md", *sorted((root / "docs").glob("*.md")), root / "data" / "README.md"]
    return [p for p in docs if p.is_file()] + all_notebooks(root)


# ----------------------------------------------------------------------------------------------
# The whole build
# ----------------------------------------------------------------------------------------------


@dataclass
class Result:
    problems: list[str]  # what --check reports (each one fails it)
    notes: list[str]  # said, but not a failure
    written: list[str]  # files written (empty with check=True)


def _entry(path: Path, root: Path, nb) -> NavEntry:
    return NavEntry(path.relative_to(root).as_posix(), plain(title_of(nb, path.stem)))


def build(root: Path = ROOT, check: bool = False) -> Result:
    """Bring every notebook and the README up to date (or, with ``check``, only say what is not)."""
    repo = repo_info(root)
    problems: list[str] = []
    notes: list[str] = []
    written: list[str] = []
    readme = root / "README.md"
    readme_text = readme.read_text(encoding="utf-8") if readme.is_file() else None
    anchor = contents_anchor(readme_text)

    texts = {path: path.read_text(encoding="utf-8") for path in all_notebooks(root)}
    notebooks = {path: nbformat.reads(text, as_version=4) for path, text in texts.items()}
    lessons, solutions = lesson_notebooks(root), solution_notebooks(root)
    entries = {path: _entry(path, root, nb) for path, nb in notebooks.items()}

    # The setup cell of the first lesson is the one the solutions and the 00 notebook copy.
    first_lesson = next((p for p in lessons if not p.name.startswith("00_")), None)
    canonical_setup = None
    if first_lesson is not None and setup_cell(notebooks[first_lesson]) is not None:
        canonical_setup = copy.deepcopy(notebooks[first_lesson])
        set_repo_url(canonical_setup, repo.url, repo.branch)
        canonical_setup = setup_cell(canonical_setup).source

    for chain in (lessons, solutions):
        for index, path in enumerate(chain):
            nb = notebooks[path]
            rel = path.relative_to(root).as_posix()
            reasons = [f"not clean: {d}" for d in dirt(nb)]
            clean_notebook(nb)
            previous = entries[chain[index - 1]] if index > 0 else None
            following = entries[chain[index + 1]] if index + 1 < len(chain) else None
            lesson = lesson_of(path, root) if chain is solutions else None
            top, bottom = expected_navigation(
                rel, repo, previous, following, anchor, entries.get(lesson) if lesson else None
            )
            if set_navigation(nb, top, bottom):
                reasons.append("navigation cells out of date")
            try:
                if set_repo_url(nb, repo.url, repo.branch):
                    reasons.append(f"REPO_URL is not {repo.url} or REPO_BRANCH is not {repo.branch}")
            except LookupError as err:
                problems.append(f"{rel}: {err}")
            derived = path != first_lesson  # every setup cell is a copy of the first lesson's
            if canonical_setup is not None and setup_cell(nb) is not None and setup_cell(nb).source != canonical_setup:
                if derived:
                    set_setup_source(nb, canonical_setup)
                    reasons.append(f"setup cell differs from {first_lesson.name}'s")
                else:
                    problems.append(f"{rel}: setup cell differs from {first_lesson.name}'s (edit it by hand)")
            if chain is lessons:
                timings = _timings(root)
                number = notebook_number(path)
                if number in timings.MEASURED:
                    if set_time_table(nb, timings.notebook_table(number)):
                        reasons.append("Time and hardware table differs from llmcourse/timings.py")
                elif TIME_TABLE.search("\n".join(c.source for c in nb.cells if c.cell_type == "markdown")):
                    notes.append(f"{rel}: its Time and hardware table is not generated (no entry {number!r} "
                                 "in llmcourse/timings.py MEASURED)")
            new_text = serialize(nb)
            if new_text != texts[path]:
                if not reasons:
                    reasons.append("not stored in nbformat's canonical JSON")
                if check:
                    problems.append(f"{rel}: {'; '.join(reasons)}")
                else:
                    path.write_text(new_text, encoding="utf-8")
                    written.append(rel)

    if readme_text is None:
        notes.append("README.md does not exist yet: its notebook and troubleshooting tables were not written")
    else:
        new_readme, section_notes = expected_readme(root, repo, readme_text, notebooks)
        notes += section_notes
        if new_readme != readme_text:
            if check:
                changed = [name for name in SECTIONS if _section(readme_text, name) != _section(new_readme, name)]
                problems.append(f"README.md: generated section(s) out of date: {', '.join(changed)}")
            else:
                readme.write_text(new_readme, encoding="utf-8")
                written.append("README.md")

    guide = root / "docs" / "INSTRUCTOR_GUIDE.md"
    if guide.is_file():
        guide_text = guide.read_text(encoding="utf-8")
        new_guide = replace_section(guide_text, "times", _timings(root).guide_table())
        if new_guide is None:
            notes.append("docs/INSTRUCTOR_GUIDE.md has no <!-- times:start --> / <!-- times:end --> markers")
        elif new_guide != guide_text:
            if check:
                problems.append("docs/INSTRUCTOR_GUIDE.md: generated section out of date: times")
            else:
                guide.write_text(new_guide, encoding="utf-8")
                written.append("docs/INSTRUCTOR_GUIDE.md")

    # Links are checked on the files as they are on disk now (after writing, unless --check).
    problems += broken_links(checked_documents(root), root, repo)
    return Result(problems, notes, written)


def _section(text: str, name: str) -> str | None:
    match = re.search(rf"<!-- {name}:start -->(.*?)<!-- {name}:end -->", text, re.DOTALL)
    return match.group(1) if match else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is out of date")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this script's)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    result = build(root, check=args.check)
    for note in result.notes:
        print(f"note: {note}")
    for name in result.written:
        print(f"wrote {name}")
    if result.problems:
        print(f"{len(result.problems)} problem(s):" if args.check else "still to fix by hand:")
        for problem in result.problems:
            print(f"  {problem}")
        if args.check:
            print("Run `python scripts/build_navigation.py` to rewrite what is generated; fix broken links by hand.")
        return 1
    total = len(all_notebooks(root))
    print(f"{total} notebooks {'are up to date and clean' if args.check else 'checked'}; links and badges OK.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
