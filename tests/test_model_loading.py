"""The 4-bit copy notebook 01 saves and 02-05 load (pitfall 13), on the smoke profile's tiny Llama."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import BitsAndBytesConfig

from llmcourse import model_loading, prompts
from llmcourse.generation import generate_batched
from llmcourse.profiles import TINY_LLAMA
from llmcourse.troubleshooting import CourseError

pytestmark = pytest.mark.slow


def bnb(compute_dtype=torch.float32, double_quant=True):
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=double_quant,
                              bnb_4bit_compute_dtype=compute_dtype)


def load_and_keep(copy, config=None, compute_dtype=torch.float32, print_fn=lambda line: None):
    """Notebook 01's way: load from the Hub (or the offline copy), then keep the 4-bit copy in ``copy``."""
    config = config or bnb(compute_dtype)
    model, tokenizer, why = model_loading.load_4bit_model(TINY_LLAMA, config, compute_dtype, copy_folder=copy,
                                                          print_fn=print_fn)
    assert why is not None  # not from a copy
    assert model_loading.keep_quantized_copy(model, tokenizer, copy, TINY_LLAMA, config, print_fn) == copy
    return model, tokenizer


def answers(model, tokenizer):
    tokenizer.pad_token = prompts.choose_pad_token(tokenizer)
    texts = [prompts.plain_prompt(q) for q in ("Tom has 3 apples and buys 4 more. How many?", "What is 6 x 7?")]
    out, _ = generate_batched(model, tokenizer, texts, batch_size=2, max_new_tokens=12,
                              end_token_ids=prompts.end_token_ids(tokenizer, "plain"), progress=False)
    return [g.output for g in out]


def test_saved_copy_loads_with_identical_answers_and_the_same_name(tmp_path):
    copy = tmp_path / "model-4bit"
    said = []
    hub_model, hub_tok = load_and_keep(copy, print_fn=said.append)
    assert (copy / model_loading.MANIFEST).is_file()
    assert any("in " in line and " s" in line for line in said)  # what each step took
    again, tok, why_not_copy = model_loading.load_4bit_model(TINY_LLAMA, bnb(), torch.float32, copy_folder=copy,
                                                             print_fn=said.append)
    assert why_not_copy is None
    assert answers(again, tok) == answers(hub_model, hub_tok)
    assert again.name_or_path == hub_model.name_or_path  # adapters record the same base model
    assert again.config.name_or_path == hub_model.config.name_or_path
    layer = again.model.layers[0].self_attn.q_proj
    assert type(layer).__name__ == "Linear4bit" and layer.compute_dtype == torch.float32


def test_a_copy_that_does_not_match_is_not_used(tmp_path):
    copy = tmp_path / "model-4bit"
    load_and_keep(copy)
    wanted = model_loading.manifest_for(TINY_LLAMA, bnb())
    assert model_loading.manifest_mismatch(copy, wanted) is None
    assert "quantization settings" in model_loading.manifest_mismatch(
        copy, model_loading.manifest_for(TINY_LLAMA, bnb(double_quant=False)))
    assert "base model" in model_loading.manifest_mismatch(copy, {**wanted, "base_model": "meta-llama/Llama-3.1-8B"})
    manifest = json.loads((copy / model_loading.MANIFEST).read_text())
    manifest["versions"]["transformers"] = "4.0.0"
    (copy / model_loading.MANIFEST).write_text(json.dumps(manifest))
    said = []
    _, _, why_not_copy = model_loading.load_4bit_model(TINY_LLAMA, bnb(), torch.float32, copy_folder=copy,
                                                       print_fn=said.append)
    assert "library versions" in why_not_copy
    # a copy cut short (no manifest: it is written last) is never used
    (copy / model_loading.MANIFEST).unlink()
    assert "no saved 4-bit copy" in model_loading.manifest_mismatch(copy, wanted)


def test_a_prequantized_checkpoint_computes_in_the_profiles_dtype(tmp_path):
    """A checkpoint saved with bf16 compute (as unsloth's bnb-4bit copies are) loaded for a T4 must compute in
    the profile's dtype. transformers ignores a BitsAndBytesConfig passed for an already quantized checkpoint."""
    from transformers import AutoModelForCausalLM

    copy = tmp_path / "bf16-compute"
    load_and_keep(copy, compute_dtype=torch.bfloat16)
    stored = json.loads((copy / "config.json").read_text())["quantization_config"]["bnb_4bit_compute_dtype"]
    assert stored == "bfloat16"
    naive = AutoModelForCausalLM.from_pretrained(copy, quantization_config=bnb(torch.float16), dtype=torch.float16,
                                                 device_map="cpu")
    assert naive.model.layers[0].mlp.down_proj.compute_dtype == torch.bfloat16  # the passed config was ignored
    loaded = model_loading.load_prequantized(str(copy), torch.float16)
    dtypes = {m.compute_dtype for m in loaded.modules() if type(m).__name__ == "Linear4bit"}
    assert dtypes == {torch.float16}


def test_other_settings_never_replace_the_course_copy(tmp_path):
    """01's exercise 1 reloads without double quantization: the copy 02-05 load must stay as it was."""
    copy = tmp_path / "model-4bit"
    model, tokenizer = load_and_keep(copy)
    assert model_loading.is_course_quantization(bnb()) and not model_loading.is_course_quantization(bnb(double_quant=False))
    said = []
    kept = model_loading.keep_quantized_copy(model, tokenizer, copy, TINY_LLAMA, bnb(double_quant=False), said.append)
    assert kept is None and "Not saved" in said[0]
    assert model_loading.manifest_mismatch(copy, model_loading.manifest_for(TINY_LLAMA, bnb())) is None


def test_a_lesson_loads_notebook_01s_copy_with_the_profiles_dtype_and_a_pad_token(tmp_path, monkeypatch):
    """load_course_model, what 02-05 call: the Drive copy 01 saved, the profile's compute dtype, pad != end token."""
    monkeypatch.setenv("COURSE_HOME", str(tmp_path))
    course = BitsAndBytesConfig(**model_loading.COURSE_QUANTIZATION, bnb_4bit_compute_dtype=torch.float32)
    folder = model_loading.quantized_copy_folder("smoke")
    assert folder == tmp_path / "smoke" / model_loading.COPY_FOLDER
    load_and_keep(folder, course)
    said = []
    model, tokenizer = model_loading.load_course_model(TINY_LLAMA, "float32", "smoke", print_fn=said.append)
    assert said[0].startswith("Loaded the 4-bit copy") and model.name_or_path != str(folder)
    assert tokenizer.pad_token == "<|finetune_right_pad_id|>" != tokenizer.eos_token
    assert {m.compute_dtype for m in model.modules() if type(m).__name__ == "Linear4bit"} == {torch.float32}


def test_attach_adapter_refuses_an_adapter_for_another_base(tiny_llama_4bit, tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "meta-llama/Llama-3.1-8B"}))
    model, _ = tiny_llama_4bit
    with pytest.raises(CourseError) as info:
        model_loading.attach_adapter(model, tmp_path, "offline:tiny-random-llama3")
    assert info.value.key == "adapter_base_mismatch"
    with pytest.raises(CourseError) as info:
        model_loading.attach_adapter(model, tmp_path / "nothing", "offline:tiny-random-llama3")
    assert info.value.key == "missing_adapter"
