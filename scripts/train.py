"""Notebook 03's training as a script, for one GPU or several (accelerate DDP, or FSDP + QLoRA).

    python scripts/train.py --profile cpu                                     # one process, as notebook 03
    accelerate launch --num_processes 4 scripts/train.py --profile ampere --full-epoch      # 4 GPUs, DDP
    accelerate launch --config_file configs/accelerate/fsdp_qlora.yaml scripts/train.py \\
        --profile ampere --model-id meta-llama/Llama-3.1-70B                  # a model no single GPU holds
    python scripts/train.py --plan --gpus 2                                   # memory per GPU, before loading
    accelerate launch --cpu --num_processes 2 scripts/train.py --profile smoke   # 2 processes, gloo (CI)

Same profile settings, dataset formatting, completion-only loss, fp16/fp32 handling, checkpoint folders and
resume as notebook 03; the adapter goes where notebook 04 looks for it. With N processes the effective batch
is BATCH_SIZE x GRAD_ACCUM x N, so one epoch takes N times fewer optimizer steps; the run name gets ``_p<N>``
so a run with another number of processes starts its own checkpoints instead of resuming these.
Each process writes ``ranks/rank<i>.json`` (what it saw, a fingerprint of its LoRA weights at the end).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Published shapes (the models' config.json on the Hub) for --plan: no download needed to do the arithmetic.
PLAN_MODELS = {
    "8B": dict(hidden_size=4096, intermediate_size=14336, num_attention_heads=32, num_key_value_heads=8,
               num_hidden_layers=32, vocab_size=128256),
    "70B": dict(hidden_size=8192, intermediate_size=28672, num_attention_heads=64, num_key_value_heads=8,
                num_hidden_layers=80, vocab_size=128256),
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default=None, help="t4, ampere, cpu or smoke (default: from the hardware)")
    p.add_argument("--model-id", default=None)
    p.add_argument("--prompt-format", default=None)
    for name in ("train_size", "max_steps", "batch_size", "grad_accum", "lora_r", "max_length", "save_steps"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=None)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--lora-alpha", type=float, default=None)
    p.add_argument("--gradient-checkpointing", default=None, choices=("true", "false"))
    p.add_argument("--full-epoch", action="store_true", help="the whole training split, one epoch")
    p.add_argument("--stop-after-steps", type=int, default=None, help="stop early, as a disconnect would")
    p.add_argument("--train-seed", type=int, default=42, help="notebook 03's TRAIN_SEED: LoRA init, dropout, row order")
    p.add_argument("--plan", action="store_true", help="print the memory arithmetic per GPU and exit")
    p.add_argument("--gpus", type=int, default=2, help="with --plan: GPUs to share the model (FSDP)")
    return p.parse_args(argv)


# --- --plan: the memory arithmetic, before anything loads -------------------------------------------------

def plan(profile, gpus: int) -> str:
    """Peak memory per GPU for 8B and 70B in NF4 with LoRA: one GPU, DDP (a full copy each), FSDP (sharded)."""
    from transformers import LlamaConfig

    from llmcourse.training import llama_linear_shapes, lora_parameter_count, predict_budget

    lines = [f"Memory per GPU (GB = 10^9 bytes; ESTIMATE from the arithmetic of llmcourse.training.predict_budget), "
             f"batch {profile.batch_size} x {profile.max_length} tokens, LoRA r={profile.lora_r}, "
             f"gradient checkpointing on, 16-bit embeddings and output layer:"]
    lines.append(f"{'model':6}{'4-bit weights':>15}{'LoRA+Adam':>11}{'activations':>13}"
                 f"{'1 GPU / DDP':>13}{f'FSDP on {gpus}':>12}")
    for name, shape in PLAN_MODELS.items():
        config = LlamaConfig(**shape)
        shapes = llama_linear_shapes(config)
        quantized = config.num_hidden_layers * sum(i * o for i, o in shapes.values())
        other = 2 * config.vocab_size * config.hidden_size + (2 * config.num_hidden_layers + 1) * config.hidden_size
        budget = predict_budget(
            quantized_params=quantized, other_params=other, other_bytes=2, hidden_size=config.hidden_size,
            layers=config.num_hidden_layers, vocab_size=config.vocab_size,
            lora_params=lora_parameter_count(shapes, config.num_hidden_layers, profile.lora_r),
            token_lengths=[profile.max_length], batch_size=profile.batch_size, grad_accum=1, steps=1,
            gradient_checkpointing=True, profile="ampere", other_minutes={})
        overhead = budget.peak_gb - budget.weights_gb - budget.lora_and_optimizer_gb - budget.activations_gb
        # FSDP shards the (4-bit) weights, LoRA weights, gradients and Adam states; activations stay per GPU.
        fsdp = (budget.weights_gb + budget.lora_and_optimizer_gb) / gpus + budget.activations_gb + overhead
        lines.append(f"{name:6}{budget.weights_gb:>15.1f}{budget.lora_and_optimizer_gb:>11.2f}"
                     f"{budget.activations_gb:>13.1f}{budget.peak_gb:>13.1f}{fsdp:>12.1f}")
    lines.append("DDP keeps a whole copy on every GPU (same per-GPU memory as one GPU, N times the throughput); FSDP "
                 "splits the weights, so 70B fits on GPUs the 1-GPU column exceeds. FSDP also gathers one decoder "
                 "layer at a time in 16-bit for compute (not counted above: about 1.7 GB for a 70B layer).")
    return "\n".join(lines)


# --- training -------------------------------------------------------------------------------------------

def lora_fingerprint(model) -> dict:
    """sha256 of the LoRA weights (sorted by name) and how far lora_B moved from its zero start."""
    digest, moved = hashlib.sha256(), 0.0
    for name, param in sorted(model.named_parameters()):
        if "lora_" in name:
            digest.update(name.encode())
            digest.update(param.detach().float().cpu().contiguous().numpy().tobytes())
            if "lora_B" in name:
                moved += float(param.detach().float().abs().sum())
    return {"sha256": digest.hexdigest(), "lora_B_abs_sum": moved}


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from llmcourse.profiles import check_knob, detect_profile
    from llmcourse.prompts import default_prompt_format

    profile = detect_profile(args.profile).with_overrides(
        model_id=args.model_id, train_size=args.train_size, max_steps=args.max_steps, batch_size=args.batch_size,
        grad_accum=args.grad_accum, learning_rate=args.learning_rate, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
        max_length=args.max_length, save_steps=args.save_steps, gradient_checkpointing=args.gradient_checkpointing)
    if args.plan:
        print(plan(profile, args.gpus))
        return 0
    if args.full_epoch:
        from llmcourse.data import split_size

        profile = profile.with_overrides(train_size=split_size(profile.dataset, "train") or 10**9, max_steps=-1)
    stop_after, TRAIN_SEED = check_knob("STOP_AFTER_STEPS", args.stop_after_steps), check_knob("TRAIN_SEED", args.train_seed)
    prompt_format = check_knob("PROMPT_FORMAT", args.prompt_format) or default_prompt_format(profile.model_id)

    import torch
    from accelerate import PartialState
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from trl import SFTConfig, SFTTrainer

    from llmcourse.data import load_split, solution_text
    from llmcourse.environment import course_folder
    from llmcourse.hub_access import download_token
    from llmcourse.model_loading import COURSE_QUANTIZATION
    from llmcourse.offline_models import resolve_model
    from llmcourse.profiles import torch_dtype
    from llmcourse.prompts import choose_pad_token, training_example
    from llmcourse.training import (
        StopAfter,
        adapter_from_checkpoint,
        keep_trainable_weights_in_fp32,
        last_checkpoint,
        publish_adapter,
        staging_dir,
        steps_for,
        training_label,
    )

    # The launcher's world (1 process without accelerate launch). On CPUs: gloo (accelerate's MULTI_CPU).
    state = PartialState(cpu=not torch.cuda.is_available())
    world, rank = state.num_processes, state.process_index
    fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    log = print if state.is_main_process else (lambda *a, **k: None)

    train_rows = load_split(profile.dataset, "train")[: profile.train_size]
    train_dataset = Dataset.from_list(
        [training_example(r["question"], solution_text(r["answer"]), prompt_format) for r in train_rows])
    # N processes each take BATCH_SIZE x GRAD_ACCUM examples per optimizer step.
    total_steps = steps_for(len(train_rows), profile.batch_size, profile.grad_accum * world, profile.max_steps)
    warmup = max(1, total_steps // 20)
    run_name = (f"{profile.model_id.split('/')[-1].split(':')[-1]}_{prompt_format}_r{profile.lora_r}"
                f"_n{len(train_rows)}_s{total_steps}_lr{profile.learning_rate:g}_seed{TRAIN_SEED}"
                + (f"_p{world}" if world > 1 else ""))
    checkpoint_dir = course_folder(profile.name, "checkpoints") / run_name
    log(profile.table())
    log(f"{world} process(es){' with FSDP' if fsdp else ''}: effective batch {profile.batch_size} x "
        f"{profile.grad_accum} x {world} = {profile.batch_size * profile.grad_accum * world} examples per step; "
        f"{total_steps} steps over {len(train_rows)} rows "
        f"({total_steps * profile.batch_size * profile.grad_accum * world / max(1, len(train_rows)):.2f} epochs); "
        f"learning rate: linear warm-up to {profile.learning_rate:g} over {warmup} steps, then cosine to 0 at "
        f"step {total_steps}")

    compute_dtype = torch_dtype(profile.compute_dtype)
    # FSDP shards tensors of one dtype: the packed 4-bit weights are stored in the compute dtype for it.
    storage = {"bnb_4bit_quant_storage": compute_dtype} if fsdp else {}
    bnb_config = BitsAndBytesConfig(**COURSE_QUANTIZATION, bnb_4bit_compute_dtype=compute_dtype, **storage)
    with state.main_process_first():  # an offline copy is built once, by rank 0
        source = resolve_model(profile.model_id)
    # Each process loads the 4-bit model on its own GPU; FSDP places (and shards) it itself.
    device_map = None if fsdp else ({"": state.local_process_index} if torch.cuda.is_available() else "cpu")
    token = download_token(profile.model_id)
    tokenizer = AutoTokenizer.from_pretrained(source, token=token)
    tokenizer.pad_token = choose_pad_token(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(source, quantization_config=bnb_config, dtype=compute_dtype,
                                                 device_map=device_map, token=token)
    lora_config = LoraConfig(r=profile.lora_r, lora_alpha=profile.lora_alpha, lora_dropout=0.05,
                             target_modules="all-linear", task_type="CAUSAL_LM")
    sft_config = SFTConfig(
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=profile.batch_size,
        gradient_accumulation_steps=profile.grad_accum,
        max_steps=total_steps,
        learning_rate=profile.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=warmup,
        max_length=profile.max_length,
        train_sampling_strategy="group_by_length",  # as notebook 03: less padding to compute
        completion_only_loss=True,
        fp16=profile.fp16,
        bf16=profile.bf16,
        optim=profile.optim,
        gradient_checkpointing=profile.gradient_checkpointing,
        # DDP: LoRA leaves most weights frozen; do not search for unused ones every step.
        gradient_checkpointing_kwargs={"use_reentrant": False} if profile.gradient_checkpointing else None,
        ddp_find_unused_parameters=False if world > 1 and not fsdp else None,
        logging_steps=max(1, min(10, total_steps // 10)),
        save_steps=profile.save_steps,
        save_total_limit=2,
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        seed=TRAIN_SEED,
    )
    trainer = SFTTrainer(model=model, args=sft_config, train_dataset=train_dataset, processing_class=tokenizer,
                         peft_config=lora_config)
    model = trainer.model
    cast = keep_trainable_weights_in_fp32(model) if not fsdp else 0  # FSDP: one dtype per flat parameter
    log(f"LoRA weights kept in fp32: {cast} tensors")

    seen: list[int] = []  # a fingerprint of every batch this process computed (its share of the data)
    model.get_input_embeddings().register_forward_hook(
        lambda module, inputs, output: seen.append(int(inputs[0].sum())) if module.training else None)

    trainer.add_callback(StopAfter(stop_after))  # notebook 03's callback
    resume_from = last_checkpoint(checkpoint_dir, log=log)
    log(f"resuming from {resume_from}" if resume_from else f"starting a fresh run in {checkpoint_dir}")
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    minutes = (time.perf_counter() - started) / 60
    steps_now = trainer.state.global_step

    ranks = checkpoint_dir / "ranks"
    ranks.mkdir(parents=True, exist_ok=True)
    record = {"rank": rank, "world_size": world, "device": str(state.device), "global_step": steps_now,
              "resumed_from": resume_from, "batches_seen": seen, **lora_fingerprint(trainer.model)}
    (ranks / f"rank{rank}.json").write_text(json.dumps(record, indent=2))
    print(f"[rank {rank}/{world}] {len(seen)} batches computed, step {steps_now}, LoRA sha256 {record['sha256'][:12]}",
          flush=True)
    state.wait_for_everyone()

    # The adapter, saved once, where notebook 04 finds it (as notebook 03 saves it). save_model is called by
    # every process (FSDP gathers the sharded weights for it); only the main process writes.
    adapter_dir = course_folder(profile.name, "adapter") / run_name
    staging = staging_dir(adapter_dir) if state.is_main_process else adapter_dir.with_name(f".{adapter_dir.name}.incomplete")
    state.wait_for_everyone()
    if steps_now >= total_steps:
        trainer.save_model(str(staging))
    if state.is_main_process:
        steps_done = steps_now
        if steps_now < total_steps:
            steps_done = adapter_from_checkpoint(last_checkpoint(checkpoint_dir), staging, steps_now, total_steps)
        tokenizer.save_pretrained(str(staging))
        losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
        publish_adapter(staging, adapter_dir, {
            "model_id": profile.model_id, "prompt_format": prompt_format, "profile": profile.name,
            "train_rows": len(train_rows), "run_name": run_name, "steps": steps_done, "total_steps": total_steps,
            "partial": steps_done < total_steps, "minutes_measured": minutes, "processes": world,
            "fsdp": fsdp, "log_history": trainer.state.log_history})
        print(f"losses: {[round(x, 3) for x in losses]}")
        print(f"adapter saved to {adapter_dir} ({training_label(steps_done, total_steps)}), {minutes:.1f} min")
    state.wait_for_everyone()
    return 0


if __name__ == "__main__":
    sys.exit(main())
