"""The two generation engines side by side in one run: HF batched ``generate`` against vLLM.

    python benchmarks/engines.py                       # cpu track: SmolLM2-135M + its adapter, 100 questions
    python benchmarks/engines.py --questions 20        # quicker
    python benchmarks/engines.py --profile ampere --out benchmarks/results/engines-gpu.json   # on a GPU

Each engine runs ``scripts/evaluate.py`` (vLLM under ``.venv-vllm``, made by ``scripts/setup_vllm.sh``) on the
same questions (the cpu track's before/after subset: seed 1234), the same weights and the same settings; the
HF engine also runs the course's 4-bit base. Reported: questions/s (generation only, the model load left out),
accuracies with 95% intervals, and the agreement of the engines on the same base: graded correctness
(strict) per question, and identical outputs. Timings are printed and saved, never asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llmcourse.results import list_runs, load_run  # noqa: E402
from llmcourse.stats import wilson_interval  # noqa: E402


def run_engine(engine: str, precision: str, args, results_dir: Path) -> dict:
    label = f"bench-{engine}-{precision}"
    command = [sys.executable, str(ROOT / "scripts" / "evaluate.py"), "--profile", args.profile, "--engine", engine,
               "--base-precision", precision, "--size", str(args.questions), "--seed", str(args.seed),
               "--label", label, "--results-dir", str(results_dir), "--compare-with", "", "--no-progress"]
    if args.adapter:
        command += ["--adapter", args.adapter]
    if not args.from_results:
        print("$", " ".join(command[1:]), flush=True)
        subprocess.run(command, check=True)
    run = load_run(list_runs(results_dir, label)[-1])
    s = run.summary
    return {"engine": engine, "base": precision, "run": run, "questions": s["n"], "wall_time_s": s["wall_time_s"],
            "questions_per_s": s["n"] / s["wall_time_s"], "tokens_per_s": s["tokens_per_s"],
            "strict_accuracy": s["strict_accuracy"], "strict_ci95": s["strict_ci95"],
            "mean_new_tokens": s["mean_new_tokens"], "stopped_share": s["stopped_share"],
            "versions": json.loads((list_runs(results_dir, label)[-1]).read_text())["versions"]}


def agreement(a, b) -> dict:
    """Per question: same graded (strict) correctness, identical output; and the accuracy gap vs its interval."""
    pairs = list(zip(a.records, b.records, strict=True))
    assert [x["id"] for x, _ in pairs] == [y["id"] for _, y in pairs], "the two runs asked different questions"
    n = len(pairs)
    same_grade = sum(x["strict_correct"] == y["strict_correct"] for x, y in pairs)
    identical = sum(x["output"] == y["output"] for x, y in pairs)
    gap = a.summary["strict_accuracy"] - b.summary["strict_accuracy"]
    lo, hi = wilson_interval(a.summary["strict_correct"], n)
    return {"n": n, "same_strict_grade": same_grade / n, "identical_output": identical / n,
            "accuracy_gap": gap, "gap_within_ci95_of_first": b.summary["strict_accuracy"] >= lo
            and b.summary["strict_accuracy"] <= hi, "ci95_half_width": (hi - lo) / 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--adapter", default=None, help="default: the latest adapter notebook 03 saved")
    parser.add_argument("--precision", default=None,
                        help="the shared 16/32-bit base of the two engines (default: float32 on a CPU, bfloat16 on a GPU)")
    parser.add_argument("--no-4bit", action="store_true", help="skip the HF engine on the course's 4-bit base")
    parser.add_argument("--from-results", type=Path, default=None,
                        help="do not run: read the bench-<engine>-<base> runs already saved in this folder")
    parser.add_argument("--note", default="", help="how the machine was loaded while it ran, saved with the figures")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "engines-cpu.json")
    args = parser.parse_args()
    import torch

    precision = args.precision or ("bfloat16" if torch.cuda.is_available() else "float32")
    with tempfile.TemporaryDirectory() as tmp:
        results_dir = args.from_results or Path(tmp)
        rows = [run_engine("hf", precision, args, results_dir), run_engine("vllm", precision, args, results_dir)]
        if not args.no_4bit:
            rows.append(run_engine("hf", "nf4", args, results_dir))
        hf, vllm = rows[0]["run"], rows[1]["run"]
        report = {
            "what": f"{args.questions} questions of the {args.profile} track (seed {args.seed}), greedy, same prompts, "
                    "stop rule and max_new_tokens; questions/s counts generation only",
            "machine": {"cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                        "cpu_cores": __import__("os").cpu_count()},
            "adapter": hf.settings.adapter,
            "note": args.note,
            "runs": [{k: v for k, v in r.items() if k != "run"} for r in rows],
            "vllm_vs_hf_same_base": agreement(hf, vllm),
            "speedup_vllm_over_hf": rows[1]["questions_per_s"] / rows[0]["questions_per_s"],
        }
        if len(rows) > 2:
            report["hf_4bit_vs_hf_same_base"] = agreement(hf, rows[2]["run"])
            report["hf_4bit_vs_vllm"] = agreement(vllm, rows[2]["run"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'engine':8}{'base':10}{'questions/s':>13}{'tokens/s':>10}{'strict':>9}{'95% CI':>17}")
    for r in report["runs"]:
        lo, hi = r["strict_ci95"]
        print(f"{r['engine']:8}{r['base']:10}{r['questions_per_s']:>13.2f}{r['tokens_per_s']:>10.1f}"
              f"{r['strict_accuracy']:>9.1%}{f'{lo:.1%}-{hi:.1%}':>17}")
    for key in ("vllm_vs_hf_same_base", "hf_4bit_vs_hf_same_base", "hf_4bit_vs_vllm"):
        if key in report:
            a = report[key]
            print(f"{key}: same strict grade {a['same_strict_grade']:.1%}, identical output {a['identical_output']:.1%}, "
                  f"accuracy gap {a['accuracy_gap']:+.1%} (95% CI half-width {a['ci95_half_width']:.1%})")
    print(f"vLLM / HF speed: {report['speedup_vllm_over_hf']:.2f} x; saved {args.out}")


if __name__ == "__main__":
    main()
