"""Tests for llmcourse.hub_access: token reading, masking, and Hub errors mapped to course messages.

The Hub is never contacted: errors are real ``huggingface_hub.errors`` classes built around fake
responses (or produced by ``hf_raise_for_status`` from a local ``httpx2.Response``), injected through
``api=``.
"""

from __future__ import annotations

import httpx2
import pytest
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
)
from huggingface_hub.utils import hf_raise_for_status

from llmcourse.hub_access import (
    AccessReport,
    check_model_access,
    course_error_from_hub,
    mask_token,
    read_hf_token,
    read_hf_token_with_source,
)
from llmcourse.profiles import LLAMA_BASE, LLAMA_BASE_UNGATED
from llmcourse.troubleshooting import CourseError

TOKEN = "hf_" + "Ab1" * 11 + "wxyz"  # built here so no token-like literal is committed


class FakeResponse:
    """Just what ``HfHubHTTPError.__init__`` reads: headers, request, status_code."""

    def __init__(self, status_code: int, headers: dict[str, str] | None = None):
        self.status_code = status_code
        self.headers = headers or {}
        self.request = None
        self.url = "https://huggingface.co/api/models/x/y/auth-check"


def hub_error(cls, status):
    return cls(f"{status} Client Error.", response=FakeResponse(status))


class FakeApi:
    def __init__(self, error: BaseException | None = None, gated="manual"):
        self.error = error
        self.gated = gated
        self.calls: list[str] = []

    def auth_check(self, repo_id):
        self.calls.append(repo_id)
        if self.error is not None:
            raise self.error

    def model_info(self, repo_id):
        return type("Info", (), {"gated": self.gated})()


class ExplodingApi:
    def auth_check(self, repo_id):
        raise AssertionError("the Hub must not be asked")


class FakeUserdata:
    def __init__(self, value=None, error: BaseException | None = None):
        self.value, self.error = value, error

    def get(self, name):
        assert name == "HF_TOKEN"
        if self.error is not None:
            raise self.error
        return self.value


SecretNotFoundError = type("SecretNotFoundError", (Exception,), {})
NotebookAccessError = type("NotebookAccessError", (Exception,), {})


# --- read_hf_token ----------------------------------------------------------------------


def test_colab_secret_comes_first():
    env = {"HF_TOKEN": "hf_from_env_aaaaaaaaaaaa"}
    assert read_hf_token(env, FakeUserdata(f"  {TOKEN}\n")) == TOKEN
    assert read_hf_token_with_source(env, FakeUserdata(TOKEN))[1] == "Colab Secrets"


def test_env_when_no_secret():
    env = {"HF_TOKEN": f" {TOKEN} ", "HUGGING_FACE_HUB_TOKEN": "other"}
    assert read_hf_token(env, FakeUserdata(error=SecretNotFoundError("HF_TOKEN"))) == TOKEN
    assert read_hf_token({"HUGGING_FACE_HUB_TOKEN": TOKEN}, FakeUserdata(None)) == TOKEN
    assert read_hf_token_with_source({"HUGGING_FACE_HUB_TOKEN": TOKEN})[1] == "$HUGGING_FACE_HUB_TOKEN"


def test_empty_values_are_none():
    assert read_hf_token({"HF_TOKEN": "   "}, FakeUserdata("")) is None
    assert read_hf_token({}, FakeUserdata(None)) is None


def test_outside_colab_reads_the_environment(monkeypatch):
    # google.colab is not installed here, so the real import fails and the environment is used.
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert read_hf_token() == TOKEN
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    assert read_hf_token() is None


def test_notebook_access_off_is_explained():
    token, why = read_hf_token_with_source({}, FakeUserdata(error=NotebookAccessError("no")))
    assert token is None
    assert "Notebook access" in why


def test_mask_token():
    assert mask_token(TOKEN) == "hf_...wxyz"
    assert TOKEN[3:-4] not in mask_token(TOKEN)
    assert mask_token(None) == "(none)" and mask_token("") == "(none)"
    assert mask_token("short") == "***"
    assert mask_token("abcdefghijklmnop") == "...mnop"


# --- check_model_access -------------------------------------------------------------------


def test_access_ok():
    api = FakeApi(gated="manual")
    report = check_model_access(LLAMA_BASE, TOKEN, api=api)
    assert isinstance(report, AccessReport)
    assert report.ok and report.gated is True and report.model_id == LLAMA_BASE
    assert api.calls == [LLAMA_BASE]
    assert TOKEN not in report.message
    assert check_model_access("x/y", None, api=FakeApi(gated=False)).gated is False


def test_local_models_never_ask_the_hub(tmp_path):
    assert check_model_access(str(tmp_path), None, api=ExplodingApi()).ok
    assert check_model_access("offline:tiny-random-llama3", None, api=ExplodingApi()).ok


def test_gated_maps_to_gated_no_access_with_fallback():
    api = FakeApi(hub_error(GatedRepoError, 403))
    with pytest.raises(CourseError) as info:
        check_model_access(LLAMA_BASE, TOKEN, api=api, fallback=LLAMA_BASE_UNGATED)
    err = info.value
    assert err.key == "gated_no_access"
    assert f"MODEL_ID = '{LLAMA_BASE_UNGATED}'" in err.fix
    assert f"https://huggingface.co/{LLAMA_BASE}" in err.fix
    assert isinstance(err.__cause__, GatedRepoError)
    assert TOKEN not in str(err)


def test_gated_without_token_asks_for_a_token():
    api = FakeApi(hub_error(GatedRepoError, 401))
    with pytest.raises(CourseError) as info:
        check_model_access(LLAMA_BASE, None, api=api)
    assert info.value.key == "missing_token"


def test_repo_not_found():
    with pytest.raises(CourseError) as info:
        check_model_access(
            "meta-lama/Llama-3.1-8B", TOKEN, api=FakeApi(hub_error(RepositoryNotFoundError, 404))
        )
    assert info.value.key == "repo_not_found"
    assert "typo" in info.value.cause and "meta-lama/Llama-3.1-8B" in info.value.cause
    with pytest.raises(CourseError) as info:
        check_model_access("a/b", None, api=FakeApi(hub_error(RepositoryNotFoundError, 401)))
    assert info.value.key == "repo_not_found" and "no token" in info.value.detail


@pytest.mark.parametrize(
    ("status", "token", "key"),
    [(401, TOKEN, "invalid_token"), (401, None, "missing_token"), (403, TOKEN, "gated_no_access")],
)
def test_plain_http_errors(status, token, key):
    with pytest.raises(CourseError) as info:
        check_model_access(LLAMA_BASE, token, api=FakeApi(hub_error(HfHubHTTPError, status)))
    assert info.value.key == key
    assert TOKEN not in str(info.value)


def test_server_errors_are_unreachable():
    with pytest.raises(CourseError) as info:
        check_model_access(LLAMA_BASE, TOKEN, api=FakeApi(hub_error(HfHubHTTPError, 503)))
    assert info.value.key == "hub_unreachable"


@pytest.mark.parametrize(
    "error",
    [
        httpx2.ConnectError("[Errno -2] Name or service not known"),
        httpx2.ConnectTimeout("timed out"),
        httpx2.ReadTimeout("timed out"),
        OfflineModeIsEnabled("offline"),
        ConnectionError("reset"),
        TimeoutError("slow"),
    ],
)
def test_network_errors_are_unreachable(error):
    with pytest.raises(CourseError) as info:
        check_model_access(LLAMA_BASE, TOKEN, api=FakeApi(error))
    assert info.value.key == "hub_unreachable"
    assert "PROFILE = 'cpu'" in info.value.fix
    assert info.value.__cause__ is error


def test_unrelated_errors_propagate_unchanged():
    with pytest.raises(ValueError, match="bug"):
        check_model_access(LLAMA_BASE, TOKEN, api=FakeApi(ValueError("bug")))
    with pytest.raises(HfHubHTTPError):
        check_model_access(LLAMA_BASE, TOKEN, api=FakeApi(hub_error(HfHubHTTPError, 400)))


def test_raise_errors_false_returns_a_report():
    report = check_model_access(
        LLAMA_BASE, TOKEN, api=FakeApi(hub_error(GatedRepoError, 403)), raise_errors=False
    )
    assert not report.ok and report.problem == "gated_no_access"
    assert "accept the licence" in report.message


# --- the Hub client's own status handling, on local responses --------------------------------


def _raised_by_hub_client(status: int, headers: dict[str, str]) -> BaseException:
    url = f"https://huggingface.co/api/models/{LLAMA_BASE}/auth-check"
    response = httpx2.Response(status, headers=headers, request=httpx2.Request("GET", url))
    with pytest.raises(HfHubHTTPError) as info:
        hf_raise_for_status(response)
    return info.value


@pytest.mark.parametrize(
    ("status", "headers", "token", "key"),
    [
        (403, {"X-Error-Code": "GatedRepo"}, TOKEN, "gated_no_access"),
        (401, {"X-Error-Code": "GatedRepo"}, None, "missing_token"),
        (404, {"X-Error-Code": "RepoNotFound"}, TOKEN, "repo_not_found"),
        (401, {"X-Error-Message": "Invalid credentials in Authorization header"}, TOKEN, "invalid_token"),
        (403, {"X-Error-Message": "Forbidden"}, TOKEN, "gated_no_access"),
    ],
)
def test_errors_as_the_hub_client_raises_them(status, headers, token, key):
    error = _raised_by_hub_client(status, headers)
    with pytest.raises(CourseError) as info:
        check_model_access(LLAMA_BASE, token, api=FakeApi(error), fallback=LLAMA_BASE_UNGATED)
    assert info.value.key == key


def test_wrapped_errors_are_recognised():
    # from_pretrained wraps Hub errors in an OSError; the cause chain is searched.
    try:
        try:
            raise hub_error(GatedRepoError, 403)
        except GatedRepoError as inner:
            raise OSError("You are trying to access a gated repo.") from inner
    except OSError as outer:
        err = course_error_from_hub(outer, LLAMA_BASE, TOKEN, LLAMA_BASE_UNGATED)
    assert err is not None and err.key == "gated_no_access"
    assert course_error_from_hub(ValueError("x"), LLAMA_BASE, TOKEN) is None


# --- pitfall 12: Colab Secrets answered "none" once, then the learner adds the secret --------------------


class FakeColabSecrets:
    """``google.colab.userdata`` as Colab has it: ``get`` raises SecretNotFoundError until the secret exists."""

    SecretNotFoundError = type("SecretNotFoundError", (Exception,), {})
    NotebookAccessError = type("NotebookAccessError", (Exception,), {})

    def __init__(self):
        self.secret = None

    def get(self, name):
        if self.secret is None:
            raise self.SecretNotFoundError(name)
        return self.secret


class FakeSession:
    """The Hub's auth-check as it answers: 401 GatedRepo without a token, 200 with one."""

    def get(self, url, headers=None, **kwargs):
        authorized = "authorization" in {k.lower() for k in (headers or {})}
        status, extra = (200, {}) if authorized else (401, {"X-Error-Code": "GatedRepo"})
        return httpx2.Response(status, headers=extra, request=httpx2.Request("GET", url))


@pytest.fixture
def fake_colab(monkeypatch, tmp_path):
    """A Colab runtime as huggingface_hub sees it, with a fresh per-session secret cache and no saved login."""
    import sys
    import types

    from huggingface_hub import constants, hf_api
    from huggingface_hub.utils import _auth

    secrets = FakeColabSecrets()
    google, colab = types.ModuleType("google"), types.ModuleType("google.colab")
    errors = types.ModuleType("google.colab.errors")
    errors.Error = type("Error", (Exception,), {})
    userdata = types.ModuleType("google.colab.userdata")
    userdata.get = secrets.get
    userdata.SecretNotFoundError = secrets.SecretNotFoundError
    userdata.NotebookAccessError = secrets.NotebookAccessError
    google.colab, colab.userdata, colab.errors = colab, userdata, errors
    for name, module in {"google": google, "google.colab": colab, "google.colab.userdata": userdata,
                         "google.colab.errors": errors}.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(_auth, "is_google_colab", lambda: True)
    monkeypatch.setattr(_auth, "is_colab_enterprise", lambda: False)
    monkeypatch.setattr(_auth, "_IS_GOOGLE_COLAB_CHECKED", False)
    monkeypatch.setattr(_auth, "_GOOGLE_COLAB_SECRET", None)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-saved-login"))
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", False)
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.setenv(name, "unset")  # recorded, so that the token the test exports is removed afterwards
        monkeypatch.delenv(name)
    monkeypatch.setattr(hf_api, "get_session", lambda: FakeSession())
    return secrets


def test_a_secret_added_after_a_failed_check_reaches_the_download(fake_colab, monkeypatch):
    """no secret -> message -> secret added -> rerun -> the download receives the token."""
    import transformers
    from huggingface_hub import get_token
    from huggingface_hub.utils import _auth

    from llmcourse import model_loading
    from llmcourse.environment import GpuInfo, run_preflight
    from llmcourse.profiles import PROFILES

    def preflight():
        return run_preflight(PROFILES["t4"], requirements=None, print_fn=lambda line: None,
                             gpu_info=GpuInfo("Tesla T4", (7, 5), 15.8), needed_disk_gb=0)

    with pytest.raises(CourseError) as info:
        preflight()
    assert info.value.key == "missing_token"
    assert not _auth._IS_GOOGLE_COLAB_CHECKED, "a token-less call filled huggingface_hub's Colab cache"

    fake_colab.secret = TOKEN  # the learner adds the secret and runs the cell again
    report = preflight()
    assert report.access.ok
    import os

    assert os.environ["HF_TOKEN"] == TOKEN  # exported: read before huggingface_hub's Colab cache
    assert get_token() == TOKEN  # what any download without an explicit token now sends

    calls = []

    class Recorder:
        @staticmethod
        def from_pretrained(source, **kwargs):
            calls.append((source, kwargs.get("token")))
            raise RuntimeError("stop before downloading")

    monkeypatch.setattr(transformers, "AutoTokenizer", Recorder)
    with pytest.raises(RuntimeError, match="stop before downloading"):
        model_loading.load_4bit_model(LLAMA_BASE, transformers.BitsAndBytesConfig(load_in_4bit=True), None,
                                      copy_folder=None, print_fn=lambda line: None)
    assert calls == [(LLAMA_BASE, TOKEN)]


def test_the_exported_token_does_not_outlive_the_colab_test():
    import os

    assert os.environ.get("HF_TOKEN") != TOKEN
