"""Hugging Face token and gated-model access, checked before a 5-16 GB download starts. The token comes from Colab
Secrets or the environment, never from a cell, and is never printed (``mask_token`` is). Every refusal of the Hub
becomes a ``CourseError`` that says what to do."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmcourse.profiles import LLAMA_BASE_UNGATED, SAME_WEIGHTS
from llmcourse.troubleshooting import CourseError


def read_hf_token_with_source(env: Mapping[str, str] | None = None,
                              colab_userdata: Any | None = None) -> tuple[str | None, str]:
    """The token from Colab Secrets, ``$HF_TOKEN``, ``$HUGGING_FACE_HUB_TOKEN`` or a saved ``hf auth login``, and
    where it came from or why there is none. A token found is exported as ``$HF_TOKEN`` (into ``env``), which
    huggingface_hub reads before the Colab Secrets answer it caches once per session (pitfall 12)."""
    env = os.environ if env is None else env
    token, source = _find_token(env, colab_userdata)
    if token and isinstance(env, MutableMapping):
        env["HF_TOKEN"] = token
    return token, source


def read_hf_token(env: Mapping[str, str] | None = None, colab_userdata: Any | None = None) -> str | None:
    """The token alone (whitespace stripped, empty counts as none), as ``read_hf_token_with_source``."""
    return read_hf_token_with_source(env, colab_userdata)[0]


def download_token(model_id: str) -> str | bool | None:
    """``token=`` for ``from_pretrained``: the token, or False, never None (huggingface_hub would ask Colab Secrets
    itself and cache a "none" for the session, pitfall 12); None for a local model."""
    return None if is_local_model(model_id) else read_hf_token() or False


def _clean(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _find_token(env: Mapping[str, str], userdata: Any | None) -> tuple[str | None, str]:
    try:
        from google.colab import userdata as colab  # type: ignore[import-not-found]
    except ImportError:
        colab = None
    userdata = userdata or colab
    hint = "not in Colab Secrets or $HF_TOKEN / $HUGGING_FACE_HUB_TOKEN"
    if userdata is not None:
        try:
            token = _clean(userdata.get("HF_TOKEN"))
        except Exception as exc:  # noqa: BLE001 - SecretNotFoundError, NotebookAccessError...: only on Colab
            token = None
            if type(exc).__name__ == "NotebookAccessError":
                hint = ("a HF_TOKEN secret exists in Colab Secrets but 'Notebook access' is off for this notebook: "
                        "switch it on in the key icon panel")
        if token:
            return token, "Colab Secrets"
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if token := _clean(env.get(name)):
            return token, f"${name}"
    try:  # read here so that no call ever has to pass token=None
        from huggingface_hub import constants

        if token := _clean(Path(constants.HF_TOKEN_PATH).read_text(encoding="utf-8")):
            return token, "saved login (hf auth login)"
    except (ImportError, OSError, UnicodeDecodeError):
        pass
    return None, hint


def mask_token(token: str | None) -> str:
    """A form of the token that is safe to print: ``"hf_...wxyz"`` (last 4 characters only)."""
    if not token:
        return "(none)"
    if len(token) < 12:  # the last 4 of a short string would give most of it away
        return "***"
    return f"{'hf_' if token.startswith('hf_') else ''}...{token[-4:]}"


@dataclass
class AccessReport:  # whether model_id can be read with the token
    model_id: str
    ok: bool
    gated: bool | None  # None: unknown
    message: str
    problem: str | None = None  # a troubleshooting key when not ok


def is_local_model(model_id: str) -> bool:
    """A folder on disk or a model built locally (``offline:...``): no Hub access is needed."""
    return model_id.startswith("offline:") or os.path.isdir(model_id)


def _status_code(exc: BaseException) -> int | None:
    code = getattr(getattr(exc, "response", None), "status_code", None)
    return code if isinstance(code, int) else None


def _kind(exc: BaseException) -> str | None:
    """What went wrong, in words the two tables below map to problems; None when ``exc`` is no Hub failure."""
    import httpx2  # huggingface_hub 2.x talks through it
    from huggingface_hub import errors

    status = _status_code(exc)
    for cls, kind in ((errors.OfflineModeIsEnabled, "offline"), (errors.HFValidationError, "bad name"),
                      (errors.GatedRepoError, "gated"), (errors.DisabledRepoError, "disabled"),
                      (errors.RevisionNotFoundError, "no revision"), (errors.RepositoryNotFoundError, "not found")):
        if isinstance(exc, cls):  # order matters: GatedRepoError < RepositoryNotFoundError < HfHubHTTPError
            return kind
    if isinstance(exc, errors.HfHubHTTPError):
        if status in (401, 403, 404, 409):
            return f"HTTP {status}"
        return "server" if status is not None and (status >= 500 or status == 429) else "other HTTP"
    network = (ConnectionError, TimeoutError, socket.gaierror, httpx2.TransportError)
    return "network" if isinstance(exc, network) else None


def course_error_from_hub(exc: BaseException, model_id: str, token: str | None, fallback: str | None = None,
                          saved_at: Path | None = None) -> CourseError | None:
    """The ``CourseError`` for a Hub failure (looking through wrapped causes: ``from_pretrained`` wraps Hub errors
    in an ``OSError``), or None when ``exc`` is not one. With ``saved_at``: the failure of an upload whose files
    are saved there. ``fallback``: the ungated copy to offer (default: the known mirror). Never shows the token."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and (kind := _kind(exc)) is None:
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    if exc is None or kind is None or kind == "other HTTP":
        return None
    status, name = _status_code(exc), type(exc).__name__
    first = (str(exc).strip().splitlines() or [name])[0]
    mirror = {original: copy for copy, original in SAME_WEIGHTS.items()}.get(model_id, LLAMA_BASE_UNGATED)
    values = {"model_id": model_id, "fallback": fallback or mirror} if saved_at is None else {
        "repo_id": model_id, "saved_at": saved_at}
    unreachable = {"offline": "HF_HUB_OFFLINE=1 is set", "network": f"{name}: {first}",
                   "server": f"HTTP {status} from huggingface.co"}.get(kind)
    if unreachable:
        reason = {"offline": "offline mode is on", "network": name}.get(kind, f"HTTP {status}")
        key = "hub_unreachable" if saved_at is None else "hub_push_unreachable"
        return CourseError(key, unreachable, reason=reason, **values)
    refused = f"token {mask_token(token)} was refused (HTTP 401)"
    if saved_at is not None and status == 401:
        return CourseError("hub_write_token", refused, reason="refused by the Hub", **values)
    if saved_at is not None:
        return CourseError("hub_repo_name", first if kind == "bad name" else f"{model_id} (HTTP {status})", **values)
    if kind in ("gated", "HTTP 401") and token is None:  # the Hub answers 401 + GatedRepo to anonymous requests
        return CourseError("missing_token", f"{model_id} is gated or private and no token was given", **values)
    if kind == "HTTP 401":
        return CourseError("invalid_token", refused, **values)
    if kind in ("gated", "HTTP 403"):
        return CourseError("gated_no_access", f"{model_id} (HTTP {status or 403})", **values)
    detail = {"disabled": f"{model_id} has been disabled by its author", "bad name": first,
              "no revision": f"{model_id} has no such revision (branch, tag or commit)"}.get(
        kind, f"{model_id} (HTTP {status or 404})" + (
            "; no token was given, so a gated or private repository looks missing too" if token is None else ""))
    return CourseError("repo_not_found", detail, **values)


def check_model_access(model_id: str, token: str | None, api: Any | None = None, fallback: str | None = None,
                       raise_errors: bool = True) -> AccessReport:
    """Ask the Hub (``HfApi.auth_check``, one small request) whether ``token`` may read ``model_id``. A refusal raises
    its ``CourseError`` (``raise_errors=False``: a report with ``ok=False``). ``api`` is for tests."""
    if is_local_model(model_id):
        return AccessReport(model_id, ok=True, gated=False, message=f"{model_id}: local model, no Hub needed")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token or False)  # never None (pitfall 12): read_hf_token has looked everywhere already
    try:
        api.auth_check(model_id)
    except Exception as exc:
        error = course_error_from_hub(exc, model_id, token, fallback)
        if error is None:
            raise
        if raise_errors:
            raise error from exc
        return AccessReport(model_id, ok=False, gated=None, message=str(error), problem=error.key)
    try:  # only decoration for the report: access itself is confirmed. The Hub says False, "auto" or "manual".
        info = getattr(api.model_info(model_id), "gated", None)
        gated = None if info is None else bool(info)
    except Exception:  # noqa: BLE001 - no model_info, or it failed
        gated = None
    kind = {True: "gated, and this account has access", False: "not gated"}.get(gated, "access confirmed")
    return AccessReport(model_id, ok=True, gated=gated, message=f"{model_id}: readable ({kind})")
