"""The lessons' figures, drawn from the real objects (weights, token labels, training log, results). Each returns a
``Figure`` detached from pyplot (a notebook shows it once, as a cell's last expression), saved as a PNG at ``path``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Patch, Rectangle
from matplotlib.ticker import PercentFormatter

PROMPT_FACE, PROMPT_EDGE = "#e0e0e0", "#9e9e9e"
LOSS_FACE, LOSS_EDGE = "#b9f6ca", "#2e7d32"
GAP_TOKEN = "…"  # stands for the tokens left out between the start and the end of a long example
LINE_CHARS = 110  # the label mask's line width, in characters
BLOCKSIZE = 64  # bitsandbytes' NF4 block, as in the course's BitsAndBytesConfig
CAPTION = {"ha": "center", "va": "top", "fontsize": 9, "color": "#444444", "style": "italic", "parse_math": False}


def _finish(fig: Figure, path: str | os.PathLike | None, caption: str | None = None, y: float = 0.045) -> Figure:
    """Add the caption under the axes, save (when asked) and detach from pyplot."""
    if caption is not None:
        fig.text(0.5, y, caption, **CAPTION)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return fig


def nf4_code_values():
    """The 16 NF4 levels in [-1, 1], as bitsandbytes stores them (``get_4bit_type("nf4")``), on the CPU."""
    from bitsandbytes.functional import get_4bit_type

    return get_4bit_type("nf4", device="cpu")  # its default device is "cuda"; the table is the same


def _nf4_roundtrip(weight, double_quant: bool):
    """(w, its NF4 round trip, stats): bitsandbytes' own quantize_4bit / dequantize_4bit (they run on a CPU)."""
    import torch
    from bitsandbytes.functional import dequantize_4bit, quantize_4bit

    if not isinstance(weight, torch.Tensor) or not weight.is_floating_point():
        # A Params4bit is already packed into uint8: there is nothing left to round.
        raise TypeError(f"weight must be a tensor of floats (unquantized), got {getattr(weight, 'dtype', weight)}")
    w = weight.detach()
    w = (w if w.dtype in (torch.float16, torch.bfloat16, torch.float32) else w.float()).contiguous()
    packed, state = quantize_4bit(w, blocksize=BLOCKSIZE, compress_statistics=double_quant, quant_type="nf4")
    w, restored = w.float(), dequantize_4bit(packed, state).float()
    bits = 8 * (packed.numel() * packed.element_size() + state.absmax.numel() * state.absmax.element_size())
    if state.nested:  # double quantization: 8-bit absmax codes, one fp32 scale per 256 of them, one offset
        bits += 8 * state.state2.absmax.numel() * state.state2.absmax.element_size() + 32
    err, norm = w - restored, w.norm().item()
    stats = {"mean_abs_error": err.abs().mean().item(), "max_abs_error": err.abs().max().item(),
             "relative_error": err.norm().item() / norm if norm > 0 else 0.0, "bits_per_weight": bits / w.numel()}
    return w, restored, state, stats


def nf4_roundtrip_error(weight, double_quant: bool = False) -> dict:
    """How much NF4 changes ``weight``: ``mean_abs_error``, ``max_abs_error``, ``relative_error`` (``||w - q(w)||
    / ||w||``) and ``bits_per_weight`` counted from the tensors bitsandbytes produced (4.5 for blocks of 64,
    about 4.127 with ``double_quant``)."""
    return _nf4_roundtrip(weight, double_quant)[3]


def _stairs(ax, values, bins: int, lo: float, hi: float, color: str, **kw) -> None:
    """A histogram in % of the values (torch.histc: stays on the weight's device, fine for a 4096x14336 matrix)."""
    import torch

    counts = torch.histc(values.flatten(), bins=bins, min=lo, max=hi).cpu().numpy()
    ax.stairs(counts / values.numel() * 100, torch.linspace(lo, hi, bins + 1).numpy(), fill=True, color=color, **kw)
    ax.set_ylabel("share of weights per bin (%)")


def nf4_codebook(weight, path: str | os.PathLike | None = None, *, name: str = "weight matrix") -> Figure:
    """Left: the weights scaled by their block's absmax, with the 16 NF4 levels; right: the round-trip error (with
    double quantization, as in the course's ``BitsAndBytesConfig``)."""
    import torch
    from bitsandbytes.functional import dequantize_blockwise

    w, restored, state, stats = _nf4_roundtrip(weight, double_quant=True)
    n = w.numel()
    # bitsandbytes blocks the flattened tensor: dividing by each block's absmax shows the numbers it rounds.
    absmax = dequantize_blockwise(state.absmax, state.state2) + state.offset if state.nested else state.absmax
    scale = absmax.to(w.device, torch.float32).repeat_interleave(BLOCKSIZE)[:n]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    _stairs(left, w.flatten() / torch.where(scale > 0, scale, torch.ones_like(scale)), 160, -1.0, 1.0, "#90caf9",
            label="weights / their block's absmax")
    for i, level in enumerate(nf4_code_values().tolist()):
        left.axvline(level, color="#e65100", lw=1.2, alpha=0.85, label=None if i else "the 16 NF4 levels")
    left.set(title=f"{name}, {n:,} values,\nscaled block by block into [-1, 1]", xlim=(-1.05, 1.05),
             xlabel=f"weight / absmax of its block of {BLOCKSIZE}")
    left.legend(loc="upper left", fontsize=9)
    left.text(0.98, 0.97, "levels are packed where\nthe weights are dense;\nthe spikes at ±1 are each\nblock's "
              "largest weight", transform=left.transAxes, ha="right", va="top", fontsize=9)
    bound = max(stats["max_abs_error"], 1e-12)
    _stairs(right, w - restored, 121, -bound, bound, "#ef9a9a")
    right.set(title=f"round-trip error\nmean |w - q(w)| = {stats['mean_abs_error']:.2e}, "
              f"||w - q(w)|| / ||w|| = {stats['relative_error']:.1%}",
              xlabel="w - dequantize(quantize(w))  (same units as the weights)")
    right.ticklabel_format(axis="x", style="sci", scilimits=(-2, 2))
    fig.suptitle("NF4: every weight becomes one of 16 levels times its block's absmax", fontsize=13)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    bits = stats["bits_per_weight"]
    return _finish(fig, path, f"{bits:.3f} bits per weight instead of 16 (4-bit code + an 8-bit absmax per "
                              f"{BLOCKSIZE} weights + a 32-bit scale per 256 blocks); the error is "
                              f"the price of a {16 / bits:.1f}x smaller matrix.")


def lora_diagram(d_in: int, d_out: int, rank: int, path: str | os.PathLike | None = None, name: str = "q_proj", *,
                 alpha: float | None = None) -> Figure:
    """The frozen ``W`` (d_out x d_in) beside the trainable ``B`` (d_out x r) and ``A`` (r x d_in), with the counts."""
    n_w, n_ab, side = d_out * d_in, rank * (d_in + d_out), max(d_in, d_out)
    thin = max(rank, 0.025 * side)  # r=16 beside 4096 would be under a pixel: drawn thicker, and said so
    gap = 0.3 * side
    b_x = d_in + gap
    a_x = b_x + thin + 0.06 * side
    # Text sits in points away from the blocks, so square (q_proj) and flat (down_proj) layers both read well.
    width_in, below_in, above_in = 12.0, 1.3, 0.7
    height_in = width_in * 0.96 * (d_out + 0.22 * side) / (a_x + d_in + 0.06 * side) + below_in + above_in
    fig, ax = plt.subplots(figsize=(width_in, height_in))
    fig.subplots_adjust(left=0.02, right=0.98, bottom=below_in / height_in, top=1 - above_in / height_in)
    for xy, w, h, face, edge in (((0, 0), d_in, d_out, "#b0b0b0", "#616161"), ((b_x, 0), thin, d_out, "#4caf50",
                                 "#1b5e20"), ((a_x, d_out - thin), d_in, thin, "#4caf50", "#1b5e20")):
        ax.add_patch(Rectangle(xy, w, h, facecolor=face, edgecolor=edge, lw=1.5))
    scaling = r"\frac{\alpha}{r}" if alpha is None else rf"\frac{{{alpha:g}}}{{{rank}}}"
    note = "B A has the shape of W but rank at most r"
    if thin > rank:
        note += f"; A and B are drawn thicker than to scale (r / {side:,} = {rank / side:.2%}) so they are visible"
    for text, xy, offset, style in (
        ("W", (d_in / 2, d_out / 2), (0, 12), dict(va="bottom", fontsize=26, weight="bold")),
        (f"{d_out:,} x {d_in:,}\nfrozen, 4-bit (NF4)", (d_in / 2, d_out / 2), (0, 6), dict(va="top", fontsize=11)),
        (rf"$+\;{scaling}\,\cdot$", (d_in + gap / 2, d_out / 2), (0, 0), dict(va="center", fontsize=22)),
        ("B", (b_x + thin / 2, d_out), (0, 6), dict(va="bottom", fontsize=22, weight="bold")),
        ("A", (a_x + d_in / 2, d_out), (0, 6), dict(va="bottom", fontsize=22, weight="bold")),
        (f"A: {rank} x {d_in:,}, trainable (random start)", (a_x, d_out - thin), (0, -4),
         dict(ha="left", va="top", fontsize=10)),
        (f"B: {d_out:,} x {rank}, trainable, starts at 0\n(so training starts from the base model)",
         (b_x + thin, d_out - thin), (8, -22), dict(ha="left", va="top", fontsize=10)),
        (f"W:   d_out * d_in = {d_out:,} * {d_in:,} = {n_w:,} frozen parameters\nA+B: r * (d_in + d_out) = {rank} * "
         f"({d_in:,} + {d_out:,}) = {n_ab:,} trainable ({n_ab / n_w:.2%} of W)", (0, 0), (0, -14),
         dict(ha="left", va="top", fontsize=11, family="monospace")),
        (note + ".", (0, 0), (0, -56), dict(ha="left", va="top", fontsize=9, color="#444444", style="italic")),
    ):
        ax.annotate(text, xy, xytext=offset, textcoords="offset points", **{"ha": "center", **style})
    ax.set(xlim=(-0.03 * side, a_x + d_in + 0.03 * side), ylim=(-0.02 * side, d_out + 0.2 * side), aspect="equal")
    ax.axis("off")
    ax.set_title(rf"LoRA on {name}:  $h = W x + {scaling}\, B A x$  (only A and B are trained)", fontsize=14, pad=12)
    return _finish(fig, path)


def label_mask(rows: Sequence[tuple[str, bool]], path: str | os.PathLike | None = None, max_tokens: int = 80, *,
               tail_tokens: int = 30) -> Figure:
    """Each token of ``rows`` (``training.label_mask_rows``) as a box in reading order, green where it carries loss,
    grey where its label is -100. A longer example shows its first ``max_tokens - tail_tokens`` tokens (where the
    answer starts), a "…" box, and its last ``tail_tokens`` (where the answer ends and the end token carries loss)."""
    rows, tail = list(rows), min(tail_tokens, max_tokens)
    cut = len(rows) > max_tokens and tail
    shown = rows[: max_tokens - tail] + [(GAP_TOKEN, None)] + rows[-tail:] if cut else rows[:max_tokens]
    boxes, x, line = [], 0.0, 0  # laid out in character units first, so the height fits the number of lines
    for text, loss in shown:
        # Escapes keep one token in one box; "␣" shows the space BPE glues to a word.
        label = str(text).translate({92: "\\\\", 10: "\\n", 13: "\\r", 9: "\\t", 32: "␣"})
        label = label if len(label) <= LINE_CHARS - 2 else label[: LINE_CHARS - 3] + "…"
        width = max(len(label), 1) + 0.8
        if x > 0 and x + width > LINE_CHARS:
            x, line = 0.0, line + 1
        boxes.append((x, line, width, label, loss))
        x += width + 0.35
        if "\n" in str(text):
            x, line = 0.0, line + 1  # follow the text's own line breaks
    n_lines = boxes[-1][1] + 1 if boxes else 1
    height_in = n_lines * 0.32 + 1.45
    fig, ax = plt.subplots(figsize=(LINE_CHARS * 0.602 * 9 / 72 / 0.96, height_in))  # DejaVu Sans Mono at 9 pt
    ax.set_position((0.02, 0.45 / height_in, 0.96, n_lines * 0.32 / height_in))
    ax.set(xlim=(0, LINE_CHARS), ylim=(n_lines, 0))
    ax.axis("off")
    for bx, by, bw, label, loss in boxes:
        face, edge = ("white",) * 2 if loss is None else (LOSS_FACE, LOSS_EDGE) if loss else (PROMPT_FACE, PROMPT_EDGE)
        ax.add_patch(FancyBboxPatch((bx, by + 0.14), bw, 0.72, boxstyle="round,pad=0,rounding_size=0.15",
                                    facecolor=face, edgecolor=edge, lw=0.8))
        ax.text(bx + bw / 2, by + 0.5, label, ha="center", va="center", fontsize=9, family="DejaVu Sans Mono",
                parse_math=False)  # GSM8K is full of "$", which would switch on mathtext
    ax.legend(handles=[Patch(facecolor=PROMPT_FACE, edgecolor=PROMPT_EDGE, label="no loss (prompt / padding)"),
                       Patch(facecolor=LOSS_FACE, edgecolor=LOSS_EDGE, label="loss (the answer and its end token)")],
              loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2, frameon=False, fontsize=9)
    ax.set_title("One training example: only the answer tokens carry the loss", fontsize=12, pad=30, loc="left")
    n_shown = sum(loss is not None for *_, loss in boxes)
    caption = f"{sum(bool(loss) for *_, loss in boxes)} of {n_shown} tokens shown carry loss; the others have label " \
              "-100. ␣ marks a space."
    if cut:
        caption += f" The first {n_shown - tail} and the last {tail} of {len(rows)} tokens are shown."
    elif len(rows) > n_shown:
        caption += f" First {n_shown} of {len(rows)} tokens shown."
    return _finish(fig, path, caption, 0.35 / height_in)


def _series(log_history: Sequence[dict], key: str) -> tuple[list, list]:
    found = [(e.get("step", i), float(e[key])) for i, e in enumerate(log_history)
             if isinstance(e.get(key), (int, float)) and not isinstance(e.get(key), bool)]
    return [s for s, _ in found], [v for _, v in found]


def loss_curve(log_history: Sequence[dict], path: str | os.PathLike | None = None) -> Figure:
    """Training (and eval) loss against step, the learning rate on a second axis, from ``Trainer.state.log_history``."""
    (steps, loss), (eval_steps, eval_loss), (lr_steps, lr) = (_series(log_history, k) for k in
                                                              ("loss", "eval_loss", "learning_rate"))
    fig, ax = plt.subplots(figsize=(9, 5))
    if not loss and not eval_loss:
        ax.text(0.5, 0.5, "no training loss logged yet", ha="center", va="center", fontsize=14, color="#616161")
        ax.set_axis_off()
        return _finish(fig, path, "the Trainer logs the loss every logging_steps optimizer steps", 0.04)
    handles = ax.plot(steps, loss, "-o", ms=3, color="#1565c0", label="training loss") if loss else []
    if eval_loss:
        handles += ax.plot(eval_steps, eval_loss, "s--", ms=6, color="#c62828", label="eval loss")
    ax.set(xlabel="optimizer step", ylabel="loss (mean cross-entropy per trained token)",
           title="Training loss during fine-tuning")
    ax.grid(alpha=0.3)
    if lr:  # the schedule (warm-up, then decay) explains bends in the loss
        lr_ax = ax.twinx()
        handles += lr_ax.plot(lr_steps, lr, ":", lw=2, color="#ef6c00", label="learning rate (right axis)")
        lr_ax.set(ylabel="learning rate", ylim=(0, None))
        lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    ax.legend(handles=handles, loc="upper right")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    caption = (f"training loss {loss[0]:.3f} at step {steps[0]} -> {loss[-1]:.3f} at step {steps[-1]}; each point "
               "averages the steps since the previous log." if loss else "no training loss logged yet; only eval loss.")
    return _finish(fig, path, caption, 0.04)


def accuracy_bars(runs: Sequence[tuple[str, dict]], path: str | os.PathLike | None = None,
                  title: str = "Accuracy with 95% Wilson intervals") -> Figure:
    """Strict and flexible accuracy per run (``evaluation.summarize``'s dicts) with their 95% intervals."""
    fig, ax = plt.subplots(figsize=(max(6.0, 1.9 * len(runs) + 2.5), 5))
    for j, (key, label, colour) in enumerate((("strict", "strict (first '#### N')", "#1565c0"),
                                              ("flexible", "flexible (last number)", "#90caf9"))):
        xs = np.arange(len(runs)) + (j - 0.5) * 0.38
        acc = np.array([s[f"{key}_accuracy"] for _, s in runs], dtype=float)
        lo, hi = np.array([s[f"{key}_ci95"] for _, s in runs], dtype=float).reshape(-1, 2).T
        ax.bar(xs, acc, 0.38, color=colour, edgecolor="#0d47a1", label=label)
        # yerr is relative to the bar top; clipped at 0 for a rounding hair outside the interval
        ax.errorbar(xs, acc, yerr=np.clip([acc - lo, hi - acc], 0, None), fmt="none", ecolor="black", capsize=4)
        for x, a, top in zip(xs, acc, hi, strict=True):
            ax.text(x, max(a, top) + 0.015, f"{a:.1%}", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(range(len(runs)), [f"{name}\n(n = {s.get('n', '?')})" for name, s in runs])
    ax.set(ylim=(0, 1.08), ylabel="accuracy (share of questions correct)")
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)  # above: bars near 100%
    ax.set_title(title, pad=28)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return _finish(fig, path, "Black bars: 95% Wilson intervals. Overlapping intervals do not mean 'no difference': "
                              "the paired test on the same questions is more sensitive.")
