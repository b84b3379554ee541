"""The cpu track on several seeds, with the shipped defaults: is the gain a property of the course or of one run?

    python benchmarks/cpu_track_seeds.py                 # seeds 1 2 3: notebooks 02-04 each (about 10 min a seed)
    python benchmarks/cpu_track_seeds.py --seeds 7       # one more seed, added to the table

Each seed sets notebook 02's ``SUBSET_SEED`` (which held-out questions are graded) and notebook 03's
``TRAIN_SEED`` (the LoRA initialisation, dropout and the order of the rows); everything else is the cpu
profile's default. Each seed runs in a fresh course home of its own (``outputs/seeds/seed-N``), so no run
resumes another's checkpoint. The table (before, after, difference, exact McNemar p, answers that stopped by
themselves, minutes per notebook) goes to ``benchmarks/results/cpu_track_seeds.md`` and ``.json``; a seed
already in the JSON is replaced, others are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
from run_series import NOTEBOOKS, run  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
NOTEBOOKS_RUN = NOTEBOOKS[1:4]  # 02 before, 03 train, 04 after (01 and 05 do not change the number)


def run_seed(seed: int, home: Path) -> dict:
    """Notebooks 02-04 on the cpu profile in a fresh course home; the summary of ``run_series.run``."""
    shutil.rmtree(home, ignore_errors=True)  # this script's own folder: a fresh run, never a resumed one
    home.mkdir(parents=True)
    os.environ["COURSE_HOME"] = str(home)  # read by the notebooks' kernels and by run()'s result reader
    summary = run("cpu", NOTEBOOKS_RUN, {"SUBSET_SEED": seed, "TRAIN_SEED": seed}, home / "executed")
    if summary["status"] != "ok" or "after_strict" not in summary:
        raise SystemExit(f"seed {seed}: {summary['status']} ({summary.get('results', '')}); see {home / 'executed'}")
    return {"seed": seed, "before": summary["before_strict"], "after": summary["after_strict"],
            "difference": summary["difference"], "mcnemar_p": summary["mcnemar_p"],
            "stopped_after": summary["after_stopped"], "questions": summary["questions"],
            "minutes": {name[:2]: minutes for name, minutes in summary["minutes"].items()},
            "total_minutes": summary["total_minutes"]}


def table(rows: list[dict]) -> str:
    """The Markdown table the README quotes, with the median difference under it."""
    lines = ["| seed | before | after | difference | exact McNemar p | stopped by itself (after) | "
             "minutes 02 / 03 / 04 | total |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        minutes = " / ".join(f"{r['minutes'][n]:.1f}" for n in ("02", "03", "04"))
        lines.append(f"| {r['seed']} | {r['before']:.0%} | {r['after']:.0%} | {r['difference']:+.0%} | "
                     f"{r['mcnemar_p']:.1g} | {r['stopped_after']:.0%} | {minutes} | {r['total_minutes']:.1f} min |")
    differences = [r["difference"] for r in rows]
    lines.append(f"\nMedian difference {statistics.median(differences):+.0%}, smallest {min(differences):+.0%} "
                 f"({len(rows)} seed{'s' * (len(rows) != 1)}, {rows[0]['questions']} held-out questions each).")
    return "\n".join(lines)


def write_table(out: Path, machine: str, rows: list[dict]) -> None:
    out.with_suffix(".md").write_text(f"cpu track, shipped defaults, {machine}\n\n{table(rows)}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--out", type=Path, default=RESULTS / "cpu_track_seeds")
    parser.add_argument("--table-only", action="store_true", help="rewrite the table from the JSON, run nothing")
    args = parser.parse_args(argv)
    json_path = args.out.with_suffix(".json")
    kept = json.loads(json_path.read_text())["seeds"] if json_path.exists() else []
    rows = [r for r in kept if args.table_only or r["seed"] not in args.seeds]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, no GPU"
    for seed in [] if args.table_only else args.seeds:
        print(f"== seed {seed}")
        rows.append(run_seed(seed, ROOT / "outputs" / "seeds" / f"seed-{seed}"))
        rows.sort(key=lambda r: r["seed"])
        json_path.parent.mkdir(parents=True, exist_ok=True)  # written after every seed: a cut run keeps the rest
        json_path.write_text(json.dumps({"machine": machine, "notebooks": NOTEBOOKS_RUN, "seeds": rows}, indent=2))
        write_table(args.out, machine, rows)
    if args.table_only:  # the Markdown again from the JSON (after a change to the table's layout)
        write_table(args.out, machine, rows)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
