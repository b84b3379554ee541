"""Every time figure of the course, in one table: the notebooks' "Time and hardware" tables, the README's
time columns and the instructor guide's are generated from it by ``scripts/build_navigation.py``.

GPU figures are ESTIMATES until someone measures them on that GPU; each says how it was derived. The
``cpu`` and ``smoke`` figures are MEASURED on a 2-core machine. A new notebook adds its own entry to
``TIMES`` (the README gets a column for it).

How the GPU estimates are made (all the inputs are below, with their sources):

- fixed steps: the setup cell's installs, the 16 GB download and 4-bit quantization (notebook 01), or
  loading the 4-bit copy notebook 01 saved on Google Drive (02-05), saving;
- generation is limited by memory bandwidth: every decoding step reads the 5.7 GB of 4-bit weights, at an
  ASSUMED ``DECODE_EFFICIENCY`` of the GPU's published bandwidth (bitsandbytes dequantizes each weight
  block before its matrix product); a batch runs as many steps as its longest answer;
- training is limited by compute: ``training.THROUGHPUT_TOKENS_PER_S_PER_BPARAM`` (published fp16/bf16
  TFLOP/s at an assumed utilisation) over the padded tokens of real GSM8K rows.

An L4 (Colab Pro's usual GPU) is estimated from an A100 by the published ratios: 121 vs 312 dense bf16
TFLOP/s for training, 300 vs 1,555 GB/s for generation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Published datasheet figures (NVIDIA): dense fp16/bf16 tensor TFLOP/s and memory bandwidth in GB/s.
GPUS = {
    "T4": {"tflops": 65, "bandwidth_gbs": 320},
    "L4": {"tflops": 121, "bandwidth_gbs": 300},
    "A100": {"tflops": 312, "bandwidth_gbs": 1555},
}
WEIGHTS_4BIT_GB = 5.7  # Llama 3.1 8B in NF4 with double quantization (notebook 01 measures it)
DECODE_EFFICIENCY = 0.08  # ASSUMED share of the bandwidth 4-bit decoding reaches; benchmarks/gpu_check.py measures it
N_PARAMS_B = 8.03

# Expected longest row of a batch (tokens), computed with training.expected_longest on the real GSM8K
# (../shared/data/gsm8k, Llama 3 tokenizer, plain prompt format; tests/test_timings.py recomputes them):
GSM8K_TRAIN_LONGEST = {4: 196, 16: 248}  # prompt + solution + end token, training split
GSM8K_ANSWER_LONGEST = {32: 177, 64: 193}  # worked solution + end token (what a fine-tuned model writes)

# Minutes of the steps every GPU notebook shares (ESTIMATES on Colab, not measured):
STEPS = {
    "install": 2.0,  # the setup cell's pip installs on a fresh Colab runtime
    "download": 3.0,  # 16 GB of 16-bit safetensors at about 90 MB/s (Colab usually gets 50-150 MB/s from the Hub)
    "quantize and load": 1.5,  # reading 16 GB from local disk and quantizing to NF4 on the GPU
    "save 4-bit copy to Drive": 1.6,  # 5.7 GB at about 60 MB/s to Google Drive
    "load 4-bit copy from Drive": 1.6,  # the same 5.7 GB back
    "save adapter": 0.2,
    # notebook 05's merge: the 16 GB read and 16 GB written on the runtime's local disk at about 200 MB/s
    # (ASSUMED); the B @ A products themselves take seconds
    "merge shard by shard": 2.7,
}


def decode_seconds(gpu: str) -> float:
    """Seconds per decoding step of the 4-bit 8B model (bandwidth-bound, ESTIMATE)."""
    return WEIGHTS_4BIT_GB / (GPUS[gpu]["bandwidth_gbs"] * DECODE_EFFICIENCY)


def generation_minutes(gpu: str, questions: int, batch: int, longest: float) -> float:
    batches = -(-questions // batch)
    return batches * longest * decode_seconds(gpu) / 60


def training_minutes(gpu: str, rows_per_step: int, steps: int, longest: float) -> float:
    """Padded tokens over the training throughput (``training.THROUGHPUT_TOKENS_PER_S_PER_BPARAM``)."""
    from llmcourse.training import THROUGHPUT_TOKENS_PER_S_PER_BPARAM

    profile = "t4" if gpu == "T4" else "ampere"
    rate = THROUGHPUT_TOKENS_PER_S_PER_BPARAM[profile] / N_PARAMS_B
    if gpu == "L4":  # the ampere rate is for an A100: scale by the published TFLOP/s
        rate *= GPUS["L4"]["tflops"] / GPUS["A100"]["tflops"]
    return rows_per_step * steps * longest / rate / 60


def _gpu_work(notebook: str, gpu: str) -> dict[str, float]:
    """The notebook's own work on ``gpu`` with the t4 (T4) or ampere (L4, A100) profile's defaults."""
    from llmcourse.data import HUB_DATASET, split_size
    from llmcourse.profiles import PROFILES
    from llmcourse.training import steps_for

    p = PROFILES["t4" if gpu == "T4" else "ampere"]
    questions, batch, new_tokens = p.eval_size, p.eval_batch_size, p.max_new_tokens
    if notebook == "01":
        return {"first question": generation_minutes(gpu, 1, 1, new_tokens)}
    if notebook == "02":  # the base model rarely stops
        return {"evaluation": generation_minutes(gpu, questions, batch, new_tokens)}
    if notebook == "03":
        rows_per_step = p.batch_size * p.grad_accum
        train_rows = min(p.train_size or 10**9, split_size(HUB_DATASET, "train"))
        steps = steps_for(train_rows, p.batch_size, p.grad_accum, p.max_steps)
        work = training_minutes(gpu, rows_per_step, steps, GSM8K_TRAIN_LONGEST[p.batch_size])
        return {"training": work, "probe": generation_minutes(gpu, 8, 8, new_tokens)}
    if notebook == "04":
        return {"evaluation": generation_minutes(gpu, questions, batch, GSM8K_ANSWER_LONGEST[batch])}
    if notebook == "05":  # two answers, one at a time (fine-tuned, then base), then the merge
        return {"chat": 2 * generation_minutes(gpu, 1, 1, new_tokens), "merge": STEPS["merge shard by shard"]}
    return {}


def _gpu_fixed(notebook: str) -> dict[str, float]:
    if notebook == "00":
        return {"install": STEPS["install"], "checks": 0.5}
    steps = {"install": STEPS["install"]}
    if notebook == "01":
        steps.update({k: STEPS[k] for k in ("download", "quantize and load", "save 4-bit copy to Drive")})
    else:
        steps["load 4-bit copy from Drive"] = STEPS["load 4-bit copy from Drive"]
    if notebook == "03":
        steps["save adapter"] = STEPS["save adapter"]
    if notebook == "05":  # the merge reads the 16-bit checkpoint, downloaded once more
        steps["download"] = STEPS["download"]
    return steps


def gpu_steps(notebook: str, gpu: str) -> dict[str, float]:
    """Minutes of each step of ``notebook`` on ``gpu`` ("T4", "L4", "A100"): all ESTIMATES."""
    return {**_gpu_fixed(notebook), **_gpu_work(notebook, gpu)}


def gpu_minutes(notebook: str, gpu: str) -> float:
    return sum(gpu_steps(notebook, gpu).values())


@dataclass(frozen=True)
class Measured:
    """A measured time: what the table shows and how it was measured."""

    text: str  # e.g. "about 16 min for one epoch of 960 examples with SmolLM2-135M"
    short: str  # for the README's columns, e.g. "16 min"
    how: str = "measured on 2 cores"


@dataclass(frozen=True)
class Row:
    profile: str
    hardware: str
    times: dict[str, Measured | None] = field(default_factory=dict)  # None: derived from the GPU estimates


PROFILE_HARDWARE = {
    "t4": "free Colab T4 (15 GB GPU)",
    "ampere": "L4 (Colab Pro) / A100 / H100",
    "cpu": "any laptop, no GPU",
    "smoke": "CI",
}

# Measured times, by notebook then profile. A new notebook adds its entry here ("05": {...}).
MEASURED: dict[str, dict[str, Measured]] = {
    "00": {
        "cpu": Measured("under 1 min", "<1 min"),
        "smoke": Measured("under 1 min", "<1 min"),
    },
    "01": {
        "cpu": Measured("under 1 min with SmolLM2-135M", "0.3 min"),
        "smoke": Measured("under 30 s", "<1 min"),
    },
    "02": {
        "cpu": Measured("about 2 min for 100 questions with SmolLM2-135M", "1.8 min"),
        "smoke": Measured("under 1 min", "<1 min"),
    },
    "03": {
        "cpu": Measured("about 16 min for one epoch of 960 examples with SmolLM2-135M", "16 min"),
        "smoke": Measured("under 1 min", "~1 min"),
    },
    "04": {
        "cpu": Measured("about 1 min for 100 questions with SmolLM2-135M", "1.0 min"),
        "smoke": Measured("under 1 min", "<1 min"),
    },
    "05": {
        "cpu": Measured("under 1 min with SmolLM2-135M, the merge and its check included", "0.5 min",
                        how="measured on 2 cores; up to 5 min with the cores shared"),
        "smoke": Measured("under 1 min", "<1 min"),
    },
}
NOTEBOOKS = tuple(sorted(MEASURED))

# What the GPU rows say each notebook does (the numbers come from the estimates above).
GPU_WHAT = {
    "00": ("", ""),
    "01": ("the 16 GB download included", ""),
    "02": ("200 questions", "400 questions"),
    "03": ("60 steps of 16 examples", "one epoch of GSM8K"),
    "04": ("200 questions", "400 questions"),
    "05": ("the merge's 16 GB download included", "the merge's 16 GB download included"),
}


def _about(minutes: float) -> str:
    return f"about {minutes:.0f} min" if minutes >= 1.5 else "about 1 min"


def cell_text(notebook: str, profile: str) -> str:
    """What the notebook's table says for ``profile``."""
    if profile in ("t4", "ampere"):
        t4_what, ampere_what = GPU_WHAT.get(notebook, ("", ""))
        if profile == "t4":
            what = f", {t4_what}" if t4_what else ""
            return f"{_about(gpu_minutes(notebook, 'T4'))}{what} (estimate)"
        what = f" ({ampere_what})" if ampere_what else ""
        return (f"{_about(gpu_minutes(notebook, 'L4'))} on an L4, {_about(gpu_minutes(notebook, 'A100'))} "
                f"on an A100{what} (estimates)")
    measured = MEASURED[notebook][profile]
    return f"{measured.text} ({measured.how})"


def short_text(notebook: str, profile: str) -> str:
    """What the README's column says for ``profile`` (estimates marked with *)."""
    if profile == "t4":
        return f"~{gpu_minutes(notebook, 'T4'):.0f} min*"
    if profile == "ampere":
        return f"~{gpu_minutes(notebook, 'L4'):.0f} min* (L4), ~{gpu_minutes(notebook, 'A100'):.0f} min* (A100)"
    return MEASURED[notebook][profile].short


def notebook_table(notebook: str) -> str:
    """The "Time and hardware" table of notebook ``notebook`` ("01"...)."""
    rows = ["| profile | hardware | time for this notebook |", "|---|---|---|"]
    for profile, hardware in PROFILE_HARDWARE.items():
        rows.append(f"| `{profile}` | {hardware} | {cell_text(notebook, profile)} |")
    return "\n".join(rows)


README_PROFILES = {
    "t4": ("free Colab, any pre-Ampere GPU", "`meta-llama/Llama-3.1-8B` in NF4", "fp16", "GSM8K (Hub)"),
    "ampere": ("L4 / A100 / H100", "same", "bf16", "GSM8K (Hub)"),
    "cpu": ("a laptop, no GPU, or no Hub", "`HuggingFaceTB/SmolLM2-135M-Instruct` in NF4", "fp32", "`data/`"),
    "smoke": ("CI", "a tiny random Llama with the real Llama 3 tokenizer", "fp32", "a few rows of `data/`"),
}


def readme_table() -> str:
    """The README's profile table with one time column per lesson (00, the day-before check, left out)."""
    lessons = [n for n in NOTEBOOKS if n != "00"]
    rows = [
        "| profile | where | model | compute | data | " + " | ".join(lessons) + " |",
        "|---|---|---|---|---|" + "---|" * len(lessons),
    ]
    for profile, (where, model, compute, data) in README_PROFILES.items():
        times = " | ".join(short_text(n, profile) for n in lessons)
        rows.append(f"| `{profile}` | {where} | {model} | {compute} | {data} | {times} |")
    rows += [
        "",
        "\\* **Estimates**, not measured on a T4, an L4 or an A100: derived in `llmcourse/timings.py` from the GPUs'",
        "published bandwidth and TFLOP/s, real GSM8K lengths and assumed efficiencies, with the 4-bit model loaded",
        "from the copy notebook 01 keeps on Google Drive (02 onwards). The `cpu` and `smoke` figures are measured.",
    ]
    return "\n".join(rows)


def guide_table() -> str:
    """The instructor guide's per-notebook minutes: T4 estimates beside the measured cpu track."""
    rows = ["| notebook | T4, t4 profile (estimate) | L4, ampere profile (estimate) | cpu track (measured, 2 cores) |",
            "|---|---|---|---|"]
    for notebook in NOTEBOOKS:
        rows.append(f"| {notebook} | {cell_text(notebook, 't4').removesuffix(' (estimate)')} | "
                    f"{_about(gpu_minutes(notebook, 'L4'))} | {MEASURED[notebook]['cpu'].text} |")
    return "\n".join(rows)


def other_steps(notebook: str, profile: str) -> dict[str, float]:
    """The notebook's minutes outside training (install, download or Drive load, saving) on a GPU profile,
    for the training budget; empty on the cpu and smoke profiles (their tables give measured totals)."""
    if profile not in ("t4", "ampere"):
        return {}
    return {f"{step} (estimate)": minutes for step, minutes in _gpu_fixed(notebook).items()}
