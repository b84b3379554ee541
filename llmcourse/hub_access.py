"""Hugging Face token and gated-model access, checked before a 5-16 GB download starts.

The token comes from Colab Secrets or the environment, never from a literal in a cell, and is never
printed: only ``mask_token(token)`` is. ``check_model_access`` asks the Hub whether the token may read
the repository and turns every refusal into a ``CourseError`` that says what to do.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmcourse.troubleshooting import CourseError

TOKEN_ENV_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
COLAB_SECRET = "HF_TOKEN"
OFFLINE_PREFIX = "offline:"


def _colab_userdata() -> Any | None:
    """Colab's Secrets module, or None outside Colab."""
    try:
        from google.colab import userdata  # type: ignore[import-not-found]
    except ImportError:
        return None
    return userdata


def read_hf_token_with_source(
    env: Mapping[str, str] | None = None, colab_userdata: Any | None = None, export: bool = True
) -> tuple[str | None, str]:
    """The token and where it came from (``"Colab Secrets"``, ``"$HF_TOKEN"``...) or why there is none.

    A token found is exported as ``HF_TOKEN`` (into ``env``, ``os.environ`` by default; ``export=False``
    leaves it alone). huggingface_hub reads ``$HF_TOKEN`` before the Colab Secrets answer it caches once
    per session, so a secret added after a first token-less call still reaches every download (pitfall 12).

    ``colab_userdata`` is for tests: any object with ``.get(name)`` that behaves like
    ``google.colab.userdata``; left out, the real one is used on Colab.
    """
    env = os.environ if env is None else env
    token, source = _find_token(env, colab_userdata)
    if token and export and isinstance(env, MutableMapping) and env.get("HF_TOKEN") != token:
        env["HF_TOKEN"] = token
    return token, source


def download_token(model_id: str) -> str | bool | None:
    """The ``token=`` to pass to ``from_pretrained`` for ``model_id``: the learner's token (exported as
    ``HF_TOKEN`` too), or False when there is none, never None: with None huggingface_hub asks Colab
    Secrets itself and caches a "none" for the whole session (pitfall 12). None for a local model."""
    if is_local_model(model_id):
        return None
    return read_hf_token() or False


def _saved_login() -> str | None:
    """A token saved by ``hf auth login`` (read here so that no call ever has to pass ``token=None``)."""
    try:
        from huggingface_hub import constants

        return _clean(Path(constants.HF_TOKEN_PATH).read_text(encoding="utf-8"))
    except (ImportError, OSError, UnicodeDecodeError):
        return None


def _find_token(env: Mapping[str, str], colab_userdata: Any | None) -> tuple[str | None, str]:
    userdata = _colab_userdata() if colab_userdata is None else colab_userdata
    hint = "not in Colab Secrets or $HF_TOKEN / $HUGGING_FACE_HUB_TOKEN"
    if userdata is not None:
        try:
            value = userdata.get(COLAB_SECRET)
        except Exception as exc:  # noqa: BLE001 - any Secrets failure falls back to the environment
            # Colab raises SecretNotFoundError (no such secret), NotebookAccessError (the secret exists
            # but "Notebook access" is off) or TimeoutException; the exception classes only exist on Colab.
            if type(exc).__name__ == "NotebookAccessError":
                hint = (
                    "a HF_TOKEN secret exists in Colab Secrets but 'Notebook access' is off for this "
                    "notebook: switch it on in the key icon panel"
                )
        else:
            token = _clean(value)
            if token:
                return token, "Colab Secrets"
    for name in TOKEN_ENV_VARS:
        token = _clean(env.get(name))
        if token:
            return token, f"${name}"
    token = _saved_login()
    if token:
        return token, "saved login (hf auth login)"
    return None, hint


def read_hf_token(env: Mapping[str, str] | None = None, colab_userdata: Any | None = None) -> str | None:
    """The Hugging Face token: Colab Secrets first, then ``$HF_TOKEN``, then ``$HUGGING_FACE_HUB_TOKEN``.

    Whitespace is stripped (a pasted token often ends in a newline); an empty value counts as none.
    """
    return read_hf_token_with_source(env, colab_userdata)[0]


def _clean(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None


def mask_token(token: str | None) -> str:
    """A form of the token that is safe to print: ``"hf_...wxyz"`` (last 4 characters only)."""
    if not token:
        return "(none)"
    if len(token) < 12:  # the last 4 of a short string would give most of it away
        return "***"
    prefix = "hf_" if token.startswith("hf_") else ""
    return f"{prefix}...{token[-4:]}"


@dataclass
class AccessReport:
    """Whether ``model_id`` can be read with the token; ``gated`` is None when unknown."""

    model_id: str
    ok: bool
    gated: bool | None
    message: str
    problem: str | None = None  # a troubleshooting key when not ok


def is_local_model(model_id: str) -> bool:
    """A folder on disk or a model built locally (``offline:...``): no Hub access is needed."""
    return model_id.startswith(OFFLINE_PREFIX) or os.path.isdir(model_id)


def _status_code(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def _network_error_types() -> tuple[type[BaseException], ...]:
    """Exception classes that mean "the Hub could not be reached", from whichever HTTP client is present.

    huggingface_hub 2.x talks through ``httpx2`` (``ConnectError``, ``ConnectTimeout``, ``ReadTimeout``...
    all derive from ``TransportError``); older stacks use ``httpx`` or ``requests``.
    """
    types: list[type[BaseException]] = [ConnectionError, TimeoutError, socket.gaierror, socket.timeout]
    for module_name, names in (
        ("httpx2", ("TransportError",)),
        ("httpx", ("TransportError",)),
        ("requests.exceptions", ("ConnectionError", "Timeout")),
    ):
        try:
            module = __import__(module_name, fromlist=["_"])
        except ImportError:
            continue
        types += [getattr(module, name) for name in names if isinstance(getattr(module, name, None), type)]
    return tuple(types)


def _hub_error_types() -> dict[str, type[BaseException]]:
    from huggingface_hub import errors

    return {
        name: getattr(errors, name)
        for name in (
            "OfflineModeIsEnabled",
            "GatedRepoError",
            "RepositoryNotFoundError",
            "DisabledRepoError",
            "RevisionNotFoundError",
            "HfHubHTTPError",
        )
    }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def course_error_from_hub(
    exc: BaseException, model_id: str, token: str | None, fallback: str | None = None
) -> CourseError | None:
    """The ``CourseError`` for a Hub failure, or None when ``exc`` is not one.

    Also looks through the exception's causes, because ``from_pretrained`` wraps Hub errors in an
    ``OSError``. Never puts the token into the message.
    """
    hub = _hub_error_types()
    network = _network_error_types()
    values: dict[str, Any] = {"model_id": model_id}
    if fallback:
        values["fallback"] = fallback
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        mapped = _map_one(current, hub, network, values, token)
        if mapped is not None:
            return mapped
        current = current.__cause__ or current.__context__
    return None


def _map_one(
    exc: BaseException,
    hub: dict[str, type[BaseException]],
    network: tuple[type[BaseException], ...],
    values: dict[str, Any],
    token: str | None,
) -> CourseError | None:
    model_id = values["model_id"]
    status = _status_code(exc)
    # Order matters: GatedRepoError < RepositoryNotFoundError < HfHubHTTPError < OSError.
    if isinstance(exc, hub["OfflineModeIsEnabled"]):
        return CourseError(
            "hub_unreachable", "HF_HUB_OFFLINE=1 is set", reason="offline mode is on", **values
        )
    if isinstance(exc, hub["GatedRepoError"]):
        if token is None:  # the Hub answers 401 + GatedRepo to anonymous requests
            return CourseError("missing_token", f"{model_id} is gated and no token was given", **values)
        return CourseError("gated_no_access", f"{model_id} (HTTP {status or 403})", **values)
    if isinstance(exc, hub["DisabledRepoError"]):
        return CourseError("repo_not_found", f"{model_id} has been disabled by its author", **values)
    if isinstance(exc, hub["RevisionNotFoundError"]):
        return CourseError(
            "repo_not_found", f"{model_id} has no such revision (branch, tag or commit)", **values
        )
    if isinstance(exc, hub["RepositoryNotFoundError"]):
        detail = f"{model_id} (HTTP {status or 404})"
        if token is None:
            detail += "; no token was given, so a gated or private repository looks missing too"
        return CourseError("repo_not_found", detail, **values)
    if isinstance(exc, hub["HfHubHTTPError"]):
        if status == 401:
            if token is None:
                return CourseError(
                    "missing_token", f"{model_id}: the Hub asked for a token (HTTP 401)", **values
                )
            return CourseError("invalid_token", f"token {mask_token(token)} was refused (HTTP 401)", **values)
        if status == 403:
            return CourseError("gated_no_access", f"{model_id} (HTTP 403)", **values)
        if status is not None and (status >= 500 or status == 429):
            why = "too many requests" if status == 429 else "the Hub is having trouble"
            return CourseError("hub_unreachable", f"HTTP {status} from huggingface.co", reason=why, **values)
        return None
    if isinstance(exc, network):
        return CourseError(
            "hub_unreachable",
            f"{type(exc).__name__}: {_first_line(exc)}",
            reason=type(exc).__name__,
            **values,
        )
    return None


def check_model_access(
    model_id: str,
    token: str | None,
    api: Any | None = None,
    fallback: str | None = None,
    raise_errors: bool = True,
) -> AccessReport:
    """Ask the Hub, before any download, whether ``token`` may read ``model_id``.

    Uses ``HfApi.auth_check`` (one small request). Refusals and network failures raise the matching
    ``CourseError`` (``missing_token``, ``invalid_token``, ``gated_no_access`` naming ``fallback``,
    ``repo_not_found``, ``hub_unreachable``); with ``raise_errors=False`` they come back as a report with
    ``ok=False`` instead. Local folders and ``offline:`` models are always fine. ``api`` is for tests: an
    object with ``auth_check(repo_id)`` and optionally ``model_info(repo_id)``.
    """
    if is_local_model(model_id):
        return AccessReport(model_id, ok=True, gated=False, message=f"{model_id}: local model, no Hub needed")
    if api is None:
        from huggingface_hub import HfApi

        # Never token=None: huggingface_hub would then ask Colab Secrets itself and cache the answer, a
        # "none" too, for the whole session (pitfall 12). read_hf_token has looked everywhere already.
        api = HfApi(token=token or False)
    try:
        api.auth_check(model_id)
    except Exception as exc:
        error = course_error_from_hub(exc, model_id, token, fallback)
        if error is None:
            raise
        if raise_errors:
            raise error from exc
        return AccessReport(model_id, ok=False, gated=None, message=str(error), problem=error.key)
    gated = _gated(api, model_id)
    kind = {True: "gated, and this account has access", False: "not gated"}.get(gated, "access confirmed")
    return AccessReport(model_id, ok=True, gated=gated, message=f"{model_id}: readable ({kind})")


def _gated(api: Any, model_id: str) -> bool | None:
    """Whether the repository is gated, when the Hub says so cheaply; None when unknown."""
    model_info = getattr(api, "model_info", None)
    if model_info is None:
        return None
    try:
        gated = getattr(model_info(model_id), "gated", None)
    except Exception:  # noqa: BLE001 - only decoration for the report; access itself is confirmed
        return None
    if gated is None:
        return None
    return bool(gated)  # the Hub says False, "auto" or "manual"
