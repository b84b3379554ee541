"""Every time figure of the docs, in one table, from which ``scripts/build_navigation.py`` generates the notebooks'
"Time and hardware" tables and the README's and the instructor guide's times. The ``cpu`` and ``smoke`` figures are
MEASURED on 2 cores (a new notebook adds its entry to ``MEASURED``); GPU figures are ESTIMATES: the fixed steps of
``llmcourse/timings.py`` (notebook 03's budget adds them too), generation limited by memory bandwidth (each decoding
step reads the 4-bit weights, at an ASSUMED ``DECODE_EFFICIENCY``), training by compute
(``training.THROUGHPUT_TOKENS_PER_S_PER_BPARAM``) over the padded tokens of real GSM8K rows; an L4 (Colab Pro's
usual GPU) is scaled from an A100 by the published ratios."""

from __future__ import annotations

import json
from pathlib import Path

from llmcourse.profiles import PROFILES
from llmcourse.timings import STEPS, _fixed

# Published datasheet figures (NVIDIA): dense fp16/bf16 tensor TFLOP/s and memory bandwidth in GB/s.
GPUS = {"T4": {"tflops": 65, "bandwidth_gbs": 320}, "L4": {"tflops": 121, "bandwidth_gbs": 300},
        "A100": {"tflops": 312, "bandwidth_gbs": 1555}}
WEIGHTS_4BIT_GB = 5.7  # Llama 3.1 8B in NF4 with double quantization (notebook 01 measures it)
DECODE_EFFICIENCY = 0.08  # ASSUMED share of the bandwidth 4-bit decoding reaches; benchmarks/gpu_check.py measures it
N_PARAMS_B = 8.03

# Token lengths of the real GSM8K (../shared/data/gsm8k, Llama 3 tokenizer, plain prompt format;
# tests/test_timings.py recomputes them). Training groups rows by length (notebook 03), so a batch is padded to
# about the mean row; generation pads each batch to its longest answer (training.expected_longest):
GSM8K_TRAIN_MEAN = 141  # prompt + solution + end token, training split (random batches of 4: longest 196)
GSM8K_ANSWER_LONGEST = {32: 177, 64: 193}  # worked solution + end token (what a fine-tuned model writes)
SEEDS_RESULT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "cpu_track_seeds.json"
SEEDS = json.loads(SEEDS_RESULT.read_text())["seeds"]  # benchmarks/cpu_track_seeds.py's runs


def _seeds(notebook: str) -> float:
    """The slowest minutes of ``notebook`` over the cpu track's seeds."""
    return max(row["minutes"][notebook] for row in SEEDS)


# Measured times, by notebook then profile: (what the notebook's table says, the README's column).
ON_2_CORES = "measured on 2 cores"
MEASURED = {
    "00": {"cpu": ("under 1 min", "<1 min"), "smoke": ("under 1 min", "<1 min")},
    "01": {"cpu": ("under 1 min with SmolLM2-135M", "0.3 min"), "smoke": ("under 30 s", "<1 min")},
    # 02-04 on the cpu track: the slowest of the seeds in benchmarks/results/cpu_track_seeds.json
    "02": {"cpu": (f"about {_seeds('02'):.0f} min for 100 questions with SmolLM2-135M", f"{_seeds('02'):.1f} min"),
           "smoke": ("under 1 min", "<1 min")},
    "03": {"cpu": (f"about {_seeds('03'):.0f} min for one epoch of data/'s 1,200 examples with SmolLM2-135M",
                   f"{_seeds('03'):.0f} min"), "smoke": ("under 1 min", "~1 min")},
    "04": {"cpu": (f"about {_seeds('04'):.0f} min for 100 questions with SmolLM2-135M", f"{_seeds('04'):.1f} min"),
           "smoke": ("under 1 min", "<1 min")},
    "05": {"cpu": ("under 1 min with SmolLM2-135M, the merge and its check included", "0.5 min",
                   ON_2_CORES + "; up to 5 min with the cores shared"), "smoke": ("under 1 min", "<1 min")},
}
NOTEBOOKS = tuple(sorted(MEASURED))


def decode_seconds(gpu: str) -> float:
    """Seconds per decoding step of the 4-bit 8B model (bandwidth-bound, ESTIMATE)."""
    return WEIGHTS_4BIT_GB / (GPUS[gpu]["bandwidth_gbs"] * DECODE_EFFICIENCY)


def generation_minutes(gpu: str, questions: int, batch: int, longest: float) -> float:
    return -(-questions // batch) * longest * decode_seconds(gpu) / 60


def training_minutes(gpu: str, rows_per_step: int, steps: int, longest: float) -> float:
    """Padded tokens over the training throughput; the ampere rate is an A100's, scaled to an L4 by TFLOP/s."""
    from llmcourse.training import THROUGHPUT_TOKENS_PER_S_PER_BPARAM

    rate = THROUGHPUT_TOKENS_PER_S_PER_BPARAM["t4" if gpu == "T4" else "ampere"] / N_PARAMS_B
    rate *= GPUS["L4"]["tflops"] / GPUS["A100"]["tflops"] if gpu == "L4" else 1
    return rows_per_step * steps * longest / rate / 60


def gpu_steps(notebook: str, gpu: str) -> dict[str, float]:
    """Minutes of each step of ``notebook`` on ``gpu`` ("T4", "L4", "A100"), t4 or ampere defaults: ESTIMATES."""
    from llmcourse.data import HUB_DATASET, split_size
    from llmcourse.profiles import PROFILES
    from llmcourse.training import steps_for

    p = PROFILES["t4" if gpu == "T4" else "ampere"]
    steps = _fixed(notebook)
    if notebook == "01":
        steps["first question"] = generation_minutes(gpu, 1, 1, p.max_new_tokens)
    elif notebook == "02":  # the base model rarely stops
        steps["evaluation"] = generation_minutes(gpu, p.eval_size, p.eval_batch_size, p.max_new_tokens)
    elif notebook == "03":
        train_rows = min(p.train_size or 10**9, split_size(HUB_DATASET, "train"))
        count = steps_for(train_rows, p.batch_size, p.grad_accum, p.max_steps)
        steps["training"] = training_minutes(gpu, p.batch_size * p.grad_accum, count, GSM8K_TRAIN_MEAN)
        steps["probe"] = generation_minutes(gpu, 8, 8, p.max_new_tokens)
    elif notebook == "04":
        longest = GSM8K_ANSWER_LONGEST[p.eval_batch_size]
        steps["evaluation"] = generation_minutes(gpu, p.eval_size, p.eval_batch_size, longest)
    elif notebook == "05":  # two answers, one at a time (fine-tuned, then base), then the merge
        steps.update(chat=2 * generation_minutes(gpu, 1, 1, p.max_new_tokens), merge=STEPS["merge shard by shard"])
    return steps


def gpu_minutes(notebook: str, gpu: str) -> float:
    return sum(gpu_steps(notebook, gpu).values())

# What the GPU rows say each notebook does (t4, ampere); the numbers come from the estimates.
GPU_WHAT = {"01": ("the 16 GB download included", ""), "02": ("200 questions", "400 questions"),
            "03": ("60 steps of 16 examples", "one epoch of GSM8K"), "04": ("200 questions", "400 questions"),
            "05": ("the merge's 16 GB download included",) * 2}
PROFILE_HARDWARE = {"t4": "free Colab T4 (15 GB GPU)", "ampere": "L4 (Colab Pro) / A100 / H100",
                    "cpu": "any laptop, no GPU", "smoke": "CI"}
README_PROFILES = {
    "t4": ("free Colab, any pre-Ampere GPU", f"`{PROFILES['t4'].model_id}` in NF4", "fp16", "GSM8K (Hub)"),
    "ampere": ("L4 / A100 / H100", "same", "bf16", "GSM8K (Hub)"),
    "cpu": ("a laptop, no GPU, or no Hub", f"`{PROFILES['cpu'].model_id}` in NF4", "fp32", "`data/`"),
    "smoke": ("CI", "a tiny random Llama with the real Llama 3 tokenizer", "fp32", "a few rows of `data/`"),
}


def _about(minutes: float) -> str:
    return f"about {minutes:.0f} min" if minutes >= 1.5 else "about 1 min"


def cell_text(notebook: str, profile: str) -> str:
    """What the notebook's table says for ``profile``."""
    t4_what, ampere_what = GPU_WHAT.get(notebook, ("", ""))
    if profile == "t4":
        return f"{_about(gpu_minutes(notebook, 'T4'))}{', ' + t4_what if t4_what else ''} (estimate)"
    if profile == "ampere":
        return (f"{_about(gpu_minutes(notebook, 'L4'))} on an L4, {_about(gpu_minutes(notebook, 'A100'))} on an A100"
                f"{f' ({ampere_what})' if ampere_what else ''} (estimates)")
    text, _, *how = MEASURED[notebook][profile]
    return f"{text} ({how[0] if how else ON_2_CORES})"


def short_text(notebook: str, profile: str) -> str:
    """What the README's column says for ``profile`` (estimates marked with *)."""
    if profile == "t4":
        return f"~{gpu_minutes(notebook, 'T4'):.0f} min*"
    if profile == "ampere":
        return f"~{gpu_minutes(notebook, 'L4'):.0f} min* (L4), ~{gpu_minutes(notebook, 'A100'):.0f} min* (A100)"
    return MEASURED[notebook][profile][1]


def notebook_table(notebook: str) -> str:
    """The "Time and hardware" table of notebook ``notebook`` ("01"...)."""
    rows = ["| profile | hardware | time for this notebook |", "|---|---|---|"]
    rows += [f"| `{profile}` | {hardware} | {cell_text(notebook, profile)} |"
             for profile, hardware in PROFILE_HARDWARE.items()]
    return "\n".join(rows)


def readme_table() -> str:
    """The README's profile table with one time column per lesson (00, the day-before check, left out)."""
    lessons = NOTEBOOKS[1:]
    rows = ["| profile | where | model | compute | data | " + " | ".join(lessons) + " |",
            "|---|---|---|---|---|" + "---|" * len(lessons)]
    rows += [f"| `{profile}` | {' | '.join(columns)} | {' | '.join(short_text(n, profile) for n in lessons)} |"
             for profile, columns in README_PROFILES.items()]
    return "\n".join([*rows, "",
        "\\* **Estimates**, not measured on a T4, an L4 or an A100: derived in `scripts/time_tables.py` from the GPUs'",
        "published bandwidth and TFLOP/s, real GSM8K lengths and assumed efficiencies, with the 4-bit model loaded",
        "from the copy notebook 01 keeps on Google Drive (02 onwards). The `cpu` and `smoke` figures are measured."])


def guide_table() -> str:
    """The instructor guide's per-notebook minutes: T4 estimates beside the measured cpu track."""
    rows = ["| notebook | T4, t4 profile (estimate) | L4, ampere profile (estimate) | cpu track (measured, 2 cores) |",
            "|---|---|---|---|"]
    rows += [f"| {n} | {cell_text(n, 't4').removesuffix(' (estimate)')} | {_about(gpu_minutes(n, 'L4'))} | "
             f"{MEASURED[n]['cpu'][0]} |" for n in NOTEBOOKS]
    return "\n".join(rows)
