"""GPU check: Llama-3.1-8B-shaped model with random weights, in NF4, as the notebooks load it.

Random weights measure memory and speed exactly as the real ones do, and need no download or licence.

    python benchmarks/gpu_check.py --out gpu_check.json          # on a CUDA GPU (about 6-8 minutes on an H100)
    python benchmarks/gpu_check.py --tiny                        # the same code path on a CPU, in seconds

It reports, in one run:
- generation (the harness's batched, left-padded, greedy path) at batch sizes 1, 8 and 32: tokens/s and
  peak GPU memory, to choose the t4 profile's EVAL_BATCH_SIZE so that generation fits 15 GB with margin;
- a few SFT steps with the t4 settings (fp16 mixed precision, LoRA weights kept in fp32, paged 8-bit
  AdamW, gradient checkpointing) and with the ampere settings (bf16): peak memory and tokens/s.
  Target: the t4 settings peak at or under 12 GB.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from llmcourse import prompts
from llmcourse.generation import generate_batched
from llmcourse.memory import free_memory, peak_memory_gb, reset_peak_memory
from llmcourse.profiles import PROFILES
from llmcourse.training import keep_trainable_weights_in_fp32

LLAMA31_8B = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=8, max_position_embeddings=131072, rope_theta=500000.0,
                  rms_norm_eps=1e-5, tie_word_embeddings=False)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=2048, rope_theta=500000.0, tie_word_embeddings=False)


def build_random_checkpoint(folder: Path, shape: dict, tokenizer) -> Path:
    """Save a Llama with random weights (bf16) and the real tokenizer, to load it the notebooks' way."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=128000, eos_token_id=128001,
                         pad_token_id=128004, **shape)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(folder, max_shard_size="4GB")
    tokenizer.save_pretrained(folder)
    del model
    free_memory()
    return folder


def load_nf4(folder: Path, compute_dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    return AutoModelForCausalLM.from_pretrained(
        folder,
        quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                               bnb_4bit_use_double_quant=True,
                                               bnb_4bit_compute_dtype=compute_dtype),
        dtype=compute_dtype,
        device_map="auto" if torch.cuda.is_available() else "cpu",
    )


def generation_check(folder, tokenizer, compute_dtype, batch_sizes, questions, max_new_tokens) -> list[dict]:
    from llmcourse.data import load_split

    model = load_nf4(folder, compute_dtype)
    rows = load_split("local", "test")
    results = []
    for batch_size in batch_sizes:
        texts = [prompts.plain_prompt(r["question"]) for r in rows[: max(batch_size, questions)]]
        free_memory()
        reset_peak_memory()
        started = time.perf_counter()
        # random weights never emit the end token: every row runs to max_new_tokens, the worst case
        out, stats = generate_batched(model, tokenizer, texts, batch_size=batch_size, max_new_tokens=max_new_tokens,
                                      end_token_ids=[tokenizer.eos_token_id], progress=False)
        seconds = time.perf_counter() - started
        results.append({"batch_size": batch_size, "questions": len(texts), "new_tokens": stats.new_tokens,
                        "tokens_per_s": round(stats.new_tokens / seconds, 1), "peak_gb": peak_memory_gb()})
        print("generation", results[-1], flush=True)
    del model
    free_memory()
    return results


def training_check(folder, tokenizer, profile_name: str, steps: int, seq_len: int) -> dict:
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from llmcourse.profiles import torch_dtype

    profile = PROFILES[profile_name]
    on_gpu = torch.cuda.is_available()
    compute_dtype = torch_dtype(profile.compute_dtype) if on_gpu else torch.float32
    model = load_nf4(folder, compute_dtype)
    # Rows of the length the t4 budget plans for (GSM8K with the Llama 3 tokenizer: p95 about 300 tokens).
    words = " ".join(["apples"] * seq_len)
    data = Dataset.from_list([{"prompt": f"Question: {words[: seq_len * 2]}\nAnswer:",
                               "completion": f" {words[: seq_len * 4]}\n#### 7"} for _ in range(64)])
    config = SFTConfig(
        output_dir=tempfile.mkdtemp(),
        per_device_train_batch_size=profile.batch_size,
        gradient_accumulation_steps=profile.grad_accum,
        max_steps=steps,
        learning_rate=profile.learning_rate,
        max_length=seq_len,
        completion_only_loss=True,
        fp16=profile.fp16 and on_gpu,
        bf16=profile.bf16 and on_gpu,
        optim=profile.optim if on_gpu else "adamw_torch",
        gradient_checkpointing=profile.gradient_checkpointing,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=not on_gpu,
    )
    trainer = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer,
                         peft_config=LoraConfig(r=profile.lora_r, lora_alpha=profile.lora_alpha, lora_dropout=0.05,
                                                target_modules="all-linear", task_type="CAUSAL_LM"))
    keep_trainable_weights_in_fp32(trainer.model)
    free_memory()
    reset_peak_memory()
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    tokens = steps * profile.batch_size * profile.grad_accum * seq_len
    result = {"profile": profile_name, "fp16": config.fp16, "bf16": config.bf16, "optim": config.optim,
              "gradient_checkpointing": config.gradient_checkpointing, "batch": profile.batch_size,
              "grad_accum": profile.grad_accum, "seq_len": seq_len, "steps": steps,
              "seconds_per_step": round(seconds / steps, 2), "tokens_per_s": round(tokens / seconds, 1),
              "peak_gb": peak_memory_gb(), "final_loss": trainer.state.log_history[-1].get("train_loss")}
    print("training", result, flush=True)
    del trainer, model
    free_memory()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="a 2-layer model: check the code path on a CPU")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--seq-len", type=int, default=320)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[1, 8, 32])
    args = parser.parse_args()

    from llmcourse.offline_models import llama3_tokenizer

    tokenizer = llama3_tokenizer()
    report: dict = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0) if torch.cuda.is_available()
                    else "cpu", "shape": "tiny" if args.tiny else "Llama-3.1-8B"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_random_checkpoint(Path(tmp) / "random-llama", TINY if args.tiny else LLAMA31_8B, tokenizer)
        compute = torch.float16 if torch.cuda.is_available() else torch.float32
        report["generation_fp16"] = generation_check(folder, tokenizer, compute, args.batch_sizes,
                                                     questions=32 if not args.tiny else 4,
                                                     max_new_tokens=args.max_new_tokens if not args.tiny else 8)
        report["training"] = [training_check(folder, tokenizer, name, args.steps if not args.tiny else 2,
                                             args.seq_len if not args.tiny else 64)
                              for name in ("t4", "ampere")]
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
