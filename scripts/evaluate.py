"""Evaluate a base model + adapter with the course's harness, on the whole test set, with either engine.

    python scripts/evaluate.py --profile cpu --engine hf            # today's batched generate (notebooks 02/04)
    python scripts/evaluate.py --profile cpu --engine vllm          # vLLM (made once by scripts/setup_vllm.sh)
    python scripts/evaluate.py --profile ampere --engine vllm --adapter none --label full-before

Same prompts, greedy decoding, end tokens, stop strings, grader and result files as notebooks 02 and 04; the
engine is recorded in the settings. With ``--compare-with LABEL`` (default ``before``) it prints notebook 04's
before/after table against the newest run of that label when it asked the same questions (else it says why).
vLLM pins its own transformers, so with ``--engine vllm`` this script re-runs itself under ``.venv-vllm``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VLLM_PYTHON = Path(os.environ.get("VLLM_VENV", ROOT / ".venv-vllm")) / "bin" / "python"
PRECISIONS = ("nf4", "float16", "bfloat16", "float32")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default=None, help="t4, ampere, cpu or smoke (default: from the hardware)")
    parser.add_argument("--engine", choices=("hf", "vllm"), default="hf")
    parser.add_argument("--model-id", default=None, help="default: the profile's model")
    parser.add_argument("--adapter", default=None,
                        help="an adapter folder, 'none' for the base alone (default: the latest notebook 03 saved)")
    parser.add_argument("--base-precision", choices=PRECISIONS, default=None,
                        help="nf4 (the course's 4-bit base; the hf engine only: vLLM 0.32 has no bitsandbytes) "
                             "or a 16/32-bit base (default: nf4 for hf, the profile's compute dtype for vllm)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--size", type=int, default=None, help="questions (default: the whole split)")
    parser.add_argument("--seed", type=int, default=1234, help="fixes which questions when --size is smaller")
    parser.add_argument("--batch-size", type=int, default=None, help="hf engine (default: the profile's)")
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--label", default=None, help="result file label (default: eval-<engine>)")
    parser.add_argument("--results-dir", type=Path, default=None, help="default: the profile's results folder")
    parser.add_argument("--compare-with", default="before", help="label of the run to compare with ('' : none)")
    parser.add_argument("--allow-engine-difference", action="store_true",
                        help="compare with a run made by the other engine (they can differ on a few answers)")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def rerun_under_vllm_venv(argv: list[str]) -> int:
    """vLLM is not importable here (the course's venv): run this script again with .venv-vllm's Python."""
    if not VLLM_PYTHON.exists():
        raise SystemExit(f"vLLM is not installed here and {VLLM_PYTHON} does not exist.\n"
                         "What to do: run `bash scripts/setup_vllm.sh` once (about 3 minutes, 2 GB), then run "
                         "this command again.")
    print(f"vLLM runs in its own environment: re-running under {VLLM_PYTHON}", flush=True)
    return subprocess.call([str(VLLM_PYTHON), str(Path(__file__).resolve()), *argv])


def load_model(args, profile, base_source: str, adapter_dir: Path | None, precision: str):
    """``(model, tokenizer)`` for ``evaluate``: an HF model (4-bit as in the notebooks, or 16/32-bit), or vLLM."""
    from transformers import AutoTokenizer

    from llmcourse.prompts import choose_pad_token

    if args.engine == "vllm":
        from vllm_engine import load_vllm  # scripts/vllm_engine.py, beside this script

        tokenizer = AutoTokenizer.from_pretrained(base_source)
        tokenizer.pad_token = choose_pad_token(tokenizer)
        rank = _adapter_rank(adapter_dir)
        model = load_vllm(base_source, adapter_dir, precision, max_lora_rank=max(16, rank))
        return model, tokenizer
    if precision == "nf4":
        from llmcourse.model_loading import load_course_model

        model, tokenizer = load_course_model(profile.model_id, profile.compute_dtype, profile.name)
    else:
        import torch
        from transformers import AutoModelForCausalLM

        from llmcourse.profiles import torch_dtype

        tokenizer = AutoTokenizer.from_pretrained(base_source)
        tokenizer.pad_token = choose_pad_token(tokenizer)
        model = AutoModelForCausalLM.from_pretrained(base_source, dtype=torch_dtype(precision),
                                                     device_map="auto" if torch.cuda.is_available() else "cpu")
    if adapter_dir is not None:
        from llmcourse.model_loading import attach_adapter

        model = attach_adapter(model, adapter_dir, profile.model_id)
    return model.eval(), tokenizer


def _adapter_rank(adapter_dir: Path | None) -> int:
    import json

    if adapter_dir is None:
        return 0
    config = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    return max([config.get("r", 0), *config.get("rank_pattern", {}).values()])


def print_table(before, after) -> None:
    """Notebook 04's before/after table (section 3), on these two runs."""
    from llmcourse.stats import paired_comparison

    strict = paired_comparison([r["strict_correct"] for r in before.records], [r["strict_correct"] for r in after.records])
    flexible = paired_comparison([r["flexible_correct"] for r in before.records],
                                 [r["flexible_correct"] for r in after.records])
    print(f"{strict.n} questions, the same in both runs ({before.settings.label} -> {after.settings.label})")
    print(f"{'':18}{'strict (#### N)':>18}{'flexible (last number)':>25}")
    for name, s, f in [
        ("accuracy before", f"{strict.before_accuracy:.1%}", f"{flexible.before_accuracy:.1%}"),
        ("accuracy after", f"{strict.after_accuracy:.1%}", f"{flexible.after_accuracy:.1%}"),
        ("difference", f"{strict.difference:+.1%}", f"{flexible.difference:+.1%}"),
        ("wrong -> right", strict.fixed, flexible.fixed),
        ("right -> wrong", strict.broken, flexible.broken),
        ("exact McNemar p", f"{strict.p_value:.2g}", f"{flexible.p_value:.2g}"),
    ]:
        print(f"{name:18}{s!s:>18}{f!s:>25}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.engine == "vllm" and args.base_precision == "nf4":
        raise SystemExit("vLLM 0.32 has no bitsandbytes quantization, so it cannot load the 4-bit base: use "
                         "--base-precision float16, bfloat16 or float32 with --engine vllm, or --engine hf for nf4.")
    if args.engine == "vllm" and importlib.util.find_spec("vllm") is None:
        from llmcourse.offline_models import resolve_model
        from llmcourse.profiles import detect_profile

        resolve_model(args.model_id or detect_profile(args.profile).model_id)  # an offline copy is made here, once
        return rerun_under_vllm_venv(argv)


    from llmcourse.data import fixed_subset, load_split
    from llmcourse.environment import course_folder
    from llmcourse.evaluation import EvalSettings, evaluate, format_summary
    from llmcourse.offline_models import resolve_model
    from llmcourse.profiles import detect_profile
    from llmcourse.prompts import default_prompt_format, stop_strings
    from llmcourse.results import compare, list_runs, load_run, save_run
    from llmcourse.training import find_adapter, training_label, training_log
    from llmcourse.troubleshooting import CourseError

    profile = detect_profile(args.profile).with_overrides(
        model_id=args.model_id, eval_batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    precision = args.base_precision or ("nf4" if args.engine == "hf" else profile.compute_dtype)
    adapter_dir = None
    if args.adapter != "none":
        adapter_dir = Path(args.adapter) if args.adapter else find_adapter(course_folder(profile.name, "adapter"),
                                                                            profile.model_id)
    trained = training_log(adapter_dir) if adapter_dir else {}
    rows = load_split(profile.dataset, args.split)
    subset = fixed_subset(rows, args.size or len(rows), seed=args.seed)
    prompt_format = default_prompt_format(profile.model_id)
    settings = EvalSettings(
        label=args.label or f"eval-{args.engine}", model_id=profile.model_id,
        adapter=str(adapter_dir) if adapter_dir else None, prompt_format=prompt_format, dataset=profile.dataset,
        split=args.split, subset_seed=args.seed, subset_size=len(subset), max_new_tokens=profile.max_new_tokens,
        batch_size=profile.eval_batch_size, profile=profile.name, weight_format=precision,
        compute_dtype=profile.compute_dtype if precision == "nf4" else precision,
        stop_strings=list(stop_strings(prompt_format)), engine=args.engine,
        adapter_training=training_label(trained["steps"], trained["total_steps"]) if "total_steps" in trained else None,
    )
    print(f"{args.engine} engine, base {profile.model_id} in {precision}"
          + (f" + adapter {adapter_dir}" if adapter_dir else "") + f"; {len(subset)} questions of {args.split}")
    model, tokenizer = load_model(args, profile, resolve_model(profile.model_id), adapter_dir, precision)
    generate = None
    if args.engine == "vllm":
        from vllm_engine import generate_vllm as generate
    run = evaluate(model, tokenizer, subset, settings, progress=not args.no_progress, generate=generate)
    results_dir = args.results_dir or course_folder(profile.name, "results")
    saved = save_run(run, results_dir)
    print(format_summary(run))
    print(f"  questions/s       {len(subset) / run.summary['wall_time_s']:6.2f}")
    print("saved:", saved)
    earlier = [p for p in list_runs(results_dir, args.compare_with)] if args.compare_with else []
    if earlier:
        try:
            compare(load_run(earlier[-1]), run, allow_engine_difference=args.allow_engine_difference)
            print_table(load_run(earlier[-1]), run)
        except CourseError as err:
            print(f"No table against {earlier[-1].name}: {err}")
    elif args.compare_with:
        print(f"No '{args.compare_with}' run in {results_dir} to compare with (make one with --adapter none "
              f"--label {args.compare_with} and the same --size and --seed).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
