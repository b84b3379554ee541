"""The lesson figures: each one draws from real objects, returns a Figure and writes a PNG."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # tests only: no display here; the library itself leaves the backend alone

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from llmcourse import plots  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path) -> None:
    assert path.exists()
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 5_000  # an empty canvas compresses to far less


def tiny_llama_q_proj() -> torch.Tensor:
    """A Linear weight from a tiny randomly initialised Llama (normal(0, initializer_range) like the real init)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=128,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    model = LlamaForCausalLM(config)
    return model.model.layers[0].self_attn.q_proj.weight


# ---------------------------------------------------------------- NF4


def test_nf4_code_values_are_the_bitsandbytes_table():
    code = plots.nf4_code_values()
    assert code.numel() == 16
    assert code.min().item() == -1.0 and code.max().item() == 1.0
    assert 0.0 in code.tolist()
    assert torch.all(code[1:] > code[:-1])  # sorted, distinct
    # Denser near 0 than near ±1: the point of NormalFloat.
    gaps = (code[1:] - code[:-1]).tolist()
    assert min(gaps) < 0.1 < max(gaps)


@pytest.mark.parametrize(
    "make_weight",
    [lambda: torch.randn(256, 256, generator=torch.Generator().manual_seed(0)) * 0.02, tiny_llama_q_proj],
    ids=["randn*0.02", "tiny-llama-q_proj"],
)
def test_nf4_roundtrip_error_is_a_few_percent_at_4_5_bits(make_weight):
    stats = plots.nf4_roundtrip_error(make_weight())
    assert 0.05 < stats["relative_error"] < 0.2
    assert 4.0 < stats["bits_per_weight"] < 4.6
    assert stats["bits_per_weight"] == pytest.approx(4.5)
    assert 0 < stats["mean_abs_error"] <= stats["max_abs_error"]


def test_nf4_double_quant_saves_absmax_bits():
    torch.manual_seed(0)
    w = torch.randn(256, 256) * 0.02
    single = plots.nf4_roundtrip_error(w)
    double = plots.nf4_roundtrip_error(w, double_quant=True)
    assert double["bits_per_weight"] == pytest.approx(4.127, abs=0.002)
    assert double["relative_error"] == pytest.approx(single["relative_error"], rel=0.05)


def test_nf4_error_scales_with_the_weights():
    # Per-block absmax makes NF4 scale-free: the relative error does not depend on the weight scale.
    torch.manual_seed(0)
    w = torch.randn(128, 128)
    assert plots.nf4_roundtrip_error(w * 1e-3)["relative_error"] == pytest.approx(
        plots.nf4_roundtrip_error(w)["relative_error"], rel=1e-3
    )


def test_nf4_roundtrip_rejects_packed_weights():
    with pytest.raises(TypeError, match="floats"):
        plots.nf4_roundtrip_error(torch.zeros(64, dtype=torch.uint8))


def test_nf4_codebook_figure(tmp_path):
    out = tmp_path / "figs" / "nf4.png"
    fig = plots.nf4_codebook(tiny_llama_q_proj(), path=out)
    try:
        # Double quantization on, as in the course's BitsAndBytesConfig: 4 + 8/64 + 32/(64 x 256) bits.
        assert "4.12" in fig.texts[-1].get_text() and "8-bit absmax" in fig.texts[-1].get_text()
        assert isinstance(fig, Figure)
        left, right = fig.axes
        code = plots.nf4_code_values().tolist()
        drawn = sorted(line.get_xdata()[0] for line in left.get_lines())
        assert drawn == pytest.approx(code)
        assert "relative" in right.get_title() or "||" in right.get_title()
    finally:
        plt.close(fig)
    assert_png(out)


def test_nf4_on_a_real_trained_weight(smollm2_path):
    from safetensors import safe_open

    with safe_open(smollm2_path / "model.safetensors", "pt") as f:
        w = f.get_tensor("model.layers.0.self_attn.q_proj.weight")  # fp16, 576 x 576
    stats = plots.nf4_roundtrip_error(w)
    assert 0.05 < stats["relative_error"] < 0.2
    assert stats["bits_per_weight"] == pytest.approx(4.5)


# ---------------------------------------------------------------- LoRA


def test_lora_diagram_llama_q_proj(tmp_path):
    out = tmp_path / "lora.png"
    fig = plots.lora_diagram(4096, 4096, 16, path=out, name="q_proj", alpha=32)
    try:
        assert isinstance(fig, Figure)
        ax = fig.axes[0]
        w, b, a = ax.patches
        assert (w.get_width(), w.get_height()) == (4096, 4096)
        assert b.get_height() == 4096 and a.get_width() == 4096
        # Thin but visible: exaggerated over r=16, still a small fraction of W.
        assert 16 <= b.get_width() < 0.05 * 4096 and 16 <= a.get_height() < 0.05 * 4096
        text = "\n".join(t.get_text() for t in ax.texts)
        assert "16,777,216" in text  # W: 4096 * 4096
        assert "131,072" in text  # A+B: 16 * (4096 + 4096)
        assert "0.78% of W" in text
    finally:
        plt.close(fig)
    assert_png(out)


def test_lora_diagram_rectangular_layer():
    fig = plots.lora_diagram(4096, 1024, 8, name="k_proj")
    try:
        text = "\n".join(t.get_text() for t in fig.axes[0].texts)
        assert f"{8 * (4096 + 1024):,}" in text
    finally:
        plt.close(fig)


# ---------------------------------------------------------------- label mask

ROWS = [
    ("<|begin_of_text|>", False),
    ("Question", False),
    (":", False),
    (" Natalia", False),
    (" sold", False),
    (" clips", False),
    (" for $", False),
    ("48", False),
    ("\n", False),
    ("Answer", False),
    (":", False),
    (" She", True),
    (" sold", True),
    (" 48", True),
    ("/", True),
    ("2", True),
    (" =", True),
    (" 24", True),
    ("\n", True),
    ("####", True),
    (" 72", True),
    ("<|end_of_text|>", True),
    ("<|finetune_right_pad_id|>", False),
]


def token_boxes(fig: Figure):
    return fig.axes[0].patches


def test_label_mask_one_box_per_token_coloured_by_loss(tmp_path):
    out = tmp_path / "mask.png"
    fig = plots.label_mask(ROWS, path=out)
    try:
        boxes = token_boxes(fig)
        assert len(boxes) == len(ROWS)
        loss_face = matplotlib.colors.to_rgba(plots.LOSS_FACE)
        prompt_face = matplotlib.colors.to_rgba(plots.PROMPT_FACE)
        assert [b.get_facecolor() for b in boxes] == [loss_face if loss else prompt_face for _, loss in ROWS]
        texts = [t.get_text() for t in fig.axes[0].texts]
        assert "\\n" in texts and "<|end_of_text|>" in texts and "␣for␣$" in texts
        legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert legend == ["no loss (prompt / padding)", "loss (the answer and its end token)"]
    finally:
        plt.close(fig)
    assert_png(out)


def test_label_mask_shows_the_start_and_the_end_of_a_long_example_and_wraps():
    rows = [(f" tok{i}", i >= 100) for i in range(199)] + [("<|end_of_text|>", True)]
    fig = plots.label_mask(rows, max_tokens=150, tail_tokens=30)
    try:
        boxes = token_boxes(fig)
        assert len(boxes) == 150 + 1  # 120 from the start, the "…" gap, the last 30
        texts = [t.get_text() for t in fig.axes[0].texts]
        assert texts[:2] == ["␣tok0", "␣tok1"] and texts[119] == "␣tok119"
        assert texts[120] == plots.GAP_TOKEN
        assert texts[121] == "␣tok170" and texts[-1] == "<|end_of_text|>"  # the end token, and its loss
        assert boxes[-1].get_facecolor() == matplotlib.colors.to_rgba(plots.LOSS_FACE)
        lines = {round(b.get_y()) for b in boxes}
        assert len(lines) > 3  # wrapped, not one endless row
        assert all(b.get_x() + b.get_width() <= fig.axes[0].get_xlim()[1] for b in boxes)
        assert "The first 120 and the last 30 of 200 tokens are shown." in fig.texts[-1].get_text()
    finally:
        plt.close(fig)


def test_label_mask_without_a_tail_truncates():
    rows = [(f" tok{i}", i >= 100) for i in range(200)]
    fig = plots.label_mask(rows, max_tokens=150, tail_tokens=0)
    try:
        assert len(token_boxes(fig)) == 150
    finally:
        plt.close(fig)


def test_label_mask_empty():
    fig = plots.label_mask([])
    try:
        assert len(token_boxes(fig)) == 0
    finally:
        plt.close(fig)


# ---------------------------------------------------------------- loss curve


def test_loss_curve_from_a_trainer_log_history(tmp_path):
    history = [
        {"loss": 1.9 - 0.1 * s, "grad_norm": 1.0, "learning_rate": 2e-4 * min(1, s / 3), "epoch": s / 10, "step": s}
        for s in range(1, 11)
    ]
    history.insert(5, {"eval_loss": 1.5, "eval_runtime": 1.0, "epoch": 0.5, "step": 5})
    history.append({"train_runtime": 10.0, "train_loss": 1.45, "epoch": 1.0, "step": 10})
    out = tmp_path / "loss.png"
    fig = plots.loss_curve(history, path=out)
    try:
        ax, lr_ax = fig.axes
        train, evals = ax.get_lines()
        assert list(train.get_xdata()) == list(range(1, 11))
        assert list(train.get_ydata()) == pytest.approx([1.9 - 0.1 * s for s in range(1, 11)])
        assert list(evals.get_xdata()) == [5]
        assert list(lr_ax.get_lines()[0].get_ydata()) == pytest.approx([2e-4 * min(1, s / 3) for s in range(1, 11)])
    finally:
        plt.close(fig)
    assert_png(out)


@pytest.mark.parametrize("history", [[], [{"train_runtime": 1.0, "train_loss": 0.0, "step": 0}]])
def test_loss_curve_without_loss_entries(tmp_path, history):
    out = tmp_path / "empty.png"
    fig = plots.loss_curve(history, path=out)
    try:
        texts = [t.get_text() for t in fig.axes[0].texts]
        assert "no training loss logged yet" in texts
    finally:
        plt.close(fig)
    assert out.exists() and out.stat().st_size > 0


# ---------------------------------------------------------------- accuracy


def test_accuracy_bars_error_bars_are_the_given_intervals(tmp_path):
    from llmcourse.stats import wilson_interval

    def summary(strict: int, flexible: int, n: int) -> dict:
        return {
            "n": n,
            "strict_accuracy": strict / n,
            "strict_ci95": list(wilson_interval(strict, n)),
            "flexible_accuracy": flexible / n,
            "flexible_ci95": list(wilson_interval(flexible, n)),
        }

    runs = [("base", summary(40, 110, 250)), ("fine-tuned", summary(150, 160, 250))]
    out = tmp_path / "acc.png"
    fig = plots.accuracy_bars(runs, path=out)
    try:
        ax = fig.axes[0]
        containers = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert len(containers) == 2  # strict, flexible
        for container, key in zip(containers, ["strict", "flexible"], strict=True):
            (segments,) = [c for c in container.lines[2] if isinstance(c, LineCollection)]
            drawn = [(min(s[:, 1]), max(s[:, 1])) for s in segments.get_segments()]
            expected = [tuple(s[f"{key}_ci95"]) for _, s in runs]
            assert drawn == [pytest.approx(e) for e in expected]
        labels = {t.get_text() for t in ax.texts}
        assert {"16.0%", "44.0%", "60.0%", "64.0%"} <= labels
        assert ax.get_ylim()[0] == 0
    finally:
        plt.close(fig)
    assert_png(out)
