"""Answer extraction and grading for GSM8K, kept comparable with lm-evaluation-harness.

lm-evaluation-harness 0.4.x (``lm_eval/tasks/gsm8k/gsm8k.yaml``, task version 3.0)
scores a generation with two filters, each followed by ``take_first``:

* ``strict-match``: ``regex_pattern: "#### (\\-?[0-9\\.\\,]+)"``, ``group_select: 0``
  (the first match);
* ``flexible-extract``: ``regex_pattern: "(-?[$0-9.,]{2,})|(-?[0-9]+)"``,
  ``group_select: -1`` (the last match).

``RegexFilter`` (``lm_eval/filters/extraction.py``) runs ``re.findall``, picks the
selected match, keeps the non-empty group of a tuple match, ``.strip()``s it, and falls
back to ``"[invalid]"`` when nothing matches. The ``exact_match`` metric
(``exact_match_hf_evaluate`` in ``lm_eval/api/metrics.py``) then applies
``re.sub(r, "", s)`` for ``r`` in ``","``, ``"\\$"``, ``"(?s).*#### "``, ``"\\.$"`` (in
that order) to both the filtered prediction and the reference (the whole GSM8K answer,
whose reasoning the third regex deletes), lower-cases both (``ignore_case: true``;
``ignore_punctuation: false``) and compares the two strings for equality.

This module uses the same regexes and the same first/last choice, but compares numbers
(``decimal.Decimal``) instead of strings. Where that changes a verdict:

* ``5.0``, ``5.00``, ``05`` or ``$1,234.00.`` against gold ``5`` / ``1234``: correct
  here, wrong in lm-eval (its string ``"5.0"`` is not ``"5"``).
* Several trailing dots (``18...``): we strip them all, lm-eval strips one.
* U+2212 MINUS SIGN (``−18``, as typeset by LaTeX-minded models) is a minus sign here;
  lm-eval's ``-?`` does not match it, so ``#### −18`` is ``"[invalid]"`` for its
  strict-match and ``18`` for its flexible-extract. So a stray ``−`` can also turn an
  lm-eval "correct" into a "wrong" here (``−5`` against gold ``5``).
* flexible: lm-eval takes the last *match* even when it is not a number (``...``,
  ``$$``, ``$.`` after ``\\boxed{18}``); we take the last match that is a number, so
  ``$$ 18 $$`` and ``18. Done...`` grade on ``18``.

Generations should be cut at lm-eval's stop sequences (``"Question:"``, ``"</s>"``,
``"<|im_end|>"``) before grading, as lm-eval does at generation time; these functions
do not cut, so a model that goes on to invent the next question is graded on that text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "LM_EVAL_FLEXIBLE_PATTERN",
    "LM_EVAL_STRICT_PATTERN",
    "Grade",
    "answers_match",
    "extract_flexible",
    "extract_gold",
    "extract_strict",
    "grade",
    "normalize_number",
    "strip_calculator_notes",
    "to_number",
]

# Verbatim from lm_eval/tasks/gsm8k/gsm8k.yaml (0.4.x); the patterns we run are these
# with the minus sign widened, see _MINUS.
LM_EVAL_STRICT_PATTERN = r"#### (\-?[0-9\.\,]+)"
LM_EVAL_FLEXIBLE_PATTERN = r"(-?[$0-9.,]{2,})|(-?[0-9]+)"

# Inside free text only genuine minus signs are accepted: an en or em dash glued to a
# number ("the answer—18") is punctuation far more often than a sign.
_MINUS = "\\-\u2212\ufe63\uff0d"
_STRICT_RE = re.compile(rf"#### ([{_MINUS}]?[0-9.,]+)")
_FLEXIBLE_RE = re.compile(rf"([{_MINUS}]?[$0-9.,]{{2,}})|([{_MINUS}]?[0-9]+)")

# In an isolated number string any dash before the digits can only be a sign.
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
_DASH_TABLE = str.maketrans(dict.fromkeys(_DASHES, "-"))
# [0-9], not \d: Decimal would accept other scripts' digits, which no GSM8K answer uses.
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_GOLD_LINE_RE = re.compile(r"^####(.*)$", re.MULTILINE)
_CALCULATOR_NOTE_RE = re.compile(r"<<[^<>]*>>")


def _canonical(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))  # also folds "-0" into "0"
    return format(value, "f").rstrip("0")


def normalize_number(text: str) -> str | None:
    """Return ``text`` as a canonical number string, or None if it is not a number.

    Removes whitespace, ``$``, commas (thousands separators), trailing dots and a
    leading ``+``; maps unicode minus and dashes to ``-``; drops trailing zeros of
    decimals.
    ``" $1,234.50. "`` -> ``"1234.5"``, ``"−7"`` -> ``"-7"``, ``"5.0"`` -> ``"5"``.
    """
    cleaned = "".join(text.split()).translate(_DASH_TABLE)
    cleaned = cleaned.replace("$", "").replace(",", "").rstrip(".")
    if not _NUMBER_RE.fullmatch(cleaned):
        return None
    return _canonical(Decimal(cleaned))


def to_number(text: str | None) -> Decimal | None:
    """Parse ``text`` with :func:`normalize_number` into an exact Decimal, else None."""
    if text is None:
        return None
    normalized = normalize_number(text)
    return None if normalized is None else Decimal(normalized)


def extract_strict(output: str) -> str | None:
    """The number on the first ``#### N`` (lm-eval strict-match), normalised, or None.

    As in lm-eval, ``####`` must be followed by exactly one space and the number
    (``####18`` and ``#### $18`` do not count), and only the first match counts.
    """
    match = _STRICT_RE.search(output)
    return None if match is None else normalize_number(match.group(1))


def extract_flexible(output: str) -> str | None:
    """The last number in ``output`` (lm-eval flexible-extract), normalised, or None.

    Unlike lm-eval, matches of its regex that are not numbers (``...``, ``$$``) are
    skipped.
    """
    for match in reversed(_FLEXIBLE_RE.findall(output)):
        normalized = normalize_number(match[0] or match[1])
        if normalized is not None:
            return normalized
    return None


def extract_gold(answer: str) -> str:
    """The normalised gold number from a GSM8K answer's final ``#### N`` line.

    Raises ValueError if the answer has no ``####`` line or its value is not a number.
    """
    lines = _GOLD_LINE_RE.findall(answer)
    if not lines:
        raise ValueError(f"GSM8K answer has no '#### N' line: {answer[-200:]!r}")
    value = lines[-1].strip()
    normalized = normalize_number(value)
    if normalized is None:
        raise ValueError(f"GSM8K answer's '####' line is not a number: {value!r}")
    return normalized


def answers_match(predicted: str | None, gold: str) -> bool:
    """Whether ``predicted`` equals ``gold`` as numbers.

    False when ``predicted`` is None or not a number. Raises ValueError when ``gold`` is
    not a number (a data bug, not a wrong answer).
    """
    gold_value = to_number(gold)
    if gold_value is None:
        raise ValueError(f"gold answer is not a number: {gold!r}")
    predicted_value = to_number(predicted)
    return predicted_value is not None and predicted_value == gold_value


@dataclass(frozen=True)
class Grade:
    """Both extractions of one generation and their verdicts against the gold."""

    strict: str | None
    flexible: str | None
    gold: str
    strict_correct: bool
    flexible_correct: bool
    format_ok: bool


def grade(output: str, gold_answer: str) -> Grade:
    """Grade one generation against a GSM8K answer field or a bare gold number.

    ``format_ok`` means a ``#### N`` answer (as strict-match reads it) is present.
    """
    bare = normalize_number(gold_answer)
    gold = bare if bare is not None else extract_gold(gold_answer)
    strict = extract_strict(output)
    flexible = extract_flexible(output)
    return Grade(
        strict=strict,
        flexible=flexible,
        gold=gold,
        strict_correct=answers_match(strict, gold),
        flexible_correct=answers_match(flexible, gold),
        format_ok=strict is not None,
    )


def strip_calculator_notes(text: str) -> str:
    """Remove GSM8K's calculator notes: ``48/2 = <<48/2=24>>24`` -> ``48/2 = 24``."""
    return _CALCULATOR_NOTE_RE.sub("", text)
