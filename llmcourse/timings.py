"""Every time figure of the course, in one table, from which ``scripts/build_navigation.py`` generates the
notebooks' "Time and hardware" tables and the README's and the instructor guide's times. The ``cpu`` and ``smoke``
figures are MEASURED on 2 cores (a new notebook adds its entry to ``MEASURED``); GPU figures are ESTIMATES: fixed
steps (``STEPS``), generation limited by memory bandwidth (each decoding step reads the 4-bit weights, at an ASSUMED
``DECODE_EFFICIENCY``), training by compute (``training.THROUGHPUT_TOKENS_PER_S_PER_BPARAM``) over the padded
tokens of real GSM8K rows; an L4 (Colab Pro's usual GPU) is scaled from an A100 by the published ratios."""

from __future__ import annotations

# Published datasheet figures (NVIDIA): dense fp16/bf16 tensor TFLOP/s and memory bandwidth in GB/s.
GPUS = {"T4": {"tflops": 65, "bandwidth_gbs": 320}, "L4": {"tflops": 121, "bandwidth_gbs": 300},
        "A100": {"tflops": 312, "bandwidth_gbs": 1555}}
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
    "checks": 0.5,  # notebook 00's preflight and Hub checks
    # 05's merge: 16 GB read and 16 GB written on the local disk at about 200 MB/s (ASSUMED); the products take seconds
    "merge shard by shard": 2.7,
}
# The fixed steps of each notebook (05 downloads the 16-bit checkpoint once more, for the merge).
NOTEBOOK_STEPS = {
    "00": ("install", "checks"),
    "01": ("install", "download", "quantize and load", "save 4-bit copy to Drive"),
    "02": ("install", "load 4-bit copy from Drive"),
    "03": ("install", "load 4-bit copy from Drive", "save adapter"),
    "04": ("install", "load 4-bit copy from Drive"),
    "05": ("install", "load 4-bit copy from Drive", "download"),
}

# Measured times, by notebook then profile: (what the notebook's table says, the README's column).
ON_2_CORES = "measured on 2 cores"
MEASURED = {
    "00": {"cpu": ("under 1 min", "<1 min"), "smoke": ("under 1 min", "<1 min")},
    "01": {"cpu": ("under 1 min with SmolLM2-135M", "0.3 min"), "smoke": ("under 30 s", "<1 min")},
    "02": {"cpu": ("about 2 min for 100 questions with SmolLM2-135M", "1.8 min"), "smoke": ("under 1 min", "<1 min")},
    "03": {"cpu": ("about 16 min for one epoch of 960 examples with SmolLM2-135M", "16 min"),
           "smoke": ("under 1 min", "~1 min")},
    "04": {"cpu": ("about 1 min for 100 questions with SmolLM2-135M", "1.0 min"), "smoke": ("under 1 min", "<1 min")},
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
        steps["training"] = training_minutes(gpu, p.batch_size * p.grad_accum, count, GSM8K_TRAIN_LONGEST[p.batch_size])
        steps["probe"] = generation_minutes(gpu, 8, 8, p.max_new_tokens)
    elif notebook == "04":
        longest = GSM8K_ANSWER_LONGEST[p.eval_batch_size]
        steps["evaluation"] = generation_minutes(gpu, p.eval_size, p.eval_batch_size, longest)
    elif notebook == "05":  # two answers, one at a time (fine-tuned, then base), then the merge
        steps.update(chat=2 * generation_minutes(gpu, 1, 1, p.max_new_tokens), merge=STEPS["merge shard by shard"])
    return steps


def _fixed(notebook: str) -> dict[str, float]:
    return {step: STEPS[step] for step in NOTEBOOK_STEPS.get(notebook, ())}


def gpu_minutes(notebook: str, gpu: str) -> float:
    return sum(gpu_steps(notebook, gpu).values())


def other_steps(notebook: str, profile: str) -> dict[str, float]:
    """The notebook's minutes outside training (install, download or Drive load, saving) on a GPU profile, for the
    training budget; empty on the cpu and smoke profiles (their tables give measured totals)."""
    return {f"{step} (estimate)": minutes for step, minutes in _fixed(notebook).items()} if profile in (
        "t4", "ampere") else {}
