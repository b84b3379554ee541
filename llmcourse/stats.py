"""Confidence intervals and paired significance tests for accuracy before/after.

Pure Python on purpose: the notebooks need these numbers without scipy at runtime (the
tests cross-check against scipy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PairedResult", "mcnemar_exact", "paired_comparison", "wilson_interval"]


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval (no continuity correction) for ``successes / n``.

    Chosen over the normal (Wald) interval because it stays inside [0, 1] and keeps its
    coverage near 0 % and 100 % accuracy. ``n == 0`` gives the uninformative
    ``(0.0, 1.0)``.
    """
    if n < 0 or successes < 0:
        raise ValueError(
            f"successes and n must be non-negative, got successes={successes}, n={n}"
        )
    if successes > n:
        raise ValueError(f"successes ({successes}) cannot exceed n ({n})")
    if not z > 0:
        raise ValueError(f"z must be positive, got {z}")
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half_width = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    # The bounds are exactly 0 and 1 at the extremes; rounding would otherwise leave
    # 1e-17 slivers.
    lower = 0.0 if successes == 0 else max(0.0, centre - half_width)
    upper = 1.0 if successes == n else min(1.0, centre + half_width)
    return (lower, upper)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pair counts ``b`` and ``c``.

    Under the null hypothesis each discordant pair is equally likely to go either way,
    so ``min(b, c)`` is Bin(b + c, 1/2) and p = min(1, 2 * P(X <= min(b, c))). No
    discordant pairs means no evidence of a difference: 1.0.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be non-negative, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    # Integer numerator and denominator: exact until the single final rounding, even for
    # n in the thousands where 0.5**n would underflow term by term.
    return min(1.0, 2 * tail / 2**n)


@dataclass(frozen=True)
class PairedResult:
    """Outcome of grading the same questions before and after, pair by pair."""

    n: int
    before_correct: int
    after_correct: int
    difference: float
    both_right: int
    both_wrong: int
    fixed: int
    broken: int
    p_value: float

    @property
    def before_accuracy(self) -> float:
        """Fraction correct before (0.0 when there are no pairs)."""
        return self.before_correct / self.n if self.n else 0.0

    @property
    def after_accuracy(self) -> float:
        """Fraction correct after (0.0 when there are no pairs)."""
        return self.after_correct / self.n if self.n else 0.0


def paired_comparison(before: Sequence[bool], after: Sequence[bool]) -> PairedResult:
    """Compare per-question correctness before and after; ``p_value`` is exact McNemar.

    ``before[i]`` and ``after[i]`` must grade the same question. ``difference`` is after
    minus before accuracy; ``fixed`` counts wrong->right, ``broken`` right->wrong.
    """
    if len(before) != len(after):
        raise ValueError(
            "before and after must grade the same questions: "
            f"{len(before)} != {len(after)} items"
        )
    for name, values in (("before", before), ("after", after)):
        for i, value in enumerate(values):
            # `in (True, False)` accepts bool, 0/1 and numpy.bool_ but rejects e.g. the
            # string "False", which bool() would silently count as correct.
            if value not in (True, False):
                raise ValueError(f"{name}[{i}] is not a boolean: {value!r}")
    both_right = both_wrong = fixed = broken = 0
    for was, now in zip(before, after, strict=True):
        if was and now:
            both_right += 1
        elif was:
            broken += 1
        elif now:
            fixed += 1
        else:
            both_wrong += 1
    n = len(before)
    before_correct = both_right + broken
    after_correct = both_right + fixed
    return PairedResult(
        n=n,
        before_correct=before_correct,
        after_correct=after_correct,
        difference=(after_correct - before_correct) / n if n else 0.0,
        both_right=both_right,
        both_wrong=both_wrong,
        fixed=fixed,
        broken=broken,
        p_value=mcnemar_exact(fixed, broken),
    )
