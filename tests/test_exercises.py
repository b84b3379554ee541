"""Each lesson's exercises and their copies in its solution notebook are the same text, and each says its
level and its cost. The exercise is written once, in the lesson; the solution quotes it word for word."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
LEVEL_AND_COST = re.compile(r"^\*\*\((easy|medium|hard) · (no GPU|GPU), \d+(-\d+)? min\)\*\* ")
LESSONS = sorted(p for p in NOTEBOOKS.glob("0*.ipynb") if (NOTEBOOKS / "solutions" / f"{p.stem}_solutions.ipynb").exists())


def _normalise(text: str) -> str:
    return " ".join(text.split())


def lesson_exercises(path: Path) -> dict[int, str]:
    """``{number: text}`` from the numbered list under the lesson's "## Exercises" heading."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and "## Exercises" in cell.source:
            section = cell.source.split("## Exercises", 1)[1].split("\n## ", 1)[0]
            items = re.split(r"^(\d+)\. ", section, flags=re.MULTILINE)
            # items: [intro, "1", text, "2", text, ...]; a text ends at the first unindented paragraph
            exercises = {}
            for number, text in zip(items[1::2], items[2::2], strict=True):
                kept = []
                for line in text.splitlines():
                    if kept and line and not line.startswith("   "):
                        break
                    kept.append(line)
                exercises[int(number)] = _normalise("\n".join(kept))
            return exercises
    return {}


def solution_exercises(path: Path) -> dict[int, str]:
    """``{number: text}`` from the block quote right under each "## Exercise N" heading."""
    nb = nbformat.read(path, as_version=4)
    exercises = {}
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.splitlines()
        for i, line in enumerate(lines):
            match = re.match(r"^## Exercise (\d+)\b", line)
            if match:
                quoted = []
                for follow in lines[i + 1 :]:
                    if follow.startswith(">"):
                        quoted.append(follow[1:].strip())
                    elif quoted:
                        break
                exercises[int(match.group(1))] = _normalise("\n".join(quoted))
    return exercises


def test_every_lesson_with_solutions_is_checked():
    assert [p.name[:2] for p in LESSONS] == ["01", "02", "03", "04", "05"]


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_the_solution_notebook_quotes_each_exercise_word_for_word(lesson):
    solution = NOTEBOOKS / "solutions" / f"{lesson.stem}_solutions.ipynb"
    asked, answered = lesson_exercises(lesson), solution_exercises(solution)
    assert len(asked) >= 3, f"{lesson.name}: found {len(asked)} exercises"
    levels = {LEVEL_AND_COST.match(text).group(1) for text in asked.values() if LEVEL_AND_COST.match(text)}
    assert levels == {"easy", "medium", "hard"}, f"{lesson.name}: levels {sorted(levels)}"
    assert sorted(answered) == sorted(asked), f"{solution.name} answers {sorted(answered)}, the lesson asks {sorted(asked)}"
    for number, text in asked.items():
        assert answered[number] == text, f"exercise {number}:\n lesson:   {text}\n solution: {answered[number]}"


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_each_exercise_says_its_level_and_its_cost(lesson):
    for number, text in lesson_exercises(lesson).items():
        assert LEVEL_AND_COST.match(text), f"{lesson.name} exercise {number} starts {text[:40]!r}"


def test_the_parsers_see_a_difference():
    lesson = "## Exercises\nIntro.\n\n1. **(easy · no GPU, 5 min)** Do this\n   and that.\n2. **(hard · GPU, 15 min)** Other.\n\nSolutions: x"
    assert len(re.split(r"^(\d+)\. ", lesson.split("## Exercises", 1)[1], flags=re.MULTILINE)) == 5
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(lesson)])
    quoted = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "## Exercise 1: x\n\n> **(easy · no GPU, 5 min)** Do this\n> and THAT.\n\nAnswer.")])
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "a.ipynb", Path(tmp) / "b.ipynb"
        nbformat.write(nb, a)
        nbformat.write(quoted, b)
        assert lesson_exercises(a) == {1: "**(easy · no GPU, 5 min)** Do this and that.",
                                       2: "**(hard · GPU, 15 min)** Other."}
        assert solution_exercises(b) == {1: "**(easy · no GPU, 5 min)** Do this and THAT."}
        assert lesson_exercises(a)[1] != solution_exercises(b)[1]
