"""The one generation path: batched, left-padded, greedy, stopping, and surviving out-of-memory."""

from __future__ import annotations

import pytest
import torch

from llmcourse import prompts
from llmcourse.evaluation import EvalSettings, evaluate
from llmcourse.generation import cut_answer, generate_batched
from llmcourse.troubleshooting import CourseError

QUESTIONS = [
    "Tom has 3 apples and buys 4 more. How many apples does he have?",
    "A box holds 12 eggs. How many eggs are in 5 boxes?",
    "Mia reads 20 pages a day for a week and then 15 more pages. How many pages has she read in all?",
    "Sam had 50 dollars.",
]


def test_batched_left_padded_answers_equal_one_at_a_time(tiny_llama_4bit):
    model, tok = tiny_llama_4bit
    texts = [prompts.plain_prompt(q) for q in QUESTIONS]
    end = prompts.end_token_ids(tok, "plain")
    batched, stats = generate_batched(model, tok, texts, batch_size=4, max_new_tokens=10, end_token_ids=end,
                                      progress=False)
    single = [generate_batched(model, tok, [t], batch_size=1, max_new_tokens=10, end_token_ids=end,
                               progress=False)[0][0] for t in texts]
    assert [g.output for g in batched] == [g.output for g in single]
    assert [g.prompt for g in batched] == texts  # the caller's order, although generation sorts by length
    assert stats.new_tokens == sum(g.new_tokens for g in batched) == 40
    assert tok.padding_side == "right"  # restored after generation


def test_greedy_decoding_ignores_the_models_sampling_defaults(tiny_llama_4bit):
    model, tok = tiny_llama_4bit
    model.generation_config.do_sample = True
    model.generation_config.temperature = 1.5
    try:
        runs = [generate_batched(model, tok, [prompts.plain_prompt(QUESTIONS[0])], batch_size=1, max_new_tokens=12,
                                 end_token_ids=[tok.eos_token_id], progress=False)[0][0].output for _ in range(3)]
    finally:
        model.generation_config.do_sample = False
        model.generation_config.temperature = None
    assert runs[0] == runs[1] == runs[2]


class FakeTokenizer:
    """Decodes ids as characters, so a test can spell out what a model "generated"."""

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(i) for i in ids if i < 1000)


def spell(text):
    return [ord(c) for c in text]


def test_stop_rules_cut_the_answer_and_say_why():
    tok, stops = FakeTokenizer(), prompts.PLAIN_STOP_STRINGS
    at_end = cut_answer(tok, "p", spell(" 3+4 = 7.\n#### 7") + [1001] + spell("junk"), {1001}, stops)
    assert (at_end.output, at_end.stop_reason, at_end.new_tokens) == ("3+4 = 7.\n#### 7", "end_token", 17)
    new_question = cut_answer(tok, "p", spell(" #### 7\nQuestion: Ann has"), {1001}, stops)
    assert (new_question.output, new_question.stop_reason) == ("#### 7", "stop_string")
    too_long = cut_answer(tok, "p", spell(" 1 2 3 4 5"), {1001}, stops)
    assert (too_long.output, too_long.stop_reason) == ("1 2 3 4 5", "length")


class FakeModel(torch.nn.Module):
    """Generates "#### 7" then the end token; runs out of memory above a batch size."""

    def __init__(self, fits: int):
        super().__init__()
        self.fits = fits
        self.batches: list[int] = []
        self.weight = torch.nn.Parameter(torch.zeros(1))

    @property
    def device(self):
        return torch.device("cpu")

    def generate(self, input_ids, attention_mask, **kwargs):
        rows = input_ids.shape[0]
        if rows > self.fits:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.batches.append(rows)
        answer = torch.tensor(spell("#### 7") + [kwargs["eos_token_id"][0]])
        return torch.cat([input_ids, answer.repeat(rows, 1)], dim=1)


class CharTokenizer(FakeTokenizer):
    padding_side = "right"
    pad_token_id = 0
    bos_token = None

    def __call__(self, texts, return_tensors, padding, add_special_tokens):
        from transformers import BatchEncoding

        width = max(len(t) for t in texts)
        ids = [[0] * (width - len(t)) + spell(t) for t in texts]  # left padding
        mask = [[0] * (width - len(t)) + [1] * len(t) for t in texts]
        return BatchEncoding({"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)})


def test_out_of_memory_halves_the_batch_and_keeps_the_answers(capsys):
    model, tok = FakeModel(fits=2), CharTokenizer()
    texts = [f"question {i}" for i in range(7)]
    out, stats = generate_batched(model, tok, texts, batch_size=8, max_new_tokens=8, end_token_ids=[1001],
                                  progress=False)
    assert [g.output for g in out] == ["#### 7"] * 7
    assert stats.batch_size == 2 and model.batches == [2, 2, 2, 1]
    assert "retrying with a batch of 4" in capsys.readouterr().out


class StopStringModel(FakeModel):
    """Row 0 stops early on a stop string; row 1 writes a longer answer. Like transformers, the finished
    row gets ``pad_token_id`` for every step the other row still takes."""

    ROWS = ["#### 7\nQuestion:", "12 + 30 = 42 apples in all.\n#### 42"]

    def generate(self, input_ids, attention_mask, **kwargs):
        pad, eos = kwargs["pad_token_id"], kwargs["eos_token_id"][0]
        rows = [spell(t) for t in self.ROWS]
        rows[1].append(eos)
        width = max(len(r) for r in rows)
        new = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
        return torch.cat([input_ids, new], dim=1)


def test_pad_tokens_after_a_stop_string_are_not_counted():
    tok = CharTokenizer()
    tok.pad_token_id = 1002  # a pad token that is not the end token, as on Llama 3.1
    out, stats = generate_batched(StopStringModel(fits=2), tok, ["question a", "question b"], batch_size=2,
                                  max_new_tokens=64, end_token_ids=[1001], stop_strings=prompts.PLAIN_STOP_STRINGS,
                                  progress=False)
    stopped, ended = out
    assert (stopped.output, stopped.stop_reason) == ("#### 7", "stop_string")
    assert stopped.new_tokens == len(StopStringModel.ROWS[0])  # not the pads written after it stopped
    assert ended.stop_reason == "end_token" and ended.new_tokens == len(StopStringModel.ROWS[1]) + 1
    assert stats.new_tokens == stopped.new_tokens + ended.new_tokens


def test_out_of_memory_at_batch_one_says_what_to_lower():
    with pytest.raises(CourseError) as info:
        generate_batched(FakeModel(fits=0), CharTokenizer(), ["q"], batch_size=1, max_new_tokens=8,
                         end_token_ids=[1001], progress=False)
    assert info.value.key == "out_of_memory_generation"
    assert "MAX_NEW_TOKENS" in str(info.value)
    assert isinstance(info.value.__cause__, torch.OutOfMemoryError)


def test_evaluate_grades_every_question_the_same_way(tiny_llama_4bit):
    model, tok = tiny_llama_4bit
    rows = [{"id": f"t-{i}", "question": q, "answer": "x\n#### 7"} for i, q in enumerate(QUESTIONS)]
    settings = EvalSettings(label="before", model_id="offline:tiny-random-llama3", adapter=None,
                            prompt_format="plain", dataset="local", split="test", subset_seed=1, subset_size=4,
                            max_new_tokens=6, batch_size=2, profile="smoke", weight_format="nf4",
                            compute_dtype="float32", stop_strings=list(prompts.PLAIN_STOP_STRINGS))
    run = evaluate(model, tok, rows, settings, progress=False)
    assert [r["id"] for r in run.records] == ["t-0", "t-1", "t-2", "t-3"]
    assert all(r["gold"] == "7" for r in run.records)
    assert run.summary["n"] == 4
    assert run.summary["strict_accuracy"] == sum(r["strict_correct"] for r in run.records) / 4
    assert run.summary["tokens_per_s"] > 0


def test_evaluate_few_shot_puts_the_worked_examples_before_every_question(tiny_llama_4bit):
    model, tok = tiny_llama_4bit
    rows = [{"id": f"t-{i}", "question": q, "answer": "x\n#### 7"} for i, q in enumerate(QUESTIONS[:2])]
    shots = [{"id": "train-0", "question": "What is 2 + 2?", "answer": "2 + 2 = <<2+2=4>>4\n#### 4"}]
    settings = EvalSettings(label="before-fewshot", model_id="offline:tiny-random-llama3", adapter=None,
                            prompt_format="plain", dataset="local", split="test", subset_seed=1, subset_size=2,
                            max_new_tokens=4, batch_size=2, profile="smoke", weight_format="nf4",
                            compute_dtype="float32", stop_strings=list(prompts.PLAIN_STOP_STRINGS),
                            few_shot_ids=["train-0"])
    run = evaluate(model, tok, rows, settings, progress=False, examples=shots)
    for row, record in zip(rows, run.records, strict=True):
        # The harness's own prompt builder, with the calculator notes removed as in training.
        assert record["prompt"] == prompts.generation_prompt(row["question"], "plain", tok,
                                                             examples=[("What is 2 + 2?", "2 + 2 = 4\n#### 4")])
        assert record["prompt"].startswith("Question: What is 2 + 2?\nAnswer: 2 + 2 = 4\n#### 4\n\nQuestion: ")
    with pytest.raises(ValueError, match="few_shot_ids"):
        evaluate(model, tok, rows, settings, progress=False)  # examples missing: refused, not silently zero-shot


def test_lm_eval_gsm8k_runs_the_standard_task_on_the_model_in_memory(monkeypatch):
    """Notebooks 02 and 04 call it instead of each keeping a copy of the cell (lm-eval itself is not installed)."""
    import subprocess
    import sys
    import types

    from llmcourse.evaluation import lm_eval_gsm8k

    installs, calls = [], {}
    monkeypatch.setattr(subprocess, "run", lambda args, check: installs.append(args))
    harness = types.ModuleType("lm_eval.models.huggingface")
    harness.HFLM = lambda **kwargs: calls.setdefault("hflm", kwargs)
    lm_eval = types.ModuleType("lm_eval")
    lm_eval.simple_evaluate = lambda **kwargs: calls.setdefault("run", kwargs) and {"results": {"gsm8k": {"ok": 1}}}
    for name, module in [("lm_eval", lm_eval), ("lm_eval.models", types.ModuleType("lm_eval.models")),
                         ("lm_eval.models.huggingface", harness)]:
        monkeypatch.setitem(sys.modules, name, module)
    model, tokenizer = object(), object()
    assert lm_eval_gsm8k(model, tokenizer, 8, limit=200, chat=True) == {"ok": 1}
    assert installs[0][-1].startswith("lm-eval==")
    assert calls["hflm"] == {"pretrained": model, "tokenizer": tokenizer, "batch_size": 8}
    assert calls["run"]["tasks"] == ["gsm8k"] and calls["run"]["limit"] == 200
    assert calls["run"]["apply_chat_template"] is True
