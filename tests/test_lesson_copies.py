"""The ideas a lesson writes out (notebook 02's grading rules and generation loop, notebook 04's Wilson interval
and exact McNemar test) equal the package's tested copies; notebook 05's timed streamer works, run from the notebooks' own cells, on many inputs.
(The notebooks also assert this on their own data when they run; 01's NF4 round trip is checked that way.)"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from llmcourse import data, prompts, stats
from llmcourse.generation import generate_batched

ROOT = Path(__file__).resolve().parents[1]


def lesson_functions(notebook: str, cell_id: str) -> dict:
    """The imports, functions and classes a notebook cell defines (the rest needs the notebook's state)."""
    nb = nbformat.read(ROOT / "notebooks" / notebook, as_version=4)
    source = next(c.source for c in nb.cells if c.get("id") == cell_id)
    tree = ast.parse(source)
    tree.body = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.ClassDef)]
    namespace: dict = {}
    exec(compile(tree, f"{notebook}:{cell_id}", "exec"), namespace)
    return namespace


CLEANING = lesson_functions("02_dataset_and_baseline.ipynb", "cell-08")
GRADING = lesson_functions("02_dataset_and_baseline.ipynb", "cell-12")
GENERATION = lesson_functions("02_dataset_and_baseline.ipynb", "generate-01")
STATS = lesson_functions("04_evaluate_and_compare.ipynb", "stats-01")
CHAT = lesson_functions("05_use_share_merge.ipynb", "cell-08")
REALISTIC = [json.loads(line) for line in (ROOT / "data" / "realistic_outputs.jsonl").read_text().splitlines()
             if line.strip()]


def test_02s_solution_text_equals_the_package():
    for split in ("train", "test"):
        for row in data.load_split("local", split):
            assert CLEANING["solution_text"](row["answer"]) == data.solution_text(row["answer"])


def assert_same_grades(output: str, gold: str) -> None:
    g = data.grade(output, gold)
    strict, flexible = GRADING["strict_answer"](output), GRADING["flexible_answer"](output)
    assert (strict, flexible) == (data.to_number(g.strict), data.to_number(g.flexible)), output
    assert GRADING["is_right"](strict, g.gold) == g.strict_correct, output
    assert GRADING["is_right"](flexible, g.gold) == g.flexible_correct, output


@pytest.mark.parametrize("row", REALISTIC, ids=lambda row: row["id"])
def test_02s_grading_rules_equal_the_package_on_realistic_outputs(row):
    assert_same_grades(row["output"], row["gold"])


@given(st.text(alphabet="0123456789.,$- #\n\u2212xQ:", max_size=40), st.integers(-1000, 1000))
def test_02s_grading_rules_equal_the_package_on_number_soup(output, gold):
    assert_same_grades(output, f"#### {gold}")


def test_02s_generation_loop_equals_generate_batched(tiny_llama_4bit):
    model, tok = tiny_llama_4bit
    texts = sorted((prompts.plain_prompt(q) for q in ["Tom has 3 apples and buys 4 more. How many?",
                                                      "What is 2 + 2?", "A box holds 12 eggs. How many in 5?"]),
                   key=len, reverse=True)
    end_ids = prompts.end_token_ids(tok, "plain")
    generate = GENERATION["generate"]
    padding_side = tok.padding_side  # the lesson's loop leaves it on the left; other tests share the tokenizer
    try:
        free = generate(model, tok, texts, 12, end_ids, ())
        # A stop string the random model really writes, so that the cut is exercised too.
        stop = next(answer[2:4] for answer in free if len(answer) >= 4)
        for stops in [(), (stop,)]:
            tested, _ = generate_batched(model, tok, texts, batch_size=len(texts), max_new_tokens=12,
                                         end_token_ids=end_ids, stop_strings=stops, progress=False)
            assert generate(model, tok, texts, 12, end_ids, stops) == [g.output for g in tested]
    finally:
        tok.padding_side = padding_side
    assert any(g.stop_reason == "stop_string" for g in tested)


@given(st.integers(1, 3000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_04s_wilson_interval_equals_the_package(counts):
    ours, tested = STATS["wilson_interval"](*counts), stats.wilson_interval(*counts)
    assert ours == pytest.approx(tested, abs=1e-12)


@given(st.integers(0, 400), st.integers(0, 400))
def test_04s_mcnemar_equals_the_package(fixed, broken):
    assert STATS["mcnemar_exact"](fixed, broken) == pytest.approx(stats.mcnemar_exact(fixed, broken), rel=1e-12)


def test_05s_streamer_prints_only_the_answer_and_times_the_first_token(tiny_llama_4bit, capsys):
    model, tokenizer = tiny_llama_4bit
    inputs = tokenizer("Question: 1 + 1?\nAnswer:", return_tensors="pt")
    streamer = CHAT["TimedStreamer"](tokenizer)
    with torch.no_grad():
        out = model.generate(**inputs, streamer=streamer, do_sample=False, max_new_tokens=5,
                             pad_token_id=tokenizer.pad_token_id)
    answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    printed = capsys.readouterr().out
    assert "Question" not in printed  # skip_prompt
    assert printed.strip() == answer.strip()
    assert streamer.first_token_s is not None and streamer.first_token_s > 0
