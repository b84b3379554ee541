"""The chat demo's plumbing: a ``TextStreamer`` that also notes when the first token came, and why an
answer ended."""

from __future__ import annotations

import time

from transformers import TextStreamer


class TimedStreamer(TextStreamer):
    """``TextStreamer`` (prints the answer token by token) that records the time to the first new token.

    ``generate`` hands the streamer the prompt first, then each new token; with ``skip_prompt=True`` the
    prompt is not printed. Create it just before ``generate``: the clock starts at creation.
    """

    def __init__(self, tokenizer, **kwargs) -> None:
        super().__init__(tokenizer, skip_prompt=True, **kwargs)
        self.started = time.perf_counter()
        self.first_token_s: float | None = None
        self._calls = 0

    def put(self, value) -> None:
        self._calls += 1
        if self._calls == 2 and self.first_token_s is None:  # call 1 is the prompt
            self.first_token_s = time.perf_counter() - self.started
        super().put(value)


def stop_reason(new_ids: list[int], end_ids: list[int], text: str, stops: tuple[str, ...], max_new_tokens: int) -> str:
    """``end_token`` (stopped by itself), ``stop_string`` (started a new question) or ``length`` (cut off)."""
    if new_ids and new_ids[-1] in end_ids:
        return "end_token"
    if any(s in text for s in stops):
        return "stop_string"
    return "length" if len(new_ids) >= max_new_tokens else "stop_string"  # generate cut at a stop string
