"""Tests for llmcourse.chat (the timed streamer, why an answer ended) and llmcourse.model_loading.attach_adapter (4-bit + adapter)."""

from __future__ import annotations

import pytest
import torch

from llmcourse.chat import TimedStreamer, stop_reason
from llmcourse.troubleshooting import CourseError


def test_stop_reasons():
    assert stop_reason([5, 6, 2], [2], "x #### 3", ("\nQuestion:",), 10) == "end_token"
    assert stop_reason([5, 6], [2], "x\nQuestion: y", ("\nQuestion:",), 10) == "stop_string"
    assert stop_reason(list(range(10)), [99], "xxxx", (), 10) == "length"


def test_the_streamer_prints_only_the_answer_and_times_the_first_token(tiny_llama_4bit, capsys):
    model, tokenizer = tiny_llama_4bit
    inputs = tokenizer("Question: 1 + 1?\nAnswer:", return_tensors="pt")
    streamer = TimedStreamer(tokenizer)
    with torch.no_grad():
        out = model.generate(**inputs, streamer=streamer, do_sample=False, max_new_tokens=5,
                             pad_token_id=tokenizer.pad_token_id)
    printed = capsys.readouterr().out
    answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Question" not in printed  # skip_prompt
    assert printed.strip() == answer.strip()
    assert streamer.first_token_s is not None and streamer.first_token_s > 0


def test_attach_adapter_refuses_an_adapter_for_another_base(tiny_llama_4bit, tmp_path):
    import json

    from llmcourse.model_loading import attach_adapter

    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "meta-llama/Llama-3.1-8B"}))
    model, _ = tiny_llama_4bit
    with pytest.raises(CourseError) as info:
        attach_adapter(model, tmp_path, "offline:tiny-random-llama3")
    assert info.value.key == "adapter_base_mismatch"
    with pytest.raises(CourseError) as info:
        attach_adapter(model, tmp_path / "nothing", "offline:tiny-random-llama3")
    assert info.value.key == "missing_adapter"
