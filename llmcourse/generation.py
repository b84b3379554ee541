"""Batched, greedy, left-padded generation with a stop rule: the one generation path of the course.

Generating one question at a time with a 4-bit model wastes the GPU (pitfall 6): each step is a small
matrix product dominated by fixed costs. Here questions are sorted by length, cut into batches,
left-padded (so every row's last prompt token sits in the last column, where generation continues),
decoded greedily, and each row stops at an end token or a stop string.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from llmcourse.memory import free_memory, is_out_of_memory
from llmcourse.troubleshooting import CourseError


@dataclass
class Generation:
    prompt: str
    output: str  # the answer text, cut at the stop rule
    new_tokens: int  # tokens generated, the end token included
    stop_reason: str  # "end_token" | "stop_string" | "length"


@dataclass
class GenerationStats:
    wall_time_s: float
    new_tokens: int
    batch_size: int  # the batch size that was finally used (lower than asked after an out-of-memory)

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.wall_time_s if self.wall_time_s > 0 else 0.0


def _encode(tokenizer, prompts: list[str]) -> dict:
    # A chat template already starts with the BOS token; adding it again would double it.
    bos = tokenizer.bos_token
    add_special = not (bos and all(p.startswith(bos) for p in prompts))
    return tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=add_special)


def _finish(
    tokenizer, prompt: str, token_ids: list[int], end_ids: set[int], stops: tuple[str, ...], pad_id: int | None = None
) -> Generation:
    """Cut one row's new tokens at the first end token or stop string, and say which rule stopped it.

    A row that stopped on a stop string while others went on is filled with ``pad_id`` up to the batch's
    last step (transformers writes ``pad_token_id`` into finished rows): those are not tokens the model
    generated, so they are left out of ``new_tokens``.
    """
    if pad_id is not None and pad_id not in end_ids:
        end = len(token_ids)
        while end > 0 and token_ids[end - 1] == pad_id:
            end -= 1
        token_ids = token_ids[:end]
    for position, token_id in enumerate(token_ids):
        if token_id in end_ids:
            text = tokenizer.decode(token_ids[:position], skip_special_tokens=True)
            return _cut_at_stop(prompt, text, position + 1, "end_token", stops)
    text = tokenizer.decode(token_ids, skip_special_tokens=True)
    return _cut_at_stop(prompt, text, len(token_ids), "length", stops)


def _cut_at_stop(prompt: str, text: str, count: int, reason: str, stops: tuple[str, ...]) -> Generation:
    cuts = [text.find(s) for s in stops if s in text]
    if cuts:
        return Generation(prompt, text[: min(cuts)].strip(), count, "stop_string")
    return Generation(prompt, text.strip(), count, reason)


def generate_batched(
    model,
    tokenizer,
    prompts: list[str],
    *,
    batch_size: int,
    max_new_tokens: int,
    end_token_ids: list[int],
    stop_strings: tuple[str, ...] = (),
    progress: bool = True,
) -> tuple[list[Generation], GenerationStats]:
    """Greedy answers to ``prompts``, in the order given.

    On an out-of-memory error the batch is retried at half the size (the answers already made are
    kept); below a batch of one, a ``CourseError`` says which settings to lower.
    """
    from tqdm.auto import tqdm

    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
    results: list[Generation | None] = [None] * len(prompts)
    end_ids = set(end_token_ids)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else end_token_ids[0]
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation continues from the last column
    was_training = model.training
    model.eval()
    total_new, start, done = 0, time.perf_counter(), 0
    bar = tqdm(total=len(prompts), desc="generating", unit="q", disable=not progress)
    try:
        while done < len(order):
            chunk = order[done : done + batch_size]
            batch = [prompts[i] for i in chunk]
            try:
                encoded = _encode(tokenizer, batch).to(model.device)
                with torch.inference_mode():
                    out = model.generate(
                        **encoded,
                        do_sample=False,
                        max_new_tokens=max_new_tokens,
                        eos_token_id=sorted(end_ids),
                        pad_token_id=pad_id,
                        stop_strings=list(stop_strings) or None,
                        tokenizer=tokenizer if stop_strings else None,
                        # the model's own sampling defaults (temperature, top_p) do not apply to greedy
                        temperature=None,
                        top_p=None,
                        top_k=None,
                    )
            except Exception as err:
                if not is_out_of_memory(err):
                    raise
                free_memory()
                if batch_size == 1:
                    raise CourseError(
                        "out_of_memory_generation",
                        f"even one question at a time does not fit ({max_new_tokens} new tokens)",
                        suggestion=1,
                    ) from err
                batch_size = max(1, batch_size // 2)
                print(f"Out of memory: retrying with a batch of {batch_size} (answers so far are kept).")
                continue
            new = out[:, encoded["input_ids"].shape[1] :].tolist()
            for index, prompt, ids in zip(chunk, batch, new, strict=True):
                results[index] = _finish(tokenizer, prompt, ids, end_ids, stop_strings, pad_id)
                total_new += results[index].new_tokens
            done += len(chunk)
            elapsed = time.perf_counter() - start
            bar.update(len(chunk))
            bar.set_postfix(tok_s=f"{total_new / elapsed:.0f}", batch=batch_size)
    finally:
        bar.close()
        tokenizer.padding_side = padding_side
        model.train(was_training)
    stats = GenerationStats(time.perf_counter() - start, total_new, batch_size)
    return [r for r in results if r is not None], stats
