"""vLLM as a second generation engine for the same harness (``EvalSettings.engine = "vllm"``), for
scripts/evaluate.py: it runs in vLLM's own environment, never in the course's (so not in the package).

Same prompts (as token ids, encoded as ``generation.generate_batched`` encodes them), greedy decoding, the same end
tokens and stop strings, the same ``max_new_tokens``, and each answer cut by ``generation.cut_answer``, so the
records mean what the HF engine's mean. The adapter is served with ``LoRARequest`` on top of the base.
vLLM lives in its own environment (``scripts/setup_vllm.sh``): it pins its own torch and transformers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from llmcourse.generation import Generation, GenerationStats, cut_answer
from llmcourse.prompts import add_special_tokens


@dataclass
class VllmModel:
    """What ``evaluate`` takes as ``model`` for the vllm engine: the engine and the adapter to serve."""

    llm: object  # vllm.LLM
    lora_request: object | None  # vllm.lora.request.LoRARequest, None for the base model alone
    base_precision: str  # the 16/32-bit dtype vLLM computes in (vLLM 0.32 has no bitsandbytes 4-bit)


def load_vllm(base: str, adapter_dir: Path | None, dtype: str, max_lora_rank: int = 16, max_model_len: int = 2048,
              seed: int = 0) -> VllmModel:
    """vLLM's engine on ``base`` (a folder or a Hub id) in ``dtype``, with LoRA enabled when an adapter is given."""
    import torch
    from vllm import LLM
    from vllm.lora.request import LoRARequest

    extra = {}
    if not torch.cuda.is_available():  # on a CPU this fraction of the RAM is reserved (weights + KV cache): 2 GB
        import psutil

        extra["gpu_memory_utilization"] = min(0.5, 2e9 / psutil.virtual_memory().total)
    llm = LLM(model=str(base), dtype=dtype, enable_lora=adapter_dir is not None, max_lora_rank=max_lora_rank,
              max_model_len=max_model_len, seed=seed, enforce_eager=True, **extra)
    lora = LoRARequest("adapter", 1, str(adapter_dir)) if adapter_dir is not None else None
    return VllmModel(llm, lora, dtype)


def generate_vllm(model: VllmModel, tokenizer, prompts: list[str], *, batch_size: int, max_new_tokens: int,
                  end_token_ids: list[int], stop_strings: tuple[str, ...] = (), progress: bool = True
                  ) -> tuple[list[Generation], GenerationStats]:
    """``generate_batched``'s contract on vLLM; ``batch_size`` is ignored (vLLM schedules its own batches)."""
    from vllm import SamplingParams

    params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens, stop_token_ids=sorted(set(end_token_ids)),
                            stop=list(stop_strings) or None, skip_special_tokens=True, detokenize=True)
    # as generate_batched encodes: no second BOS token after a chat template's own
    encoded = [{"prompt_token_ids": tokenizer(p, add_special_tokens=add_special_tokens(tokenizer, [p]))["input_ids"]}
               for p in prompts]
    start = time.perf_counter()
    outputs = model.llm.generate(encoded, params, lora_request=model.lora_request, use_tqdm=progress)
    wall = time.perf_counter() - start
    end_ids = set(end_token_ids)
    generations = []
    for prompt, out in zip(prompts, outputs, strict=True):
        completion = out.outputs[0]
        ids = list(completion.token_ids)
        # vLLM reports an end token as the stop reason; keep it in the ids so cut_answer counts it as HF does.
        stop = completion.stop_reason
        if completion.finish_reason == "stop" and isinstance(stop, int) and (not ids or ids[-1] != stop):
            ids.append(stop)
        if completion.finish_reason == "stop" and stop is None and (not ids or ids[-1] not in end_ids):
            ids.append(tokenizer.eos_token_id)  # stopped on the model's own EOS
        generations.append(cut_answer(tokenizer, prompt, ids, end_ids, tuple(stop_strings)))
    return generations, GenerationStats(wall, sum(g.new_tokens for g in generations), len(prompts))
