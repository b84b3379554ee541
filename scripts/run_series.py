"""Run the whole series headless: notebooks 01 to 05 in order with papermill, on the detected profile.

    python scripts/run_series.py                   # the profile the hardware gives (no GPU: cpu)
    python scripts/run_series.py --profile smoke   # CI's quick run
    python scripts/run_series.py -p EVAL_SIZE 50   # any parameter, passed to every notebook that has it
    python scripts/run_series.py --list-parameters # which notebooks take which parameter

A parameter name that no notebook to run takes, or a value its knob does not accept, stops the run before
the first notebook, with the closest names or what is accepted. Executed notebooks and a short summary
(before, after, difference, time per notebook) go to ``outputs/<profile>/executed/``. The run stops at the
first failing notebook and shows the failing cell (papermill's ``PapermillExecutionError`` says which).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from llmcourse.profiles import KNOBS, PROFILE_NAMES, PROFILES, check_knob, detect_profile, unknown_parameter  # noqa: E402
from llmcourse.troubleshooting import CourseError  # noqa: E402

NOTEBOOKS = [
    "01_load_model_4bit.ipynb",
    "02_dataset_and_baseline.ipynb",
    "03_lora_sft_training.ipynb",
    "04_evaluate_and_compare.ipynb",
    "05_use_share_merge.ipynb",
]


def notebook_parameters(path: Path) -> set[str]:
    """Names assigned in the notebook's ``parameters`` cell (only those are passed to it)."""
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return {t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)
                    for t in node.targets if isinstance(t, ast.Name)}
    return set()


def parameter_table(notebooks: list[str], notebooks_dir: Path = ROOT / "notebooks") -> dict[str, list[str]]:
    """Each parameter name and the notebooks (their numbers) whose parameters cell takes it."""
    takers: dict[str, list[str]] = {}
    for name in notebooks:
        for parameter in notebook_parameters(notebooks_dir / name):
            takers.setdefault(parameter, []).append(name[:2])
    return dict(sorted(takers.items()))


def check_parameters(parameters: dict, notebooks: list[str], profile: str, notebooks_dir: Path = ROOT / "notebooks",
                     log=print) -> dict:
    """The parameters checked and converted before any notebook runs: an unknown name raises
    ``CourseError('unknown_parameter')`` (closest names, which notebooks take each), a bad value
    ``CourseError('bad_parameter')`` (``llmcourse.profiles.KNOBS``); a value above what the data holds is clamped."""
    takers = parameter_table(notebooks, notebooks_dir)
    checked = {}
    for name, value in parameters.items():
        if name not in takers:
            where = f"the notebooks run ({', '.join(n[:2] for n in notebooks)})"
            if name in (everywhere := parameter_table(NOTEBOOKS, notebooks_dir)):
                where += f"; it is taken by {', '.join(everywhere[name])} only"
            described = ", ".join(f"{k} ({', '.join(v)})" for k, v in takers.items())
            raise unknown_parameter(name, list(takers), where, takers=described)
        checked[name] = check_knob(name, value, dataset=PROFILES[profile].dataset, log=log) if name in KNOBS else value
    return checked


def run(profile: str, notebooks: list[str], parameters: dict, out_dir: Path,
        notebooks_dir: Path = ROOT / "notebooks", log=print, progress: bool = False) -> dict:
    """Execute the notebooks in order; return the summary (also written to ``out_dir/summary.json``)."""
    import papermill as pm

    parameters = check_parameters(parameters, notebooks, profile, notebooks_dir, log=log)
    out_dir.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    status = "ok"
    for number, name in enumerate(notebooks, start=1):
        names = notebook_parameters(notebooks_dir / name)
        log(f"[{number}/{len(notebooks)}] {name} (profile {profile}) ...")
        started = time.perf_counter()
        try:
            pm.execute_notebook(str(notebooks_dir / name), str(out_dir / name), cwd=str(notebooks_dir),
                                parameters={"PROFILE": profile, **{k: v for k, v in parameters.items() if k in names}},
                                kernel_name="python3", progress_bar=progress, log_output=False)
        except pm.PapermillExecutionError as err:
            seconds[name] = time.perf_counter() - started
            log(f"FAILED after {seconds[name]:.0f} s: {name}, cell {err.cell_index} (In [{err.exec_count}]):\n"
                f"{err.source}\n--> {err.ename}: {err.evalue}\nThe executed notebook is {out_dir / name}")
            status = f"failed in {name}"
            break
        seconds[name] = time.perf_counter() - started
        log(f"    done in {seconds[name] / 60:.1f} min")
    summary = {"profile": profile, "status": status, "minutes": {k: round(v / 60, 2) for k, v in seconds.items()},
               "total_minutes": round(sum(seconds.values()) / 60, 2), **_results(profile)}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _results(profile: str) -> dict:
    """Before, after, difference and p-value from the newest result files, and notebook 05's figures."""
    from llmcourse.environment import course_folder
    from llmcourse.results import compare, load_latest

    lesson05 = course_folder(profile, "share") / "lesson05.json"
    found = {"lesson05": json.loads(lesson05.read_text())} if lesson05.exists() else {}
    try:
        before, after = (load_latest(course_folder(profile, "results"), kind) for kind in ("before", "after"))
        paired = compare(before, after)[0]
    except CourseError as err:
        return {"results": f"not available: {err.detail}", **found}
    return {"model_id": before.settings.model_id, "questions": paired.n, "before_strict": paired.before_accuracy,
            "after_strict": paired.after_accuracy, "difference": paired.difference, "mcnemar_p": paired.p_value,
            "before_flexible": before.summary["flexible_accuracy"], "after_flexible": after.summary["flexible_accuracy"],
            "after_end_token": after.summary["end_token_share"], "after_stopped": after.summary["stopped_share"],
            "adapter": after.settings.adapter,
            "adapter_training": after.settings.adapter_training, **found}  # "PARTIAL: ..." when 03 was cut short


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
        print("\n".join(f"  {name:24} {', '.join(numbers)}" for name, numbers in parameter_table(notebooks).items()))
        return 0
    profile = detect_profile(args.profile)
    print(f"profile {profile.name}: {profile.reason}")
    out_dir = args.out or ROOT / "outputs" / profile.name / "executed"
    try:  # before any notebook runs: a typo or a bad value costs seconds, not a run
        parameters = check_parameters({name: _value(value) for name, value in args.parameter}, notebooks, profile.name)
    except CourseError as err:
        print(err, file=sys.stderr)
        return 2
    summary = run(profile.name, notebooks, parameters, out_dir, progress=True)
    print(f"\nseries on profile {profile.name}: {summary['status']}")
    for name, minutes in [*summary["minutes"].items(), ("total", summary["total_minutes"])]:
        print(f"  {name:34} {minutes:6.1f} min")
    if "before_strict" in summary:
        print(f"  {summary['model_id']} on {summary['questions']} held-out questions (strict accuracy), adapter "
              f"{summary['adapter']} {summary['adapter_training'] or ''}\n    before {summary['before_strict']:.1%}"
              f"   after {summary['after_strict']:.1%}   difference {summary['difference']:+.1%}"
              f"   exact McNemar p = {summary['mcnemar_p']:.2g}")
    for key in ("results", "lesson05"):  # results "not available: ..."; notebook 05's figures when it ran
        if key in summary:
            print(f"  {key}: {summary[key]}")
    print(f"executed notebooks and summary.json in {out_dir}")
    if args.publish and summary["status"] == "ok":
        from publish import EXECUTED_DIR, publish

        print("\n".join(f"published {p}" for p in publish(out_dir, EXECUTED_DIR / profile.name, profile.name)))
    return 0 if summary["status"] == "ok" else 1


def _value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


if __name__ == "__main__":
    sys.exit(main())
