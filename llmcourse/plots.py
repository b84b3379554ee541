"""The pictures the lessons teach with, drawn from the real objects (weights, token labels, logs, results).

Every function returns a :class:`matplotlib.figure.Figure` and, given ``path``, also saves it as a PNG
(parent folders are created). The figure is detached from pyplot before it is returned, so in a
notebook it is shown exactly once when it is the cell's last expression (or with ``display(fig)``),
and a loop that makes many figures does not pile up open pyplot windows.

- :func:`nf4_codebook` / :func:`nf4_roundtrip_error`: what NF4 does to a weight matrix.
- :func:`lora_diagram`: ``h = W x + (alpha/r) B A x`` with the parameter counts.
- :func:`label_mask`: which tokens of a training example carry the loss.
- :func:`loss_curve`: training (and eval) loss and the learning rate from ``Trainer.state.log_history``.
- :func:`accuracy_bars`: strict and flexible accuracy per run with 95% Wilson intervals.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Patch, Rectangle
from matplotlib.ticker import PercentFormatter

if TYPE_CHECKING:  # torch is imported lazily: loss_curve and accuracy_bars do not need it
    import torch

__all__ = [
    "accuracy_bars",
    "label_mask",
    "lora_diagram",
    "loss_curve",
    "nf4_code_values",
    "nf4_codebook",
    "nf4_roundtrip_error",
]

DPI = 120
FROZEN_GREY = "#b0b0b0"
TRAINABLE_GREEN = "#4caf50"
PROMPT_FACE, PROMPT_EDGE = "#e0e0e0", "#9e9e9e"
LOSS_FACE, LOSS_EDGE = "#b9f6ca", "#2e7d32"
CAPTION_STYLE = {"ha": "center", "va": "top", "fontsize": 9, "color": "#444444", "style": "italic"}


def _finish(fig: Figure, path: str | os.PathLike | None) -> Figure:
    """Save (when asked) and detach from pyplot: see the module docstring for why."""
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return fig


# --------------------------------------------------------------------------------------------
# NF4
# --------------------------------------------------------------------------------------------


def nf4_code_values() -> torch.Tensor:
    """The 16 NF4 levels in [-1, 1], as bitsandbytes stores them (``get_4bit_type("nf4")``), on the CPU."""
    from bitsandbytes.functional import get_4bit_type

    # get_4bit_type defaults to device="cuda"; the table itself is the same everywhere.
    return get_4bit_type("nf4", device="cpu")


def _as_quantizable(weight: torch.Tensor) -> torch.Tensor:
    import torch

    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"weight must be a torch.Tensor, got {type(weight).__name__}")
    if not weight.is_floating_point():
        # A bitsandbytes Params4bit is already packed into uint8: there is nothing left to round.
        raise TypeError(
            f"weight must hold floats (the unquantized weight), got dtype {weight.dtype}; "
            "pass the bf16/fp16/fp32 weight from a model loaded without quantization_config"
        )
    if weight.numel() == 0:
        raise ValueError("weight is empty")
    w = weight.detach()
    if w.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        w = w.float()  # bitsandbytes quantizes only 16/32-bit floats
    return w.contiguous()


def _nf4_roundtrip(weight: torch.Tensor, blocksize: int, double_quant: bool) -> tuple:
    """(w, dequantized w, packed codes, quant state); w and its round trip as float32 on weight's device.

    bitsandbytes 0.50's ``quantize_4bit`` / ``dequantize_4bit`` run on the CPU too, so this is the
    library's own NF4 code path, not a re-implementation.
    """
    import torch
    from bitsandbytes.functional import dequantize_4bit, quantize_4bit

    w = _as_quantizable(weight)
    packed, state = quantize_4bit(w, blocksize=blocksize, compress_statistics=double_quant, quant_type="nf4")
    restored = dequantize_4bit(packed, state)
    return w.to(torch.float32), restored.to(torch.float32), packed, state


def nf4_roundtrip_error(weight: torch.Tensor, blocksize: int = 64, double_quant: bool = False) -> dict:
    """How much NF4 (blocks of ``blocksize``) changes ``weight``, and what it costs in bits.

    Returns ``mean_abs_error``, ``max_abs_error``, ``relative_error`` (``||w - q(w)|| / ||w||``),
    ``bits_per_weight`` (4-bit codes plus the per-block absmax constants, counted from the tensors
    bitsandbytes actually produced: 4 + 32/64 = 4.5 for blocks of 64, about 4.127 with
    ``double_quant``), ``n_weights``, ``blocksize`` and ``double_quant``.
    """
    return _error_stats(*_nf4_roundtrip(weight, blocksize, double_quant), blocksize, double_quant)


def _error_stats(w, restored, packed, state, blocksize: int, double_quant: bool) -> dict:
    err = w - restored
    n = w.numel()
    bits = packed.numel() * packed.element_size() * 8 + state.absmax.numel() * state.absmax.element_size() * 8
    if state.nested:
        # Double quantization: 8-bit absmax codes, plus one fp32 scale per 256 of them and one offset.
        bits += state.state2.absmax.numel() * state.state2.absmax.element_size() * 8 + 32
    norm = w.norm().item()
    return {
        "mean_abs_error": err.abs().mean().item(),
        "max_abs_error": err.abs().max().item(),
        "relative_error": err.norm().item() / norm if norm > 0 else 0.0,
        "bits_per_weight": bits / n,
        "n_weights": n,
        "blocksize": blocksize,
        "double_quant": double_quant,
    }


def dequantize_absmax(state) -> torch.Tensor:
    """The per-block absmax values of a double-quantized ``QuantState``, back in fp32."""
    from bitsandbytes.functional import dequantize_blockwise

    return dequantize_blockwise(state.absmax, state.state2) + state.offset


def _histogram(values: torch.Tensor, bins: int, lo: float, hi: float):
    """Counts and edges via torch.histc: stays on the weight's device, so a 4096x14336 matrix is fine."""
    import torch

    counts = torch.histc(values.flatten(), bins=bins, min=lo, max=hi).cpu().numpy()
    edges = torch.linspace(lo, hi, bins + 1).numpy()
    return counts, edges


def nf4_codebook(
    weight: torch.Tensor,
    path: str | os.PathLike | None = None,
    blocksize: int = 64,
    *,
    name: str = "weight matrix",
    double_quant: bool = True,
) -> Figure:
    """Left: the weights after per-block absmax scaling, with the 16 NF4 levels; right: the round-trip error.

    ``double_quant`` as in the course's ``BitsAndBytesConfig`` (on): the block scales are stored in 8 bits,
    which sets the bits per weight in the caption (about 4.127 instead of 4.5).
    """
    import torch

    w, restored, packed, state = _nf4_roundtrip(weight, blocksize, double_quant=double_quant)
    stats = _error_stats(w, restored, packed, state, blocksize, double_quant=double_quant)
    n = w.numel()
    # bitsandbytes blocks the flattened (row-major) tensor; dividing by its own absmax per block
    # shows exactly the numbers that get rounded to a code value.
    absmax = dequantize_absmax(state) if state.nested else state.absmax
    scale = absmax.to(w.device, torch.float32).repeat_interleave(blocksize)[:n]
    normalised = w.flatten() / torch.where(scale > 0, scale, torch.ones_like(scale))
    code = nf4_code_values().tolist()

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))

    counts, edges = _histogram(normalised, 160, -1.0, 1.0)
    left.stairs(counts / n * 100, edges, fill=True, color="#90caf9", label="weights / their block's absmax")
    for i, c in enumerate(code):
        left.axvline(c, color="#e65100", lw=1.2, alpha=0.85, label="the 16 NF4 levels" if i == 0 else None)
    left.set_title(f"{name}, {n:,} values,\nscaled block by block into [-1, 1]")
    left.set_xlabel(f"weight / absmax of its block of {blocksize}")
    left.set_ylabel("share of weights per bin (%)")
    left.set_xlim(-1.05, 1.05)
    left.legend(loc="upper left", fontsize=9)
    left.text(
        0.98,
        0.97,
        "levels are packed where\nthe weights are dense;\nthe spikes at ±1 are each\nblock's largest weight",
        transform=left.transAxes,
        ha="right",
        va="top",
        fontsize=9,
    )

    err = w - restored
    bound = max(err.abs().max().item(), 1e-12)
    counts, edges = _histogram(err, 121, -bound, bound)
    right.stairs(counts / n * 100, edges, fill=True, color="#ef9a9a")
    right.set_title(
        f"round-trip error\nmean |w - q(w)| = {stats['mean_abs_error']:.2e}, "
        f"||w - q(w)|| / ||w|| = {stats['relative_error']:.1%}"
    )
    right.set_xlabel("w - dequantize(quantize(w))  (same units as the weights)")
    right.set_ylabel("share of weights per bin (%)")
    right.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))

    fig.suptitle("NF4: every weight becomes one of 16 levels times its block's absmax", fontsize=13)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    scales = (f"an 8-bit absmax per {blocksize} weights + a 32-bit scale per 256 blocks" if double_quant
              else f"a 32-bit absmax per {blocksize} weights")
    fig.text(
        0.5,
        0.045,
        f"{stats['bits_per_weight']:.3f} bits per weight instead of 16 (4-bit code + {scales}); the error is "
        f"the price of a {16 / stats['bits_per_weight']:.1f}x smaller matrix.",
        **CAPTION_STYLE,
    )
    return _finish(fig, path)


# --------------------------------------------------------------------------------------------
# LoRA
# --------------------------------------------------------------------------------------------


def lora_diagram(
    d_in: int,
    d_out: int,
    rank: int,
    path: str | os.PathLike | None = None,
    name: str = "q_proj",
    *,
    alpha: float | None = None,
) -> Figure:
    """The frozen ``W`` (d_out x d_in) beside the trainable ``B`` (d_out x r) and ``A`` (r x d_in), with the counts."""
    if min(d_in, d_out, rank) <= 0:
        raise ValueError(f"d_in, d_out and rank must be positive, got {d_in}, {d_out}, {rank}")
    n_w = d_out * d_in
    n_ab = rank * (d_in + d_out)
    share = n_ab / n_w

    side = max(d_in, d_out)
    # At r=16 next to 4096 a true-to-scale A or B would be under a pixel wide: draw them at least
    # 2.5% of the big side and say so on the figure.
    thin = max(rank, 0.025 * side)
    exaggerated = thin > rank
    gap = 0.3 * side
    b_x = d_in + gap
    a_x = b_x + thin + 0.06 * side

    # Text is placed in points away from the blocks, so square (q_proj) and flat (down_proj) layers both read well.
    data_w, data_h = a_x + d_in + 0.06 * side, d_out + 0.22 * side
    width_in, below_in, above_in = 12.0, 1.3, 0.7
    height_in = width_in * 0.96 * data_h / data_w + below_in + above_in
    fig, ax = plt.subplots(figsize=(width_in, height_in))
    fig.subplots_adjust(left=0.02, right=0.98, bottom=below_in / height_in, top=1 - above_in / height_in)
    ax.add_patch(Rectangle((0, 0), d_in, d_out, facecolor=FROZEN_GREY, edgecolor="#616161", lw=1.5))
    ax.add_patch(Rectangle((b_x, 0), thin, d_out, facecolor=TRAINABLE_GREEN, edgecolor="#1b5e20", lw=1.5))
    ax.add_patch(Rectangle((a_x, d_out - thin), d_in, thin, facecolor=TRAINABLE_GREEN, edgecolor="#1b5e20", lw=1.5))

    def label(text: str, xy: tuple[float, float], offset: tuple[float, float], **style) -> None:
        ax.annotate(text, xy, xytext=offset, textcoords="offset points", **style)

    centre = (d_in / 2, d_out / 2)
    label("W", centre, (0, 12), ha="center", va="bottom", fontsize=26, weight="bold")
    label(f"{d_out:,} x {d_in:,}\nfrozen, 4-bit (NF4)", centre, (0, 6), ha="center", va="top", fontsize=11)
    scaling = r"\frac{\alpha}{r}" if alpha is None else rf"\frac{{{alpha:g}}}{{{rank}}}"
    label(rf"$+\;{scaling}\,\cdot$", (d_in + gap / 2, d_out / 2), (0, 0), ha="center", va="center", fontsize=22)
    label("B", (b_x + thin / 2, d_out), (0, 6), ha="center", va="bottom", fontsize=22, weight="bold")
    label("A", (a_x + d_in / 2, d_out), (0, 6), ha="center", va="bottom", fontsize=22, weight="bold")
    label(
        f"A: {rank} x {d_in:,}, trainable (random start)",
        (a_x, d_out - thin),
        (0, -4),
        ha="left",
        va="top",
        fontsize=10,
    )
    label(
        f"B: {d_out:,} x {rank}, trainable, starts at 0\n(so training starts from the base model)",
        (b_x + thin, d_out - thin),
        (8, -22),
        ha="left",
        va="top",
        fontsize=10,
    )
    arithmetic = (
        f"W:   d_out * d_in = {d_out:,} * {d_in:,} = {n_w:,} frozen parameters\n"
        f"A+B: r * (d_in + d_out) = {rank} * ({d_in:,} + {d_out:,}) = {n_ab:,} trainable ({share:.2%} of W)"
    )
    label(arithmetic, (0, 0), (0, -14), ha="left", va="top", fontsize=11, family="monospace")
    note = "B A has the shape of W but rank at most r"
    if exaggerated:
        note += f"; A and B are drawn thicker than to scale (r / {side:,} = {rank / side:.2%}) so they are visible"
    label(note + ".", (0, 0), (0, -56), ha="left", va="top", fontsize=9, color="#444444", style="italic")

    ax.set_xlim(-0.03 * side, a_x + d_in + 0.03 * side)
    ax.set_ylim(-0.02 * side, d_out + 0.2 * side)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(rf"LoRA on {name}:  $h = W x + {scaling}\, B A x$  (only A and B are trained)", fontsize=14, pad=12)
    return _finish(fig, path)


# --------------------------------------------------------------------------------------------
# Label mask
# --------------------------------------------------------------------------------------------


def _display_token(text: str) -> str:
    # Escapes keep one token on one box; "␣" makes the space that BPE glues to a word visible.
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t").replace(" ", "␣")


GAP_TOKEN = "…"  # stands for the tokens left out between the start and the end of a long example


def label_mask(
    rows: Sequence[tuple[str, bool]],
    path: str | os.PathLike | None = None,
    max_tokens: int = 80,
    title: str = "One training example: only the answer tokens carry the loss",
    *,
    line_chars: int = 110,
    tail_tokens: int = 30,
) -> Figure:
    """Each token as a box in reading order, green where it carries loss, grey where its label is -100.

    ``rows`` is ``[(token text, carries loss), ...]``, e.g. from ``training.label_mask_rows``. A longer
    example shows its first ``max_tokens - tail_tokens`` tokens (where the prompt ends and the answer
    starts), a white "…" box for the tokens left out, and its last ``tail_tokens`` (where the answer ends
    and the end token carries loss).
    """
    rows = list(rows)
    max_tokens = max(max_tokens, 0)
    tail = min(max(tail_tokens, 0), max_tokens)
    if len(rows) > max_tokens and tail:
        shown = rows[: max_tokens - tail] + [(GAP_TOKEN, None)] + rows[-tail:]
    else:
        shown = rows[:max_tokens]
    font_size = 9
    char_in = 0.602 * font_size / 72  # advance of one DejaVu Sans Mono character, in inches
    pad, gap = 0.8, 0.35  # in characters: text margin inside a box, space between boxes

    # Lay out first (in character units) so the figure height fits the number of lines.
    boxes, x, line = [], 0.0, 0
    for text, loss in shown:
        label = _display_token(str(text))
        if len(label) > line_chars - 2:
            label = label[: line_chars - 3] + "…"
        width = max(len(label), 1) + pad
        if x > 0 and x + width > line_chars:
            x, line = 0.0, line + 1
        boxes.append((x, line, width, label, None if loss is None else bool(loss)))
        x += width + gap
        if "\n" in str(text):
            x, line = 0.0, line + 1  # follow the text's own line breaks: easier to read
    n_lines = (boxes[-1][1] + 1) if boxes else 1

    line_in, top_in, bottom_in = 0.32, 1.0, 0.45
    width_in = line_chars * char_in / 0.96
    height_in = n_lines * line_in + top_in + bottom_in
    fig, ax = plt.subplots(figsize=(width_in, height_in))
    ax.set_position((0.02, bottom_in / height_in, 0.96, n_lines * line_in / height_in))
    ax.set_xlim(0, line_chars)
    ax.set_ylim(n_lines, 0)  # first line at the top
    ax.axis("off")

    for bx, by, bw, label, loss in boxes:
        face, edge = (LOSS_FACE, LOSS_EDGE) if loss else (PROMPT_FACE, PROMPT_EDGE)
        if loss is None:  # the gap between the start and the end
            face, edge = "white", "white"
        ax.add_patch(
            FancyBboxPatch(
                (bx, by + 0.14),
                bw,
                0.72,
                boxstyle="round,pad=0,rounding_size=0.15",
                facecolor=face,
                edgecolor=edge,
                lw=0.8,
            )
        )
        # parse_math=False: GSM8K is full of "$", which would otherwise switch on mathtext.
        ax.text(
            bx + bw / 2,
            by + 0.5,
            label,
            ha="center",
            va="center",
            fontsize=font_size,
            family="DejaVu Sans Mono",
            parse_math=False,
        )
    if not boxes:
        ax.text(line_chars / 2, 0.5, "no tokens given", ha="center", va="center", fontsize=11)

    ax.legend(
        handles=[
            Patch(facecolor=PROMPT_FACE, edgecolor=PROMPT_EDGE, label="no loss (prompt / padding)"),
            Patch(facecolor=LOSS_FACE, edgecolor=LOSS_EDGE, label="loss (the answer and its end token)"),
        ],
        loc="lower left",
        bbox_to_anchor=(0, 1.0),
        ncol=2,
        frameon=False,
        fontsize=9,
    )
    ax.set_title(title, fontsize=12, pad=30, loc="left", parse_math=False)
    n_shown = sum(1 for *_, loss in boxes if loss is not None)
    n_loss = sum(1 for *_, loss in boxes if loss)
    caption = f"{n_loss} of {n_shown} tokens shown carry loss; the others have label -100. ␣ marks a space."
    if len(rows) > n_shown:
        head = n_shown - tail if tail else n_shown
        caption += f" The first {head} and the last {tail} of {len(rows)} tokens are shown." if tail else (
            f" First {n_shown} of {len(rows)} tokens shown.")
    fig.text(0.5, (bottom_in - 0.1) / height_in, caption, parse_math=False, **CAPTION_STYLE)
    return _finish(fig, path)


# --------------------------------------------------------------------------------------------
# Training log
# --------------------------------------------------------------------------------------------


def _series(log_history: Sequence[dict], key: str) -> tuple[list[float], list[float]]:
    steps, values = [], []
    for i, entry in enumerate(log_history):
        value = entry.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            steps.append(entry.get("step", i))
            values.append(float(value))
    return steps, values


def loss_curve(log_history: Sequence[dict], path: str | os.PathLike | None = None) -> Figure:
    """Training loss (and eval loss) against step, learning rate on a second axis, from ``Trainer.state.log_history``."""
    train_steps, train_loss = _series(log_history, "loss")
    eval_steps, eval_loss = _series(log_history, "eval_loss")
    lr_steps, lr = _series(log_history, "learning_rate")

    fig, ax = plt.subplots(figsize=(9, 5))
    if not train_loss and not eval_loss:
        ax.text(0.5, 0.5, "no training loss logged yet", ha="center", va="center", fontsize=14, color="#616161")
        ax.text(
            0.5,
            0.4,
            "(the Trainer logs the loss every logging_steps optimizer steps)",
            ha="center",
            va="center",
            fontsize=10,
            color="#9e9e9e",
        )
        ax.set_axis_off()
        ax.set_title("Training loss")
        return _finish(fig, path)

    handles = []
    if train_loss:
        handles += ax.plot(train_steps, train_loss, "-o", ms=3, color="#1565c0", label="training loss")
    if eval_loss:
        handles += ax.plot(eval_steps, eval_loss, "s--", ms=6, color="#c62828", label="eval loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (mean cross-entropy per trained token)")
    ax.grid(alpha=0.3)
    if lr:
        # The schedule (warm-up, then decay) explains bends in the loss, so it shares the step axis.
        lr_ax = ax.twinx()
        handles += lr_ax.plot(lr_steps, lr, ":", lw=2, color="#ef6c00", label="learning rate (right axis)")
        lr_ax.set_ylabel("learning rate")
        lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        lr_ax.set_ylim(bottom=0)
    ax.legend(handles=handles, loc="upper right")
    ax.set_title("Training loss during fine-tuning")
    if train_loss:
        summary = f"training loss {train_loss[0]:.3f} at step {train_steps[0]} -> {train_loss[-1]:.3f} at step "
        summary += f"{train_steps[-1]}; each point averages the steps since the previous log."
    else:
        summary = "no training loss logged yet; only eval loss so far."
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.text(0.5, 0.04, summary, **CAPTION_STYLE)
    return _finish(fig, path)


# --------------------------------------------------------------------------------------------
# Accuracy
# --------------------------------------------------------------------------------------------


def accuracy_bars(
    runs: Sequence[tuple[str, dict]],
    path: str | os.PathLike | None = None,
    title: str = "Accuracy with 95% Wilson intervals",
) -> Figure:
    """Strict and flexible accuracy per run (the dicts of ``evaluation.summarize``) with 95% interval bars.

    Name the dataset in ``title`` (``data.dataset_name``): the cpu track does not use GSM8K.
    """
    metrics = [
        ("strict", "strict (first '#### N')", "#1565c0"),
        ("flexible", "flexible (last number)", "#90caf9"),
    ]
    width = 0.38
    fig, ax = plt.subplots(figsize=(max(6.0, 1.9 * len(runs) + 2.5), 5))
    for j, (key, label, colour) in enumerate(metrics):
        xs = [i + (j - 0.5) * width for i in range(len(runs))]
        acc = [float(summary[f"{key}_accuracy"]) for _, summary in runs]
        ci = [tuple(float(v) for v in summary[f"{key}_ci95"]) for _, summary in runs]
        ax.bar(xs, acc, width, color=colour, edgecolor="#0d47a1", label=label)
        if runs:
            # yerr is relative to the bar top; max(0, .) guards a rounding hair outside the interval.
            yerr = [
                [max(0.0, a - lo) for a, (lo, _) in zip(acc, ci, strict=True)],
                [max(0.0, hi - a) for a, (_, hi) in zip(acc, ci, strict=True)],
            ]
            ax.errorbar(xs, acc, yerr=yerr, fmt="none", ecolor="black", capsize=4, lw=1.2)
        for x, a, (_, hi) in zip(xs, acc, ci, strict=True):
            ax.text(x, max(a, hi) + 0.015, f"{a:.1%}", ha="center", va="bottom", fontsize=9)

    ax.set_xticks(range(len(runs)))
    ax.set_xticklabels([f"{name}\n(n = {summary.get('n', '?')})" for name, summary in runs])
    ax.set_ylim(0, 1.08)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.set_ylabel("accuracy (share of questions correct)")
    # Legend above the plot: bars near 100% would hide under a legend inside it.
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    ax.set_title(title, pad=28)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.text(
        0.5,
        0.045,
        "Black bars: 95% Wilson intervals. Overlapping intervals do not mean 'no difference': "
        "the paired test on the same questions is more sensitive.",
        **CAPTION_STYLE,
    )
    return _finish(fig, path)
