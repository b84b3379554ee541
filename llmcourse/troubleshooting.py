"""The one catalogue of failure messages: what the learner sees, why it happened, what to do.

Code that can fail in a way a learner should understand raises ``CourseError(key, detail, **values)`` with a key
of ``PROBLEMS``, so a broken cell ends in three lines (what, why, what to do) instead of a long traceback. The
messages are prose in ``problems.txt`` (every ``{field}`` in them is required); the README's troubleshooting table
(``markdown_table()``) is generated from the same text.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import NamedTuple

from llmcourse.profiles import LLAMA_BASE, LLAMA_BASE_UNGATED


class Problem(NamedTuple):
    symptom: str  # what the learner sees, short
    cause: str  # why it happened
    fix: str  # exact steps

    def required(self) -> set[str]:  # the {field} names that the code raising the error must fill
        return {name for text in self for _, name, _, _ in string.Formatter().parse(text) if name}


_RESTART = "Runtime > Restart session (Jupyter: Kernel > Restart Kernel)"


def _read(path: Path) -> dict[str, Problem]:
    """``problems.txt``: per problem a ``## key`` line, then the symptom, the cause and the fix as paragraphs."""
    problems = {}
    for block in path.read_text(encoding="utf-8").split("\n## ")[1:]:
        key, text = block.split("\n", 1)
        text = text.replace("{RESTART}", _RESTART).replace("{LLAMA_BASE}", LLAMA_BASE)
        problems[key] = Problem(*(" ".join(paragraph.split()) for paragraph in text.strip().split("\n\n")))
    return problems


PROBLEMS = _read(Path(__file__).with_name("problems.txt"))


class CourseError(RuntimeError):
    """A failure from the catalogue: ``str(err)`` says what happened (with ``detail``), why, and what to do. A field
    left out of ``values`` is a ``TypeError`` (a bug in the caller): the learner never reads a message with blanks."""

    def __init__(self, key: str, detail: str = "", **values) -> None:
        if key not in PROBLEMS:
            raise KeyError(f"Unknown problem key {key!r}. Known keys: {', '.join(PROBLEMS)}.")
        missing = sorted(PROBLEMS[key].required() - set(values))
        if missing:
            raise TypeError(f"CourseError({key!r}) needs a value for {', '.join(missing)}")
        self.key, self.problem, self.detail, self.values = key, PROBLEMS[key], str(detail), values
        self.symptom, self.cause, self.fix = (text.format(**values) for text in self.problem)
        first = f"{self.symptom}: {detail}" if detail else self.symptom
        super().__init__(f"{first}\nWhy: {self.cause}\nWhat to do: {self.fix}")


# How the README's table writes a field: a placeholder, never an invented value (others: <model id>, <path>...).
PLACEHOLDERS = {
    "row": "<N>", "source": "<file>", "differences": "<the settings that differ>", "needed_gb": "<N>",
    "adapter_base": "<the adapter's base model>", "free_gb": "<M>", "packages": "<packages and versions>",
    "name": "<NAME>", "accepted": "<what the knob accepts>", "closest": "<the closest names>", "suggestion": "<N>",
    "known": "<the known names>", "saved_at": "<the share folder>", "fallback": f"<e.g. {LLAMA_BASE_UNGATED}>",
}


def _cell(text: str) -> str:
    """One line, ``|`` escaped, ``<`` outside code spans as ``&lt;`` (Markdown would hide ``<name>`` as a tag)."""
    parts = " ".join(text.split()).replace("\\", "\\\\").replace("|", "\\|").split("`")
    return "`".join(part if i % 2 else part.replace("<", "&lt;") for i, part in enumerate(parts))


def markdown_table() -> str:
    """The README's table "If you see | Why | Do this", fields written as placeholders in code spans."""
    lines = ["| If you see | Why | Do this |", "|---|---|---|"]
    for problem in PROBLEMS.values():
        values = {name: f"`{PLACEHOLDERS.get(name, '<' + name.replace('_', ' ') + '>')}`"
                  for name in problem.required()}
        lines.append("| " + " | ".join(_cell(text.format(**values)) for text in problem) + " |")
    return "\n".join(lines)
