"""The chat demo's plumbing: a ``TextStreamer`` that notes when the first token came, and why an answer ended."""

from __future__ import annotations

import time

from transformers import TextStreamer


class TimedStreamer(TextStreamer):
    """``TextStreamer`` (prints the answer token by token, not the prompt) that records the time to the first new
    token in ``first_token_s``. Create it just before ``generate``: the clock starts at creation."""

    def __init__(self, tokenizer, **kwargs) -> None:
        super().__init__(tokenizer, skip_prompt=True, **kwargs)
        self.started, self.first_token_s, self._calls = time.perf_counter(), None, 0

    def put(self, value) -> None:
        self._calls += 1  # generate hands the streamer the prompt first, then each new token
        if self._calls == 2:
            self.first_token_s = time.perf_counter() - self.started
        super().put(value)


def stop_reason(new_ids: list[int], end_ids: list[int], text: str, stops: tuple[str, ...], max_new_tokens: int) -> str:
    """``end_token`` (stopped by itself), ``stop_string`` (started a new question) or ``length`` (cut off)."""
    if new_ids and new_ids[-1] in end_ids:
        return "end_token"
    if any(s in text for s in stops) or len(new_ids) < max_new_tokens:  # generate cut at a stop string
        return "stop_string"
    return "length"
