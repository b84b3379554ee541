"""Batched, greedy, left-padded generation with a stop rule (notebook 02 writes it out): the course's one
generation path. Questions are sorted by length and batched; an out-of-memory error halves the batch."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from llmcourse.environment import free_memory, is_out_of_memory
from llmcourse.prompts import add_special_tokens
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
    batch_size: int  # the batch size finally used (lower than asked after an out-of-memory)

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.wall_time_s if self.wall_time_s > 0 else 0.0


def cut_answer(tokenizer, prompt: str, token_ids: list[int], end_ids: set[int], stops: tuple[str, ...],
            pad_id: int | None = None) -> Generation:
    """Cut one row at its first end token or stop string. Trailing ``pad_id`` tokens (transformers fills rows
    that finished early with them) are not the model's and are not counted."""
    while pad_id not in end_ids and token_ids and token_ids[-1] == pad_id:
        token_ids = token_ids[:-1]
    end = next((i for i, t in enumerate(token_ids) if t in end_ids), None)
    count, reason = (len(token_ids), "length") if end is None else (end + 1, "end_token")
    text = tokenizer.decode(token_ids[:end], skip_special_tokens=True)
    cut = min((text.find(s) for s in stops if s in text), default=None)
    return Generation(prompt, text[:cut].strip(), count, reason if cut is None else "stop_string")


def generate_batched(model, tokenizer, prompts: list[str], *, batch_size: int, max_new_tokens: int,
                     end_token_ids: list[int], stop_strings: tuple[str, ...] = (),
                     progress: bool = True) -> tuple[list[Generation], GenerationStats]:
    """Greedy answers to ``prompts``, in the order given. Below a batch of one, a ``CourseError``."""
    from tqdm.auto import tqdm

    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
    results: list[Generation | None] = [None] * len(prompts)
    end_ids = set(end_token_ids)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else end_token_ids[0]
    padding_side, was_training = tokenizer.padding_side, model.training
    tokenizer.padding_side = "left"  # every prompt ends in the last column, where generation continues
    model.eval()
    total_new, start, done = 0, time.perf_counter(), 0
    bar = tqdm(total=len(prompts), desc="generating", unit="q", disable=not progress)
    try:
        while done < len(order):
            chunk = order[done : done + batch_size]
            batch = [prompts[i] for i in chunk]
            try:
                # A chat template already starts with the BOS token: add_special_tokens() leaves out a second one.
                encoded = tokenizer(batch, return_tensors="pt", padding=True,
                                    add_special_tokens=add_special_tokens(tokenizer, batch)).to(model.device)
                with torch.inference_mode():
                    out = model.generate(
                        **encoded, do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=sorted(end_ids),
                        pad_token_id=pad_id, stop_strings=list(stop_strings) or None,
                        tokenizer=tokenizer if stop_strings else None,
                        temperature=None, top_p=None, top_k=None,  # the model's sampling defaults do not apply
                    )
            except Exception as err:
                if not is_out_of_memory(err):
                    raise
                free_memory()
                if batch_size == 1:
                    raise CourseError("out_of_memory_generation", f"even one question at a time does not fit "
                                      f"({max_new_tokens} new tokens)", suggestion=1) from err
                batch_size = max(1, batch_size // 2)
                print(f"Out of memory: retrying with a batch of {batch_size} (answers so far are kept).")
                continue
            for index, ids in zip(chunk, out[:, encoded["input_ids"].shape[1] :].tolist(), strict=True):
                results[index] = cut_answer(tokenizer, prompts[index], ids, end_ids, stop_strings, pad_id)
                total_new += results[index].new_tokens
            done += len(chunk)
            bar.update(len(chunk))
            bar.set_postfix(tok_s=f"{total_new / (time.perf_counter() - start):.0f}", batch=batch_size)
    finally:
        bar.close()
        tokenizer.padding_side = padding_side
        model.train(was_training)
    return [r for r in results if r is not None], GenerationStats(time.perf_counter() - start, total_new, batch_size)
