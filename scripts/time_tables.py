"""How the docs print the time figures of ``llmcourse/timings.py`` (the one source of every figure): the "Time and
hardware" table of each notebook, the README's profile table and the instructor guide's table, written by
``scripts/build_navigation.py``. The package keeps the figures (notebook 03's budget reads them); their
presentation is the generator's."""

from __future__ import annotations

from llmcourse.profiles import PROFILES
from llmcourse.timings import MEASURED, NOTEBOOKS, ON_2_CORES, gpu_minutes

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
        "\\* **Estimates**, not measured on a T4, an L4 or an A100: derived in `llmcourse/timings.py` from the GPUs'",
        "published bandwidth and TFLOP/s, real GSM8K lengths and assumed efficiencies, with the 4-bit model loaded",
        "from the copy notebook 01 keeps on Google Drive (02 onwards). The `cpu` and `smoke` figures are measured."])


def guide_table() -> str:
    """The instructor guide's per-notebook minutes: T4 estimates beside the measured cpu track."""
    rows = ["| notebook | T4, t4 profile (estimate) | L4, ampere profile (estimate) | cpu track (measured, 2 cores) |",
            "|---|---|---|---|"]
    rows += [f"| {n} | {cell_text(n, 't4').removesuffix(' (estimate)')} | {_about(gpu_minutes(n, 'L4'))} | "
             f"{MEASURED[n]['cpu'][0]} |" for n in NOTEBOOKS]
    return "\n".join(rows)
