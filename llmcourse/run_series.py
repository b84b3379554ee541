"""Run the whole series headless: notebooks 01 to 05 in order with papermill, on the detected profile.

    python -m llmcourse.run_series                 # the profile the hardware gives (no GPU: cpu)
    python -m llmcourse.run_series --profile smoke # CI's quick run
    python -m llmcourse.run_series -p EVAL_SIZE 50 # any parameter, passed to every notebook that has it
    python -m llmcourse.run_series --list-parameters  # which notebooks take which parameter

A parameter name that no notebook to run takes, or a value its knob does not accept, stops the run before
the first notebook, with the closest names or what is accepted.

Executed notebooks and a short summary (before, after, difference, time per notebook) go to
``outputs/<profile>/executed/``. The run stops at the first failing notebook and shows the failing cell.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from llmcourse.profiles import PROFILE_NAMES, detect_profile
from llmcourse.troubleshooting import CourseError

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = [
    "01_load_model_4bit.ipynb",
    "02_dataset_and_baseline.ipynb",
    "03_lora_sft_training.ipynb",
    "04_evaluate_and_compare.ipynb",
    "05_use_share_merge.ipynb",
]


def notebook_parameters(path: Path) -> set[str]:
    """Names assigned in the notebook's ``parameters`` cell (only those are passed to it)."""
    import ast

    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            tree = ast.parse(cell.source)
            return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                    if isinstance(t, ast.Name)}
    return set()


def parameter_table(notebooks: list[str], notebooks_dir: Path = None) -> dict[str, list[str]]:
    """Each parameter name and the notebooks (of ``notebooks``) whose parameters cell takes it."""
    notebooks_dir = notebooks_dir or REPO_ROOT / "notebooks"
    takers: dict[str, list[str]] = {}
    for name in notebooks:
        for parameter in sorted(notebook_parameters(notebooks_dir / name)):
            takers.setdefault(parameter, []).append(name[:2])
    return dict(sorted(takers.items()))


def describe_parameters(takers: dict[str, list[str]]) -> str:
    """``EVAL_SIZE (02), MODEL_ID (00, 01, 02, 03, 04), ...``: which notebooks take which knob."""
    return ", ".join(f"{name} ({', '.join(numbers)})" for name, numbers in takers.items())


def check_parameters(parameters: dict[str, object], notebooks: list[str], profile: str,
                     notebooks_dir: Path = None, log=print) -> dict[str, object]:
    """The parameters checked and converted, before any notebook runs.

    A name that none of the notebooks to run takes raises ``CourseError('unknown_parameter')`` with the
    closest known names and the notebooks that take each; a bad value raises ``CourseError('bad_parameter')``
    (the knob specs in ``llmcourse.profiles.KNOBS``); a value above what the data holds is clamped.
    """
    from llmcourse.profiles import KNOBS, PROFILES, check_knob, unknown_parameter

    takers = parameter_table(notebooks, notebooks_dir)
    run_names = ", ".join(n[:2] for n in notebooks)
    checked = {}
    for name, value in parameters.items():
        if name not in takers:
            everywhere = parameter_table(NOTEBOOKS, notebooks_dir) if set(notebooks) != set(NOTEBOOKS) else takers
            where = f"the notebooks run ({run_names})"
            if name in everywhere:
                where += f"; it is taken by {', '.join(everywhere[name])} only"
            raise unknown_parameter(name, list(takers), where, takers=describe_parameters(takers))
        if name in KNOBS:
            value = check_knob(name, value, dataset=PROFILES[profile].dataset, log=log)
        checked[name] = value
    return checked


def failing_cell(path: Path) -> str:
    """The source and error of the first cell that raised, from an executed notebook."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return (f"cell {index}:\n{cell.source}\n--> {output.get('ename')}: "
                        f"{output.get('evalue')}")
    return "(no cell output holds the error)"


def run(profile: str, notebooks: list[str], parameters: dict[str, object], out_dir: Path,
        notebooks_dir: Path = REPO_ROOT / "notebooks", log=print, progress: bool = False) -> dict:
    """Execute the notebooks in order; return the summary (also written to ``out_dir/summary.json``)."""
    parameters = check_parameters(parameters, notebooks, profile, notebooks_dir, log=log)
    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    status = "ok"
    for number, name in enumerate(notebooks, start=1):
        source = notebooks_dir / name
        target = out_dir / name
        names = notebook_parameters(source)
        params = {"PROFILE": profile, **{k: v for k, v in parameters.items() if k in names}}
        log(f"[{number}/{len(notebooks)}] {name} (profile {profile}) ...")
        started = time.perf_counter()
        try:
            pm.execute_notebook(str(source), str(target), parameters=params, cwd=str(notebooks_dir),
                                kernel_name="python3", progress_bar=progress, log_output=False)
        except Exception as err:  # papermill's execution error: point at the failing cell
            timings[name] = time.perf_counter() - started
            log(f"FAILED after {timings[name]:.0f} s: {name}\n{failing_cell(target) if target.exists() else err}")
            log(f"The executed notebook with the error is {target}")
            status = f"failed in {name}"
            break
        timings[name] = time.perf_counter() - started
        log(f"    done in {timings[name] / 60:.1f} min")
    summary = {"profile": profile, "status": status, "minutes": {k: round(v / 60, 2) for k, v in timings.items()},
               "total_minutes": round(sum(timings.values()) / 60, 2)}
    summary.update(_results_summary(profile))
    summary.update(_lesson05_summary(profile))
    from llmcourse.results import write_text_atomic

    write_text_atomic(out_dir / "summary.json", json.dumps(summary, indent=2))
    return summary


def _results_summary(profile: str) -> dict:
    """Before, after, difference and p-value from the newest result files, if both exist."""
    from llmcourse.results import compare, load_latest
    from llmcourse.storage import folder
    from llmcourse.troubleshooting import CourseError

    results_dir = folder(profile, "results")
    try:
        before = load_latest(results_dir, "before")
        after = load_latest(results_dir, "after")
        paired, _, _ = compare(before, after)
    except CourseError as err:
        return {"results": f"not available: {err.detail}"}
    return {
        "model_id": before.settings.model_id,
        "questions": paired.n,
        "before_strict": round(paired.before_accuracy, 4),
        "after_strict": round(paired.after_accuracy, 4),
        "difference": round(paired.difference, 4),
        "mcnemar_p": paired.p_value,
        "before_flexible": round(before.summary["flexible_accuracy"], 4),
        "after_flexible": round(after.summary["flexible_accuracy"], 4),
        "before_stopped": round(before.summary["stopped_share"], 4),
        "after_stopped": round(after.summary["stopped_share"], 4),
        "after_end_token": round(after.summary["end_token_share"], 4),
        "adapter": after.settings.adapter,
        "adapter_training": after.settings.adapter_training,  # "PARTIAL: ..." when 03 was cut short
    }


def _lesson05_summary(profile: str) -> dict:
    """Notebook 05's figures (merge peak RAM and time, file sizes, first token), if it has run."""
    from llmcourse.storage import folder

    path = folder(profile, "share") / "lesson05.json"
    return {"lesson05": json.loads(path.read_text())} if path.exists() else {}


def _value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=PROFILE_NAMES, help="default: detected from the hardware")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    parser.add_argument("--only", nargs="*", help="run only these notebooks (file names)")
    parser.add_argument("--out", type=Path, help="folder for executed notebooks (default outputs/<profile>/executed)")
    parser.add_argument("--list-parameters", action="store_true", help="show which notebooks take which parameter")
    parser.add_argument("--publish", action="store_true",
                        help="after a successful run, publish the executed lessons to docs/executed/<profile>/")
    args = parser.parse_args(argv)

    notebooks = args.only or NOTEBOOKS
    if args.list_parameters:
        for name, numbers in parameter_table(notebooks).items():
            print(f"  {name:24} {', '.join(numbers)}")
        return 0
    profile = detect_profile(args.profile)
    print(f"profile {profile.name}: {profile.reason}")
    out_dir = args.out or REPO_ROOT / "outputs" / profile.name / "executed"
    parameters = {name: _value(value) for name, value in args.parameter}
    try:
        parameters = check_parameters(parameters, notebooks, profile.name)
    except CourseError as err:  # before any notebook runs: a typo or a bad value costs seconds, not a run
        print(err, file=sys.stderr)
        return 2
    summary = run(profile.name, notebooks, parameters, out_dir, progress=True)
    print()
    print(f"series on profile {profile.name}: {summary['status']}")
    for name, minutes in summary["minutes"].items():
        print(f"  {name:34} {minutes:6.1f} min")
    print(f"  {'total':34} {summary['total_minutes']:6.1f} min")
    if "before_strict" in summary:
        print(f"  {summary['model_id']} on {summary['questions']} held-out questions (strict accuracy):")
        if summary.get("adapter_training"):
            print(f"    adapter {summary['adapter']} ({summary['adapter_training']})")
        print(f"    before {summary['before_strict']:.1%}   after {summary['after_strict']:.1%}   "
              f"difference {summary['difference']:+.1%}   exact McNemar p = {summary['mcnemar_p']:.2g}")
    else:
        print(f"  results: {summary.get('results')}")
    if "lesson05" in summary:
        figures = summary["lesson05"]
        if figures.get("merge_added_rss_gb") is not None:
            print(f"  merge: +{figures['merge_added_rss_gb']:.2f} GB RAM at the peak (largest shard "
                  f"{figures['largest_shard_gb']:.2f} GB), {figures['merge_seconds']:.0f} s")
        print(f"  first token {figures['first_token_s']:.2f} s; sizes (MB): {figures['sizes_mb']}")
    print(f"executed notebooks and summary.json in {out_dir}")
    if args.publish and summary["status"] == "ok":
        from llmcourse.publish import publish_run

        publish_run(profile.name, out_dir)
    return 0 if summary["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
