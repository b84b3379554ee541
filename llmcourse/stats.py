"""The Wilson interval and the exact McNemar test (notebook 04 writes them out), in pure Python: the lessons
need no scipy; the tests check these against it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval (no continuity correction) for ``successes / n``; ``(0.0, 1.0)`` when n is 0."""
    if not 0 <= successes <= n:
        raise ValueError(f"successes and n must be non-negative, successes cannot exceed n: got {successes} of {n}")
    if not z > 0:
        raise ValueError(f"z must be positive, got {z}")
    if n == 0:
        return (0.0, 1.0)
    p, z2 = successes / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half_width = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # Exactly 0 and 1 at the extremes, where rounding would leave 1e-17 slivers.
    return (0.0 if successes == 0 else max(0.0, centre - half_width),
            1.0 if successes == n else min(1.0, centre + half_width))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts: min(1, 2 P(X <= min(b, c))), X ~ Bin(b + c, 1/2);
    integer sums until the one final division: exact even where 0.5**n would underflow term by term."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be non-negative, got b={b}, c={c}")
    n = b + c
    return min(1.0, 2 * sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n) if n else 1.0


@dataclass(frozen=True)
class PairedResult:
    """The same questions graded before and after, pair by pair; ``p_value`` is exact McNemar."""

    n: int
    before_correct: int
    after_correct: int
    difference: float  # after minus before accuracy
    both_right: int
    both_wrong: int
    fixed: int  # wrong -> right
    broken: int  # right -> wrong
    p_value: float

    @property
    def before_accuracy(self) -> float:
        return self.before_correct / self.n if self.n else 0.0

    @property
    def after_accuracy(self) -> float:
        return self.after_correct / self.n if self.n else 0.0


def paired_comparison(before: Sequence[bool], after: Sequence[bool]) -> PairedResult:
    """Compare per-question correctness; ``before[i]`` and ``after[i]`` grade the same question."""
    if len(before) != len(after):
        raise ValueError(f"before and after must grade the same questions: {len(before)} != {len(after)} items")
    for name, values in (("before", before), ("after", after)):
        for i, value in enumerate(values):
            if value not in (True, False):  # bool, 0/1, numpy.bool_; not the string "False", which bool() takes
                raise ValueError(f"{name}[{i}] is not a boolean: {value!r}")
    pairs = list(zip(map(bool, before), map(bool, after), strict=True))
    both_right, fixed, broken, n = pairs.count((True, True)), pairs.count((False, True)), pairs.count((True, False)), len(pairs)
    return PairedResult(n, both_right + broken, both_right + fixed, (fixed - broken) / n if n else 0.0,
                        both_right, n - both_right - fixed - broken, fixed, broken, mcnemar_exact(fixed, broken))
