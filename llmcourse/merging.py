"""Merge a LoRA adapter into its base model one safetensors shard at a time, within a free Colab's RAM.

Loading Llama 3.1 8B in 16-bit to call ``merge_and_unload()`` needs ~16 GB of RAM (a free Colab has
~12.7 GB), and ``merge_and_unload()`` on the 4-bit model is lossy (the merged weights are rounded back
to 4-bit). :func:`merge_adapter_into_shards` streams the base checkpoint instead: for each shard it
adds ``scale * B @ A`` to every weight the adapter changes (in fp32), writes the merged shard in the
base's dtype and drops it before the next one. Peak RAM: about one shard plus the adapter.

The output is written to ``<out>.partial`` and renamed at the end, so a failed merge never leaves a
folder that looks complete.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from llmcourse.environment import GB  # the course's one unit, 10^9 bytes, as the RSS figures
from llmcourse.troubleshooting import CourseError

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
ADAPTER_FILE = "adapter_model.safetensors"
# PEFT saves the adapter's tensors as ``base_model.model.<module>.lora_A.weight``; the base checkpoint
# names the same module's weight ``<module>.weight``.
PEFT_PREFIX = "base_model.model."
# Files of the base folder that are not weights and belong in the merged folder too.
SKIPPED_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".msgpack", ".h5")


@dataclass
class LoraUpdate:
    """One adapted weight: ``W + scale * B @ A``."""

    A: torch.Tensor  # (r, d_in)
    B: torch.Tensor  # (d_out, r)
    scale: float


@dataclass
class MergeReport:
    """What the merge did, and what it cost."""

    out_dir: Path
    shards: list[str]
    merged_weights: int
    copied_weights: int
    seconds: float
    peak_rss_gb: float | None = None  # the process's RSS at its highest during the merge
    start_rss_gb: float | None = None  # the process's RSS just before the merge
    largest_shard_gb: float = 0.0
    adapter_gb: float = 0.0
    out_gb: float = 0.0
    merged_names: list[str] = field(default_factory=list, repr=False)

    @property
    def added_rss_gb(self) -> float | None:
        if self.peak_rss_gb is None or self.start_rss_gb is None:
            return None
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
    from safetensors import safe_open

    adapter_dir = Path(adapter_dir)
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    if config.get("peft_type", "LORA") != "LORA":
        raise _unsupported(f"the adapter is {config.get('peft_type')}, not LoRA", adapter_dir)
    if config.get("use_dora"):
        raise _unsupported("the adapter uses DoRA (a magnitude vector, not only B @ A)", adapter_dir)
    if config.get("alpha_pattern"):
        raise _unsupported("the adapter has a per-module alpha_pattern", adapter_dir)
    if config.get("fan_in_fan_out"):
        raise _unsupported("the adapter was made for fan_in_fan_out (Conv1D) layers", adapter_dir)
    weights = adapter_dir / ADAPTER_FILE
    if not weights.exists():
        raise CourseError("missing_adapter", f"no {ADAPTER_FILE} in {adapter_dir}", path=adapter_dir)
    halves: dict[str, dict[str, torch.Tensor]] = {}
    with safe_open(str(weights), framework="pt") as handle:
        for key in handle.keys():  # noqa: SIM118 - safe_open has keys(), not __iter__
            if ".lora_A." in key or ".lora_B." in key:
                part = "A" if ".lora_A." in key else "B"
                module = key.split(f".lora_{part}.")[0].removeprefix(PEFT_PREFIX)
                halves.setdefault(module, {})[part] = handle.get_tensor(key)
            else:  # modules_to_save, embeddings, biases trained beside LoRA: not a B @ A update
                raise _unsupported(f"the adapter holds {key}, which is not a LoRA A or B matrix", adapter_dir)
    updates = {}
    for module, pair in halves.items():
        if set(pair) != {"A", "B"}:
            raise _unsupported(f"{module} has only lora_{''.join(pair)}", adapter_dir)
        rank = pair["A"].shape[0]  # from the tensor, so a per-module rank_pattern is honoured too
        updates[f"{module}.weight"] = LoraUpdate(pair["A"], pair["B"], lora_scale(config, rank))
    return config, updates


def base_shards(base_dir: Path) -> list[Path]:
    """The checkpoint's safetensors files, from its index (several shards) or the single file."""
    base_dir = Path(base_dir)
    index = base_dir / INDEX_FILE
    if index.exists():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [base_dir / name for name in names]
    if (base_dir / SINGLE_FILE).exists():
        return [base_dir / SINGLE_FILE]
    raise _unsupported(f"{base_dir} has no {SINGLE_FILE} or {INDEX_FILE} (only safetensors checkpoints)", base_dir)


def weight_file(base_dir: Path, name: str) -> Path:
    """The shard of ``base_dir`` that holds the weight ``name``."""
    base_dir = Path(base_dir)
    index = base_dir / INDEX_FILE
    if index.exists():
        return base_dir / json.loads(index.read_text())["weight_map"][name]
    return base_dir / SINGLE_FILE


def predict_peak_gb(shard_bytes: list[int], adapter_bytes: int) -> float:
    """The merge's added RAM, predicted: the largest shard plus the adapter (both held at once), in GB."""
    return (max(shard_bytes, default=0) + adapter_bytes) / GB


def check_free_disk(target: Path, needed_bytes: int, margin: float = 1.05) -> None:
    """Raise ``CourseError('low_disk')`` when the filesystem of ``target`` has less than ``needed_bytes``."""
    probe = Path(target)
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed_bytes * margin:
        raise CourseError(
            "low_disk",
            f"the merged model needs {needed_bytes * margin / GB:.1f} GB, {free / GB:.1f} GB free",
            needed_gb=f"{needed_bytes * margin / GB:.1f}",
            free_gb=f"{free / GB:.1f}",
            path=probe,
        )


def merge_adapter_into_shards(
    base_dir: Path,
    adapter_dir: Path,
    out_dir: Path,
    base_model_id: str | None = None,
    dtype: torch.dtype | None = None,
    log=print,
) -> MergeReport:
    """Write base + adapter as an ordinary safetensors model folder at ``out_dir``, one shard at a time.

    ``base_dir`` is a local folder of the base checkpoint (the Hub cache's snapshot folder works). The
    adapter is checked against ``base_model_id`` first (``training.check_adapter``). Every adapted
    weight must be found in the checkpoint, or the merge stops (``merge_target_missing``) and nothing is
    left at ``out_dir``. Not enough disk space: ``low_disk`` before anything is written. ``dtype``: write
    every floating-point weight in this dtype instead of the base's (the tests merge in fp32 to check
    the arithmetic without rounding).
    """
    from safetensors import safe_open
    from safetensors.torch import save_file

    from llmcourse.environment import track_peak_rss
    from llmcourse.training import check_adapter

    base_dir, adapter_dir, out_dir = Path(base_dir), Path(adapter_dir), Path(out_dir)
    if base_model_id is not None:
        check_adapter(adapter_dir, base_model_id)
    config_path = base_dir / "config.json"
    if config_path.exists() and "quantization_config" in json.loads(config_path.read_text()):
        raise _unsupported(
            f"{base_dir} is a pre-quantized checkpoint; merging needs the 16-bit one", base_dir
        )
    shards = base_shards(base_dir)
    shard_bytes = [p.stat().st_size for p in shards]
    adapter_bytes = (adapter_dir / ADAPTER_FILE).stat().st_size if (adapter_dir / ADAPTER_FILE).exists() else 0
    check_free_disk(out_dir.parent, sum(shard_bytes))

    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    started = time.perf_counter()
    merged_names: list[str] = []
    copied = 0
    try:
        with track_peak_rss() as rss:
            _, updates = read_adapter(adapter_dir)
            for number, shard in enumerate(shards, start=1):
                tensors: dict[str, torch.Tensor] = {}
                with safe_open(str(shard), framework="pt") as handle:
                    metadata = handle.metadata() or {}
                    names = list(handle.keys())  # noqa: SIM118 - safe_open has keys(), not __iter__
                for name in names:
                    # One opening per tensor: safe_open maps the file into memory, and the pages it has
                    # read count as this process's RAM until it is closed. Closing after each tensor keeps
                    # the peak at the merged shard (plus one tensor), not the shard twice.
                    with safe_open(str(shard), framework="pt") as handle:
                        weight = handle.get_tensor(name)
                    if dtype is not None and weight.is_floating_point():
                        weight = weight.to(dtype)
                    update = updates.get(name)
                    if update is not None:
                        if update.B.shape[0] != weight.shape[0] or update.A.shape[1] != weight.shape[1]:
                            raise CourseError(
                                "merge_target_missing",
                                f"{name} is {tuple(weight.shape)} in the checkpoint, but B @ A is "
                                f"{(update.B.shape[0], update.A.shape[1])}", checkpoint=base_dir, module=name,
                            )
                        weight = merged_weight(weight, update.A, update.B, update.scale)
                        merged_names.append(name)
                    else:
                        copied += 1
                    tensors[name] = weight.contiguous()
                rss.sample()
                save_file(tensors, str(partial / shard.name), metadata={**metadata, "format": "pt"})
                rss.sample()
                del tensors
                log(f"  shard {number}/{len(shards)} {shard.name}: written ({len(merged_names)} weights merged so far)")
            missing = sorted(set(updates) - set(merged_names))
            if missing:
                raise CourseError(
                    "merge_target_missing",
                    f"{len(missing)} adapted weights are not in {base_dir}, e.g. {missing[0]}",
                    checkpoint=base_dir,
                    module=missing[0],
                )
        for item in base_dir.iterdir():  # config, generation config, index, tokenizer files
            if item.is_file() and not item.name.endswith(SKIPPED_SUFFIXES):
                shutil.copyfile(item, partial / item.name)
        shutil.rmtree(out_dir, ignore_errors=True)
        partial.rename(out_dir)  # only a complete folder ever has the final name
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return MergeReport(
        out_dir=out_dir,
        shards=[p.name for p in shards],
        merged_weights=len(merged_names),
        copied_weights=copied,
        seconds=time.perf_counter() - started,
        peak_rss_gb=rss.peak_gb,
        start_rss_gb=rss.start_gb,
        largest_shard_gb=max(shard_bytes) / GB,
        adapter_gb=adapter_bytes / GB,
        out_gb=folder_size(out_dir) / GB,
        merged_names=merged_names,
    )


def folder_size(path: Path, pattern: str = "*") -> int:
    """Bytes in the files of ``path`` matching ``pattern`` (not recursive)."""
    return sum(p.stat().st_size for p in Path(path).glob(pattern) if p.is_file())


def base_checkpoint_folder(model_id: str) -> Path:
    """A local folder with the base model's safetensors: ``model_id`` itself, the offline copy, or the Hub
    cache's snapshot (``snapshot_download`` finds what the 4-bit load already downloaded)."""
    from llmcourse.offline_models import resolve_model

    source = resolve_model(model_id)
    if Path(source).is_dir():
        return Path(source)
    from huggingface_hub import snapshot_download

    from llmcourse.hub_access import course_error_from_hub, read_hf_token

    token = read_hf_token()
    try:
        # token=False, not None, when there is none: a token-less call must not fill huggingface_hub's
        # once-per-session cache of Colab Secrets (pitfall 12).
        return Path(snapshot_download(source, allow_patterns=["*.safetensors", "*.json", "tokenizer*"],
                                      token=token or False))
    except Exception as exc:
        error = course_error_from_hub(exc, source, token)
        if error is None:
            raise
        raise error from exc


# Largest difference allowed between the merged model's logits and base + adapter's, relative to the
# largest logit. fp32 both sides: W x + s B (A x) and (W + s B A) x differ only in the order of fp32 sums,
# ~1e-6 relative; 1e-4 leaves room for long sums. A 16-bit merged shard rounds each merged weight once
# (relative error <= 2^-11 in fp16, 2^-8 in bf16), as any 16-bit checkpoint does; those errors add up
# through the layers, so allow ~number of layers x that unit round-off.
def merge_tolerance(dtype: torch.dtype, num_layers: int) -> float:
    """The relative logit tolerance for a merge written in ``dtype`` (see the comment above)."""
    if dtype == torch.float32:
        return 1e-4
    unit = {torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}.get(dtype, 2.0**-8)
    return num_layers * unit


@dataclass
class MergeCheck:
    """The merged model against base + adapter (``PeftModel``, fp32) on the same prompts."""

    max_abs_diff: float
    max_abs_logit: float
    tolerance: float  # relative to max_abs_logit
    same_greedy: int
    prompts: int
    merged_answers: list[str]
    reference_answers: list[str]
    # Answers that part where the reference's top two tokens are closer than twice the largest logit
    # difference: a tie that the rounding of a 16-bit merge may break either way, not a wrong merge.
    near_ties: list[float] = field(default_factory=list)  # the reference's top-2 margin at each parting

    @property
    def relative_diff(self) -> float:
        return self.max_abs_diff / max(self.max_abs_logit, 1e-12)

    @property
    def ok(self) -> bool:
        return self.relative_diff <= self.tolerance and self.same_greedy + len(self.near_ties) == self.prompts

    def summary(self) -> str:
        text = (f"max |logit difference| {self.max_abs_diff:.2e} on logits up to {self.max_abs_logit:.1f} "
                f"(relative {self.relative_diff:.1e}, tolerance {self.tolerance:.1e}); "
                f"greedy answers identical: {self.same_greedy}/{self.prompts}")
        if self.near_ties:
            margins = ", ".join(f"{m:.3f}" for m in self.near_ties)
            text += (f"; {len(self.near_ties)} part at a near-tie (top-2 margin {margins} < 2 x the largest "
                     "difference: the 16-bit rounding decides it)")
        return text


def check_merge(merged_dir: Path, base_dir: Path, adapter_dir: Path, texts: list[str],
                max_new_tokens: int = 32) -> MergeCheck:
    """Compare the merged folder with base + adapter, both unquantized in fp32, on ``texts``.

    For small models only (it loads the model twice in fp32): the cpu and smoke profiles, and the tests.
    """
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmcourse.prompts import choose_pad_token

    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    tokenizer.pad_token = choose_pad_token(tokenizer)
    tokenizer.padding_side = "left"  # batched generation (pitfall 5)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    reference = PeftModel.from_pretrained(base, str(adapter_dir)).eval()
    merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    merged_dtype = next(iter(_shard_dtypes(Path(merged_dir))), torch.float32)
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        ref_logits = reference(**batch).logits
        new_logits = merged(**batch).logits
        mask = batch["attention_mask"].bool()
        diff = (ref_logits - new_logits).abs()[mask].max().item()
        biggest = ref_logits.abs()[mask].max().item()
        settings = dict(do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)
        ref_ids = reference.generate(**batch, **settings)[:, batch["input_ids"].shape[1]:]
        new_ids = merged.generate(**batch, **settings)[:, batch["input_ids"].shape[1]:]
        same, near_ties = 0, []
        for row, (a, b) in enumerate(zip(ref_ids, new_ids, strict=True)):
            if torch.equal(a, b):
                same += 1
                continue
            first = int((a != b).nonzero()[0])  # where the answers part
            prompt_ids = batch["input_ids"][row][batch["attention_mask"][row].bool()]
            prefix = torch.cat([prompt_ids, a[:first]]).unsqueeze(0)
            top2 = reference(input_ids=prefix).logits[0, -1].topk(2).values
            margin = (top2[0] - top2[1]).item()
            if merged_dtype != torch.float32 and margin <= 2 * diff:
                near_ties.append(margin)
    decode = lambda ids: tokenizer.batch_decode(ids, skip_special_tokens=True)  # noqa: E731
    return MergeCheck(diff, biggest, merge_tolerance(merged_dtype, merged.config.num_hidden_layers), same,
                      len(texts), decode(new_ids), decode(ref_ids), near_ties)


def _shard_dtypes(folder: Path) -> list[torch.dtype]:
    """The dtypes of the floating-point weights in a safetensors folder (largest first)."""
    from safetensors import safe_open

    seen: dict[torch.dtype, int] = {}
    for shard in base_shards(folder):
        with safe_open(str(shard), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118
                sliced = handle.get_slice(name)
                dtype = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}.get(sliced.get_dtype())
                if dtype is not None:
                    seen[dtype] = seen.get(dtype, 0) + 1
    return sorted(seen, key=seen.get, reverse=True)
