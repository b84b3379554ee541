"""Every notebook executes, top to bottom, in the smoke profile: the five lessons in order with the headless
runner, then the workshop pre-check and the solution notebooks, each in a fresh kernel as on a fresh runtime.

About 5 minutes on a 2-core machine.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import nbformat
import pytest
import run_series  # scripts/ (pyproject: [tool.pytest.ini_options] pythonpath)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
pytestmark = pytest.mark.slow


# A token-shaped secret, made at run time so that no such literal is ever committed.
PLANTED_TOKEN = "hf_" + "Zq8" * 12


@pytest.fixture(scope="module")
def course_home(tmp_path_factory):
    """A fresh place for results, adapter and checkpoints, seen by the notebooks' kernels too; and a token
    in the environment, as a participant would have one, which must never appear in any output."""
    home = tmp_path_factory.mktemp("course_home")
    previous = {k: os.environ.get(k) for k in ("COURSE_HOME", "HF_TOKEN")}
    os.environ["COURSE_HOME"] = str(home)
    os.environ["HF_TOKEN"] = PLANTED_TOKEN
    yield home
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def series(course_home, tmp_path_factory):
    out = tmp_path_factory.mktemp("executed")
    lines: list[str] = []
    summary = run_series.run("smoke", run_series.NOTEBOOKS, {}, out, log=lines.append)
    return summary, out, "\n".join(lines)


def errors_in(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells for o in c.get("outputs", [])
            if o.get("output_type") == "error"]


def text_of(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append(output.get("text", ""))
            elif "data" in output:
                parts.append(output["data"].get("text/plain", ""))
    return "\n".join(parts)


def test_the_series_executes_every_notebook_in_order(series, course_home):
    summary, out, log = series
    assert summary["status"] == "ok", log
    assert list(summary["minutes"]) == run_series.NOTEBOOKS
    for name in run_series.NOTEBOOKS:
        executed = out / name
        assert executed.exists()
        assert errors_in(executed) == []
        nb = nbformat.read(executed, as_version=4)
        code_cells = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.get("execution_count") for c in code_cells), f"{name}: a code cell did not run"
    assert "before_strict" in summary and summary["questions"] == 8
    assert summary["lesson05"]["merge_seconds"] is not None
    assert json.loads((out / "summary.json").read_text())["status"] == "ok"


def test_the_series_leaves_what_later_notebooks_need(series, course_home):
    smoke = course_home / "smoke"
    assert list((smoke / "results").glob("before_*.json"))
    assert list((smoke / "results").glob("after_*.jsonl"))
    latest = json.loads((smoke / "adapter" / "latest.json").read_text())  # one folder per run, the latest named
    adapter = smoke / "adapter" / latest["adapter"]
    assert (adapter / "adapter_config.json").exists()
    log = json.loads((adapter / "training_log.json").read_text())
    assert log["steps"] == log["total_steps"] == 4 and log["partial"] is False
    assert not list((smoke / "results").glob(".*")) and not list((smoke / "adapter").glob(".*"))  # no temporaries
    for figure in ["01_nf4_codebook.png", "03_lora.png", "03_label_mask.png", "03_loss_curve.png",
                   "04_before_after.png"]:
        assert (smoke / "figures" / figure).stat().st_size > 10_000, figure
    # notebook 05: the card and the adapter on disk (no upload), the merged model, the runner's figures
    assert "library_name: peft" in (smoke / "share" / "README.md").read_text()
    assert (smoke / "share" / "adapter_model.safetensors").exists()
    assert (smoke / "merged" / "model.safetensors").exists() and not (smoke / "merged.partial").exists()
    figures = json.loads((smoke / "share" / "lesson05.json").read_text())
    assert figures["merge_added_rss_gb"] is not None and figures["first_token_s"] > 0


def test_notebooks_show_the_learner_the_checkpoints(series):
    _, out, _ = series
    assert "memory footprint 4-bit" in text_of(out / "01_load_model_4bit.ipynb")
    baseline = text_of(out / "02_dataset_and_baseline.ipynb")
    assert "strict accuracy" in baseline and "95% CI" in baseline
    training = text_of(out / "03_lora_sft_training.ipynb")
    assert "[[" in training and "<|end_of_text|>]]" in training  # the label mask, end token inside
    assert "predicted peak" in training and "min measured" in training
    after = text_of(out / "04_evaluate_and_compare.ipynb")
    assert "exact McNemar p" in after and "fixed by fine-tuning" in after and "broken by fine-tuning" in after
    use = text_of(out / "05_use_share_merge.ipynb")
    assert "first token after" in use and "--- base model ---" in use
    assert "Llama 3.1 8B: largest shard" in use and "x (largest shard + adapter)" in use
    assert "greedy answers identical: 4/4" in use and "Not uploaded (PUSH_TO_HUB = False)" in use


def scan(*paths: Path):
    import subprocess

    return subprocess.run(["bash", str(ROOT / "scripts" / "scan_secrets.sh"), *map(str, paths)],
                          capture_output=True, text=True, timeout=300)


def test_executed_notebooks_and_results_never_show_the_token(series, course_home):
    _, out, log = series
    result = scan(out, course_home)
    assert result.returncode == 0, result.stdout
    for path in [*out.rglob("*.ipynb"), *course_home.rglob("*.json*")]:
        assert PLANTED_TOKEN not in path.read_text(errors="replace"), path
    assert PLANTED_TOKEN not in log


def test_the_scan_would_have_caught_a_printed_token(tmp_path):
    leaked = tmp_path / "leaked.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(token)")])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text=PLANTED_TOKEN + "\n")]
    nbformat.write(nb, leaked)
    result = scan(tmp_path)
    assert result.returncode == 1
    assert "leaked.ipynb" in result.stdout and PLANTED_TOKEN not in result.stdout


def test_running_training_again_resumes_instead_of_restarting(series, tmp_path):
    summary = run_series.run("smoke", ["03_lora_sft_training.ipynb"], {}, tmp_path)
    assert summary["status"] == "ok"
    output = text_of(tmp_path / "03_lora_sft_training.ipynb")
    assert "resuming from" in output and "checkpoint-4" in output
    assert "steps done: 4 of 4" in output


def test_03_cut_short_keeps_a_partial_adapter_in_its_own_folder_and_04_uses_it(series, course_home, tmp_path):
    """Other settings (MAX_STEPS 6) make another run; STOP_AFTER_STEPS 3 cuts it short, as a disconnect would.

    (Not 2: transformers' notebook progress bar fails when a fresh run ends at step 2, in on_train_end.)"""
    adapters = course_home / "smoke" / "adapter"
    first = json.loads((adapters / "latest.json").read_text())["adapter"]
    summary = run_series.run("smoke", ["03_lora_sft_training.ipynb", "04_evaluate_and_compare.ipynb"],
                             {"MAX_STEPS": 6, "STOP_AFTER_STEPS": 3}, tmp_path)
    assert summary["status"] == "ok", summary
    latest = json.loads((adapters / "latest.json").read_text())
    assert latest["adapter"] != first and latest["partial"] is True and latest["steps"] == 3
    assert (adapters / first / "adapter_config.json").exists()  # the earlier adapter is not overwritten
    log = json.loads((adapters / latest["adapter"] / "training_log.json").read_text())
    assert (log["steps"], log["total_steps"], log["partial"]) == (3, 6, True)
    training = text_of(tmp_path / "03_lora_sft_training.ipynb")
    assert "PARTIAL: 3 of 6 steps" in training
    after = text_of(tmp_path / "04_evaluate_and_compare.ipynb")
    assert f"adapter: {latest['adapter']} (the latest saved, PARTIAL: 3 of 6 steps)" in after
    assert "after (PARTIAL: 3 of 6 steps)" in after


@pytest.mark.parametrize(
    "notebook",
    sorted(p.relative_to(NOTEBOOKS).as_posix() for p in [*NOTEBOOKS.glob("00_*.ipynb"),
                                                         *NOTEBOOKS.glob("solutions/*.ipynb")]),
)
def test_precheck_and_solution_notebooks_execute(series, notebook, tmp_path):
    import papermill as pm

    source = NOTEBOOKS / notebook
    target = tmp_path / source.name
    pm.execute_notebook(str(source), str(target), parameters={"PROFILE": "smoke"}, cwd=str(source.parent),
                        kernel_name="python3", progress_bar=False)
    assert errors_in(target) == []


def test_a_later_notebook_on_an_empty_drive_says_which_notebook_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_HOME", str(tmp_path / "empty"))
    summary = run_series.run("smoke", ["04_evaluate_and_compare.ipynb"], {}, tmp_path / "out")
    assert summary["status"].startswith("failed")
    errors = errors_in(tmp_path / "out" / "04_evaluate_and_compare.ipynb")
    assert any("CourseError" in e and "notebook 02" in e for e in errors), errors


def test_every_notebook_has_one_parameters_cell_with_profile():
    for path in sorted(NOTEBOOKS.rglob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, path
        assert "PROFILE" in run_series.notebook_parameters(path), path
        for line in tagged[0].source.splitlines():
            assert line.count("=") <= 1, f"{path.name}: papermill cannot parse {line!r}"


def test_no_transformers_4_keywords_anywhere():
    """transformers 5 / TRL 1.x: quantization_config= and dtype= for models, processing_class= for trainers."""
    sources = {p: p.read_text() for p in [*ROOT.glob("llmcourse/*.py"), *ROOT.glob("benchmarks/*.py")]}
    for path in NOTEBOOKS.rglob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        sources[path] = "\n".join(c.source for c in nb.cells if c.cell_type == "code" and
                                  not c.source.lstrip().startswith(("!", "%")))
    for path, source in sources.items():
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            keywords = {k.arg for k in node.keywords}
            assert "torch_dtype" not in keywords, f"{path}: torch_dtype="
            if name in ("from_pretrained", "from_config"):
                assert not keywords & {"load_in_4bit", "load_in_8bit"}, f"{path}: {name}(load_in_4bit=)"
            if name.endswith("Trainer"):
                assert "tokenizer" not in keywords, f"{path}: {name}(tokenizer=)"


# --- notebooks that read what another made, on a fresh Colab runtime (issue 9, item 5) -----------------

READERS = ("course_folder(", "load_latest(", "course_home(", "quantized_copy_folder(")


def _code(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def test_every_notebook_that_reads_the_storage_mounts_drive_first():
    for path in sorted(NOTEBOOKS.rglob("*.ipynb")):
        code = _code(path)
        reads = [code.find(r) for r in READERS if r in code]
        if not reads:
            continue
        assert "mount_drive()" in code, f"{path.name} reads the storage folder but never mounts Drive"
        assert code.find("mount_drive()") < min(reads), f"{path.name} reads the storage before mounting Drive"


@pytest.mark.parametrize(
    "notebook",
    sorted(p.relative_to(NOTEBOOKS).as_posix() for p in NOTEBOOKS.glob("solutions/*.ipynb")
           if any(r in _code(p) for r in READERS)),
)
def test_solution_notebooks_find_the_lessons_files_on_a_fresh_colab_runtime(series, course_home, notebook, tmp_path,
                                                                            monkeypatch):
    """As a fresh Colab runtime sees it: no COURSE_HOME, Drive not mounted until the notebook asks, and on the
    Drive only what the lessons saved."""
    import shutil

    import papermill as pm

    from llmcourse.environment import DRIVE_FOLDER

    contents = tmp_path / "drive-contents"
    shutil.copytree(course_home, contents / DRIVE_FOLDER, ignore=shutil.ignore_patterns("solutions-*", "instruct_*"))
    fake = tmp_path / "fake-colab"
    (fake / "google" / "colab").mkdir(parents=True)  # google stays a namespace package (google.protobuf...)
    (fake / "google" / "colab" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "drive.py").write_text(
        "import os\n\n\ndef mount(mountpoint, **kwargs):\n"
        "    os.makedirs(mountpoint, exist_ok=True)\n"
        "    link = os.path.join(mountpoint, 'MyDrive')\n"
        "    if not os.path.exists(link):\n"
        "        os.symlink(os.environ['FAKE_DRIVE_CONTENTS'], link)\n"
    )
    mountpoint = tmp_path / "content-drive"
    monkeypatch.delenv("COURSE_HOME", raising=False)
    monkeypatch.setenv("COLAB_RELEASE_TAG", "fresh-runtime-test")
    monkeypatch.setenv("COURSE_DRIVE_MOUNT", str(mountpoint))
    monkeypatch.setenv("FAKE_DRIVE_CONTENTS", str(contents))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(fake), os.environ.get("PYTHONPATH")])))
    source = NOTEBOOKS / notebook
    target = tmp_path / source.name
    try:
        pm.execute_notebook(str(source), str(target), parameters={"PROFILE": "smoke"}, cwd=str(source.parent),
                            kernel_name="python3", progress_bar=False)
    except pm.PapermillExecutionError as err:
        pytest.fail(f"{notebook} failed on a fresh runtime: {err.ename}: {err.evalue}")
    assert (mountpoint / "MyDrive").is_symlink(), f"{notebook} never mounted Drive"
    assert errors_in(target) == []


def test_later_lessons_load_the_4bit_copy_notebook_01_saved(series, course_home):
    """Notebook 01 saves the quantized model in the storage folder; 02-04 load it instead of the Hub's."""
    _, out, _ = series
    assert (course_home / "smoke" / "model-4bit" / "course_manifest.json").is_file()
    assert "Saved the 4-bit copy" in text_of(out / "01_load_model_4bit.ipynb")
    for name in ("02_dataset_and_baseline.ipynb", "03_lora_sft_training.ipynb", "04_evaluate_and_compare.ipynb"):
        assert "Loaded the 4-bit copy" in text_of(out / name), name
