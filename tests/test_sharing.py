"""Tests for llmcourse.sharing: the model card from real result files, and Hub upload failures mapped to
course messages, with huggingface_hub's own error types (never the network)."""

from __future__ import annotations

import dataclasses

import httpx2
import pytest
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled, RepositoryNotFoundError
from huggingface_hub.utils import hf_raise_for_status

from llmcourse.evaluation import EvalRun, EvalSettings, summarize
from llmcourse.results import load_latest, save_run
from llmcourse.sharing import (
    check_write_token,
    hub_push_errors,
    model_card,
    repo_id_for,
    write_model_card,
)
from llmcourse.troubleshooting import CourseError

TOKEN = "hf_" + "Cd2" * 11 + "wxyz"  # built here so no token-like literal is committed


def settings(label: str, adapter: str | None = None) -> EvalSettings:
    return EvalSettings(label=label, model_id="meta-llama/Llama-3.1-8B", adapter=adapter, prompt_format="plain",
                        dataset="openai/gsm8k", split="test", subset_seed=0, subset_size=10, max_new_tokens=256,
                        batch_size=16, profile="t4", weight_format="nf4", compute_dtype="float16",
                        stop_strings=["\nQuestion:"])


def record(i: int, strict: bool, flexible: bool, stop: str) -> dict:
    return {"id": f"test-{i:05d}", "question": f"q{i}", "prompt": "p", "output": "o", "gold": "1", "strict": None,
            "flexible": None, "strict_correct": strict, "flexible_correct": flexible, "format_ok": strict,
            "stop_reason": stop, "new_tokens": 10}


@pytest.fixture
def result_files(tmp_path):
    """Before and after result files written and read back by llmcourse.results, as notebooks 02 and 04 do."""
    before = [record(i, i < 2, i < 5, "length" if i % 2 else "stop_string") for i in range(10)]
    after = [record(i, i < 7, i < 8, "end_token") for i in range(10)]
    after[0] = record(0, False, True, "end_token")  # one right -> wrong
    for label, records, adapter in (("before", before, None), ("after", after, "outputs/t4/adapter")):
        summary = summarize(records, wall_time_s=100.0)
        save_run(EvalRun(settings(label, adapter), summary, records), tmp_path)
    return load_latest(tmp_path, "before"), load_latest(tmp_path, "after")


ADAPTER_CONFIG = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05,
                  "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}
TRAINING_LOG = {"steps": 60, "train_rows": 960, "profile": "t4", "minutes_measured": 23.41, "peak_gb_measured": 9.87}

GOLDEN_LINES = [
    "---",
    "base_model: meta-llama/Llama-3.1-8B",
    "library_name: peft",
    "license: llama3.1",
    "datasets:",
    "- openai/gsm8k",
    "# ada/llama31-gsm8k-lora",
    "- data: GSM8K (MIT licence, https://github.com/openai/grade-school-math), training split",
    "- LoRA rank r = 16, alpha = 32 (scale 2), dropout 0.05, on down_proj, gate_proj, k_proj, o_proj, q_proj, "
    "up_proj, v_proj",
    "- prompt format: plain; base weights in nf4 (4-bit NormalFloat), compute in float16",
    "- 60 optimizer steps on 960 training rows (profile t4)",
    "- training time: 23.4 min measured",
    "- peak GPU memory: 9.87 GB measured",
    "- hardware: free Colab T4",
    "10 held-out questions of the test split (the same questions, prompt, greedy decoding and stop rule before and "
    "after; seed 0), at most 256 new tokens. Accuracy with its 95% Wilson interval.",
    "| base (before) | 20.0% (5.7% to 51.0%) | 50.0% (23.7% to 76.3%) | 20.0% | 50.0% |",
    "| base + this adapter (after) | 60.0% (31.3% to 83.2%) | 80.0% (49.0% to 94.3%) | 60.0% | 100.0% |",
    "Difference (strict): +40.0 points; wrong -> right 5, right -> wrong 1; exact McNemar test p = 0.22.",
    "- base model: Llama 3.1 Community License (https://www.llama.com/llama3_1/license/); \"Built with Llama\"; "
    "this adapter is a derivative of it and comes under the same terms",
]


def test_model_card_from_real_result_files(result_files, tmp_path):
    before, after = result_files
    card = model_card(before, after, ADAPTER_CONFIG, TRAINING_LOG, "ada/llama31-gsm8k-lora", "free Colab T4")
    lines = card.splitlines()
    for line in GOLDEN_LINES:
        assert line in lines, line
    assert lines[0] == "---" and lines.index("---", 1) > 5  # YAML metadata the Hub reads
    path = write_model_card(card, tmp_path / "share")
    assert path.name == "README.md" and path.read_text() == card


def test_model_card_refuses_runs_that_are_not_comparable(result_files):
    before, after = result_files
    other = dataclasses.replace(after, settings=dataclasses.replace(after.settings, subset_seed=7))
    with pytest.raises(CourseError) as info:
        model_card(before, other, ADAPTER_CONFIG, None, "ada/x", "cpu")
    assert info.value.key == "results_mismatch"


def test_model_card_for_the_cpu_track_names_its_licences(result_files):
    before, after = result_files
    local = [dataclasses.replace(r, settings=dataclasses.replace(r.settings, model_id="HuggingFaceTB/SmolLM2-135M-Instruct",
                                                                dataset="local")) for r in (before, after)]
    card = model_card(*local, ADAPTER_CONFIG, None, "ada/x", "2-core CPU")
    assert "license: apache-2.0" in card and "CC0-1.0" in card and "datasets:" not in card


def test_repo_names():
    assert repo_id_for("llama31-gsm8k-lora", "ada") == "ada/llama31-gsm8k-lora"
    assert repo_id_for("team/model", "ada") == "team/model"
    for bad in ("my model", "a/b/c", "-x", "x" * 97):
        with pytest.raises(CourseError) as info:
            repo_id_for(bad, "ada")
        assert info.value.key == "hub_repo_name"


class FakeResponse:
    """Just what ``HfHubHTTPError.__init__`` reads."""

    def __init__(self, status_code: int):
        self.status_code = status_code
        self.headers = {}
        self.request = None
        self.url = "https://huggingface.co/api/repos/create"


def hub_error(cls, status):
    return cls(f"{status} Client Error.", response=FakeResponse(status))


def raised_by_hub_client(status: int, headers: dict[str, str] | None = None) -> BaseException:
    url = "https://huggingface.co/api/repos/create"
    response = httpx2.Response(status, headers=headers or {}, request=httpx2.Request("POST", url))
    with pytest.raises(HfHubHTTPError) as info:
        hf_raise_for_status(response)
    return info.value


class FakeApi:
    def __init__(self, role: str | None = "write", error: BaseException | None = None):
        self.role, self.error = role, error

    def whoami(self):
        if self.error is not None:
            raise self.error
        return {"name": "ada", "auth": {"accessToken": {"role": self.role}}}


def test_a_write_token_gives_the_account_name(tmp_path):
    assert check_write_token(TOKEN, tmp_path, api=FakeApi("write")) == "ada"
    assert check_write_token(TOKEN, tmp_path, api=FakeApi("fineGrained")) == "ada"


def test_a_read_only_or_missing_token_says_where_to_make_a_write_token(tmp_path):
    for token, api in ((TOKEN, FakeApi("read")), (None, FakeApi("write")),
                       (TOKEN, FakeApi(error=raised_by_hub_client(401)))):
        with pytest.raises(CourseError) as info:
            check_write_token(token, tmp_path, api=api)
        err = info.value
        assert err.key == "hub_write_token"
        assert "https://huggingface.co/settings/tokens" in err.fix and "'Write'" in err.fix
        assert str(tmp_path) in err.fix  # the card and adapter are already on disk
        assert TOKEN not in str(err)


@pytest.mark.parametrize(
    ("error", "key"),
    [
        (hub_error(HfHubHTTPError, 409), "hub_repo_name"),  # the name is taken
        (raised_by_hub_client(409, {"X-Error-Message": "You already created this model repo"}), "hub_repo_name"),
        (raised_by_hub_client(403, {"X-Error-Message": "You don't have the rights to create a model under the "
                                                       "namespace \"meta-llama\""}), "hub_repo_name"),
        (hub_error(RepositoryNotFoundError, 404), "hub_repo_name"),
        (HFValidationError("Repo id must use alphanumeric chars"), "hub_repo_name"),
        (raised_by_hub_client(401), "hub_write_token"),
        (raised_by_hub_client(503), "hub_push_unreachable"),
        (httpx2.ConnectError("[Errno -2] Name or service not known"), "hub_push_unreachable"),
        (OfflineModeIsEnabled("offline"), "hub_push_unreachable"),
    ],
)
def test_upload_failures_say_what_to_do(error, key, tmp_path):
    with pytest.raises(CourseError) as info:
        with hub_push_errors("ada/llama31-gsm8k-lora", TOKEN, tmp_path):
            raise error
    assert info.value.key == key
    assert info.value.__cause__ is error
    assert TOKEN not in str(info.value)
    if key == "hub_push_unreachable":
        assert str(tmp_path) in info.value.fix


def test_wrapped_and_unrelated_errors(tmp_path):
    try:
        try:
            raise hub_error(HfHubHTTPError, 409)
        except HfHubHTTPError as inner:
            raise OSError("upload failed") from inner
    except OSError as outer:
        with pytest.raises(CourseError) as info, hub_push_errors("ada/x", TOKEN, tmp_path):
            raise outer
        assert info.value.key == "hub_repo_name"
    with pytest.raises(ValueError, match="bug"), hub_push_errors("ada/x", TOKEN, tmp_path):
        raise ValueError("bug")
