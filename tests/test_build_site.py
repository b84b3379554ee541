"""Unit tests of scripts/build_site.py without building: links made right for the site, GitHub anchors
before headings, lessons taken from the executed copies when they exist (tests/test_site.py builds the site
and checks it in a browser)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("build_site", ROOT / "scripts" / "build_site.py")
build_site = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("build_site", build_site)
_spec.loader.exec_module(build_site)
nav = build_site.nav
REPO = nav.repo_info(ROOT)
PAGES = {"README.md", "notebooks/01_load_model_4bit.ipynb", "docs/GLOSSARY.md", "data/README.md"}


def rewrite(target: str, page: str, html: bool) -> str:
    return build_site._rewrite_link(target, Path(page), PAGES, REPO, html)


def test_links_between_pages_in_notebooks_become_html_from_the_site_root():
    page = "notebooks/01_load_model_4bit.ipynb"
    assert rewrite("../docs/GLOSSARY.md#nf4", page, True) == "__SITE_ROOT__/docs/GLOSSARY.html#nf4"
    assert rewrite("../README.md#the-notebooks", page, True) == "__SITE_ROOT__/index.html#the-notebooks"
    assert rewrite("../data/README.md", page, True) == "__SITE_ROOT__/data/index.html"
    assert rewrite(nav.BADGE_IMAGE, page, True) == "__SITE_ROOT__/assets/colab-badge.svg"


def test_markdown_pages_keep_page_links_and_point_the_readme_at_the_home_page():
    assert rewrite("GLOSSARY.md#nf4", "docs/TRACKS.md", False) == "GLOSSARY.md#nf4"
    assert rewrite("../README.md#time-and-hardware", "docs/TRACKS.md", False) == "../index.md#time-and-hardware"
    assert rewrite(nav.BADGE_IMAGE, "index.md", False) == "assets/colab-badge.svg"


def test_files_that_are_not_pages_link_to_github_and_urls_stay():
    assert rewrite("llmcourse/training.py", "index.md", False) == f"{REPO.url}/blob/{REPO.branch}/llmcourse/training.py"
    assert rewrite("../llmcourse/", "docs/GLOSSARY.md", True) == f"{REPO.url}/tree/{REPO.branch}/llmcourse"
    for kept in ("https://arxiv.org/abs/2106.09685", "#exercises", "mailto:x@example.org"):
        assert rewrite(kept, "docs/GLOSSARY.md", True) == kept


def test_headings_get_github_and_table_of_contents_anchors():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "intro\n## Exercise 3: accept `\\boxed{N}`\ntext\n```\n# not a heading\n```\n## 7. Batched, [left-padded](x.md)")])
    build_site.add_anchors(nb, ["exercise-3-accept", "7-batched-left-padded"])
    source = nb.cells[0].source
    assert '<a id="exercise-3-accept-boxedn"></a><a id="exercise-3-accept"></a>\n\n## Exercise 3' in source
    assert '<a id="7-batched-left-padded"></a>\n\n## 7. Batched' in source
    assert source.count("<a id=") == 3, "no anchor inside a code fence"


def test_lessons_come_from_executed_copies_when_present(tmp_path):
    lesson = "01_load_model_4bit.ipynb"
    (tmp_path / lesson).write_bytes((ROOT / "notebooks" / lesson).read_bytes())
    found = {page.name: (source, is_copy) for page, source, is_copy in build_site.lesson_sources(ROOT, tmp_path)}
    assert found[lesson] == (tmp_path / lesson, True)
    assert found["02_dataset_and_baseline.ipynb"] == (ROOT / "notebooks" / "02_dataset_and_baseline.ipynb", False)
    names = [p.name for p in nav.lesson_notebooks(ROOT)]
    assert [n for n in found if not n.endswith("_solutions.ipynb")] == names, "lesson order, globbed"
