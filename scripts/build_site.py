#!/usr/bin/env python
"""Build the course site (MkDocs + Material + mkdocs-jupyter) from the repository, offline.

    python scripts/build_site.py                 # outputs/site/ (the site), outputs/site-src/ (what it is made from)
    python scripts/build_site.py --out DIR       # another site folder

``bash scripts/build_site.sh`` installs what this needs first. The pages, in this order:

- the overview (the README), the lessons in lesson order (``notebooks/NN_*.ipynb``, globbed, so a new lesson
  joins by itself; the executed copy from ``docs/executed/cpu/`` when one exists, else the clean lesson with a
  note), the solutions, then the reader's pages in ``docs/`` (instructor guide, pitfalls, glossary, reading
  list, tracks, why fine-tune, what next), the troubleshooting table (from ``llmcourse/troubleshooting.py``)
  and the dataset's README;
- everything is served from the site itself: MathJax comes from the ``jupyter-server-mathjax`` package (copied
  in), fonts are the system's, the Colab badge is a local image (the official one is served by Colab's
  site); links to repository files that are not
  pages point at GitHub.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
_spec = importlib.util.spec_from_file_location("build_navigation", ROOT / "scripts" / "build_navigation.py")
nav = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("build_navigation", nav)
_spec.loader.exec_module(nav)

EXECUTED = ROOT / "docs" / "executed" / "cpu"
SITE_ROOT_PLACEHOLDER = "__SITE_ROOT__/"
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe,local/course"
# jupyter-server-mathjax ships the STIX-Web fonts only (as Jupyter configures it): say so to MathJax, and give
# its font-loading probe a local() source instead of about:blank (which Chromium reports as an error).
MATHJAX_LOCAL_CONFIG = """MathJax.Hub.Config({
  MMLorHTML: {prefer: "HTML"},  // not Chrome's native MathML: its fonts are not in the package
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null,
               styles: {"@font-face": {"font-family": "MathJax_Blank", src: "local('MathJax_Blank')"}}},
  // the hidden MathML for screen readers asks for TeX web fonts (\\mathbb...) the package does not ship
  NativeMML: {styles: {"@font-face /*1*/": {src: "local('MathJax_Caligraphic')"},
                       "@font-face /*2*/": {src: "local('MathJax_Caligraphic')"},
                       "@font-face /*3*/": {src: "local('MathJax_AMS')"},
                       "@font-face /*4*/": {src: "local('MathJax_Script')"},
                       "@font-face /*5*/": {src: "local('MathJax_Fraktur')"},
                       "@font-face /*6*/": {src: "local('MathJax_Fraktur')"}}},
  "fast-preview": {disabled: true}, messageStyle: "none"
});
MathJax.Ajax.loadComplete("[MathJax]/config/local/course.js");
"""
# The reader's pages in docs/, in navigation order, with their titles.
READER_PAGES = [
    ("docs/TRACKS.md", "What to expect on each track"),
    ("docs/WHY_FINE_TUNE.md", "Why fine-tune"),
    ("docs/GLOSSARY.md", "Glossary"),
    ("docs/PITFALLS.md", "Pitfalls"),
    ("docs/READING_LIST.md", "Reading list"),
    ("docs/WHAT_NEXT.md", "What next"),
    ("docs/BEYOND_ONE_COLAB.md", "Beyond one Colab"),
    ("docs/INSTRUCTOR_GUIDE.md", "Instructor guide"),
    ("troubleshooting.md", "Troubleshooting"),
    ("data/README.md", "The dataset"),
]
COLAB_BADGE_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20" role="img" aria-label="Open in Colab">
<title>Open in Colab</title><rect width="117" height="20" rx="3" fill="#555"/><rect x="40" width="77" height="20" rx="3" fill="#f9ab00"/>
<rect x="40" width="6" height="20" fill="#f9ab00"/>
<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11"><text x="6" y="14">Open</text>
<text x="45" y="14" fill="#222">in Colab</text></g></svg>
"""
MATHJAX_LOADER = """// Markdown pages: load the site's own MathJax (notebook pages already load it) and typeset the
// formulas that pymdownx.arithmatex marked; also after Material's instant navigation.
(function () {
  function typeset() {
    if (window.MathJax && window.MathJax.Hub) { window.MathJax.Hub.Queue(["Typeset", window.MathJax.Hub]); }
  }
  if (!window.MathJax) {
    window.MathJax = { tex2jax: { inlineMath: [["\\\\(", "\\\\)"]], displayMath: [["\\\\[", "\\\\]"]],
                                  processEscapes: true }, messageStyle: "none" };
    var script = document.createElement("script");
    var base = document.querySelector("script[src$='mathjax-loader.js']").src.replace(/js\\/mathjax-loader\\.js.*$/, "");
    script.src = base + "mathjax/MathJax.js?config=__CONFIG__";
    document.head.appendChild(script);
  } else { typeset(); }
})();
"""
_LINK = re.compile(r"(\]\(\s*<?)([^()\s<>]+)(>?(?:\s+\"[^\"]*\")?\s*\))")
_HTML_SRC = re.compile(r"((?:src|href)\s*=\s*[\"'])([^\"']+)([\"'])")


def run(cmd: list[str], **kwargs) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)


# ----------------------------------------------------------------------------------------------
# Which pages
# ----------------------------------------------------------------------------------------------


def lesson_sources(root: Path = ROOT, executed: Path = EXECUTED) -> list[tuple[Path, Path, bool]]:
    """(site path relative to the docs folder, file to take, is it an executed copy) for every lesson."""
    found = []
    for lesson in nav.lesson_notebooks(root):
        copy = executed / lesson.name
        found.append((Path("notebooks") / lesson.name, copy if copy.is_file() else lesson, copy.is_file()))
    for solution in nav.solution_notebooks(root):
        found.append((Path("notebooks/solutions") / solution.name, solution, False))
    return found


def site_url(root: Path = ROOT) -> str:
    return nav.repo_info(root).pages_url


# ----------------------------------------------------------------------------------------------
# Links: site pages stay relative; other repository files go to GitHub; the badge image is local
# ----------------------------------------------------------------------------------------------


def _rewrite_link(target: str, page: Path, pages: set[str], repo, html: bool) -> str:
    """``target`` as written in ``page`` (a path relative to the docs folder) made right for the site."""
    if target == nav.BADGE_IMAGE:
        return SITE_ROOT_PLACEHOLDER + "assets/colab-badge.svg" if html else _up(page) + "assets/colab-badge.svg"
    if re.match(r"^[a-z][a-z0-9+.-]*:|^#|^/", target, re.IGNORECASE):
        return target
    path, _, anchor = target.partition("#")
    resolved = posixpath.normpath(posixpath.join(page.parent.as_posix(), path)) if path else page.as_posix()
    if resolved in pages:
        if not html:  # MkDocs resolves links between pages in Markdown; the README is the home page, index.md
            return _up(page) + "index.md" + (f"#{anchor}" if anchor else "") if resolved == "README.md" else target
        out = resolved[: -len("README.md")] + "index.html" if resolved.endswith("README.md") else \
            re.sub(r"\.(md|ipynb)$", ".html", resolved)
        return SITE_ROOT_PLACEHOLDER + out + (f"#{anchor}" if anchor else "")
    if resolved.startswith("docs/figures/") or resolved.startswith("assets/"):
        return target if not html else SITE_ROOT_PLACEHOLDER + resolved
    kind = "tree" if (ROOT / resolved).is_dir() else "blob"
    return f"{repo.url}/{kind}/{repo.branch}/{resolved}" + (f"#{anchor}" if anchor else "")


def _up(page: Path) -> str:
    return "../" * (len(page.parts) - 1)


def rewrite_markdown(text: str, page: Path, pages: set[str], repo, html: bool) -> str:
    def link(match: re.Match) -> str:
        return match.group(1) + _rewrite_link(match.group(2), page, pages, repo, html) + match.group(3)

    def attribute(match: re.Match) -> str:
        return match.group(1) + _rewrite_link(match.group(2), page, pages, repo, html) + match.group(3)

    return _HTML_SRC.sub(attribute, _LINK.sub(link, text))


def _toc_ids(path: Path) -> list[str]:
    """The ids mkdocs-jupyter's table of contents links to, in document order (its own function: they can
    differ from the ids nbconvert gives the headings, e.g. for a heading with code in it)."""
    from mkdocs_jupyter.plugin import _get_nb_toc_tokens

    def walk(tokens):
        for token in tokens:
            yield token["id"]
            yield from walk(token.get("children", []))

    return list(walk(_get_nb_toc_tokens(str(path), 6)[0]))


def _heading_lines(nb) -> list[tuple[int, int, str]]:
    """(cell index, line index, heading text) of every Markdown heading outside code fences."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        fence = False
        for number, line in enumerate(cell.source.split("\n")):
            if line.lstrip().startswith(("```", "~~~")):
                fence = not fence
            match = None if fence else re.match(r"^#{1,6}\s+(.+?)\s*#*\s*$", line)
            if match:
                found.append((index, number, match.group(1)))
    return found


def add_anchors(nb, toc_ids: list[str]) -> None:
    """Before each heading, anchors with GitHub's id for it (links written for GitHub, such as
    ``#exercise-3-accept-boxedn``, then work on the site too) and the id the table of contents uses."""
    headings = _heading_lines(nb)
    extra = toc_ids if len(toc_ids) == len(headings) else [""] * len(headings)
    for (index, number, text), toc_id in reversed(list(zip(headings, extra, strict=True))):
        shown = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading: GitHub slugs its text
        ids = dict.fromkeys(i for i in (nav.slugify(shown), toc_id) if i)
        lines = nb.cells[index].source.split("\n")
        lines.insert(number, "".join(f'<a id="{i}"></a>' for i in ids) + "\n")
        nb.cells[index].source = "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Assembling the MkDocs project
# ----------------------------------------------------------------------------------------------


def _note_cell(is_copy: bool, name: str) -> nbformat.NotebookNode | None:
    if is_copy:
        return None
    from publish import REFRESH_COMMAND

    cell = nbformat.v4.new_markdown_cell(
        "> **This page shows the lesson without outputs:** no executed copy of it has been published yet "
        f"(`{REFRESH_COMMAND}` publishes the cpu track's). Open it in Colab to run it."
    )
    cell.metadata["tags"] = ["site-note"]
    return cell


def assemble(src: Path, root: Path = ROOT, executed: Path = EXECUTED) -> dict:
    """Write the MkDocs project to ``src``; return a summary (pages, nav) for the caller and the tests."""
    repo = nav.repo_info(root)
    if src.exists():
        shutil.rmtree(src)
    docs = src / "docs"
    (docs / "assets" / "js").mkdir(parents=True)
    lessons = lesson_sources(root, executed)
    pages = {"README.md", *(p.as_posix() for p, _, _ in lessons)}
    pages |= {path for path, _ in READER_PAGES if path == "troubleshooting.md" or (root / path).is_file()}

    # The overview: the README as the home page.
    readme = (root / "README.md").read_text(encoding="utf-8")
    (docs / "index.md").write_text(rewrite_markdown(readme, Path("index.md"), pages, repo, html=False), encoding="utf-8")
    # The reader's pages.
    for path, _title in READER_PAGES:
        if path == "troubleshooting.md":
            from llmcourse.troubleshooting import markdown_table

            text = ("# Troubleshooting\n\nEvery failure below ends in a message that says what happened and what "
                    "to do; this table is generated from the same messages the code prints "
                    f"([`llmcourse/troubleshooting.py`]({repo.url}/blob/{repo.branch}/llmcourse/troubleshooting.py)).\n\n"
                    + markdown_table() + "\n")
        elif (root / path).is_file():
            text = rewrite_markdown((root / path).read_text(encoding="utf-8"), Path(path), pages, repo, html=False)
        else:
            continue
        (docs / path).parent.mkdir(parents=True, exist_ok=True)
        (docs / path).write_text(text, encoding="utf-8")
    shutil.copytree(root / "docs" / "figures", docs / "docs" / "figures")
    # The lessons: links rewritten for HTML (nbconvert renders their Markdown, MkDocs does not see it).
    for page, source, is_copy in lessons:
        nb = nbformat.read(source, as_version=4)
        note = _note_cell(is_copy, source.name)
        if note is not None:
            nb.cells.insert(1 if nb.cells and nb.cells[0].source.startswith(nav.MARKER) else 0, note)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = rewrite_markdown(cell.source, page, pages, repo, html=True)
        (docs / page).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, docs / page)
        add_anchors(nb, _toc_ids(docs / page))
        nbformat.write(nb, docs / page)
    (docs / "assets" / "colab-badge.svg").write_text(COLAB_BADGE_SVG, encoding="utf-8")
    (docs / "assets" / "js" / "mathjax-loader.js").write_text(MATHJAX_LOADER.replace("__CONFIG__", MATHJAX_CONFIG),
                                                           encoding="utf-8")
    _copy_mathjax(docs / "assets" / "mathjax")

    titles = {p: nav.plain(nav.title_of(nbformat.read(s, as_version=4), p.stem)) for p, s, _ in lessons}
    lesson_nav = [{titles[p]: p.as_posix()} for p, _, _ in lessons if p.parent.name == "notebooks"]
    solution_nav = [{titles[p]: p.as_posix()} for p, _, _ in lessons if p.parent.name == "solutions"]
    nav_tree = [{"Overview": "index.md"}, {"Lessons": lesson_nav}]
    if solution_nav:
        nav_tree.append({"Solutions": solution_nav})
    nav_tree.append({"For readers": [{title: path} for path, title in READER_PAGES if path in pages]})
    config = {
        "site_name": "Fine-tuning Llama 3.1 8B for reasoning",
        "site_url": repo.pages_url,
        "extra": {"social": [{"icon": "fontawesome/brands/github", "link": repo.url, "name": "The course on GitHub"}]},
        "docs_dir": "docs",
        "use_directory_urls": False,
        "theme": {"name": "material", "font": False,
                  "features": ["content.code.copy", "navigation.footer", "navigation.indexes", "search.highlight"]},
        "plugins": ["search", {"mkdocs-jupyter": {
            "include": ["notebooks/*.ipynb", "notebooks/solutions/*.ipynb"],
            "custom_mathjax_url": f"{SITE_ROOT_PLACEHOLDER}assets/mathjax/MathJax.js?config={MATHJAX_CONFIG}",
            "include_requirejs": False, "ignore_h1_titles": True, "toc_depth": 2, "cache": False}}],
        "markdown_extensions": ["tables", "attr_list", "md_in_html", "admonition", "toc",
                                {"pymdownx.arithmatex": {"generic": True}}, "pymdownx.superfences",
                                "pymdownx.highlight", "pymdownx.inlinehilite"],
        "extra_javascript": ["assets/js/mathjax-loader.js"],
        "nav": nav_tree,
        "validation": {"links": {"absolute_links": "info", "unrecognized_links": "info"}},
    }
    (src / "mkdocs.yml").write_text(json.dumps(config, indent=1), encoding="utf-8")  # JSON is YAML
    return {"pages": sorted(pages), "lessons": [p.as_posix() for p, _, _ in lessons],
            "executed": [p.as_posix() for p, _, c in lessons if c], "nav": nav_tree}


def _copy_mathjax(target: Path) -> None:
    spec = importlib.util.find_spec("jupyter_server_mathjax")  # found, not imported: it would need jupyter-server
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("jupyter-server-mathjax is missing: run `bash scripts/build_site.sh` (it installs it), "
                         "or pip install --no-deps jupyter-server-mathjax")
    static = Path(list(spec.submodule_search_locations)[0]) / "static"
    shutil.copytree(static, target, ignore=shutil.ignore_patterns("*.md", "localization", "unpacked"))
    (target / "config" / "local").mkdir(parents=True, exist_ok=True)
    (target / "config" / "local" / "course.js").write_text(MATHJAX_LOCAL_CONFIG, encoding="utf-8")


def finish(site: Path) -> int:
    """Replace the site-root placeholder in every HTML page by the page's relative path to the root."""
    changed = 0
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        if SITE_ROOT_PLACEHOLDER in text:
            up = "../" * (len(page.relative_to(site).parts) - 1)
            page.write_text(text.replace(SITE_ROOT_PLACEHOLDER, up or "./"), encoding="utf-8")
            changed += 1
    return changed


def build(out: Path, src: Path, root: Path = ROOT, executed: Path = EXECUTED) -> dict:
    summary = assemble(src, root, executed)
    if out.exists():
        shutil.rmtree(out)
    run([sys.executable, "-m", "mkdocs", "build", "--clean", "--config-file", str(src / "mkdocs.yml"),
         "--site-dir", str(out.resolve())], cwd=src, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    finish(out)
    (out / ".nojekyll").write_text("")
    summary["html_pages"] = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html")
                                   if not p.relative_to(out).as_posix().startswith("assets/"))
    (src / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "site", help="the built site")
    parser.add_argument("--src", type=Path, default=ROOT / "outputs" / "site-src", help="the assembled MkDocs project")
    parser.add_argument("--executed", type=Path, default=EXECUTED, help="the executed copies to show (default %(default)s)")
    args = parser.parse_args(argv)
    summary = build(args.out, args.src, executed=args.executed)
    executed = len(summary["executed"])
    print(f"site built in {args.out}: {len(summary['html_pages'])} pages, {len(summary['lessons'])} notebooks "
          f"({executed} executed copies, {len(summary['lessons']) - executed} without outputs)")
    print(f"published at {site_url()} by .github/workflows/pages.yml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
