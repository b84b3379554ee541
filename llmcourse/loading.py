"""Load the base model in 4-bit and put a trained LoRA adapter on top: what notebooks 04 and 05 both need.

Notebook 01 teaches the 4-bit load (``BitsAndBytesConfig``) and notebook 04 the adapter on top
(``PeftModel.from_pretrained``); later notebooks import this tested copy instead of repeating the cells.
"""

from __future__ import annotations

from pathlib import Path

import torch

from llmcourse.memory import free_memory
from llmcourse.offline_models import resolve_model
from llmcourse.profiles import torch_dtype
from llmcourse.prompts import choose_pad_token


def load_4bit(model_id: str, compute_dtype: str):
    """``(model, tokenizer)``: the model in NF4 with double quantization, computing in ``compute_dtype``,
    and its tokenizer padding with a token that is not the end token (pitfall 3)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    dtype = torch_dtype(compute_dtype)
    bnb_config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
    )
    source = resolve_model(model_id)
    free_memory()
    tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.pad_token = choose_pad_token(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(
        source,
        quantization_config=bnb_config,
        dtype=dtype,
        device_map="auto" if torch.cuda.is_available() else "cpu",
    )
    return model, tokenizer


def attach_adapter(model, adapter_dir: Path, base_model_id: str):
    """The model with the adapter of ``adapter_dir`` on top, in eval mode, after checking that the adapter
    exists and was trained for ``base_model_id`` (a clear ``CourseError`` otherwise). A model that already
    carries an adapter has it taken off first, so adapters never stack."""
    from peft import PeftModel

    from llmcourse.training import check_adapter

    check_adapter(Path(adapter_dir), base_model_id)
    if isinstance(model, PeftModel):
        model = model.unload()
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    return model.eval()
