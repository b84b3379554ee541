"""The cpu track's levers, side by side in one run: notebook 03's own cells, with one setting changed at a time.

    python benchmarks/cpu_levers.py speed --rows 160    # one epoch each: random batches, grouped by length, padding-free
    python benchmarks/cpu_levers.py learn '{"batch_size": 4}' '{"learning_rate": 2e-3}'   # strict accuracy after

``speed`` trains one epoch over the same rows three ways (random order; ``group_by_length``, as notebook 03
does; TRL's ``padding_free``, correct with sdpa attention: tests/test_padding_free.py) and reports seconds a step
and the padded tokens computed. ``learn`` trains each profile override (JSON) on ``--rows`` rows of data/ from a
fresh model and grades 50 held-out questions (SmolLM2-135M-Instruct answers none of them before training, as the
teaching guard measures). Results are printed and appended to ``benchmarks/results/cpu_levers.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from test_teaching import train_like_notebook_03  # noqa: E402

from llmcourse import prompts  # noqa: E402
from llmcourse.data import fixed_subset, load_split  # noqa: E402
from llmcourse.evaluation import EvalSettings, evaluate  # noqa: E402
from llmcourse.model_loading import load_course_model  # noqa: E402
from llmcourse.profiles import detect_profile  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "cpu_levers.jsonl"
GROUPED = 'train_sampling_strategy="group_by_length",'
VARIANTS = {"random batches": (GROUPED, 'train_sampling_strategy="random",'), "grouped by length (03)": None,
            "padding-free": ("max_length=profile.max_length,", "max_length=None, padding_free=True,")}


def trainer_from_notebook_03(profile, output_dir: Path, replace: tuple[str, str] | None = None):
    """A fresh 4-bit model, then notebook 03's trainer built by its own cells, as the teaching guard builds it."""
    fmt = prompts.default_prompt_format(profile.model_id)
    model, tokenizer = load_course_model(profile.model_id, profile.compute_dtype, profile.name, print_fn=lambda _: None)
    trainer, _ = train_like_notebook_03(model, tokenizer, profile, fmt, output_dir, replace)
    return trainer, tokenizer, fmt


def record(result: dict) -> None:
    print(json.dumps(result), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as handle:
        handle.write(json.dumps(result) + "\n")


def speed(args) -> None:
    # One epoch over the same rows for each: grouping reorders rows (longest first), so a part of an epoch is unfair.
    profile = detect_profile("cpu").with_overrides(train_size=args.rows)
    for name, replace in (reversed if args.reverse else iter)(list(VARIANTS.items())):
        trainer, _, _ = trainer_from_notebook_03(profile, Path(args.work) / name.split()[0], replace)
        computed = {"tokens": 0}  # what the model computed, padding included
        trainer.model.get_input_embeddings().register_forward_hook(
            lambda module, inputs, output, computed=computed: computed.update(
                tokens=computed["tokens"] + inputs[0].numel()))
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
        steps = trainer.state.global_step
        record({"lever": name, "profile": profile.name, "batch_size": profile.batch_size, "rows": args.rows,
                "steps": steps, "seconds": round(seconds, 1), "seconds_per_step": round(seconds / steps, 2),
                "tokens_computed": computed["tokens"]})


def learn(args) -> None:
    for override in args.configs:
        changes = json.loads(override)
        profile = detect_profile("cpu").with_overrides(**{"train_size": args.rows, **changes})
        started = time.perf_counter()
        trainer, tokenizer, fmt = trainer_from_notebook_03(profile, Path(args.work) / f"learn{time.time():.0f}")
        trainer.train()
        trained = time.perf_counter() - started
        subset = fixed_subset(load_split(profile.dataset, "test"), 50, seed=1234)
        settings = EvalSettings(
            label="after", model_id=profile.model_id, adapter="(trained here)", prompt_format=fmt,
            dataset=profile.dataset, split="test", subset_seed=1234, subset_size=50,
            max_new_tokens=profile.max_new_tokens, batch_size=profile.eval_batch_size, profile=profile.name,
            weight_format="nf4", compute_dtype=profile.compute_dtype, stop_strings=list(prompts.stop_strings(fmt)))
        after = evaluate(trainer.model, tokenizer, subset, settings, progress=False).summary
        record({"lever": changes, "rows": args.rows, "steps": trainer.state.global_step,
                "train_seconds": round(trained), "strict_after": after["strict_accuracy"],
                "stopped_after": after["stopped_share"],
                "losses": [round(e["loss"], 3) for e in trainer.state.log_history if "loss" in e]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["speed", "learn"])
    parser.add_argument("configs", nargs="*", help="learn: profile overrides as JSON, one run each")
    parser.add_argument("--rows", type=int, default=480, help="training rows (speed: one epoch over them)")
    parser.add_argument("--reverse", action="store_true", help="speed: the variants in reverse order (the first "
                        "one in a process pays for warming up)")
    parser.add_argument("--work", default=str(ROOT / "outputs" / "levers"))
    args = parser.parse_args()
    speed(args) if args.mode == "speed" else learn(args)


if __name__ == "__main__":
    main()
