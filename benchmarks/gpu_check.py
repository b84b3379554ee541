"""GPU check: what the t4 profile does, on the real Llama 3.1 8B architecture with random weights, in NF4.

Random weights cost the same memory and time as the real ones and need no download and no licence. They
never write the end token, so every generated row runs to the full 256 tokens: the worst case.

    python benchmarks/gpu_check.py --out benchmarks/results/gpu_check.json   # on a CUDA GPU (about 5-7 min)
    python benchmarks/gpu_check.py --tiny --out /tmp/tiny.json                # the same code path on a CPU

Stages (the JSON is written after each one, so a run cut short keeps what it measured):

1. ``build``: a random Llama-3.1-8B-shaped checkpoint (bf16) with the real Llama 3 tokenizer;
2. ``generation_t4``: loaded in NF4 with fp16 compute, GSM8K-length prompts (the real test questions from
   ``../shared/data/gsm8k/test.jsonl`` when present, else the same length distribution), 256 new tokens at
   the t4 eval batch size, through the course's one generation path (``generate_batched``), then 4 of the
   questions one at a time (the batched speed-up per question);
3. ``training_t4``: SFT steps at the t4 settings: fp16 mixed precision with the LoRA weights kept in fp32,
   paged 8-bit AdamW, gradient checkpointing, batch 4 x accumulation 4, rows of real GSM8K lengths (train
   split), completion-only loss; beside the training budget the notebook predicts for them;
4. ``training_levers_t4``: the t4 settings with one lever changed at a time, on the same rows (``LEVERS``): rows
   grouped by length or not, gradient checkpointing off, padding-free batches, the Liger kernels (skipped where
   liger-kernel or CUDA is missing), rows packed to 512 and to 1024 tokens; useful tokens/s and peak memory each;
5. ``training_ampere``: the same as 3 at the ampere settings (bf16, batch 16).

It needs torch, transformers, bitsandbytes, peft and accelerate, but neither TRL nor datasets: the steps
are run by ``transformers.Trainer`` on a PEFT model prepared as TRL 1.16's SFTTrainer prepares it
(``get_peft_model``, input gradients for checkpointing, trainable weights in fp32 as notebook 03 keeps
them). ``benchmarks/README.md`` says how to bring those wheels to a machine without internet.

Peak memory is what carries over to a T4 (same weights, kernels and shapes); speed does not.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from llmcourse import prompts  # noqa: E402
from llmcourse.data import HUB_DATASET, split_size  # noqa: E402
from llmcourse.environment import free_memory, peak_memory_gb, reset_peak_memory  # noqa: E402
from llmcourse.evaluation import library_versions  # noqa: E402
from llmcourse.generation import generate_batched  # noqa: E402
from llmcourse.model_loading import COURSE_QUANTIZATION  # noqa: E402
from llmcourse.profiles import PROFILES, torch_dtype  # noqa: E402
from llmcourse.training import (  # noqa: E402
    keep_trainable_weights_in_fp32,
    parameter_split,
    predict_budget,
    steps_for,
)

GSM8K = ROOT.parent / "shared" / "data" / "gsm8k"
LLAMA31_8B = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=8, max_position_embeddings=131072, rope_theta=500000.0,
                  rms_norm_eps=1e-5, tie_word_embeddings=False)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=2048, rope_theta=500000.0, tie_word_embeddings=False)
# When ../shared/data/gsm8k is absent: GSM8K's token lengths (Llama 3 tokenizer, plain prompt format) at every
# 5th percentile, measured on the real files (prompt of a test question; prompt and completion of a training
# row, the completion with its end token). Lengths are drawn between these points.
FALLBACK_PERCENTILES = {
    "test_prompt": [27, 36, 40, 43, 45, 47, 50, 53, 55, 58, 60, 62, 65, 68, 71, 75, 79, 85, 94, 108, 190],
    "train_prompt": [16, 36, 40, 42, 45, 47, 49, 51, 54, 56, 58, 61, 63, 66, 69, 73, 77, 83, 91, 102, 213],
    "train_completion": [22, 34, 39, 44, 48, 52, 56, 59, 63, 67, 72, 76, 81, 86, 92, 98, 105, 115, 128, 151, 293],
}


class Report:
    """The figures so far, written to ``path`` after every stage."""

    def __init__(self, path: Path | None, **header):
        self.path, self.data = path, {**header, "stages_done": []}

    def stage(self, name: str, figures) -> None:
        self.data[name] = figures
        self.data["stages_done"].append(name)
        print(name, json.dumps(figures, indent=1), flush=True)
        self.save()

    def save(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.data, indent=2) + "\n")


def _draw(percentiles: list[int], rng: random.Random) -> int:
    """A length drawn from the distribution given by its 5th percentiles (linear between them)."""
    u = rng.random() * (len(percentiles) - 1)
    low = int(u)
    high = min(low + 1, len(percentiles) - 1)
    return round(percentiles[low] + (u - low) * (percentiles[high] - percentiles[low]))


def _filler(tokens: int) -> str:
    return " apples" * max(1, tokens)  # " apples" is one Llama 3 token


def gsm8k_rows(split: str) -> list[dict] | None:
    path = GSM8K / f"{split}.jsonl"
    if not path.is_file():
        return None
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def eval_prompts(count: int, rng: random.Random) -> tuple[list[str], str]:
    rows = gsm8k_rows("test")
    if rows is not None:
        return [prompts.plain_prompt(r["question"]) for r in rng.sample(rows, min(count, len(rows)))], str(GSM8K)
    lengths = [_draw(FALLBACK_PERCENTILES["test_prompt"], rng) for _ in range(count)]
    return [prompts.plain_prompt(_filler(n - 5)) for n in lengths], "GSM8K length distribution (data absent)"


def train_rows(tokenizer, count: int, rng: random.Random) -> tuple[list[dict], str]:
    """Tokenized rows with the completion-only labels SFTTrainer builds: -100 on the prompt."""
    from llmcourse.data import solution_text

    rows = gsm8k_rows("train")
    out = []
    if rows is not None:
        source = str(GSM8K)
        for r in rng.sample(rows, min(count, len(rows))):
            prompt = tokenizer(prompts.plain_prompt(r["question"]))["input_ids"]
            completion = tokenizer(prompts.plain_completion(solution_text(r["answer"])),
                                   add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            out.append((prompt, completion))
    else:
        source = "GSM8K length distribution (data absent)"
        for _ in range(count):
            p = _draw(FALLBACK_PERCENTILES["train_prompt"], rng)
            c = _draw(FALLBACK_PERCENTILES["train_completion"], rng)
            prompt = tokenizer(prompts.plain_prompt(_filler(p - 5)))["input_ids"]
            completion = tokenizer(_filler(c - 1), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            out.append((prompt, completion))
    data = [{"input_ids": p + c, "labels": [-100] * len(p) + c} for p, c in out]
    return data, source


def collate(pad_id: int):
    """Right padding to the batch's longest row, as SFTTrainer's collator pads."""

    def collate_rows(rows: list[dict]) -> dict:
        width = max(len(r["input_ids"]) for r in rows)
        ids = [r["input_ids"] + [pad_id] * (width - len(r["input_ids"])) for r in rows]
        labels = [r["labels"] + [-100] * (width - len(r["labels"])) for r in rows]
        mask = [[1] * len(r["input_ids"]) + [0] * (width - len(r["input_ids"])) for r in rows]
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}

    return collate_rows


def collate_padding_free(pad_id: int):
    """As TRL's padding-free collator: a batch's rows (or packed bins of rows) as one sequence, no padding and no
    attention mask; the position ids restart at every row, so sdpa attention keeps the rows apart
    (tests/test_padding_free.py checks that on the smoke model)."""

    def collate_rows(rows: list[dict]) -> dict:
        ids = [t for r in rows for t in r["input_ids"]]
        labels = [t for r in rows for t in r["labels"]]
        positions = [t for r in rows for t in r.get("position_ids", range(len(r["input_ids"])))]
        labels = [-100 if p == 0 else t for t, p in zip(labels, positions, strict=True)]  # no row predicts the next
        return {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels]),
                "position_ids": torch.tensor([positions])}

    return collate_rows


def pack(rows: list[dict], length: int) -> list[dict]:
    """Rows packed into bins of at most ``length`` tokens (first fit, longest first), with restarting position ids."""
    bins: list[list[dict]] = []
    for row in sorted(rows, key=lambda r: -len(r["input_ids"])):
        target = next((b for b in bins if sum(len(r["input_ids"]) for r in b) + len(row["input_ids"]) <= length), None)
        bins.append([row]) if target is None else target.append(row)
    return [{"input_ids": [t for r in b for t in r["input_ids"]], "labels": [t for r in b for t in r["labels"]],
             "position_ids": [i for r in b for i in range(len(r["input_ids"]))]} for b in bins]


# One change at a time to the t4 settings of ``training_t4`` (rows grouped by length, as notebook 03 does).
LEVERS = {
    "t4 settings": {},
    "random batches (not grouped by length)": {"group_by_length": False},
    "gradient checkpointing off": {"gradient_checkpointing": False},
    "padding-free": {"padding_free": True},
    "Liger kernels (use_liger_kernel)": {"use_liger_kernel": True},
    "packed to 512 tokens": {"pack_to": 512},
    "packed to 1024 tokens": {"pack_to": 1024},
}
LEVER_FIGURES = ("rows", "real_tokens", "padded_tokens", "seconds_per_step", "real_tokens_per_s", "peak_gb",
                 "gradient_checkpointing", "final_loss")


def liger_unavailable() -> str | None:
    """Why the Liger kernels cannot be measured here (None when they can)."""
    import importlib.util

    if importlib.util.find_spec("liger_kernel") is None:
        return "liger-kernel is not installed (pip install liger-kernel: it needs Triton and a CUDA GPU)"
    return None if torch.cuda.is_available() else "the Liger kernels are Triton kernels: they need a CUDA GPU"


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


def load_nf4(folder: Path, profile_name: str):
    """As notebook 01 loads the model, in the profile's compute dtype (fp32 without a GPU)."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    compute_dtype = torch_dtype(PROFILES[profile_name].compute_dtype) if torch.cuda.is_available() else torch.float32
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(
        folder,
        quantization_config=BitsAndBytesConfig(**COURSE_QUANTIZATION, bnb_4bit_compute_dtype=compute_dtype),
        dtype=compute_dtype,
        device_map="auto" if torch.cuda.is_available() else "cpu",
    )
    return model, time.perf_counter() - started


def generation_check(model, tokenizer, texts: list[str], batch_size: int, max_new_tokens: int,
                     one_at_a_time: int = 4) -> dict:
    """Batched generation of ``texts``, then the first ``one_at_a_time`` of them one question at a time: the
    batched speed-up per question (random weights never stop, so every answer is ``max_new_tokens`` long)."""
    free_memory()
    reset_peak_memory()
    lengths = [len(tokenizer(t)["input_ids"]) for t in texts]
    _, stats = generate_batched(model, tokenizer, texts, batch_size=batch_size, max_new_tokens=max_new_tokens,
                                end_token_ids=[tokenizer.eos_token_id], progress=False)
    peak = peak_memory_gb()
    started = time.perf_counter()
    for text in texts[:one_at_a_time]:
        generate_batched(model, tokenizer, [text], batch_size=1, max_new_tokens=max_new_tokens,
                         end_token_ids=[tokenizer.eos_token_id], progress=False)
    single_s = (time.perf_counter() - started) / one_at_a_time
    steps = -(-len(texts) // stats.batch_size) * max_new_tokens
    return {"questions": len(texts), "batch_size": stats.batch_size, "max_new_tokens": max_new_tokens,
            "prompt_tokens_mean": round(sum(lengths) / len(lengths), 1), "prompt_tokens_max": max(lengths),
            "new_tokens": stats.new_tokens, "seconds": round(stats.wall_time_s, 1),
            "tokens_per_s": round(stats.tokens_per_s, 1),
            "seconds_per_decoding_step": round(stats.wall_time_s / steps, 4),
            "peak_gb": _round(peak), "footprint_gb": round(model.get_memory_footprint() / 1e9, 2),
            "one_at_a_time_s_per_question": round(single_s, 2),
            "batched_speedup": round(single_s / (stats.wall_time_s / len(texts)), 1)}


def training_check(model, tokenizer, profile_name: str, steps: int, rows: list[dict], data_source: str,
                   max_length: int, tiny: bool = False, *, group_by_length: bool = True, padding_free: bool = False,
                   pack_to: int | None = None, gradient_checkpointing: bool | None = None,
                   use_liger_kernel: bool = False) -> dict:
    """SFT steps at the profile's settings on ``model`` (the LoRA adapter is removed again afterwards, so the
    next call starts from the same base); the keyword arguments are the levers of ``LEVERS``."""
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments

    profile = PROFILES[profile_name]
    if tiny:  # the code path only: small batches on a CPU
        profile = dataclasses.replace(profile, batch_size=2, grad_accum=2)
    if gradient_checkpointing is not None:
        profile = dataclasses.replace(profile, gradient_checkpointing=gradient_checkpointing)
    if not profile.gradient_checkpointing and model.is_gradient_checkpointing:
        model.gradient_checkpointing_disable()  # left on by an earlier call
    on_gpu = torch.cuda.is_available()
    rows = [{k: v[:max_length] for k, v in r.items()} for r in rows]
    if pack_to:
        rows, padding_free = pack(rows, pack_to), True
    model = get_peft_model(model, LoraConfig(r=profile.lora_r, lora_alpha=profile.lora_alpha, lora_dropout=0.05,
                                             target_modules="all-linear", task_type="CAUSAL_LM"))
    if profile.gradient_checkpointing:
        model.enable_input_require_grads()  # as SFTTrainer does for PEFT + checkpointing
    keep_trainable_weights_in_fp32(model)  # notebook 03 (pitfall 1)
    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(),
        per_device_train_batch_size=profile.batch_size,
        gradient_accumulation_steps=profile.grad_accum,
        max_steps=steps,
        learning_rate=profile.learning_rate,
        fp16=profile.fp16 and on_gpu,
        bf16=profile.bf16 and on_gpu,
        optim=profile.optim if on_gpu else "adamw_torch",
        gradient_checkpointing=profile.gradient_checkpointing,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=not on_gpu,
        remove_unused_columns=False,
        train_sampling_strategy="group_by_length" if group_by_length else "random",
        use_liger_kernel=use_liger_kernel,
        seed=42,
    )
    collator = (collate_padding_free if padding_free else collate)(tokenizer.pad_token_id)
    trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collator)
    counts = {"padded": 0, "real": 0}  # what the GPU computed (padding included) and the rows' own tokens

    def count(module, args_, kwargs):
        counts["padded"] += kwargs["input_ids"].numel()
        mask = kwargs.get("attention_mask")
        counts["real"] += int(mask.sum()) if mask is not None else kwargs["input_ids"].numel()

    hook = model.register_forward_pre_hook(count, with_kwargs=True)
    # The budget notebook 03 prints for these settings, for the profile's whole run (other steps left out).
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    quantized, other = parameter_split(model)
    lengths = [len(r["input_ids"]) for r in rows]
    planned_steps = steps_for(min(profile.train_size or 10**9, split_size(HUB_DATASET, "train")), profile.batch_size,
                              profile.grad_accum, profile.max_steps)
    compute_dtype = torch_dtype(profile.compute_dtype) if on_gpu else torch.float32
    budget = predict_budget(
        quantized_params=quantized, other_params=other, other_bytes=compute_dtype.itemsize,
        hidden_size=model.config.hidden_size, layers=model.config.num_hidden_layers, vocab_size=model.config.vocab_size,
        lora_params=trainable, token_lengths=lengths, batch_size=profile.batch_size, grad_accum=profile.grad_accum,
        steps=planned_steps, gradient_checkpointing=profile.gradient_checkpointing, profile=profile_name,
        other_minutes={}, grouped_by_length=group_by_length,
    )
    free_memory()
    reset_peak_memory()
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    hook.remove()
    padded, real = counts["padded"], counts["real"]
    measured_rate = padded / seconds
    peak = peak_memory_gb()
    result = {
        "profile": profile_name, "fp16": args.fp16, "bf16": args.bf16, "optim": args.optim,
        "gradient_checkpointing": args.gradient_checkpointing, "lora_weights_dtype": sorted(
            {str(p.dtype) for p in model.parameters() if p.requires_grad}),
        "batch": profile.batch_size, "grad_accum": profile.grad_accum, "steps": steps, "rows_from": data_source,
        "row_tokens_mean": round(sum(lengths) / len(lengths), 1), "row_tokens_max": max(lengths),
        "rows": len(rows), "group_by_length": group_by_length, "padding_free": padding_free, "pack_to": pack_to,
        "use_liger_kernel": use_liger_kernel,
        "real_tokens": real, "padded_tokens": padded, "seconds": round(seconds, 1),
        "seconds_per_step": round(seconds / steps, 2), "padded_tokens_per_s": round(measured_rate, 1),
        "real_tokens_per_s": round(real / seconds, 1),
        "peak_gb": _round(peak), "final_loss": trainer.state.log_history[-1].get("train_loss"),
        "budget": {
            "steps_planned": planned_steps,
            "predicted_peak_gb": round(budget.peak_gb, 2), "measured_peak_gb": _round(peak),
            "predicted_padded_tokens_per_s": round(budget.tokens / (budget.minutes * 60), 1),
            "measured_padded_tokens_per_s": round(measured_rate, 1),
            "predicted_minutes": round(budget.minutes, 1),
            "minutes_at_measured_rate": round(budget.tokens / measured_rate / 60, 1),
            "note": "peak memory carries over to the profile's GPU; the rate is this GPU's, not a T4's or an L4's",
        },
    }
    model.unload()  # the base model without LoRA layers, for the next call
    del trainer, model
    free_memory()
    return result


def _round(value):
    return None if value is None else round(value, 2)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="a 2-layer model: check the code path on a CPU")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here (after every stage)")
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per training stage")
    parser.add_argument("--questions", type=int, default=64, help="questions in the generation stage")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gsm8k", type=Path, default=None,
                        help="folder of GSM8K's train.jsonl and test.jsonl (default: ../shared/data/gsm8k)")
    args = parser.parse_args(argv)
    if args.gsm8k is not None:
        global GSM8K
        GSM8K = args.gsm8k

    from llmcourse.offline_models import llama3_tokenizer

    rng = random.Random(args.seed)
    tokenizer = llama3_tokenizer()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    report = Report(args.out, device=gpu or "cpu", shape="tiny" if args.tiny else "Llama-3.1-8B",
                    versions=library_versions(), started=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                    carries_over="peak memory (same weights, kernels and batch shapes as on a T4 / L4); "
                                 "not speed: tokens/s are this GPU's")
    t4 = PROFILES["t4"]
    questions, batch, new_tokens = (8, 4, 8) if args.tiny else (args.questions, t4.eval_batch_size, t4.max_new_tokens)
    steps = 1 if args.tiny else args.steps
    row_count = {name: steps * (4 if args.tiny else p.batch_size * p.grad_accum) for name, p in PROFILES.items()}
    max_length = {name: 128 if args.tiny else p.max_length for name, p in PROFILES.items()}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        folder = build_random_checkpoint(Path(tmp) / "random-llama", TINY if args.tiny else LLAMA31_8B, tokenizer)
        report.stage("build", {"seconds": round(time.perf_counter() - started, 1)})

        model, load_s = load_nf4(folder, "t4")
        texts, source = eval_prompts(questions, rng)
        figures = generation_check(model, tokenizer, texts, batch, new_tokens)
        report.stage("generation_t4", {"load_seconds": round(load_s, 1), "prompts_from": source, **figures})

        rows, source = train_rows(tokenizer, row_count["t4"], rng)
        report.stage("training_t4", training_check(model, tokenizer, "t4", steps, rows, source, max_length["t4"],
                                                   args.tiny))

        # The levers side by side on the same rows: enough of them to fill every step when packed to 1024 tokens.
        rows, source = train_rows(tokenizer, row_count["t4"] * 8, rng)
        levers: dict[str, dict] = {}
        for name, options in LEVERS.items():
            reason = liger_unavailable() if options.get("use_liger_kernel") else None
            figures = {"skipped": reason} if reason else training_check(
                model, tokenizer, "t4", steps, rows, source, max_length["t4"], args.tiny, **options)
            levers[name] = {k: figures[k] for k in (LEVER_FIGURES if not reason else ("skipped",))}
            report.data["training_levers_t4"] = levers  # saved after each lever: a cut run keeps the rest
            report.save()
        report.stage("training_levers_t4", levers)
        del model
        free_memory()

        model, load_s = load_nf4(folder, "ampere")
        rows, source = train_rows(tokenizer, row_count["ampere"], rng)
        figures = training_check(model, tokenizer, "ampere", steps, rows, source, max_length["ampere"], args.tiny)
        report.stage("training_ampere", {"load_seconds": round(load_s, 1), **figures})
    report.data["finished"] = True
    report.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
