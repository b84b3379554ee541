"""Tests for llmcourse.stats: Wilson intervals, exact McNemar, paired comparisons."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmcourse.stats import (
    PairedResult,
    mcnemar_exact,
    paired_comparison,
    wilson_interval,
)

# --- wilson_interval ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n", "lower", "upper"),
    [
        # Newcombe RG (1998), "Two-sided confidence intervals for the single proportion:
        # comparison of seven methods", Statistics in Medicine 17:857-872, Table I,
        # method 3 (score interval without continuity correction), 4 decimals.
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0000, 0.1611),
        (1, 29, 0.0061, 0.1718),
        # Same method, e.g. R `binom::binom.confint(x, 10, methods = "wilson")`.
        (0, 10, 0.0000, 0.2775),
        (10, 10, 0.7225, 1.0000),
        (5, 10, 0.2366, 0.7634),
    ],
)
def test_wilson_reference_values(
    successes: int, n: int, lower: float, upper: float
) -> None:
    low, high = wilson_interval(successes, n)
    assert low == pytest.approx(lower, abs=5e-5)
    assert high == pytest.approx(upper, abs=5e-5)


def test_wilson_extremes_are_exact() -> None:
    assert wilson_interval(0, 1319)[0] == 0.0
    assert wilson_interval(1319, 1319)[1] == 1.0


def test_wilson_empty_sample_is_uninformative() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_z_controls_the_width() -> None:
    narrow = wilson_interval(50, 100, z=1.0)
    wide = wilson_interval(50, 100, z=2.575829)
    assert wide[0] < narrow[0] < 0.5 < narrow[1] < wide[1]


@pytest.mark.parametrize(
    ("successes", "n", "message"),
    [(11, 10, "cannot exceed"), (-1, 10, "non-negative"), (0, -1, "non-negative")],
)
def test_wilson_rejects_impossible_counts(successes: int, n: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        wilson_interval(successes, n)


def test_wilson_rejects_non_positive_z() -> None:
    with pytest.raises(ValueError, match="z must be positive"):
        wilson_interval(5, 10, z=0.0)


@given(
    st.integers(min_value=1, max_value=5000).flatmap(
        lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
    )
)
def test_wilson_contains_the_estimate(counts: tuple[int, int]) -> None:
    successes, n = counts
    low, high = wilson_interval(successes, n)
    assert 0.0 <= low <= successes / n <= high <= 1.0
    # Symmetry: failures' interval mirrors successes'.
    mirror_low, mirror_high = wilson_interval(n - successes, n)
    assert low == pytest.approx(1 - mirror_high, abs=1e-12)
    assert high == pytest.approx(1 - mirror_low, abs=1e-12)


@given(st.integers(min_value=1, max_value=3000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
@settings(deadline=None)  # the first call imports scipy
def test_wilson_matches_scipy(counts: tuple[int, int]) -> None:
    stats = pytest.importorskip("scipy.stats")
    successes, n = counts
    reference = stats.binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(successes, n) == pytest.approx((reference.low, reference.high), abs=1e-7)


# --- mcnemar_exact --------------------------------------------------------------------


def test_mcnemar_known_values() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(0, 1) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    # 2 * (C(13,0)+C(13,1)+C(13,2)+C(13,3)) / 2**13 = 2 * 378 / 8192
    assert mcnemar_exact(3, 10) == pytest.approx(756 / 8192)


@pytest.mark.parametrize("b", [0, 1, 2, 3, 5, 8, 13, 25, 40, 100, 250])
@pytest.mark.parametrize("c", [0, 1, 2, 4, 7, 12, 30, 60, 99, 300])
def test_mcnemar_matches_scipy_binomtest(b: int, c: int) -> None:
    stats = pytest.importorskip("scipy.stats")
    expected = 1.0 if b + c == 0 else stats.binomtest(min(b, c), b + c, 0.5).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_mcnemar_large_counts_do_not_underflow_or_overflow() -> None:
    # A full GSM8K test set (1319 questions) of discordant pairs.
    p = mcnemar_exact(600, 719)
    assert 0.0 < p < 0.01
    assert (
        mcnemar_exact(0, 1000) == 2.0**-999
    )  # exact although 0.5**1000 terms would be tiny
    assert mcnemar_exact(659, 660) == 1.0


@given(st.integers(min_value=0, max_value=400), st.integers(min_value=0, max_value=400))
def test_mcnemar_is_a_symmetric_probability(b: int, c: int) -> None:
    p = mcnemar_exact(b, c)
    assert 0.0 <= p <= 1.0
    assert p == mcnemar_exact(c, b)


def test_mcnemar_rejects_negative_counts() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        mcnemar_exact(-1, 3)


# --- paired_comparison ----------------------------------------------------------------


def test_paired_comparison_counts() -> None:
    before = [True, True, False, False, True, False, False, True]
    after = [True, False, True, True, True, False, True, True]
    result = paired_comparison(before, after)
    assert result == PairedResult(
        n=8,
        before_correct=4,
        after_correct=6,
        difference=0.25,
        both_right=3,
        both_wrong=1,
        fixed=3,
        broken=1,
        p_value=mcnemar_exact(3, 1),
    )
    assert result.p_value == pytest.approx(0.625)
    assert result.before_accuracy == 0.5
    assert result.after_accuracy == 0.75


def test_paired_comparison_accepts_zero_one_and_numpy_bools() -> None:
    np = pytest.importorskip("numpy")
    result = paired_comparison(np.array([1, 0, 1], dtype=bool), [0, 1, 1])
    assert (result.fixed, result.broken, result.both_right) == (1, 1, 1)


def test_paired_comparison_empty() -> None:
    result = paired_comparison([], [])
    assert (result.n, result.difference, result.p_value) == (0, 0.0, 1.0)
    assert result.before_accuracy == 0.0


def test_paired_comparison_rejects_different_lengths() -> None:
    with pytest.raises(ValueError, match="same questions: 2 != 3"):
        paired_comparison([True, False], [True, False, True])


def test_paired_comparison_rejects_non_booleans() -> None:
    with pytest.raises(ValueError, match=r"after\[1\] is not a boolean"):
        paired_comparison([True, False], [True, "False"])  # type: ignore[list-item]


@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=200))
def test_paired_comparison_invariants(pairs: list[tuple[bool, bool]]) -> None:
    before = [b for b, _ in pairs]
    after = [a for _, a in pairs]
    result = paired_comparison(before, after)
    assert result.n == len(pairs)
    assert (
        result.both_right + result.both_wrong + result.fixed + result.broken == result.n
    )
    assert result.before_correct == sum(before)
    assert result.after_correct == sum(after)
    assert result.after_correct - result.before_correct == result.fixed - result.broken
    if result.n:
        assert math.isclose(result.difference, (sum(after) - sum(before)) / result.n)
    assert result.p_value == mcnemar_exact(result.fixed, result.broken)
