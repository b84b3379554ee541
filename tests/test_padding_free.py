"""Padding-free batches keep the examples apart: the loss of a packed batch is the sum of the separate losses.

TRL's ``padding_free=True`` concatenates a batch's rows into one sequence with no padding and no attention mask;
the position ids restart at 0 for each row. transformers 5 then builds a block-diagonal causal mask from those
position ids for the sdpa and eager attention (``masking_utils.find_packed_sequence_indices``), so that no row
attends to another. This test checks that on the smoke model through SFTTrainer's own collator, and that it
would catch a mask that lets rows see each other.
"""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from llmcourse import prompts
from llmcourse.data import load_split, solution_text


def token_losses(model, batch) -> torch.Tensor:
    """The cross-entropy of each token that carries a label, in order."""
    inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "position_ids")}
    with torch.no_grad():
        logits = model(**inputs).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    losses = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                                               reduction="none")
    return losses[labels.reshape(-1) != -100]


@pytest.fixture(scope="module")
def trainer_and_rows(tiny_llama_path, tmp_path_factory):
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_path)
    tokenizer.pad_token = prompts.choose_pad_token(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32, attn_implementation="sdpa")
    rows = [prompts.training_example(r["question"], solution_text(r["answer"]), "plain")
            for r in load_split("local", "train")[:3]]
    config = SFTConfig(output_dir=str(tmp_path_factory.mktemp("packed")), padding_free=True, max_length=None,
                       completion_only_loss=True, per_device_train_batch_size=3, report_to="none", use_cpu=True)
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    return trainer, [trainer.train_dataset[i] for i in range(3)]


def test_a_padding_free_batch_has_the_loss_of_its_rows_apart(trainer_and_rows):
    trainer, rows = trainer_and_rows
    packed = trainer.data_collator(rows)
    assert packed["input_ids"].shape[0] == 1 and "attention_mask" not in packed  # one sequence, no padding
    assert packed["input_ids"].shape[1] == sum(len(r["input_ids"]) for r in rows)
    separate = torch.cat([token_losses(trainer.model, trainer.data_collator([row])) for row in rows])
    packed_losses = token_losses(trainer.model, packed)
    assert packed_losses.shape == separate.shape  # the same tokens carry loss
    torch.testing.assert_close(packed_losses, separate, rtol=0, atol=1e-5)  # each one, so their sum too
    print(f"largest difference per token: {(packed_losses - separate).abs().max():.1e}")


def test_the_check_catches_rows_that_attend_to_each_other(trainer_and_rows):
    trainer, rows = trainer_and_rows
    packed = trainer.data_collator(rows)
    # An all-ones attention mask turns the block-diagonal mask into one causal mask over the three rows.
    leaky = dict(packed, attention_mask=torch.ones_like(packed["input_ids"]))
    separate = torch.cat([token_losses(trainer.model, trainer.data_collator([row])) for row in rows])
    difference = (token_losses(trainer.model, leaky) - separate).abs().max().item()
    print(f"largest difference per token when rows attend to each other: {difference:.1e}")
    assert difference > 1e-3
