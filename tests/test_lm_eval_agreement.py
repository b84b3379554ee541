"""Our grader agrees with lm-evaluation-harness's gsm8k scoring, except as documented.

The reference pipeline below is lm-evaluation-harness 0.4.x, read from the repository
(task file at commit 47f16bf6, filter at a06c80e6, metric at a4d16d36):

* ``lm_eval/tasks/gsm8k/gsm8k.yaml`` (task ``version: 3.0``):
  ``doc_to_target: "{{answer}}"`` (the whole answer is the reference), the two
  ``filter_list`` entries copied into ``FILTERS`` below, and ``metric_list:
  exact_match`` with ``ignore_case: true``, ``ignore_punctuation: false`` and
  ``regexes_to_ignore: [",", "\\$", "(?s).*#### ", "\\.$"]``.
* ``lm_eval/filters/extraction.py``: ``RegexFilter.apply`` (copied as ``regex_filter``).
* ``lm_eval/filters/selection.py``: ``TakeFirstFilter`` keeps the first of the
  ``repeats`` generations (there is one here, hence ``[0]``).
* ``lm_eval/api/metrics.py``: ``exact_match_hf_evaluate`` (copied as ``exact_match``),
  called by ``ConfigurableTask.process_results`` in ``lm_eval/api/task.py`` with
  ``references=[gold], predictions=[result]``.

lm_eval itself is not a dependency (installing it would move pinned packages); when it
is importable, its own ``RegexFilter`` and ``exact_match_hf_evaluate`` replace the
copies.
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmcourse.data import LM_EVAL_FLEXIBLE_PATTERN, LM_EVAL_STRICT_PATTERN, grade

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "realistic_outputs.jsonl"

# filter_list of lm_eval/tasks/gsm8k/gsm8k.yaml: name -> (regex_pattern, group_select).
FILTERS = {
    "strict": ("#### (\\-?[0-9\\.\\,]+)", 0),
    "flexible": ("(-?[$0-9.,]{2,})|(-?[0-9]+)", -1),
}
FALLBACK = "[invalid]"
METRIC_KWARGS: dict[str, Any] = {
    "regexes_to_ignore": [",", "\\$", "(?s).*#### ", "\\.$"],
    "ignore_case": True,
    "ignore_punctuation": False,
}


def regex_filter(
    resps: list[list[str]], regex_pattern: str, group_select: int
) -> list[list[str]]:
    """``RegexFilter(regex_pattern, group_select, "[invalid]").apply`` of lm_eval."""
    regex = re.compile(regex_pattern)
    filtered_resps = []
    for inst in resps:
        filtered = []
        for resp in inst:
            match = regex.findall(resp)
            if match:
                match = match[group_select]
                if isinstance(match, tuple):
                    match = [m for m in match if m]
                    match = match[0] if match else FALLBACK
                match = match.strip()
            else:
                match = FALLBACK
            filtered.append(match)
        filtered_resps.append(filtered)
    return filtered_resps


def exact_match(
    predictions: list[str],
    references: list[str],
    regexes_to_ignore: list[str] | None = None,
    ignore_case: bool = False,
    ignore_punctuation: bool = False,
    ignore_numbers: bool = False,
) -> dict[str, float]:
    """lm_eval.api.metrics.exact_match_hf_evaluate (ported there from HF evaluate)."""
    if regexes_to_ignore is not None:
        for s in regexes_to_ignore:
            predictions = np.array([re.sub(s, "", x) for x in predictions])
            references = np.array([re.sub(s, "", x) for x in references])
    else:
        predictions = np.asarray(predictions)
        references = np.asarray(references)
    if ignore_case:
        predictions = np.char.lower(predictions)
        references = np.char.lower(references)
    if ignore_punctuation:
        repl_table = string.punctuation.maketrans("", "", string.punctuation)
        predictions = np.char.translate(predictions, table=repl_table)
        references = np.char.translate(references, table=repl_table)
    if ignore_numbers:
        repl_table = string.digits.maketrans("", "", string.digits)
        predictions = np.char.translate(predictions, table=repl_table)
        references = np.char.translate(references, table=repl_table)
    score_list = predictions == references
    return {"exact_match": float(np.mean(score_list))}


def _copied_filter(output: str, name: str) -> str:
    pattern, group_select = FILTERS[name]
    return regex_filter([[output]], pattern, group_select)[0][0]


try:  # pragma: no cover - depends on the environment
    from lm_eval.api.metrics import exact_match_hf_evaluate as _lm_exact_match
    from lm_eval.filters.extraction import RegexFilter as _LmRegexFilter
except ImportError:
    HAVE_LM_EVAL = False
    _apply_filter = _copied_filter
    _exact_match = exact_match
else:  # pragma: no cover
    HAVE_LM_EVAL = True

    def _apply_filter(output: str, name: str) -> str:
        pattern, group_select = FILTERS[name]
        regex = _LmRegexFilter(
            regex_pattern=pattern, group_select=group_select, fallback=FALLBACK
        )
        return next(iter(regex.apply([[output]], [{}])))[0]

    _exact_match = _lm_exact_match


def lm_eval_filtered(output: str, name: str) -> str:
    """What lm-eval's filter pipeline ``name`` (regex, take_first) makes of output."""
    return _apply_filter(output, name)


def lm_eval_correct(output: str, gold_answer: str, name: str) -> bool:
    """lm-eval's exact_match verdict for one generation under filter ``name``."""
    prediction = lm_eval_filtered(output, name)
    score = _exact_match(
        predictions=[prediction], references=[gold_answer], **METRIC_KWARGS
    )
    return float(score["exact_match"]) == 1.0


def _load_fixture() -> list[dict[str, Any]]:
    with FIXTURE.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


ROWS = _load_fixture()
AGREEING = [row for row in ROWS if "note" not in row]
DIFFERING = [row for row in ROWS if "note" in row]


def test_fixture_is_well_formed() -> None:
    assert len(ROWS) >= 40
    ids = [row["id"] for row in ROWS]
    assert len(ids) == len(set(ids)), "duplicate ids"
    for row in ROWS:
        assert set(row) <= {"id", "output", "gold", "expected", "note", "lm_eval"}, row[
            "id"
        ]
        assert set(row["expected"]) == {"strict", "flexible"}, row["id"]
        assert ("note" in row) == ("lm_eval" in row), row["id"]


def test_our_patterns_are_lm_evals() -> None:
    assert LM_EVAL_STRICT_PATTERN == FILTERS["strict"][0]
    assert LM_EVAL_FLEXIBLE_PATTERN == FILTERS["flexible"][0]


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row["id"])
def test_our_verdicts(row: dict[str, Any]) -> None:
    result = grade(row["output"], row["gold"])
    assert {
        "strict": result.strict_correct,
        "flexible": result.flexible_correct,
    } == row["expected"]
    assert result.format_ok == (result.strict is not None)


@pytest.mark.parametrize("row", AGREEING, ids=lambda row: row["id"])
def test_agrees_with_lm_eval(row: dict[str, Any]) -> None:
    result = grade(row["output"], row["gold"])
    lm_eval = {
        name: lm_eval_correct(row["output"], row["gold"], name) for name in FILTERS
    }
    assert lm_eval == {
        "strict": result.strict_correct,
        "flexible": result.flexible_correct,
    }, (
        {name: lm_eval_filtered(row["output"], name) for name in FILTERS},
        (result.strict, result.flexible),
    )


@pytest.mark.parametrize("row", DIFFERING, ids=lambda row: row["id"])
def test_differs_from_lm_eval_as_documented(row: dict[str, Any]) -> None:
    result = grade(row["output"], row["gold"])
    ours = {"strict": result.strict_correct, "flexible": result.flexible_correct}
    lm_eval = {
        name: lm_eval_correct(row["output"], row["gold"], name) for name in FILTERS
    }
    assert lm_eval == row["lm_eval"], {
        n: lm_eval_filtered(row["output"], n) for n in FILTERS
    }
    assert ours == row["expected"]
    assert ours != lm_eval, "documented as a difference but both graders agree"


def test_only_unicode_minus_makes_us_stricter() -> None:
    # Every documented difference but the U+2212 one makes us accept what lm-eval
    # rejects.
    stricter = [
        row
        for row in DIFFERING
        if any(row["lm_eval"][name] and not row["expected"][name] for name in FILTERS)
    ]
    assert stricter, "the fixture should document the stricter direction too"
    assert all("\u2212" in row["output"] for row in stricter)


@pytest.mark.skipif(
    not HAVE_LM_EVAL, reason="lm_eval not installed; the copied pipeline is used"
)
def test_copied_pipeline_matches_installed_lm_eval() -> None:  # pragma: no cover
    for row in ROWS:
        for name in FILTERS:
            copied = _copied_filter(row["output"], name)
            assert copied == lm_eval_filtered(row["output"], name), (row["id"], name)
            verdict = exact_match(
                predictions=[copied], references=[row["gold"]], **METRIC_KWARGS
            )
            assert verdict["exact_match"] == float(
                lm_eval_correct(row["output"], row["gold"], name)
            )


# Text assembled from the pieces model outputs are made of, without U+2212 (the one
# character for which we knowingly reject what lm-eval accepts).
_PIECES = st.sampled_from(
    [
        "#### ",
        "####",
        " ",
        "\n",
        "$",
        ",",
        ".",
        "...",
        "-",
        "**",
        "$$",
        "\\boxed{",
        "}",
        "%",
        "The answer is ",
        "Question: ",
        "18",
        "1,800",
        "18.0",
        "18.00",
        "-18",
        "0",
        "7",
        "2.5",
        "1,234",
        "eighteen",
        "\u2013",
    ]
)


@given(
    pieces=st.lists(_PIECES, max_size=12),
    gold=st.sampled_from(
        ["#### 18", "#### -18", "#### 1,800", "#### 7", "#### 1234", "#### 0"]
    ),
)
def test_whatever_lm_eval_accepts_we_accept(pieces: list[str], gold: str) -> None:
    output = "".join(pieces)
    result = grade(output, gold)
    if lm_eval_correct(output, gold, "strict"):
        assert result.strict_correct, lm_eval_filtered(output, "strict")
    if lm_eval_correct(output, gold, "flexible"):
        assert result.flexible_correct, lm_eval_filtered(output, "flexible")
