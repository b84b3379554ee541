"""The prompt formats, taught in notebook 02 and used unchanged by training (03) and evaluation (02, 04).

Two formats, chosen by the model:
- ``plain`` for a base model: ``Question: ...\\nAnswer:`` then the worked solution, ``#### N`` and the
  end-of-text token. A base model's chat special tokens were never trained, so a plain format is honest.
- ``chat`` for an Instruct model: the question as a user message in the model's own chat template.
"""

from __future__ import annotations

from collections.abc import Sequence

PLAIN_PROMPT = "Question: {question}\nAnswer:"
# What a base model writes when it carries on past its answer: the start of a new question.
PLAIN_STOP_STRINGS = ("\nQuestion:",)
CHAT_INSTRUCTION = (
    "Solve the math problem step by step. Put each step on its own line and end with a last line "
    "of the form '#### <number>'."
)
PROMPT_FORMATS = ("plain", "chat")


def default_prompt_format(model_id: str) -> str:
    """``chat`` for Instruct/chat models, ``plain`` otherwise (the course's main path: the base model).

    SmolLM2-135M-Instruct is the exception that proves the rule: the ``cpu`` track trains it on the
    plain format too, so it shows the same before/after story as the 8B base model.
    """
    name = model_id.lower()
    if "smollm2" in name or name.startswith("offline:"):
        return "plain"
    return "chat" if ("instruct" in name or "-chat" in name) else "plain"


def plain_prompt(question: str) -> str:
    return PLAIN_PROMPT.format(question=question.strip())


def plain_completion(solution: str) -> str:
    """The target after the prompt. The end token is appended by the trainer (and checked in 03)."""
    return " " + solution.strip()


def chat_messages(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"{CHAT_INSTRUCTION}\n\n{question.strip()}"}]


def training_example(question: str, solution: str, prompt_format: str) -> dict:
    """One row in TRL's prompt-completion form: the loss falls on the completion only."""
    if prompt_format == "plain":
        return {"prompt": plain_prompt(question), "completion": plain_completion(solution)}
    if prompt_format == "chat":
        return {
            "prompt": chat_messages(question),
            "completion": [{"role": "assistant", "content": solution.strip()}],
        }
    raise ValueError(f"Unknown prompt format {prompt_format!r}: use one of {PROMPT_FORMATS}.")


# Between two worked examples of a few-shot prompt (the plain format): a blank line, as in lm-eval's gsm8k.
FEW_SHOT_SEPARATOR = "\n\n"


def generation_prompt(
    question: str, prompt_format: str, tokenizer, examples: Sequence[tuple[str, str]] = ()
) -> str:
    """The exact text the model sees at evaluation time, as a string (special tokens included).

    ``examples`` (question, worked solution) pairs make it a few-shot prompt: each example is written in the
    very format of the training data (prompt, then completion), before the question. None: zero-shot.
    """
    if prompt_format == "plain":
        shots = [plain_prompt(q) + plain_completion(solution) for q, solution in examples]
        return FEW_SHOT_SEPARATOR.join([*shots, plain_prompt(question)])
    if prompt_format == "chat":
        messages = []
        for q, solution in examples:
            messages += chat_messages(q) + [{"role": "assistant", "content": solution.strip()}]
        messages += chat_messages(question)
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    raise ValueError(f"Unknown prompt format {prompt_format!r}: use one of {PROMPT_FORMATS}.")


def stop_strings(prompt_format: str) -> tuple[str, ...]:
    return PLAIN_STOP_STRINGS if prompt_format == "plain" else ()


def end_token_ids(tokenizer, prompt_format: str) -> list[int]:
    """Token ids that end an answer: the end-of-text token, and for chat also the end-of-turn token."""
    ids = {tokenizer.eos_token_id}
    if prompt_format == "chat":
        for token in ("<|eot_id|>", "<|im_end|>", "<|end_of_text|>"):
            token_id = tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
                ids.add(token_id)
    return sorted(i for i in ids if i is not None)


def choose_pad_token(tokenizer) -> str:
    """A padding token that is not the end token (pitfall 3 in docs/PITFALLS.md).

    TRL 1.x's collator masks labels by position (its completion mask), so there pad == EOS is harmless;
    but a collator that masks labels by pad id (transformers' ``DataCollatorForLanguageModeling``, many
    older tutorials) would mask the real end token too, and the model would never learn to stop; and in
    batched generation the padding of finished rows could not be told from a real end token. Llama 3.1
    has no pad token of its own but reserves ``<|finetune_right_pad_id|>`` for this; SmolLM2 has
    ``<|endoftext|>`` besides its ``<|im_end|>`` end token.
    """
    vocab = tokenizer.get_vocab()
    for candidate in ("<|finetune_right_pad_id|>", "<|endoftext|>", "<pad>", "<unk>", "<|reserved_special_token_0|>"):
        if candidate in vocab and candidate != tokenizer.eos_token:
            return candidate
    raise ValueError(
        "This tokenizer has no spare token to pad with that differs from its end token "
        f"({tokenizer.eos_token!r}). Add one with tokenizer.add_special_tokens({{'pad_token': '<pad>'}}) "
        "and resize the model's embeddings."
    )
