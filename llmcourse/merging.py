"""Merge a LoRA adapter into its base model one safetensors shard at a time (pitfall 8): each shard gets
``scale * B @ A`` added (in fp32) to the adapted weights, is written in the base's dtype and dropped before the next."""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

from llmcourse.environment import GB  # the course's one unit, 10^9 bytes, as the RSS figures
from llmcourse.troubleshooting import CourseError

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
ADAPTER_FILE = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."  # peft's name for <module>.lora_A.weight; the checkpoint's is <module>.weight
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".msgpack", ".h5")  # the rest is copied


class LoraUpdate(NamedTuple):  # one adapted weight: W + scale * B @ A; A is (r, d_in), B is (d_out, r)
    A: torch.Tensor
    B: torch.Tensor
    scale: float


@dataclass
class MergeReport:  # what the merge did and cost (RSS: the process's, before the merge and at its highest)
    shards: list[str]
    merged_weights: int
    copied_weights: int
    seconds: float
    start_rss_gb: float
    peak_rss_gb: float
    largest_shard_gb: float
    adapter_gb: float
    out_gb: float

    @property
    def added_rss_gb(self) -> float:
        return self.peak_rss_gb - self.start_rss_gb


def lora_scale(adapter_config: dict, rank: int) -> float:
    """``lora_alpha / r`` (rsLoRA: ``lora_alpha / sqrt(r)``), the factor peft applies to ``B @ A``."""
    alpha = adapter_config.get("lora_alpha", rank)
    return alpha / math.sqrt(rank) if adapter_config.get("use_rslora") else alpha / rank


def merged_weight(weight: torch.Tensor, A: torch.Tensor, B: torch.Tensor, scale: float) -> torch.Tensor:
    """``W + scale * B @ A`` computed in fp32, returned in ``W``'s dtype (the tested copy of the lesson's line)."""
    return (weight.float() + scale * (B.float() @ A.float())).to(weight.dtype)


def _unsupported(detail: str, path: Path) -> CourseError:
    return CourseError("merge_unsupported", detail, checkpoint=path)


def read_adapter(adapter_dir: Path) -> tuple[dict, dict[str, LoraUpdate]]:
    """The adapter's config and its updates, keyed by the base checkpoint's weight name."""
    from safetensors.torch import load_file

    adapter_dir = Path(adapter_dir)
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    for refused, why in ((config.get("peft_type", "LORA") != "LORA", f"the adapter is {config.get('peft_type')}"),
                         (config.get("use_dora"), "the adapter uses DoRA (a magnitude vector, not only B @ A)"),
                         (config.get("alpha_pattern"), "the adapter has a per-module alpha_pattern"),
                         (config.get("fan_in_fan_out"), "the adapter was made for fan_in_fan_out (Conv1D) layers")):
        if refused:
            raise _unsupported(why, adapter_dir)
    if not (adapter_dir / ADAPTER_FILE).exists():
        raise CourseError("missing_adapter", f"no {ADAPTER_FILE} in {adapter_dir}", path=adapter_dir)
    halves: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in load_file(adapter_dir / ADAPTER_FILE).items():
        part = "A" if ".lora_A." in key else "B" if ".lora_B." in key else None
        if part is None:  # modules_to_save, embeddings, biases trained beside LoRA: not a B @ A update
            raise _unsupported(f"the adapter holds {key}, which is not a LoRA A or B matrix", adapter_dir)
        halves.setdefault(key.split(f".lora_{part}.")[0].removeprefix(PEFT_PREFIX), {})[part] = tensor
    updates = {}
    for module, pair in halves.items():
        if set(pair) != {"A", "B"}:
            raise _unsupported(f"{module} has only lora_{''.join(pair)}", adapter_dir)
        # the rank from the tensor, so a per-module rank_pattern is honoured too
        updates[f"{module}.weight"] = LoraUpdate(pair["A"], pair["B"], lora_scale(config, pair["A"].shape[0]))
    return config, updates


def _weight_map(base_dir: Path) -> dict[str, str] | None:
    index = Path(base_dir) / INDEX_FILE
    return json.loads(index.read_text())["weight_map"] if index.exists() else None


def base_shards(base_dir: Path) -> list[Path]:
    """The checkpoint's safetensors files, from its index (several shards) or the single file."""
    base_dir, weight_map = Path(base_dir), _weight_map(base_dir)
    if weight_map is not None:
        return [base_dir / name for name in sorted(set(weight_map.values()))]
    if (base_dir / SINGLE_FILE).exists():
        return [base_dir / SINGLE_FILE]
    raise _unsupported(f"{base_dir} has no {SINGLE_FILE} or {INDEX_FILE} (only safetensors checkpoints)", base_dir)


def weight_file(base_dir: Path, name: str) -> Path:
    """The shard of ``base_dir`` that holds the weight ``name``."""
    return Path(base_dir) / (_weight_map(base_dir) or {}).get(name, SINGLE_FILE)


def predict_peak_gb(shard_bytes: list[int], adapter_bytes: int) -> float:
    """The merge's added RAM, predicted: the largest shard plus the adapter (both held at once), in GB."""
    return (max(shard_bytes, default=0) + adapter_bytes) / GB


def folder_size(path: Path, pattern: str = "*") -> int:
    """Bytes in the files of ``path`` matching ``pattern`` (not recursive)."""
    return sum(p.stat().st_size for p in Path(path).glob(pattern) if p.is_file())


def merge_adapter_into_shards(base_dir: Path, adapter_dir: Path, out_dir: Path, base_model_id: str | None = None,
                              dtype: torch.dtype | None = None, log=print) -> MergeReport:
    """Write base + adapter as an ordinary safetensors model folder at ``out_dir``, one shard at a time.

    ``base_dir``: a local folder of the base checkpoint (the Hub cache's snapshot folder works); the adapter is
    checked against ``base_model_id`` first. An adapted weight missing from the checkpoint, or not of B @ A's
    shape: ``merge_target_missing`` and nothing at ``out_dir``. ``dtype``: write every floating-point weight in
    this dtype instead of the base's (the tests merge in fp32 to check the arithmetic exactly)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from llmcourse.environment import check_disk, track_peak_rss
    from llmcourse.results import write_whole
    from llmcourse.training import check_adapter

    base_dir, adapter_dir, out_dir = Path(base_dir), Path(adapter_dir), Path(out_dir)
    if base_model_id is not None:
        check_adapter(adapter_dir, base_model_id)
    config = base_dir / "config.json"
    if config.exists() and "quantization_config" in json.loads(config.read_text()):
        raise _unsupported(f"{base_dir} is a pre-quantized checkpoint; merging needs the 16-bit one", base_dir)
    shards = base_shards(base_dir)
    shard_bytes = [p.stat().st_size for p in shards]
    check_disk(out_dir.parent, 1.05 * sum(shard_bytes) / GB)
    started, merged, total = time.perf_counter(), set(), 0
    with write_whole(out_dir) as partial, track_peak_rss() as rss:
        partial.mkdir(parents=True)
        _, updates = read_adapter(adapter_dir)
        for number, shard in enumerate(shards, start=1):
            tensors: dict[str, torch.Tensor] = {}
            with safe_open(str(shard), framework="pt") as handle:
                metadata, names = handle.metadata() or {}, list(handle.keys())  # noqa: SIM118
            total += len(names)
            for name in names:
                # One opening per tensor: the pages safe_open has read count as this process's RAM until it is
                # closed, so closing after each tensor keeps the peak at one shard (plus a tensor), not two.
                with safe_open(str(shard), framework="pt") as handle:
                    weight = handle.get_tensor(name)
                if dtype is not None and weight.is_floating_point():
                    weight = weight.to(dtype)
                if (update := updates.get(name)) is not None:
                    if (shape := (update.B.shape[0], update.A.shape[1])) != tuple(weight.shape):
                        raise CourseError("merge_target_missing", f"{name} is {tuple(weight.shape)} in the checkpoint, "
                                          f"but B @ A is {shape}", checkpoint=base_dir, module=name)
                    weight = merged_weight(weight, update.A, update.B, update.scale)
                    merged.add(name)
                tensors[name] = weight.contiguous()
            rss.sample()
            save_file(tensors, str(partial / shard.name), metadata={**metadata, "format": "pt"})
            rss.sample()
            del tensors
            log(f"  shard {number}/{len(shards)} {shard.name}: written ({len(merged)} weights merged so far)")
        missing = sorted(set(updates) - merged)
        if missing:
            raise CourseError("merge_target_missing", f"{len(missing)} adapted weights are not in {base_dir}, e.g. "
                              f"{missing[0]}", checkpoint=base_dir, module=missing[0])
        for item in base_dir.iterdir():  # config, generation config, index, tokenizer files
            if item.is_file() and not item.name.endswith(WEIGHT_SUFFIXES):
                shutil.copyfile(item, partial / item.name)
    adapter = adapter_dir / ADAPTER_FILE
    return MergeReport([p.name for p in shards], len(merged), total - len(merged), time.perf_counter() - started,
                       rss.start_gb, rss.peak_gb, max(shard_bytes) / GB, adapter.stat().st_size / GB,
                       folder_size(out_dir) / GB)


def base_checkpoint_folder(model_id: str) -> Path:
    """A local folder with the base model's safetensors: ``model_id`` itself, the offline copy, or the Hub cache's
    snapshot (what the 4-bit load already downloaded)."""
    from llmcourse.offline_models import resolve_model

    source = resolve_model(model_id)
    if Path(source).is_dir():
        return Path(source)
    from huggingface_hub import snapshot_download

    from llmcourse.hub_access import course_error_from_hub, download_token

    token = download_token(model_id)  # never None: a token-less call must not fill the Secrets cache (pitfall 12)
    try:
        return Path(snapshot_download(source, allow_patterns=["*.safetensors", "*.json", "tokenizer*"], token=token))
    except Exception as exc:
        error = course_error_from_hub(exc, source, token or None)
        if error is None:
            raise
        raise error from exc


@dataclass
class MergeCheck:
    """The merged model against base + adapter (``PeftModel``, fp32) on the same prompts. ``tolerance`` bounds the
    largest logit difference relative to the largest logit: 1e-4 for an fp32 merge (only the order of fp32 sums
    differs); a 16-bit merge rounds each weight once (2^-11 relative in fp16, 2^-8 in bf16), per layer.
    ``near_ties``: top-2 margins where a greedy answer parts from the reference by under twice the largest logit
    difference, a tie the 16-bit rounding may break either way, not a wrong merge."""

    max_abs_diff: float
    max_abs_logit: float
    tolerance: float
    same_greedy: int
    prompts: int
    merged_answers: list[str]
    reference_answers: list[str]
    near_ties: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        relative = self.max_abs_diff / max(self.max_abs_logit, 1e-12)
        return relative <= self.tolerance and self.same_greedy + len(self.near_ties) == self.prompts

    def summary(self) -> str:
        text = (f"max |logit difference| {self.max_abs_diff:.2e} on logits up to {self.max_abs_logit:.1f} (relative "
                f"{self.max_abs_diff / max(self.max_abs_logit, 1e-12):.1e}, tolerance {self.tolerance:.1e}); "
                f"greedy answers identical: {self.same_greedy}/{self.prompts}")
        if self.near_ties:
            margins = ", ".join(f"{m:.3f}" for m in self.near_ties)
            text += f"; {len(self.near_ties)} part at a near-tie (top-2 margin {margins} < 2 x the largest difference)"
        return text


def check_merge(merged_dir: Path, base_dir: Path, adapter_dir: Path, texts: list[str],
                max_new_tokens: int = 32) -> MergeCheck:
    """Compare the merged folder with base + adapter, both in fp32, on ``texts`` (logits and greedy answers). For
    small models only (two fp32 copies): the cpu and smoke profiles, the tests."""
    from peft import PeftModel
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmcourse.prompts import choose_pad_token

    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    tokenizer.pad_token, tokenizer.padding_side = choose_pad_token(tokenizer), "left"  # batched generation
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32),
                                          str(adapter_dir)).eval()
    merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    with safe_open(str(base_shards(merged_dir)[0]), framework="pt") as handle:  # the dtype the merge stored
        stored = [handle.get_slice(k).get_dtype() for k in handle.keys()]  # noqa: SIM118
    unit = {"F16": 2.0**-11, "BF16": 2.0**-8}.get(max(set(stored), key=stored.count))
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    settings = dict(do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)
    prompt_len = batch["input_ids"].shape[1]
    with torch.no_grad():
        ref_logits, mask = reference(**batch).logits, batch["attention_mask"].bool()
        diff = (ref_logits - merged(**batch).logits).abs()[mask].max().item()
        ref_ids = reference.generate(**batch, **settings)[:, prompt_len:]
        new_ids = merged.generate(**batch, **settings)[:, prompt_len:]
        same, near_ties = 0, []
        for row, (a, b) in enumerate(zip(ref_ids, new_ids, strict=True)):
            if torch.equal(a, b):
                same += 1
                continue
            first = int((a != b).nonzero()[0])  # where the answers part
            prefix = torch.cat([batch["input_ids"][row][mask[row]], a[:first]]).unsqueeze(0)
            top2 = reference(input_ids=prefix).logits[0, -1].topk(2).values
            if unit is not None and (top2[0] - top2[1]).item() <= 2 * diff:
                near_ties.append((top2[0] - top2[1]).item())
    tolerance = 1e-4 if unit is None else merged.config.num_hidden_layers * unit
    return MergeCheck(diff, ref_logits.abs()[mask].max().item(), tolerance, same, len(texts),
                      tokenizer.batch_decode(new_ids, skip_special_tokens=True),
                      tokenizer.batch_decode(ref_ids, skip_special_tokens=True), near_ties)
