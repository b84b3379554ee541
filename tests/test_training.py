"""Training plumbing against the real libraries: label masks, precision, parameter counts, resume, adapters.

Every test uses the real Llama 3 tokenizer (through the tiny random Llama) and TRL's own SFTTrainer.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from llmcourse import prompts, training
from llmcourse.profiles import LLAMA_BASE, LLAMA_BASE_UNGATED, LLAMA_INSTRUCT, TINY_LLAMA
from llmcourse.troubleshooting import CourseError

QUESTION = "Tom has 3 boxes of 12 pencils. He gives away 5 pencils. How many pencils does he have left?"
SOLUTION = "Tom has 3*12 = 36 pencils.\nHe has 36-5 = 31 pencils left.\n#### 31"


def load_tiny_4bit(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.pad_token = prompts.choose_pad_token(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(
        path,
        quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                               bnb_4bit_use_double_quant=True,
                                               bnb_4bit_compute_dtype=torch.float32),
        dtype=torch.float32,
        device_map="cpu",
    )
    return model, tokenizer


def make_trainer(path, output_dir, prompt_format="plain", rows=4, max_steps=2, save_steps=500, callbacks=None):
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = load_tiny_4bit(path)
    data = Dataset.from_list(
        [prompts.training_example(f"{QUESTION} (copy {i})", SOLUTION, prompt_format) for i in range(rows)]
    )
    config = SFTConfig(
        output_dir=str(output_dir),
        per_device_train_batch_size=2,
        max_steps=max_steps,
        learning_rate=1e-3,
        max_length=192,
        completion_only_loss=True,
        logging_steps=1,
        save_steps=save_steps,
        report_to="none",
        use_cpu=True,
        seed=7,
        data_seed=7,
    )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear",
                               task_type="CAUSAL_LM"),
        callbacks=callbacks,
    )
    training.keep_trainable_weights_in_fp32(trainer.model)
    return trainer, tokenizer


@pytest.mark.parametrize(
    ("prompt_format", "end_token", "target"),
    [
        ("plain", "<|end_of_text|>", " " + SOLUTION),
        ("chat", "<|eot_id|>", SOLUTION),
    ],
)
def test_only_the_answer_and_its_end_token_carry_loss(tiny_llama_path, tmp_path, prompt_format, end_token, target):
    trainer, tok = make_trainer(tiny_llama_path, tmp_path, prompt_format)
    example = trainer.train_dataset[0]
    ids, labels = example["input_ids"], example["labels"]
    carrying = [i for i, label in zip(ids, labels, strict=True) if label != -100]
    # exactly the answer, then the end token: nothing of the question, the template or the padding
    assert tok.decode(carrying) == target + end_token
    assert carrying[-1] == tok.convert_tokens_to_ids(end_token)
    first = next(i for i, label in enumerate(labels) if label != -100)
    assert all(label == -100 for label in labels[:first])
    assert all(label != -100 for label in labels[first:])  # no hole inside the answer
    prompt_text = tok.decode(ids[:first])
    assert QUESTION in prompt_text
    if prompt_format == "chat":
        assert prompt_text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    else:
        assert prompt_text.endswith("Answer:")


def lesson_function(notebook: str, cell_id: str, name: str):
    """A function the lesson writes out, taken from its cell and defined here as the notebook defines it."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "notebooks" / notebook
    cell = next(c for c in json.loads(path.read_text())["cells"] if c.get("id") == cell_id)
    namespace: dict = {}
    exec("".join(cell["source"]), namespace)
    return namespace[name]


@pytest.mark.parametrize("prompt_format", ["plain", "chat"])
def test_the_lessons_label_mask_equals_the_labels_trl_trains_on(tiny_llama_path, tmp_path, prompt_format):
    """Notebook 03 writes out how labels are built (-100 on the prompt, the answer and its end token kept) and
    asserts it equals TRL's on its own format; here on both formats and every row."""
    build_labels = lesson_function("03_lora_sft_training.ipynb", "cell-16b", "build_labels")
    trainer, tok = make_trainer(tiny_llama_path, tmp_path, prompt_format)
    for i, example in enumerate(trainer.train_dataset):
        row = prompts.training_example(f"{QUESTION} (copy {i})", SOLUTION, prompt_format)
        assert build_labels(row, tok) == (example["input_ids"], example["labels"])


def test_pad_token_is_not_the_end_token(llama3_tokenizer):
    pad = prompts.choose_pad_token(llama3_tokenizer)
    assert pad == "<|finetune_right_pad_id|>"
    assert llama3_tokenizer.convert_tokens_to_ids(pad) == 128004 != llama3_tokenizer.eos_token_id


def test_padding_in_a_batch_carries_no_loss_but_the_end_token_does(tiny_llama_path, tmp_path):
    trainer, tok = make_trainer(tiny_llama_path, tmp_path)
    rows = [trainer.train_dataset[i] for i in range(2)]
    rows[1] = {**rows[1], "input_ids": rows[1]["input_ids"][:-3] + rows[1]["input_ids"][-1:],
               "labels": rows[1]["labels"][:-3] + rows[1]["labels"][-1:]}  # make the rows differ in length
    batch = trainer.data_collator([{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows])
    pad_positions = batch["input_ids"] == tok.pad_token_id
    assert pad_positions.any()
    assert (batch["labels"][pad_positions] == -100).all()
    assert (batch["labels"] == tok.eos_token_id).sum() == 2  # each row's end token still carries loss


def test_trl_casts_lora_to_bf16_and_we_restore_fp32(tiny_llama_path, tmp_path):
    """Pitfall 1: TRL casts a quantized model's trainable weights to bf16 when it builds the trainer."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    model, tok = load_tiny_4bit(tiny_llama_path)
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(output_dir=str(tmp_path), max_steps=1, report_to="none", use_cpu=True, max_length=64),
        train_dataset=Dataset.from_list([prompts.training_example(QUESTION, SOLUTION, "plain")]),
        processing_class=tok,
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"),
    )
    trainable = [p for p in trainer.model.parameters() if p.requires_grad]
    assert {p.dtype for p in trainable} == {torch.bfloat16}  # what TRL 1.16 does; if this changes, revisit
    cast = training.keep_trainable_weights_in_fp32(trainer.model)
    assert cast == len(trainable)
    assert {p.dtype for p in trainer.model.parameters() if p.requires_grad} == {torch.float32}
    frozen = {p.dtype for p in trainer.model.parameters() if not p.requires_grad}
    assert torch.uint8 in frozen  # the 4-bit weights were not touched


def test_trainable_count_matches_the_lora_arithmetic(tiny_llama_path, tmp_path):
    trainer, _ = make_trainer(tiny_llama_path, tmp_path)
    config = trainer.model.config
    trainable, total = training.trainable_parameters(trainer.model)
    expected = training.lora_parameter_count(training.llama_linear_shapes(config), config.num_hidden_layers, 4)
    assert trainable == expected
    peft_trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    assert peft_trainable == expected
    assert total > trainable


def test_llama_8b_lora_arithmetic():
    from transformers import LlamaConfig

    config = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_attention_heads=32,
                         num_key_value_heads=8, num_hidden_layers=32)
    shapes = training.llama_linear_shapes(config)
    assert shapes["k_proj"] == (4096, 1024) and shapes["down_proj"] == (14336, 4096)
    # 16 * (q 8192 + k 5120 + v 5120 + o 8192 + gate 18432 + up 18432 + down 18432) * 32 layers
    assert training.lora_parameter_count(shapes, 32, 16) == 41_943_040


class Disconnect(Exception):
    """Stands for a Colab disconnect in the middle of training."""


def test_interrupted_run_resumes_from_its_last_checkpoint_to_the_same_final_step(tiny_llama_path, tmp_path):
    from transformers import TrainerCallback

    class DisconnectAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise Disconnect

    straight, _ = make_trainer(tiny_llama_path, tmp_path / "straight", rows=12, max_steps=6, save_steps=2)
    straight.train()

    out = tmp_path / "interrupted"
    first, _ = make_trainer(tiny_llama_path, out, rows=12, max_steps=6, save_steps=2, callbacks=[DisconnectAt()])
    with pytest.raises(Disconnect):
        first.train()
    checkpoint = training.last_checkpoint(out)
    assert checkpoint is not None and checkpoint.endswith("checkpoint-2")

    second, _ = make_trainer(tiny_llama_path, out, rows=12, max_steps=6, save_steps=2)
    second.train(resume_from_checkpoint=checkpoint)
    assert second.state.global_step == straight.state.global_step == 6
    logged_steps = [e["step"] for e in second.state.log_history if "loss" in e]
    assert logged_steps == [1, 2, 3, 4, 5, 6]  # the history before the disconnect is kept
    resumed = {n: p for n, p in second.model.named_parameters() if p.requires_grad}
    reference = {n: p for n, p in straight.model.named_parameters() if p.requires_grad}
    for name, param in reference.items():
        torch.testing.assert_close(resumed[name], param, atol=1e-4, rtol=1e-3)
    assert training.last_checkpoint(out).endswith("checkpoint-6")


def test_out_of_memory_in_training_says_what_to_lower_and_keeps_the_checkpoints(tiny_llama_path, tmp_path):
    from transformers import TrainerCallback

    from llmcourse.environment import out_of_memory_advice

    class OutOfMemoryAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.96 GiB")

    first, _ = make_trainer(tiny_llama_path, tmp_path, rows=12, max_steps=6, save_steps=2,
                            callbacks=[OutOfMemoryAt()])
    with pytest.raises(CourseError) as info, out_of_memory_advice("training", batch_size=2):
        first.train()
    assert info.value.key == "out_of_memory_training"
    assert "BATCH_SIZE" in str(info.value) and "GRAD_ACCUM" in str(info.value)
    assert isinstance(info.value.__cause__, torch.OutOfMemoryError)
    checkpoint = training.last_checkpoint(tmp_path)
    assert checkpoint is not None and checkpoint.endswith("checkpoint-2")  # the work before is kept
    second, _ = make_trainer(tiny_llama_path, tmp_path, rows=12, max_steps=6, save_steps=2)
    second.train(resume_from_checkpoint=checkpoint)
    assert second.state.global_step == 6


def test_other_errors_pass_through_the_out_of_memory_advice():
    from llmcourse.environment import out_of_memory_advice

    with pytest.raises(KeyError), out_of_memory_advice("training", batch_size=4):
        raise KeyError("not a memory problem")


def test_last_checkpoint_of_a_missing_folder_is_none(tmp_path):
    assert training.last_checkpoint(tmp_path / "nothing-here") is None


def test_check_adapter_messages(tmp_path):
    with pytest.raises(CourseError) as info:
        training.check_adapter(tmp_path, LLAMA_BASE)
    assert info.value.key == "missing_adapter" and "notebook 03" in str(info.value)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "Qwen/Qwen2.5-7B"}))
    with pytest.raises(CourseError) as info:
        training.check_adapter(tmp_path, LLAMA_BASE)
    assert info.value.key == "adapter_base_mismatch"
    assert "Qwen/Qwen2.5-7B" in str(info.value)
    (tmp_path / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": "/content/cache/Llama-3.1-8B"})
    )
    assert training.check_adapter(tmp_path, LLAMA_BASE)["base_model_name_or_path"]
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/x/" + TINY_LLAMA.split(":")[-1]}))
    training.check_adapter(tmp_path, TINY_LLAMA)


def test_label_mask_text_brackets_the_loss_part():
    rows = [("Question: 1+1?", False), ("\nAnswer:", False), (" 2", True), ("<|end_of_text|>", True), ("", False)]
    assert training.format_label_mask(rows) == "Question: 1+1?\nAnswer:[[ 2<|end_of_text|>]]"


def test_budget_grows_with_batch_and_shrinks_with_checkpointing():
    embeddings = 2 * 128256 * 4096  # input embeddings and output layer stay in 16-bit
    common = dict(quantized_params=8.03e9 - embeddings, other_params=embeddings, other_bytes=2, hidden_size=4096, layers=32, vocab_size=128256, lora_params=41_943_040,
                  token_lengths=[180] * 95 + [400] * 5, grad_accum=4, steps=60, profile="t4")
    small = training.predict_budget(batch_size=2, gradient_checkpointing=True, **common)
    large = training.predict_budget(batch_size=8, gradient_checkpointing=True, **common)
    no_ckpt = training.predict_budget(batch_size=2, gradient_checkpointing=False, **common)
    assert 5.4 < small.weights_gb < 5.9  # Llama 3.1 8B in NF4 is about 5.7 GB
    assert large.peak_gb > small.peak_gb
    assert no_ckpt.activations_gb > small.activations_gb
    assert small.real_tokens == int((0.95 * 180 + 0.05 * 400) * 2 * 4 * 60)
    # a batch of 2 is padded to its longer row: 400 whenever one of the two is a long row (1 - 0.95^2)
    assert small.tokens == int((180 * 0.95**2 + 400 * (1 - 0.95**2)) * 2 * 4 * 60)
    assert "ESTIMATE" in small.basis
    assert small.peak_gb < 12  # the t4 target the defaults are chosen for


# --- complete checkpoints only (issue 9, item 3) --------------------------------------------------------


@pytest.fixture(scope="module")
def two_checkpoints(tiny_llama_path, tmp_path_factory):
    """A run of 4 steps with a checkpoint every 2: checkpoint-2 and checkpoint-4, both complete."""
    out = tmp_path_factory.mktemp("two-checkpoints")
    trainer, _ = make_trainer(tiny_llama_path, out, rows=8, max_steps=4, save_steps=2)
    trainer.train()
    return out


@pytest.mark.parametrize(
    "truncate",
    ["trainer_state.json half written", "trainer_state.json missing", "optimizer.pt missing", "weights empty"],
)
def test_a_half_written_checkpoint_is_skipped_with_a_line_and_the_one_before_resumes(tiny_llama_path, tmp_path,
                                                                                      two_checkpoints, truncate):
    shutil.copytree(two_checkpoints, tmp_path, dirs_exist_ok=True)
    newest = tmp_path / "checkpoint-4"
    assert training.checkpoint_problems(newest) == []
    if truncate == "trainer_state.json half written":  # a disconnect while the last file was written
        state = (newest / "trainer_state.json").read_text()
        (newest / "trainer_state.json").write_text(state[: len(state) // 2])
    elif truncate == "trainer_state.json missing":
        (newest / "trainer_state.json").unlink()
    elif truncate == "optimizer.pt missing":
        (newest / "optimizer.pt").unlink()
    else:
        (newest / "adapter_model.safetensors").write_bytes(b"")
    assert training.checkpoint_problems(newest)
    lines = []
    checkpoint = training.last_checkpoint(tmp_path, log=lines.append)
    assert checkpoint is not None and checkpoint.endswith("checkpoint-2")
    assert len(lines) == 1 and "skipping checkpoint-4" in lines[0] and "incomplete" in lines[0]
    if truncate == "trainer_state.json half written":  # the trainer itself would fail on it; it resumes from 2
        resumed, _ = make_trainer(tiny_llama_path, tmp_path, rows=8, max_steps=4, save_steps=2)
        resumed.train(resume_from_checkpoint=checkpoint)
        assert resumed.state.global_step == 4


def test_a_complete_checkpoint_has_no_problems_and_only_partial_ones_give_none(tmp_path):
    folder = tmp_path / "checkpoint-3"
    folder.mkdir()
    assert training.last_checkpoint(tmp_path, log=lambda line: None) is None
    for name, content in [("adapter_model.safetensors", "x"), ("optimizer.pt", "x"), ("scheduler.pt", "x"),
                          ("trainer_state.json", json.dumps({"global_step": 3}))]:
        (folder / name).write_text(content)
    assert training.checkpoint_problems(folder) == []
    assert training.last_checkpoint(tmp_path) == str(folder)
    assert training.checkpoint_step(folder) == 3


# --- an adapter even when training was cut short (issue 9, item 4) ----------------------------------------


def test_a_run_cut_short_gets_the_adapter_of_its_last_complete_checkpoint(tiny_llama_path, tmp_path):
    from peft import PeftModel
    from transformers import TrainerCallback

    class StopAt3(TrainerCallback):  # the notebook's STOP_AFTER_STEPS, or a disconnect, after a save at 2
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= 3:
                control.should_training_stop = True

    trainer, tokenizer = make_trainer(tiny_llama_path, tmp_path / "checkpoints", rows=12, max_steps=6, save_steps=2,
                                      callbacks=[StopAt3()])
    trainer.train()
    assert trainer.state.global_step == 3
    adapter_dir = tmp_path / "adapter" / "run-a"
    staging = training.staging_dir(adapter_dir)
    steps = training.adapter_from_checkpoint(training.last_checkpoint(tmp_path / "checkpoints"), staging,
                                             trainer.state.global_step, 6)
    assert steps == 2
    training.publish_adapter(staging, adapter_dir, {"model_id": TINY_LLAMA, "steps": steps,
                                                    "total_steps": 6, "partial": True})
    assert training.training_log(adapter_dir)["partial"] is True
    assert training.training_label(steps, 6) == "PARTIAL: 2 of 6 steps"
    assert training.training_label(6, 6) == "6 of 6 steps"
    lines = []
    found = training.find_adapter(tmp_path / "adapter", TINY_LLAMA, log=lines.append)
    assert found == adapter_dir and "PARTIAL: 2 of 6 steps" in lines[0]
    model, _ = load_tiny_4bit(tiny_llama_path)
    loaded = PeftModel.from_pretrained(model, str(found))  # a usable adapter, with the weights of step 2
    assert sum(p.numel() for n, p in loaded.named_parameters() if "lora_" in n) > 0


def test_no_checkpoint_yet_says_to_run_the_training_cell_again(tmp_path):
    with pytest.raises(CourseError) as info:
        training.adapter_from_checkpoint(None, tmp_path / "staging", 1, 60)
    assert info.value.key == "missing_adapter" and "step 1 of 60" in str(info.value)


# --- nothing overwritten: one adapter folder per run, a pointer to the latest (issue 16) ----------------


def fake_adapter(root, run, base, steps=4, total=4):
    """Publish an adapter folder as notebook 03 does (the files trainer.save_model writes, stand-ins)."""
    adapter_dir = root / run
    staging = training.staging_dir(adapter_dir)
    (staging / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base}))
    (staging / "adapter_model.safetensors").write_bytes(b"weights of " + run.encode())
    return training.publish_adapter(staging, adapter_dir, {"model_id": base, "run_name": run, "steps": steps,
                                                           "total_steps": total, "partial": steps < total})


def test_two_runs_with_other_settings_keep_two_adapters_and_the_latest_is_used(tmp_path):
    first = fake_adapter(tmp_path, "tiny_plain_r4_n16_s4_lr0.001", TINY_LLAMA)
    second = fake_adapter(tmp_path, "tiny_plain_r8_n16_s4_lr0.0005", TINY_LLAMA)
    assert (first / "adapter_model.safetensors").read_bytes().endswith(first.name.encode())  # not overwritten
    assert {p.name for p in tmp_path.iterdir() if not p.name.startswith(".")} == {first.name, second.name,
                                                                                    training.LATEST}
    assert json.loads((tmp_path / training.LATEST).read_text())["adapter"] == second.name
    lines = []
    assert training.find_adapter(tmp_path, TINY_LLAMA, log=lines.append) == second
    assert second.name in lines[0] and "the latest saved" in lines[0]


def test_the_latest_adapter_that_fits_the_base_model_is_chosen(tmp_path):
    llama = fake_adapter(tmp_path, "Llama-3.1-8B_plain_r16", LLAMA_BASE)
    fake_adapter(tmp_path, "Llama-3.1-8B-Instruct_chat_r16", LLAMA_INSTRUCT)  # the latest
    lines = []
    assert training.find_adapter(tmp_path, LLAMA_BASE_UNGATED, log=lines.append) == llama  # a mirror
    assert "for another model" in lines[0]
    with pytest.raises(CourseError) as info:
        training.find_adapter(tmp_path, "Qwen/Qwen2.5-7B", log=lines.append)
    assert info.value.key == "adapter_base_mismatch"
    with pytest.raises(CourseError) as info:
        training.find_adapter(tmp_path / "empty", LLAMA_BASE)
    assert info.value.key == "missing_adapter"


def test_saving_the_same_run_again_replaces_only_that_folder(tmp_path):
    other = fake_adapter(tmp_path, "run-a", TINY_LLAMA)
    fake_adapter(tmp_path, "run-b", TINY_LLAMA, steps=2)
    again = fake_adapter(tmp_path, "run-b", TINY_LLAMA, steps=4)  # resumed and finished
    assert training.training_log(again)["steps"] == 4 and (other / "adapter_config.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "run-a", "run-b"]  # nothing left over


def test_an_adapter_in_the_old_single_folder_is_still_found(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/x/" + TINY_LLAMA.split(":")[-1]}))
    assert training.find_adapter(tmp_path, TINY_LLAMA, log=lambda line: None) == tmp_path


def test_expected_longest_row_of_a_batch_matches_a_simulation():
    import random

    rng = random.Random(0)
    lengths = [rng.randint(40, 400) for _ in range(500)]
    simulated = sum(max(rng.choices(lengths, k=4)) for _ in range(20000)) / 20000
    assert training.expected_longest(lengths, 4) == pytest.approx(simulated, rel=0.01)
    assert training.expected_longest(lengths, 1) == pytest.approx(sum(lengths) / len(lengths))
    assert training.expected_longest([], 4) == 0.0


def test_budget_time_counts_padding_and_the_whole_notebook():
    """Batches are padded to their longest row: the time follows the padded tokens, not the mean length;
    and the budget adds the notebook's other steps (install, Drive load, saving) to a whole-notebook total."""
    embeddings = 2 * 128256 * 4096
    common = dict(quantized_params=8.03e9 - embeddings, other_params=embeddings, other_bytes=2, hidden_size=4096,
                  layers=32, vocab_size=128256, lora_params=41_943_040, grad_accum=4, steps=60, batch_size=4,
                  gradient_checkpointing=True, profile="t4")
    even = training.predict_budget(token_lengths=[200] * 100, **common)
    skewed = training.predict_budget(token_lengths=[100] * 50 + [300] * 50, **common)  # the same mean
    assert even.real_tokens == skewed.real_tokens
    assert skewed.tokens > 1.3 * even.tokens and skewed.minutes > 1.3 * even.minutes
    assert even.other_minutes and even.notebook_minutes > even.minutes
    assert "whole notebook" in even.table() and "install" in even.table()
    cpu = training.predict_budget(token_lengths=[200] * 100, **{**common, "profile": "cpu"})
    assert cpu.other_minutes == {} and cpu.notebook_minutes == cpu.minutes
    # Rows grouped by length (notebook 03's train_sampling_strategy): a batch is padded to about the mean row.
    grouped = training.predict_budget(token_lengths=[100] * 50 + [300] * 50, grouped_by_length=True, **common)
    assert grouped.tokens == grouped.real_tokens == even.tokens and grouped.minutes < skewed.minutes
    assert "grouped by length" in grouped.table() and "random batch" in skewed.table()
    # ... and the trainer runs the batch with the longest row first: the memory is predicted at that row.
    one_long = [180] * 99 + [400]
    random_order = training.predict_budget(token_lengths=one_long, **common)
    grouped = training.predict_budget(token_lengths=one_long, grouped_by_length=True, **common)
    assert grouped.activations_gb == pytest.approx(random_order.activations_gb * 400 / 180)


def test_predicted_and_measured_memory_use_one_unit():
    from llmcourse import environment as memory

    assert memory.GB == 1e9  # the unit of get_memory_footprint() / 1e9 in the lessons, and of the budget
    budget = training.predict_budget(quantized_params=1e9, other_params=0, other_bytes=2, hidden_size=64, layers=1,
                                     vocab_size=10, lora_params=0, token_lengths=[1], batch_size=1, grad_accum=1,
                                     steps=1, gradient_checkpointing=True, profile="cpu")
    assert budget.weights_gb == pytest.approx(1e9 * 0.5 * 1.03 / memory.GB)
    assert "10^9 bytes" in budget.table()


def test_a_model_that_generated_on_a_cpu_with_avx512_bf16_is_refused_for_training(fresh_tiny_llama_4bit):
    """Pitfall 14, on the real path: a fresh model may train; after one generation, bitsandbytes has repacked its
    weights for generation where its 4-bit layers use the AVX512-BF16 path (this machine's CPU has it or not: the
    test follows what bitsandbytes' own layers decided)."""
    from llmcourse.generation import generate_batched

    model, tok = fresh_tiny_llama_4bit
    training.refuse_weights_packed_for_generation(model)  # never generated: no error
    generate_batched(model, tok, [prompts.plain_prompt("What is 2 + 3?")], batch_size=1, max_new_tokens=2,
                     end_token_ids=[tok.eos_token_id], progress=False)
    if not any(getattr(m, "support_avx512bf16_for_cpu", False) for m in model.modules()):
        training.refuse_weights_packed_for_generation(model)  # no repacking on this CPU: nothing to refuse
        pytest.skip("this CPU has no AVX512-BF16: bitsandbytes does not repack, the check passed as it should")
    with pytest.raises(CourseError) as err:
        training.refuse_weights_packed_for_generation(model)
    assert err.value.key == "trained_after_generating" and "Restart" in str(err.value)
