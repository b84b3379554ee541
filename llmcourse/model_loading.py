"""Load the model in 4-bit once a day: from the copy notebook 01 keeps on Drive, else from the Hub.

Every lesson runs on a fresh Colab runtime. Downloading the 16 GB of 16-bit weights and quantizing them
again in every lesson costs the download and quantization steps of ``timings.STEPS`` in each of them,
instead of loading the copy (pitfall 13). Notebook 01 teaches
``BitsAndBytesConfig`` and loads the model from the Hub; it then saves the quantized model (about
5.7 GB for Llama 3.1 8B) to the course's storage folder (Google Drive on Colab) with a small manifest.
Notebooks 02-05 call :func:`load_4bit_model`, which loads that copy when the manifest matches (same
base model, same quantization settings, same library versions) and falls back to the Hub otherwise.
Only the course's own settings (``COURSE_QUANTIZATION``, those of 01-05) are kept: an exercise that
reloads with other settings (01's exercise 1) leaves the copy as it is.

A pre-quantized checkpoint (this copy, or one from the Hub) stores its ``bnb_4bit_compute_dtype`` in its
``config.json``, and transformers 5 ignores a ``BitsAndBytesConfig`` passed to ``from_pretrained`` for it
(``AutoHfQuantizer.merge_quantization_configs``: bitsandbytes is not among the configs whose loading
attributes are overridden). So the profile's compute dtype (fp16 on a T4, which has no native bf16) is
written into the checkpoint's config before loading: :func:`load_prequantized`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "course_manifest.json"
COPY_FOLDER = "model-4bit"
# Versions that decide whether a saved 4-bit checkpoint loads the same way (the packed layout).
VERSIONED = ("transformers", "bitsandbytes", "torch")
# The quantization settings of notebooks 01-05 (the compute dtype is the profile's): the only ones kept on Drive.
COURSE_QUANTIZATION = {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True}


def _dtype_name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


def quantization_settings(bnb_config) -> dict:
    """What the stored 4-bit weights depend on (the compute dtype is not: it is chosen when loading)."""
    data = bnb_config.to_dict() if hasattr(bnb_config, "to_dict") else dict(bnb_config)
    keys = ("load_in_4bit", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant", "bnb_4bit_quant_storage",
            "llm_int8_skip_modules")
    return {k: (_dtype_name(data[k]) if k == "bnb_4bit_quant_storage" else data[k]) for k in keys if k in data}


def is_course_quantization(bnb_config) -> bool:
    """Whether ``bnb_config`` stores the weights as the course's ``COURSE_QUANTIZATION`` does."""
    from transformers import BitsAndBytesConfig

    return quantization_settings(bnb_config) == quantization_settings(BitsAndBytesConfig(**COURSE_QUANTIZATION))


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in VERSIONED:
        try:
            found[name] = version(name).split("+")[0]
        except PackageNotFoundError:
            found[name] = "-"
    return found


def manifest_for(model_id: str, bnb_config) -> dict:
    return {"base_model": model_id, "quantization": quantization_settings(bnb_config), "versions": library_versions()}


def manifest_mismatch(folder: Path, wanted: dict) -> str | None:
    """Why the copy in ``folder`` cannot be used for ``wanted`` (None: it can)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return f"no saved 4-bit copy in {folder}"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return f"the manifest {path} cannot be read ({err})"
    for key, what in (("base_model", "base model"), ("quantization", "quantization settings"),
                      ("versions", "library versions")):
        if saved.get(key) != wanted[key]:
            return f"the saved copy has other {what}: {saved.get(key)} (wanted {wanted[key]})"
    return None


@dataclass
class LoadInfo:
    source: str  # where the weights came from: the Drive copy's folder or a Hub id / local folder
    from_copy: bool
    seconds: float
    saved_to: Path | None = None
    why_not_copy: str | None = None


def _device_map():
    import torch

    return "auto" if torch.cuda.is_available() else "cpu"


def load_prequantized(source: str, compute_dtype, token: str | bool | None = None):
    """A checkpoint already stored in 4-bit, computing in ``compute_dtype`` whatever its config says."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(source, token=token)
    quant = config.quantization_config
    if isinstance(quant, dict):
        quant["bnb_4bit_compute_dtype"] = _dtype_name(compute_dtype)
    else:
        quant.bnb_4bit_compute_dtype = compute_dtype
    return AutoModelForCausalLM.from_pretrained(source, config=config, dtype=compute_dtype,
                                                device_map=_device_map(), token=token)


def save_quantized_copy(model, tokenizer, folder: Path, model_id: str, bnb_config) -> Path:
    """Save the 4-bit model and its tokenizer to ``folder``; the manifest is written last, so a copy cut
    short by a disconnect has none and is never used."""
    from llmcourse.environment import save_pretrained_whole

    folder = save_pretrained_whole(folder, model, tokenizer)
    (folder / MANIFEST).write_text(json.dumps(manifest_for(model_id, bnb_config), indent=2), encoding="utf-8")
    return folder


def load_4bit_model(
    model_id: str,
    bnb_config,
    compute_dtype,
    copy_folder: Path | None = None,
    save_copy: bool = False,
    print_fn: Callable[[str], Any] = print,
):
    """``(model, tokenizer, LoadInfo)``: the 4-bit model, from the saved copy in ``copy_folder`` when it
    matches, else from ``model_id`` (Hub or offline copy, with the token); ``save_copy`` then saves it there.

    Prints where it loaded from and how long each step took.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmcourse.hub_access import download_token
    from llmcourse.offline_models import resolve_model

    wanted = manifest_for(model_id, bnb_config)
    why = manifest_mismatch(copy_folder, wanted) if copy_folder is not None else "no copy folder given"
    if why is None:
        started = time.perf_counter()
        try:
            tokenizer = AutoTokenizer.from_pretrained(copy_folder)
            model = load_prequantized(str(copy_folder), compute_dtype)
        except Exception as err:  # noqa: BLE001 - a damaged copy: the Hub still works
            why = f"the saved copy could not be loaded ({type(err).__name__}: {err})"
        else:
            seconds = time.perf_counter() - started
            # Named as if loaded from the Hub: adapters and results record the base model, not this folder.
            name = resolve_model(model_id) if model_id.startswith("offline:") else model_id
            model.config.name_or_path = model.name_or_path = name
            print_fn(f"Loaded the 4-bit copy of {model_id} from {copy_folder} in {seconds:.0f} s "
                     "(no download, no quantization).")
            return model, tokenizer, LoadInfo(str(copy_folder), True, seconds)
    print_fn(f"Loading {model_id} and quantizing it to 4-bit ({why}).")
    source = resolve_model(model_id)
    token = download_token(model_id)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(source, token=token)
    model = AutoModelForCausalLM.from_pretrained(source, quantization_config=bnb_config, dtype=compute_dtype,
                                                 device_map=_device_map(), token=token)
    info = LoadInfo(source, False, time.perf_counter() - started, why_not_copy=why)
    print_fn(f"Downloaded (or read from the cache) and quantized {model_id} in {info.seconds:.0f} s.")
    if save_copy and copy_folder is not None:
        info.saved_to = keep_quantized_copy(model, tokenizer, copy_folder, model_id, bnb_config, print_fn)
    return model, tokenizer, info


def keep_quantized_copy(model, tokenizer, folder: Path | None, model_id: str, bnb_config,
                        print_fn: Callable[[str], Any] = print) -> Path | None:
    """Save the 4-bit model for the later notebooks unless a matching copy is already there; say how long it
    took. Returns the folder, or None when nothing was saved: no folder (then they download the model
    again), or settings other than the course's (then the copy already there stays as it is)."""
    if folder is None:
        print_fn("No 4-bit copy kept (Google Drive is not mounted): later notebooks download the model again.")
        return None
    if not is_course_quantization(bnb_config):
        print_fn(f"Not saved: these are not the course's 4-bit settings {COURSE_QUANTIZATION}, so the copy in "
                 f"{folder} (if any) is left as it is for notebooks 02 onwards.")
        return None
    if manifest_mismatch(folder, manifest_for(model_id, bnb_config)) is None:
        print_fn(f"The 4-bit copy in {folder} is up to date.")
        return Path(folder)
    started = time.perf_counter()
    try:
        save_quantized_copy(model, tokenizer, folder, model_id, bnb_config)
    except OSError as err:  # a full Drive: the lessons still load from the Hub
        print_fn(f"Could not save the 4-bit copy to {folder} ({err}); later notebooks will download the model again.")
        return None
    size = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 1e9
    print_fn(f"Saved the 4-bit copy ({size:.2f} GB) to {folder} in {time.perf_counter() - started:.0f} s: "
             "notebooks 02 onwards load it from there instead of downloading 16 GB again.")
    return Path(folder)


def quantized_copy_folder(profile_name: str) -> Path | None:
    """Where notebook 01 keeps the 4-bit copy: the profile's storage folder (Google Drive on Colab). None on
    Colab without Drive: a copy on the runtime's disk would be gone with the runtime."""
    from llmcourse.environment import DRIVE_ROOT, course_home, on_colab

    if on_colab() and not DRIVE_ROOT.is_dir() and not _course_home_set():
        return None
    return course_home(profile_name) / COPY_FOLDER


def _course_home_set() -> bool:
    import os

    return bool(os.environ.get("COURSE_HOME"))


def load_course_model(model_id: str, compute_dtype: str, profile_name: str, print_fn: Callable[[str], Any] = print):
    """``(model, tokenizer)`` for a lesson after 01: the course's 4-bit settings (``COURSE_QUANTIZATION``,
    computing in ``compute_dtype``) through :func:`load_4bit_model`, so the Drive copy of notebook 01 is used
    when it matches, and a tokenizer that pads with a token that is not the end token (pitfall 3)."""
    from transformers import BitsAndBytesConfig

    from llmcourse.environment import free_memory
    from llmcourse.profiles import torch_dtype
    from llmcourse.prompts import choose_pad_token

    dtype = torch_dtype(compute_dtype)
    free_memory()
    bnb_config = BitsAndBytesConfig(**COURSE_QUANTIZATION, bnb_4bit_compute_dtype=dtype)
    model, tokenizer, _ = load_4bit_model(model_id, bnb_config, dtype, copy_folder=quantized_copy_folder(profile_name),
                                          print_fn=print_fn)
    tokenizer.pad_token = choose_pad_token(tokenizer)
    return model, tokenizer


def attach_adapter(model, adapter_dir: Path, base_model_id: str):
    """The model with the adapter of ``adapter_dir`` on top, in eval mode (notebook 04 writes these steps out),
    after checking that the adapter exists and was trained for ``base_model_id`` (a clear ``CourseError``
    otherwise). A model that already carries an adapter has it taken off first, so adapters never stack."""
    from peft import PeftModel

    from llmcourse.training import check_adapter

    check_adapter(Path(adapter_dir), base_model_id)
    if isinstance(model, PeftModel):
        model = model.unload()
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    return model.eval()
