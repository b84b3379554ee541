"""Batched generation (the harness) against one question at a time, side by side in one run.

    python benchmarks/batched_vs_sequential.py                  # cpu profile: SmolLM2-135M in NF4, fp32
    python benchmarks/batched_vs_sequential.py --questions 16   # fewer questions, quicker
    python benchmarks/batched_vs_sequential.py --also-batch-size 25   # and the batched path at 25 a batch

Both paths answer the same questions from ``data/`` with the same greedy decoding, stop rule and
``max_new_tokens``; the script reports how many answers are identical and the speed ratio. Each path
runs once a round (``--rounds``, 3 by default, the order reversed every other round): the ratio is the
median of the rounds' ratios, each measured side by side. Timings are printed, never asserted:
machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

from llmcourse import prompts
from llmcourse.data import fixed_subset, load_split
from llmcourse.generation import generate_batched
from llmcourse.offline_models import resolve_model
from llmcourse.profiles import PROFILES, torch_dtype


def one_at_a_time(model, tokenizer, texts, max_new_tokens, end_ids, stops):
    """The naive loop a learner writes first: ``generate`` per question, no padding."""
    answers, tokens = [], 0
    for text in texts:
        out, _ = generate_batched(model, tokenizer, [text], batch_size=1, max_new_tokens=max_new_tokens,
                                  end_token_ids=end_ids, stop_strings=stops, progress=False)
        answers.append(out[0])
        tokens += out[0].new_tokens
    return answers, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu", choices=["cpu", "smoke"])
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3, help="time every path this many times (medians reported)")
    parser.add_argument("--also-batch-size", type=int, default=None,
                        help="also time the batched path at this batch size, in the same run")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    profile = PROFILES[args.profile]
    batch_size = args.batch_size or profile.eval_batch_size
    max_new = args.max_new_tokens or profile.max_new_tokens
    dtype = torch_dtype(profile.compute_dtype)
    source = resolve_model(profile.model_id)
    tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.pad_token = prompts.choose_pad_token(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(
        source,
        quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                               bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype),
        dtype=dtype,
        device_map="cpu",
    )
    fmt = prompts.default_prompt_format(profile.model_id)
    rows = fixed_subset(load_split(profile.dataset, "test"), args.questions, seed=1234)
    texts = [prompts.generation_prompt(r["question"], fmt, tokenizer) for r in rows]
    end_ids, stops = prompts.end_token_ids(tokenizer, fmt), prompts.stop_strings(fmt)

    def batched_path(size):
        return generate_batched(model, tokenizer, texts, batch_size=size, max_new_tokens=max_new,
                                end_token_ids=end_ids, stop_strings=stops, progress=False)

    paths = {"batched": lambda: batched_path(batch_size),
             "one_at_a_time": lambda: one_at_a_time(model, tokenizer, texts, max_new, end_ids, stops)}
    if args.also_batch_size:
        paths["also"] = lambda: batched_path(args.also_batch_size)
    # The first ``generate`` of a process pays one-time set-up (kernels, allocator): pay it before any clock.
    generate_batched(model, tokenizer, texts[:1], batch_size=1, max_new_tokens=4, end_token_ids=end_ids,
                     stop_strings=stops, progress=False)
    seconds: dict[str, list[float]] = {name: [] for name in paths}
    answers = {}
    for round_ in range(args.rounds):  # every path once a round, in reversed order every other round
        for name in list(paths)[:: 1 if round_ % 2 == 0 else -1]:
            started = time.perf_counter()
            answers[name] = paths[name]()
            seconds[name].append(time.perf_counter() - started)
        print(f"round {round_ + 1}: " + ", ".join(f"{name} {s[-1]:.1f} s" for name, s in seconds.items()))

    def ratio(name: str) -> dict:  # one-at-a-time seconds over this path's, round by round (side by side)
        ratios = [single / other for single, other in zip(seconds["one_at_a_time"], seconds[name], strict=True)]
        return {"speedup": round(statistics.median(ratios), 2), "speedup_each_round": [round(r, 2) for r in ratios]}

    (batched, stats), (single, single_tokens) = answers["batched"], answers["one_at_a_time"]
    batched_s, single_s = statistics.median(seconds["batched"]), statistics.median(seconds["one_at_a_time"])
    identical = sum(a.output == b.output for a, b in zip(batched, single, strict=True))
    figures = {
        "model": profile.model_id,
        "questions": len(texts),
        "batch_size": batch_size,
        "max_new_tokens": max_new,
        "threads": torch.get_num_threads(),
        "rounds": args.rounds,
        "identical_answers": identical,
        "batched_s": round(batched_s, 2),  # the median over the rounds
        "batched_tokens_per_s": round(stats.new_tokens / batched_s, 1),
        "one_at_a_time_s": round(single_s, 2),
        "one_at_a_time_tokens_per_s": round(single_tokens / single_s, 1),
        **ratio("batched"),
    }
    if args.also_batch_size:
        figures["also"] = {"batch_size": args.also_batch_size,
                           "batched_s": round(statistics.median(seconds["also"]), 2), **ratio("also")}
    for key, value in figures.items():
        print(f"{key:28} {value}")
    differing = [(r["id"], a.output, b.output) for r, a, b in zip(rows, batched, single, strict=True)
                 if a.output != b.output]
    for qid, a, b in differing[:3]:
        print(f"differs on {qid}:\n  batched: {a[:200]!r}\n  single:  {b[:200]!r}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)


if __name__ == "__main__":
    main()
