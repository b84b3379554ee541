"""Tests for the grader in llmcourse.data: normalisation, extraction, gold parsing, grading."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from llmcourse.data import (
    LM_EVAL_STRICT_PATTERN,
    Grade,
    answers_match,
    extract_flexible,
    extract_gold,
    extract_strict,
    grade,
    normalize_number,
    solution_text,
    to_number,
)

GSM8K_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gsm8k"


# --- normalize_number -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("18", "18"),
        (" 18 ", "18"),
        ("1,234", "1234"),
        ("1,234,567", "1234567"),
        ("$18", "18"),
        ("$1,200", "1200"),
        ("$1,234.00.", "1234"),
        ("18.", "18"),
        ("18...", "18"),
        ("5.0", "5"),
        ("5.00", "5"),
        ("2.50", "2.5"),
        ("0.125", "0.125"),
        (".5", "0.5"),
        ("-.5", "-0.5"),
        ("-7", "-7"),
        ("\u22127", "-7"),  # MINUS SIGN
        ("\u20137", "-7"),  # EN DASH
        ("\u20147", "-7"),  # EM DASH
        ("\uff0d7", "-7"),  # FULLWIDTH HYPHEN-MINUS
        ("-$5", "-5"),
        ("$-5", "-5"),
        ("+3", "3"),
        ("-0", "0"),
        ("-0.00", "0"),
        ("007", "7"),
        ("1\u202f234", "1234"),  # narrow no-break space as thousands separator
        ("$18$", "18"),  # inline LaTeX math
    ],
)
def test_normalize_number(text: str, expected: str) -> None:
    assert normalize_number(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        ".",
        "...",
        "$",
        "$$",
        ",",
        "-",
        "+",
        "--5",
        "+-5",
        "1.2.3",
        "abc",
        "eighteen",
        "18 apples",
        "1e5",
        "50%",
        "0x1F",
        "nan",
        "Infinity",
        "\u0661\u0662",
    ],  # last: Arabic-Indic 12
)
def test_normalize_number_rejects_non_numbers(text: str) -> None:
    assert normalize_number(text) is None


def test_to_number_is_exact_decimal() -> None:
    assert to_number("0.1") == Decimal("0.1")
    assert to_number("$1,234.50") == Decimal("1234.5")
    assert to_number("12345678901234567890123456789.5") == Decimal(
        "12345678901234567890123456789.5"
    )
    assert to_number("eighteen") is None
    assert to_number(None) is None


def _format_integer(
    n: int, commas: bool, dollar: bool, zeros: int, dot: bool, plus: bool
) -> str:
    digits = f"{abs(n):,}" if commas else str(abs(n))
    if zeros:
        digits += "." + "0" * zeros
    sign = "-" if n < 0 else ("+" if plus else "")
    return f"{sign}{'$' if dollar else ''}{digits}{'.' if dot else ''}"


@given(
    n=st.integers(min_value=-(10**15), max_value=10**15),
    commas=st.booleans(),
    dollar=st.booleans(),
    zeros=st.integers(min_value=0, max_value=3),
    dot=st.booleans(),
    plus=st.booleans(),
    padding=st.sampled_from(["", " ", "\t", "\n"]),
)
def test_normalize_formatted_integers(
    n: int, commas: bool, dollar: bool, zeros: int, dot: bool, plus: bool, padding: str
) -> None:
    text = padding + _format_integer(n, commas, dollar, zeros, dot, plus) + padding
    assert normalize_number(text) == str(n)
    assert to_number(text) == n


@given(
    value=st.decimals(
        allow_nan=False,
        allow_infinity=False,
        places=4,
        min_value=-(10**9),
        max_value=10**9,
    )
)
def test_normalize_decimals_keeps_the_value(value: Decimal) -> None:
    assert to_number(format(value, "f")) == value
    assert to_number(f"{value:,f}") == value


@given(st.text())
@example("$1,234.00.")
@example("\u2212 5")
@example("-.")
def test_normalize_never_raises_and_is_idempotent(text: str) -> None:
    once = normalize_number(text)
    if once is not None:
        assert normalize_number(once) == once
        assert re.fullmatch(r"-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?", once), once


@given(st.text())
def test_extractors_never_raise_and_return_normalised_numbers(text: str) -> None:
    for extracted in (extract_strict(text), extract_flexible(text)):
        assert extracted is None or normalize_number(extracted) == extracted


# --- extract_strict -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("She makes 9 * 2 = $18 every day.\n#### 18", "18"),
        ("#### 18", "18"),
        ("#### 1,234", "1234"),
        ("#### 18.", "18"),
        ("#### 18.0", "18"),
        ("#### -3", "-3"),
        (
            "#### \u22123",
            "-3",
        ),  # unicode minus: our deliberate widening of lm-eval's `\-?`
        ("#### 2.5", "2.5"),
        ("#### 18 dollars", "18"),
        (
            "The total is 7.\n#### 18\n#### 20",
            "18",
        ),  # first match, like lm-eval's take_first
        ("so #### 18 it is", "18"),  # lm-eval's regex is not anchored to a line start
        ("####18", None),  # lm-eval requires exactly one space
        ("####  18", None),
        ("#### $18", None),  # `$` is not in lm-eval's strict character class
        ("#### eighteen", None),
        ("#### ...", None),
        ("The answer is 18.", None),
        ("", None),
    ],
)
def test_extract_strict(output: str, expected: str | None) -> None:
    assert extract_strict(output) == expected


# --- extract_flexible -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("The answer is 42.", "42"),
        ("42", "42"),
        ("7", "7"),  # single digits come from lm-eval's second alternative
        ("She had 3 apples, bought 5 more, so 8 in total.", "8"),
        ("It costs $1,200.", "1200"),
        ("Total: $1,234.00.", "1234"),
        ("The temperature is -5 degrees.", "-5"),
        ("The temperature is \u22125 degrees.", "-5"),
        ("Each costs 2.50 dollars.", "2.5"),
        ("So the answer is **18**.", "18"),
        ("Therefore $\\boxed{18}$.", "18"),
        ("$$\n18\n$$", "18"),  # lm-eval would take the trailing "$$"
        ("The answer is 18. Let me double-check...", "18"),  # lm-eval would take "..."
        ("The answer is 18...", "18"),
        ("#### 18", "18"),
        ("####18", "18"),
        ("The answer is eighteen.", None),
        ("I don't know.", None),
        ("", None),
        ("Hmm... $$", None),
        ("3-5", "-5"),  # same as lm-eval: a hyphen before digits reads as a sign
        ("the answer\u201418", "18"),  # an em dash in prose is not a sign
    ],
)
def test_extract_flexible(output: str, expected: str | None) -> None:
    assert extract_flexible(output) == expected


# --- extract_gold, answers_match, grade -----------------------------------------------


def test_extract_gold() -> None:
    assert (
        extract_gold("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs.\n#### 18")
        == "18"
    )
    assert extract_gold("#### 1,080") == "1080"
    assert extract_gold("#### -3") == "-3"
    assert extract_gold("#### 18 ") == "18"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("The answer is 18.", "no '#### N' line"),
        ("", "no '#### N' line"),
        ("#### eighteen", "not a number"),
        ("####", "not a number"),
    ],
)
def test_extract_gold_errors_name_the_problem(answer: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        extract_gold(answer)


@pytest.mark.parametrize(
    ("predicted", "gold", "expected"),
    [
        ("18", "18", True),
        ("18.0", "18", True),
        ("$18.00", "18", True),
        ("1,080", "1080", True),
        ("-3", "\u22123", True),
        ("0.5", ".5", True),
        ("17", "18", False),
        ("-18", "18", False),
        (None, "18", False),
        ("eighteen", "18", False),
    ],
)
def test_answers_match(predicted: str | None, gold: str, expected: bool) -> None:
    assert answers_match(predicted, gold) is expected


def test_answers_match_rejects_a_non_numeric_gold() -> None:
    with pytest.raises(ValueError, match="gold answer is not a number"):
        answers_match("18", "eighteen")


def test_grade_correct_format() -> None:
    result = grade("9 * 2 = 18\n#### 18", "9 * 2 = <<9*2=18>>18\n#### 18")
    assert result == Grade(
        strict="18",
        flexible="18",
        gold="18",
        strict_correct=True,
        flexible_correct=True,
        format_ok=True,
    )


def test_grade_wrong_format_right_number() -> None:
    result = grade("So she makes $18 every day.", "#### 18")
    assert (result.strict, result.flexible, result.gold) == (None, "18", "18")
    assert not result.strict_correct
    assert result.flexible_correct
    assert not result.format_ok


def test_grade_format_ok_but_wrong() -> None:
    result = grade("#### 17", "#### 18")
    assert result.format_ok
    assert not result.strict_correct
    assert not result.flexible_correct


def test_grade_accepts_a_bare_gold_number() -> None:
    assert grade("#### 1,080", "1080").strict_correct


def test_grade_rejects_a_gold_without_answer_line() -> None:
    with pytest.raises(ValueError, match="no '#### N' line"):
        grade("#### 18", "She makes eighteen dollars.")


# --- solution_text (calculator notes) -----------------------------------------------------------


def test_solution_text_strips_calculator_notes() -> None:
    text = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72"
    assert (
        solution_text(text) == "Natalia sold 48/2 = 24 clips in May.\n#### 72"
    )
    assert solution_text("no notes") == "no notes"
    assert solution_text("a <<1+1=2>>2 and <<2*3=6>>6") == "a 2 and 6"


# --- the real GSM8K -------------------------------------------------------------------


def _gsm8k_rows(split: str) -> list[dict[str, str]]:
    path = GSM8K_DIR / f"{split}.jsonl"
    if not path.is_file():
        pytest.skip(
            f"GSM8K {split} split not found at {path} (shared data folder absent)"
        )
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _lm_eval_reference(answer: str) -> str:
    # What lm-eval's exact_match compares a prediction against: the whole answer field
    # after regexes_to_ignore and ignore_case (see tests/test_lm_eval_agreement.py for
    # the source).
    for pattern in (",", "\\$", "(?s).*#### ", "\\.$"):
        answer = re.sub(pattern, "", answer)
    return answer.lower()


@pytest.mark.parametrize("split", ["train", "test"])
def test_every_gsm8k_gold_parses(split: str) -> None:
    rows = _gsm8k_rows(split)
    assert len(rows) > 1000
    strict_re = re.compile(LM_EVAL_STRICT_PATTERN)
    for row in rows:
        answer = row["answer"]
        gold = extract_gold(answer)
        assert to_number(gold) is not None
        # lm-eval's strict filter run on the gold itself finds the same number ...
        lm_eval_strict = strict_re.findall(answer)[0].strip()
        assert to_number(lm_eval_strict) == to_number(gold), answer
        # ... and its exact_match reference string is our gold, character for character.
        assert _lm_eval_reference(answer) == gold, answer
        assert grade(f"#### {gold}", answer).strict_correct


@pytest.mark.parametrize("split", ["train", "test"])
def test_solution_text_on_gsm8k(split: str) -> None:
    rows = _gsm8k_rows(split)
    annotated = 0
    for row in rows:
        answer = row["answer"]
        stripped = solution_text(answer)
        annotated += stripped != answer.strip()
        assert "<<" not in stripped and ">>" not in stripped, answer
        assert stripped.splitlines()[-1] == answer.strip().splitlines()[-1]
        assert extract_gold(stripped) == extract_gold(answer)
    assert annotated > len(rows) // 2  # the notes really were there to strip
