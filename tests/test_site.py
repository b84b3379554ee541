"""The course site in a real browser: headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by
Selenium) opens every page of the built site from a local HTTP server on 127.0.0.1 and checks HTTP 200, no
console errors, every image loaded, formulas rendered (no raw ``$$`` left), every internal link resolving
(its #anchor too), the lessons in order in the navigation, the Colab badge and copy buttons on every lesson
page, and search. Chromium may reach no other host (``--host-resolver-rules``), so a page that needs the
internet fails here. A screenshot of each lesson page goes to ``outputs/site-screenshots/``.

The site comes from ``SITE_DIR`` when set (``scripts/run_tests.sh`` builds it with ``scripts/build_site.sh``
first), else it is built here. Skips with the reason when Chromium, its driver or the site tools are missing
(``scripts/run_tests.sh`` installs them where apt is available).
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import re
import shutil
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "outputs" / "site-screenshots"
pytestmark = pytest.mark.slow

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: bash scripts/build_site.sh "
                                "installs requirements-site.txt")


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


build_site = _load("build_site", ROOT / "scripts" / "build_site.py")
nav = build_site.nav


def _chromium() -> tuple[str, str] | None:
    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    candidates = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
    if os.environ.get("CHROMEWEBDRIVER"):  # GitHub's runners: Chrome and its driver are preinstalled there
        candidates.insert(0, os.path.join(os.environ["CHROMEWEBDRIVER"], "chromedriver"))
    driver = shutil.which("chromedriver") or next((p for p in candidates if os.path.exists(p)), None)
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    given = os.environ.get("SITE_DIR")
    if given:
        path = Path(given)
        assert (path / "index.html").is_file(), f"SITE_DIR={given} holds no built site"
        return path
    pytest.importorskip("mkdocs", reason="the site tools are not installed: run bash scripts/build_site.sh")
    if importlib.util.find_spec("jupyter_server_mathjax") is None:
        pytest.skip("jupyter-server-mathjax is missing: run bash scripts/build_site.sh")
    out = tmp_path_factory.mktemp("site")
    build_site.build(out / "site", out / "src")
    return out / "site"


@pytest.fixture(scope="module")
def server(site, tmp_path_factory):
    """The site served on 127.0.0.1 under the same path as on GitHub Pages (``/<repository name>/``: the
    404 page links its assets from there)."""
    prefix = urllib.parse.urlparse(nav.repo_info(ROOT).pages_url).path.strip("/")
    served = tmp_path_factory.mktemp("served")
    (served / prefix).symlink_to(site.resolve(), target_is_directory=True)
    handler = functools.partial(_QuietHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/{prefix}/"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output readable
        pass

    def handle(self):
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):  # the browser moved on before a file was sent
            pass


@pytest.fixture(scope="module")
def browser():
    found = _chromium()
    if found is None:
        pytest.skip("headless Chromium is not installed (apt-get install -y chromium chromium-driver; "
                    "scripts/run_tests.sh does it where apt is available)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = found[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,1600", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=found[1]), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _pages(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                  if not p.relative_to(site).as_posix().startswith("assets/"))


def _lesson_pages(site: Path) -> list[str]:
    return [p for p in _pages(site) if p.startswith("notebooks/")]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


WAIT_FOR_PAGE = """
const done = arguments[arguments.length - 1];
const started = Date.now();
(function poll() {
  const images = Array.from(document.images).every(i => i.complete);
  const hub = window.MathJax && window.MathJax.Hub;
  const math = !hub || (hub.queue && hub.queue.pending === 0 && hub.queue.running === 0);
  if ((document.readyState === "complete" && images && math) || Date.now() - started > 20000) { done(true); }
  else { setTimeout(poll, 100); }
})();
"""

PAGE_FACTS = """
const body = document.querySelector("article") || document.body;
const copy = body.cloneNode(true);
copy.querySelectorAll("pre, code, script, style, .MathJax_Preview, .highlight").forEach(e => e.remove());
const anchors = Array.from(document.querySelectorAll("a[href]")).map(a => a.href);
const ids = Array.from(document.querySelectorAll("[id]")).map(e => e.id)
  .concat(Array.from(document.querySelectorAll("a[name]")).map(e => e.name));
return {
  text: copy.textContent,
  broken_images: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
  images: document.images.length,
  math_rendered: document.querySelectorAll(".MathJax_CHTML, .MathJax, .MathJax_SVG, mjx-container").length,
  math_errors: document.querySelectorAll(".MathJax_Error, merror, mjx-merror").length,
  anchors: anchors,
  ids: ids,
  badges: Array.from(document.querySelectorAll("a[href^='https://colab.research.google.com/github/'] img"))
    .map(i => ({href: i.closest("a").href, loaded: i.complete && i.naturalWidth > 0})),
  copy_buttons: document.querySelectorAll("clipboard-copy, .md-clipboard").length,
  code_cells: document.querySelectorAll(".jp-CodeCell, pre > code").length,
  nav_lessons: Array.from(document.querySelectorAll("nav.md-nav--primary a.md-nav__link[href]")).map(a => a.href),
};
"""


@pytest.fixture(scope="module")
def visited(site, server, browser) -> dict[str, dict]:
    """Every page opened once in the browser: what it showed, its console errors, a screenshot of lessons."""
    from selenium.webdriver.common.by import By

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    browser.get_log("browser")  # drop anything from before
    facts = {}
    for page in _pages(site):
        url = server + page
        status = _status(url)
        browser.get(url)
        browser.execute_async_script(WAIT_FOR_PAGE)
        time.sleep(0.2)
        info = browser.execute_script(PAGE_FACTS)
        info["status"] = status
        info["raw_html"] = (site / page).read_text(encoding="utf-8")
        info["console"] = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        if page.startswith("notebooks/"):
            shot = SCREENSHOTS / (page.replace("/", "__").removesuffix(".html") + ".png")
            browser.save_screenshot(str(shot))
            info["screenshot"] = shot
            for kind, selector in (("formula", ".MathJax"), ("figure", ".jp-OutputArea-output img")):
                found = browser.find_elements(By.CSS_SELECTOR, selector)
                if found:  # a second screenshot where the first formula or output figure is, to look at
                    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", found[0])
                    browser.save_screenshot(str(shot.with_name(f"{shot.stem}__{kind}.png")))
        facts[page] = info
    return facts


def test_every_page_loads_with_status_200_and_no_console_error(visited):
    assert len(visited) >= 15, sorted(visited)
    problems = {p: (f["status"], f["console"]) for p, f in visited.items() if f["status"] != 200 or f["console"]}
    assert not problems, problems


def test_every_image_loads(visited):
    broken = {p: f["broken_images"] for p, f in visited.items() if f["broken_images"]}
    assert not broken, broken
    assert sum(f["images"] for f in visited.values()) > 0


_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
_MATH = re.compile(r"\$\$.+?\$\$|(?<![\\$\w])\$[^$\s][^$\n]*?(?<![\s\\])\$(?![\w$])|\\\(.+?\\\)", re.DOTALL)


def _source_has_math(page: str) -> bool:
    """Whether the page's source (notebook markdown, or the Markdown file) holds a formula."""
    import nbformat

    stem = page.removesuffix(".html")
    if (ROOT / f"{stem}.ipynb").is_file():
        nb = nbformat.read(ROOT / f"{stem}.ipynb", as_version=4)
        texts = [c.source for c in nb.cells if c.cell_type == "markdown"]
    elif (ROOT / f"{stem}.md").is_file():
        texts = [(ROOT / f"{stem}.md").read_text(encoding="utf-8")]
    else:
        return False
    return any(_MATH.search(_CODE.sub("", text)) for text in texts)


def test_formulas_render_and_no_raw_dollars_are_left(visited):
    has_math = [p for p in visited if _source_has_math(p)]
    assert has_math, "no page has a formula to check (notebooks 01 and 03 have some)"
    for page in has_math:
        facts = visited[page]
        assert facts["math_rendered"] > 0, f"{page}: no formula rendered"
        assert facts["math_errors"] == 0, f"{page}: MathJax errors"
    left = {p: f["text"][max(0, f["text"].find("$$") - 60):][:160] for p, f in visited.items() if "$$" in f["text"]}
    assert not left, left


def test_every_internal_link_resolves(visited, server):
    checked: dict[str, int] = {}
    missing = []
    for page, facts in visited.items():
        for href in facts["anchors"]:
            if not href.startswith(server):
                continue
            target, _, fragment = href.partition("#")
            if target not in checked:
                checked[target] = _status(target)
            if checked[target] != 200:
                missing.append(f"{page} -> {href} (HTTP {checked[target]})")
                continue
            target_page = urllib.parse.unquote(target[len(server):]) or "index.html"
            if target_page.endswith("/"):
                target_page += "index.html"
            if fragment and target_page in visited and urllib.parse.unquote(fragment) not in visited[target_page]["ids"]:
                missing.append(f"{page} -> {href} (no element with id {fragment!r})")
    assert not missing, "\n".join(missing)
    assert len(checked) >= 15


def test_navigation_follows_the_lesson_order(visited, server):
    expected = [f"notebooks/{p.name.removesuffix('.ipynb')}.html" for p in nav.lesson_notebooks(ROOT)]
    shown = [h[len(server):] for h in visited["index.html"]["nav_lessons"]
             if re.match(r"notebooks/\d\d_[^/]*\.html$", h[len(server):])]
    assert shown == expected


def test_every_lesson_page_has_its_colab_badge_and_copy_buttons(visited, site):
    repo = nav.repo_info(ROOT)
    lessons = _lesson_pages(site)
    assert len(lessons) == len(nav.all_notebooks(ROOT))
    for page in lessons:
        facts = visited[page]
        notebook = page.removesuffix(".html") + ".ipynb"
        assert any(b["href"] == repo.colab_url(notebook) and b["loaded"] for b in facts["badges"]), \
            f"{page}: no loaded Colab badge opening {notebook}"
        assert facts["code_cells"] > 0 and facts["copy_buttons"] >= 1, f"{page}: no copy button on its code"
        assert facts["screenshot"].stat().st_size > 10_000


def test_search_finds_a_lesson(site, server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "index.html")
    box = WebDriverWait(browser, 10).until(ec.element_to_be_clickable((By.CSS_SELECTOR, "input.md-search__input")))
    box.click()
    box.send_keys("LoRA adapters")
    results = WebDriverWait(browser, 20).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".md-search-result__item a[href*='notebooks/']"))
    assert results
