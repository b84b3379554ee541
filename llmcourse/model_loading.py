"""Quantize once (pitfall 13): notebook 01 saves the 4-bit model (5.7 GB for Llama 3.1 8B) with a manifest to Drive;
:func:`load_course_model` loads that copy when the manifest matches (base model, settings, versions), else the Hub."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MANIFEST = "course_manifest.json"
COPY_FOLDER = "model-4bit"
# Notebooks 01-05's quantization (the compute dtype is the profile's): the only settings kept on Drive.
COURSE_QUANTIZATION = {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True}
# What the stored 4-bit weights depend on (not the compute dtype: it is chosen when loading).
STORED = ("load_in_4bit", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant", "bnb_4bit_quant_storage",
          "llm_int8_skip_modules")


def manifest_for(model_id: str, bnb_config) -> dict:
    """What a saved copy must match: the base model, the stored quantization settings, the packed layout's versions."""
    from llmcourse.evaluation import library_versions

    quant = bnb_config.to_dict()
    versions = library_versions()
    return {"base_model": model_id, "quantization": {k: str(quant[k]).removeprefix("torch.") if k.endswith("storage")
                                                     else quant[k] for k in STORED if k in quant},
            "versions": {k: versions[k].split("+")[0] for k in ("transformers", "bitsandbytes", "torch")}}


def is_course_quantization(bnb_config) -> bool:
    from transformers import BitsAndBytesConfig

    return manifest_for("", bnb_config) == manifest_for("", BitsAndBytesConfig(**COURSE_QUANTIZATION))


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


def _device_map() -> str:
    import torch

    return "auto" if torch.cuda.is_available() else "cpu"


def load_prequantized(source: str, compute_dtype, token: str | bool | None = None):
    """A checkpoint already stored in 4-bit, computing in ``compute_dtype``: transformers 5 ignores a
    ``BitsAndBytesConfig`` passed for one (``merge_quantization_configs``), so the dtype goes into its config."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(source, token=token)
    if isinstance(config.quantization_config, dict):
        config.quantization_config["bnb_4bit_compute_dtype"] = str(compute_dtype).removeprefix("torch.")
    else:
        config.quantization_config.bnb_4bit_compute_dtype = compute_dtype
    return AutoModelForCausalLM.from_pretrained(source, config=config, dtype=compute_dtype, device_map=_device_map(),
                                                token=token)


def load_4bit_model(model_id: str, bnb_config, compute_dtype, copy_folder: Path | None = None,
                    print_fn: Callable[[str], Any] = print):
    """``(model, tokenizer, why_not_copy)``: the 4-bit model from the saved copy in ``copy_folder`` when it matches
    (``why_not_copy`` None), else from ``model_id`` (Hub or offline copy, with the token). Says where it loaded from
    and how long it took."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmcourse.hub_access import download_token
    from llmcourse.offline_models import resolve_model

    why = manifest_mismatch(copy_folder, manifest_for(model_id, bnb_config)) if copy_folder else "no copy folder given"
    started = time.perf_counter()
    if why is None:
        try:
            tokenizer = AutoTokenizer.from_pretrained(copy_folder)
            model = load_prequantized(str(copy_folder), compute_dtype)
        except Exception as err:  # noqa: BLE001 - a damaged copy: the Hub still works
            why = f"the saved copy could not be loaded ({type(err).__name__}: {err})"
        else:
            # Named as if loaded from the Hub: adapters and results record the base model, not this folder.
            model.config.name_or_path = model.name_or_path = resolve_model(model_id) if model_id.startswith(
                "offline:") else model_id
            print_fn(f"Loaded the 4-bit copy of {model_id} from {copy_folder} in {time.perf_counter() - started:.0f} "
                     "s (no download, no quantization).")
            return model, tokenizer, None
    print_fn(f"Loading {model_id} and quantizing it to 4-bit ({why}).")
    source, token = resolve_model(model_id), download_token(model_id)
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(source, token=token)
    model = AutoModelForCausalLM.from_pretrained(source, quantization_config=bnb_config, dtype=compute_dtype,
                                                 device_map=_device_map(), token=token)
    print_fn(f"Downloaded (or read from the cache) and quantized {model_id} in {time.perf_counter() - started:.0f} s.")
    return model, tokenizer, why


def keep_quantized_copy(model, tokenizer, folder: Path | None, model_id: str, bnb_config,
                        print_fn: Callable[[str], Any] = print) -> Path | None:
    """Save the 4-bit model for the later notebooks unless a matching copy is already there (the manifest last: a copy
    cut short is never used). None when nothing was saved: no folder, or settings other than the course's."""
    from llmcourse.environment import save_pretrained_whole

    if folder is None:
        print_fn("No 4-bit copy kept (Google Drive is not mounted): later notebooks download the model again.")
        return None
    if not is_course_quantization(bnb_config):
        print_fn(f"Not saved: these are not the course's 4-bit settings {COURSE_QUANTIZATION}, so the copy in "
                 f"{folder} (if any) is left as it is for notebooks 02 onwards.")
        return None
    manifest = manifest_for(model_id, bnb_config)
    if manifest_mismatch(folder, manifest) is None:
        print_fn(f"The 4-bit copy in {folder} is up to date.")
        return Path(folder)
    started = time.perf_counter()
    try:
        folder = save_pretrained_whole(folder, model, tokenizer)
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    except OSError as err:  # a full Drive: the lessons still load from the Hub
        print_fn(f"Could not save the 4-bit copy to {folder} ({err}); later notebooks will download the model again.")
        return None
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e9
    print_fn(f"Saved the 4-bit copy ({size:.2f} GB) to {folder} in {time.perf_counter() - started:.0f} s: "
             "notebooks 02 onwards load it from there instead of downloading 16 GB again.")
    return folder


def quantized_copy_folder(profile_name: str) -> Path | None:
    """Where notebook 01 keeps the 4-bit copy (Google Drive on Colab); None on Colab without Drive or $COURSE_HOME."""
    import os

    from llmcourse.environment import DRIVE_ROOT, course_home, on_colab

    if on_colab() and not DRIVE_ROOT.is_dir() and not os.environ.get("COURSE_HOME"):
        return None
    return course_home(profile_name) / COPY_FOLDER


def load_course_model(model_id: str, compute_dtype: str, profile_name: str, print_fn: Callable[[str], Any] = print):
    """``(model, tokenizer)`` for a lesson after 01: notebook 01's ``COURSE_QUANTIZATION`` computing in the profile's
    ``compute_dtype``, from its Drive copy when it matches; the tokenizer pads with a non-end token (pitfall 3)."""
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
    """The model with the adapter of ``adapter_dir`` on top (an adapter already on is taken off), in eval mode, after
    checking that it exists and was trained for ``base_model_id``."""
    from peft import PeftModel

    from llmcourse.training import check_adapter

    check_adapter(Path(adapter_dir), base_model_id)
    if isinstance(model, PeftModel):
        model = model.unload()
    return PeftModel.from_pretrained(model, str(adapter_dir)).eval()
