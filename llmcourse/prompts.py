"""The prompt formats (notebook 02 writes out the plain one), used unchanged by training (03) and evaluation
(02, 04): ``plain`` for a base model (``Question: ...\\nAnswer:``, then the worked solution, ``#### N`` and the
end token; a base model's chat tokens were never trained), ``chat`` for an Instruct model (its own template)."""

from __future__ import annotations

from collections.abc import Sequence

from llmcourse.data import ANSWER_FORMAT_INSTRUCTION
from llmcourse.profiles import END_OF_TURN_TOKENS, PAD_TOKENS, PROMPT_FORMATS

# What a base model writes when it carries on past its answer: the start of a new question.
PLAIN_STOP_STRINGS = ("\nQuestion:",)


def default_prompt_format(model_id: str) -> str:
    """``chat`` for Instruct/chat models, else ``plain``; the cpu track's SmolLM2-135M-Instruct trains on plain,
    to tell the same before/after story as the 8B base model."""
    name = model_id.lower()
    chat = ("instruct" in name or "-chat" in name) and "smollm2" not in name and not name.startswith("offline:")
    return "chat" if chat else "plain"


def add_special_tokens(tokenizer, texts: Sequence[str]) -> bool:
    """Whether the tokenizer should add its BOS token to ``texts``: not when they start with it already (a chat
    template writes its own; a second one would shift every answer)."""
    return not (tokenizer.bos_token and all(text.startswith(tokenizer.bos_token) for text in texts))


def plain_prompt(question: str) -> str:
    return f"Question: {question.strip()}\nAnswer:"


def plain_completion(solution: str) -> str:
    return " " + solution.strip()  # the trainer appends the end token (checked in 03)


def chat_messages(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"{ANSWER_FORMAT_INSTRUCTION}\n\n{question.strip()}"}]


def _check(prompt_format: str) -> None:
    if prompt_format not in PROMPT_FORMATS:
        raise ValueError(f"Unknown prompt format {prompt_format!r}: use one of {PROMPT_FORMATS}.")


def training_example(question: str, solution: str, prompt_format: str) -> dict:
    """One row in TRL's prompt-completion form: the loss falls on the completion only."""
    _check(prompt_format)
    if prompt_format == "plain":
        return {"prompt": plain_prompt(question), "completion": plain_completion(solution)}
    return {"prompt": chat_messages(question), "completion": [{"role": "assistant", "content": solution.strip()}]}


def generation_prompt(question: str, prompt_format: str, tokenizer, examples: Sequence[tuple[str, str]] = ()) -> str:
    """The exact text the model sees at evaluation (special tokens included). ``examples``, (question, solution)
    pairs written as training rows, make it few-shot; plain examples are separated by a blank line, as lm-eval's."""
    _check(prompt_format)
    if prompt_format == "plain":
        return "\n\n".join([*(plain_prompt(q) + plain_completion(s) for q, s in examples), plain_prompt(question)])
    messages = [m for q, s in examples for m in training_example(q, s, "chat").values()] + [chat_messages(question)]
    return tokenizer.apply_chat_template(sum(messages, []), tokenize=False, add_generation_prompt=True)


def stop_strings(prompt_format: str) -> tuple[str, ...]:
    return PLAIN_STOP_STRINGS if prompt_format == "plain" else ()


def end_token_ids(tokenizer, prompt_format: str) -> list[int]:
    """Token ids that end an answer: the end-of-text token, and for chat also the end-of-turn token."""
    ids = {tokenizer.eos_token_id}
    if prompt_format == "chat":
        ids |= {tokenizer.convert_tokens_to_ids(token) for token in END_OF_TURN_TOKENS if token in tokenizer.get_vocab()}
    return sorted(i for i in ids if i is not None)


def choose_pad_token(tokenizer) -> str:
    """A padding token that is not the end token (pitfall 3): the first of ``profiles.PAD_TOKENS`` it has."""
    vocab = tokenizer.get_vocab()
    for candidate in PAD_TOKENS:
        if candidate in vocab and candidate != tokenizer.eos_token:
            return candidate
    raise ValueError(
        "This tokenizer has no spare token to pad with that differs from its end token "
        f"({tokenizer.eos_token!r}). Add one with tokenizer.add_special_tokens({{'pad_token': '<pad>'}}) "
        "and resize the model's embeddings."
    )
