"""The streamed merge's peak RAM and time on the cpu model, in a fresh process (benchmark, never asserted).

    python benchmarks/merge_memory.py                          # SmolLM2-135M + a random r=16 adapter
    python benchmarks/merge_memory.py --adapter outputs/cpu/adapter   # + the adapter notebook 03 trained

Prints the RSS before the merge, at its peak, the added peak against 1.5 x (largest shard + adapter), and
the prediction for Llama 3.1 8B. Numbers vary with the machine and what else runs on it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from llmcourse import merging
from llmcourse.offline_models import smollm2_folder
from llmcourse.profiles import SMOLLM2


def random_adapter(base_dir: Path, out: Path, rank: int) -> Path:
    """LoRA on all linear layers with random B (peft starts B at zero), saved as notebook 03 saves one."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32),
                           LoraConfig(r=rank, lora_alpha=2 * rank, target_modules="all-linear", task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02)
    model.save_pretrained(out)
    del model
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", type=Path, help="an adapter folder (default: a random r=16 one)")
    parser.add_argument("--rank", type=int, default=16)
    args = parser.parse_args()
    base_dir = smollm2_folder()
    with tempfile.TemporaryDirectory() as tmp:
        adapter = args.adapter or random_adapter(base_dir, Path(tmp) / "adapter", args.rank)
        import gc

        gc.collect()
        report = merging.merge_adapter_into_shards(base_dir, adapter, Path(tmp) / "merged", base_model_id=SMOLLM2,
                                                   log=lambda _: None)
        budget = report.largest_shard_gb + report.adapter_gb
        print(f"model {SMOLLM2}: {len(report.shards)} shard(s), largest {report.largest_shard_gb * 1000:.0f} MB; "
              f"adapter {report.adapter_gb * 1000:.1f} MB; {report.merged_weights} weights merged")
        print(f"RSS before {report.start_rss_gb * 1000:.0f} MB, peak {report.peak_rss_gb * 1000:.0f} MB: "
              f"added {report.added_rss_gb * 1000:.0f} MB = {report.added_rss_gb / budget:.2f} x (largest shard + "
              f"adapter); target <= 1.5 x")
        print(f"time {report.seconds:.1f} s; merged folder {report.out_gb * 1000:.0f} MB")


if __name__ == "__main__":
    main()
