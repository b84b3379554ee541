"""The minutes of the steps every GPU notebook shares (install, download, Drive load and save: ESTIMATES on Colab),
which notebook 03's budget adds to its training minutes. The docs' time tables (scripts/time_tables.py) take them
from here, with the GPU estimates and the measured cpu times they add."""

from __future__ import annotations

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


def _fixed(notebook: str) -> dict[str, float]:
    return {step: STEPS[step] for step in NOTEBOOK_STEPS.get(notebook, ())}


def other_steps(notebook: str, profile: str) -> dict[str, float]:
    """The notebook's minutes outside training (install, download or Drive load, saving) on a GPU profile, for the
    training budget; empty on the cpu and smoke profiles (their tables give measured totals)."""
    return {f"{step} (estimate)": minutes for step, minutes in _fixed(notebook).items()} if profile in (
        "t4", "ampere") else {}
