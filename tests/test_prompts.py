"""Tests for llmcourse.prompts: the exact prompt strings, TRL rows, stop rules and the pad token."""

from __future__ import annotations

import re

import pytest

from llmcourse.data import ANSWER_FORMAT_INSTRUCTION, grade
from llmcourse.profiles import LLAMA_BASE, LLAMA_BASE_UNGATED, LLAMA_INSTRUCT, SMOLLM2, TINY_LLAMA
from llmcourse.prompts import (
    add_special_tokens,
    choose_pad_token,
    default_prompt_format,
    end_token_ids,
    generation_prompt,
    plain_completion,
    plain_prompt,
    stop_strings,
    training_example,
)

QUESTION = "  Natalia sold clips to 48 of her friends. How many clips did she sell?\n"
SOLUTION = "She sold 48 clips.\n#### 48\n"


@pytest.fixture(scope="module")
def llama_tokenizer():
    """The real Llama 3 tokenizer, built offline once for this module (about 5 s)."""
    offline_models = pytest.importorskip("llmcourse.offline_models")
    try:
        return offline_models.llama3_tokenizer()
    except FileNotFoundError as err:  # llama-models not installed
        pytest.skip(str(err))


class FakeTokenizer:
    """Just enough of a tokenizer for choose_pad_token and end_token_ids."""

    def __init__(self, vocab: dict[str, int], eos_token: str, unk_token_id: int | None = None) -> None:
        self.vocab = vocab
        self.eos_token = eos_token
        self.eos_token_id = vocab[eos_token]
        self.unk_token_id = unk_token_id

    def get_vocab(self) -> dict[str, int]:
        return dict(self.vocab)

    def convert_tokens_to_ids(self, token: str) -> int | None:
        return self.vocab.get(token, self.unk_token_id)


# --- plain format ---------------------------------------------------------------------------


def test_plain_prompt_exact() -> None:
    assert plain_prompt(QUESTION) == (
        "Question: Natalia sold clips to 48 of her friends. How many clips did she sell?\nAnswer:"
    )


def test_plain_completion_exact() -> None:
    # One space after "Answer:", no trailing newline; the end token is added by the trainer.
    assert plain_completion(SOLUTION) == " She sold 48 clips.\n#### 48"


def test_plain_prompt_plus_completion_reads_naturally() -> None:
    text = plain_prompt("What is 2+2?") + plain_completion("2+2 = 4\n#### 4")
    assert text == "Question: What is 2+2?\nAnswer: 2+2 = 4\n#### 4"


def test_training_example_plain() -> None:
    example = training_example(QUESTION, SOLUTION, "plain")
    assert example == {"prompt": plain_prompt(QUESTION), "completion": plain_completion(SOLUTION)}
    assert isinstance(example["prompt"], str) and isinstance(example["completion"], str)


# --- chat format ------------------------------------------------------------------------------


def test_training_example_chat_is_trl_conversational_prompt_completion() -> None:
    example = training_example(QUESTION, SOLUTION, "chat")
    assert set(example) == {"prompt", "completion"}
    prompt, completion = example["prompt"], example["completion"]
    # TRL: prompt is a list of messages ending with the user turn, completion the assistant turn(s).
    assert isinstance(prompt, list) and isinstance(completion, list)
    assert [m["role"] for m in prompt] == ["user"]
    assert prompt[0]["content"] == (
        ANSWER_FORMAT_INSTRUCTION + "\n\nNatalia sold clips to 48 of her friends. How many clips did she sell?"
    )
    assert completion == [{"role": "assistant", "content": "She sold 48 clips.\n#### 48"}]
    for message in prompt + completion:
        assert set(message) == {"role", "content"}


def test_an_answer_in_the_instructed_format_is_graded_strict() -> None:
    last_line = re.search(r"'(.*<number>.*)'", ANSWER_FORMAT_INSTRUCTION).group(1)  # '#### <number>'
    assert grade("step 1\n" + last_line.replace("<number>", "1,024"), "#### 1024").strict_correct


@pytest.mark.parametrize("fmt", ["Plain", "alpaca", "", "instruct"])
def test_unknown_format_raises(fmt: str) -> None:
    with pytest.raises(ValueError, match="Unknown prompt format"):
        training_example(QUESTION, SOLUTION, fmt)
    with pytest.raises(ValueError, match="Unknown prompt format"):
        generation_prompt(QUESTION, fmt, tokenizer=None)


# --- default_prompt_format ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        (LLAMA_BASE, "plain"),
        (LLAMA_INSTRUCT, "chat"),
        (LLAMA_BASE_UNGATED, "plain"),
        ("unsloth/Meta-Llama-3.1-8B-Instruct", "chat"),
        (SMOLLM2, "plain"),
        ("HuggingFaceTB/SmolLM2-1.7B", "plain"),
        (TINY_LLAMA, "plain"),
        ("offline:some-instruct-thing", "plain"),
        ("meta-llama/Llama-2-7b-chat-hf", "chat"),
        ("Qwen/Qwen2.5-0.5B-Instruct", "chat"),
        ("Qwen/Qwen2.5-0.5B", "plain"),
    ],
)
def test_default_prompt_format(model_id: str, expected: str) -> None:
    assert default_prompt_format(model_id) == expected


# --- stop strings -----------------------------------------------------------------------------


def test_stop_strings() -> None:
    assert stop_strings("plain") == ("\nQuestion:",)
    assert stop_strings("chat") == ()


def test_plain_stop_string_is_what_a_new_prompt_starts_with() -> None:
    # A base model that carries on writes the next "Question:" on a new line.
    continuation = plain_completion("#### 4") + "\n" + plain_prompt("What is 3+3?")
    assert any(stop in continuation for stop in stop_strings("plain"))
    assert not any(stop in plain_completion(SOLUTION) for stop in stop_strings("plain"))


# --- the real Llama 3 tokenizer ---------------------------------------------------------------


def test_choose_pad_token_llama(llama_tokenizer) -> None:
    pad = choose_pad_token(llama_tokenizer)
    assert pad == "<|finetune_right_pad_id|>"
    assert llama_tokenizer.convert_tokens_to_ids(pad) == 128004
    assert pad != llama_tokenizer.eos_token
    assert llama_tokenizer.convert_tokens_to_ids(pad) != llama_tokenizer.eos_token_id


def test_llama_eos(llama_tokenizer) -> None:
    assert llama_tokenizer.eos_token == "<|end_of_text|>"
    assert llama_tokenizer.eos_token_id == 128001


def test_end_token_ids_llama(llama_tokenizer) -> None:
    chat = end_token_ids(llama_tokenizer, "chat")
    assert 128009 in chat  # <|eot_id|>
    assert 128001 in chat  # <|end_of_text|>
    assert chat == sorted(set(chat))
    assert None not in chat
    assert end_token_ids(llama_tokenizer, "plain") == [128001]


def test_generation_prompt_chat_uses_the_template(llama_tokenizer) -> None:
    text = generation_prompt(QUESTION, "chat", llama_tokenizer)
    assert text.startswith("<|begin_of_text|>")
    assert "<|start_header_id|>user<|end_header_id|>" in text
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert ANSWER_FORMAT_INSTRUCTION in text
    assert "How many clips did she sell?<|eot_id|>" in text
    assert text.count("<|begin_of_text|>") == 1


def test_generation_prompt_plain_ignores_the_template(llama_tokenizer) -> None:
    text = generation_prompt(QUESTION, "plain", llama_tokenizer)
    assert text == plain_prompt(QUESTION)
    assert "<|" not in text


# --- few-shot prompts -------------------------------------------------------------------------

SHOTS = [("Tom has 3 apples and buys 2. How many?", "3 + 2 = 5\n#### 5"), ("What is 6 x 7?", "6 x 7 = 42\n#### 42")]


def test_few_shot_plain_is_training_examples_then_the_question() -> None:
    text = generation_prompt(QUESTION, "plain", None, examples=SHOTS)
    assert text == (
        "Question: Tom has 3 apples and buys 2. How many?\nAnswer: 3 + 2 = 5\n#### 5\n\n"
        "Question: What is 6 x 7?\nAnswer: 6 x 7 = 42\n#### 42\n\n"
        "Question: Natalia sold clips to 48 of her friends. How many clips did she sell?\nAnswer:"
    )
    # Each shot is exactly a training example of notebook 03 (prompt + completion), and the question is
    # exactly the zero-shot prompt: the only change is the examples in front.
    for q, solution in SHOTS:
        row = training_example(q, solution, "plain")
        assert row["prompt"] + row["completion"] in text
    assert text.endswith(generation_prompt(QUESTION, "plain", None))
    # The stop rule that ends a zero-shot answer at a new "Question:" also ends a few-shot one.
    assert all(s in text for s in stop_strings("plain"))


def test_zero_shot_is_the_default() -> None:
    assert generation_prompt(QUESTION, "plain", None, examples=()) == plain_prompt(QUESTION)


def test_few_shot_chat_is_alternating_turns(llama_tokenizer) -> None:
    text = generation_prompt(QUESTION, "chat", llama_tokenizer, examples=SHOTS)
    assert text.count("<|start_header_id|>user<|end_header_id|>") == 3
    assert text.count("<|start_header_id|>assistant<|end_header_id|>") == 3  # two answers, then ours to write
    assert "6 x 7 = 42\n#### 42<|eot_id|>" in text
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert text.count("<|begin_of_text|>") == 1


# --- fake tokenizers ---------------------------------------------------------------------------


def test_choose_pad_token_only_eos_raises() -> None:
    tokenizer = FakeTokenizer({"<|endoftext|>": 0, "a": 1, "b": 2}, eos_token="<|endoftext|>")
    with pytest.raises(ValueError) as info:
        choose_pad_token(tokenizer)
    assert "<|endoftext|>" in str(info.value)
    assert "add_special_tokens" in str(info.value)


def test_choose_pad_token_skips_eos_and_takes_the_next_candidate() -> None:
    tokenizer = FakeTokenizer({"<|endoftext|>": 0, "<unk>": 1, "<pad>": 2}, eos_token="<|endoftext|>")
    assert choose_pad_token(tokenizer) == "<pad>"


def test_choose_pad_token_smollm2_like() -> None:
    # SmolLM2-Instruct: <|im_end|> ends a turn, <|endoftext|> is free to pad with.
    tokenizer = FakeTokenizer({"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2}, eos_token="<|im_end|>")
    assert choose_pad_token(tokenizer) == "<|endoftext|>"


def test_end_token_ids_fake_chat_skips_unknown_tokens() -> None:
    tokenizer = FakeTokenizer(
        {"<unk>": 0, "<|endoftext|>": 1, "<|im_end|>": 2}, eos_token="<|endoftext|>", unk_token_id=0
    )
    assert end_token_ids(tokenizer, "chat") == [1, 2]
    assert end_token_ids(tokenizer, "plain") == [1]


def test_the_bos_token_is_added_once(llama_tokenizer) -> None:
    """A chat template writes its own BOS token: the tokenizer must not add a second; a plain prompt needs it."""
    chat = generation_prompt("What is 2 + 3?", "chat", llama_tokenizer)
    plain = plain_prompt("What is 2 + 3?")
    assert chat.startswith(llama_tokenizer.bos_token)
    assert not add_special_tokens(llama_tokenizer, [chat])
    assert add_special_tokens(llama_tokenizer, [plain]) and add_special_tokens(llama_tokenizer, [chat, plain])
    ids = llama_tokenizer(chat, add_special_tokens=add_special_tokens(llama_tokenizer, [chat]))["input_ids"]
    assert ids.count(llama_tokenizer.bos_token_id) == 1
