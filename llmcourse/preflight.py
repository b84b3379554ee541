"""Preflight: check the machine, the packages and Hub access before the first big download.

``run_preflight(profile)`` prints one line per item (GPU, RAM, disk, packages, token, model access) and
stops with a ``CourseError`` only for what would make the next cells fail (no GPU on a GPU profile, no
access to the gated model, no disk space for the download). Version mismatches print advice and go on.
The token is never printed, only its masked form.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmcourse.hub_access import (
    AccessReport,
    check_model_access,
    is_local_model,
    mask_token,
    read_hf_token_with_source,
)
from llmcourse.profiles import LLAMA_BASE, LLAMA_BASE_UNGATED, LLAMA_INSTRUCT, LLAMA_INSTRUCT_UNGATED, Profile
from llmcourse.troubleshooting import CourseError, explain

GB = 1024**3
OK, BAD, INFO = "✓", "✗", "·"

# Packages shown when there is no requirements file to read the list from.
CORE_PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "trl",
    "bitsandbytes",
    "accelerate",
    "datasets",
    "huggingface-hub",
)

# Free disk a profile needs, in GB: the 8B model's 16 GB download plus checkpoints and results.
DISK_NEEDED_GB = {"t4": 20.0, "ampere": 20.0, "cpu": 2.0, "smoke": 0.5}

_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*==\s*([^\s,;]+)\s*$")


def normalize_name(name: str) -> str:
    """PEP 503 form of a distribution name: ``Huggingface_Hub`` -> ``huggingface-hub``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _marker_applies(marker: str) -> bool:
    """Whether an environment marker (``python_version < "3.12"``) holds here; unknown ones count as true."""
    try:
        from packaging.markers import InvalidMarker, Marker
    except ImportError:
        return True
    try:
        return Marker(marker).evaluate()
    except InvalidMarker:
        return True


def requirements_pins(path: str | os.PathLike[str], evaluate_markers: bool = True) -> dict[str, str]:
    """``{name: version}`` for every ``name==version`` line of a requirements file.

    Comments, options (``-r``, ``--index-url``), extras (``name[extra]``) and ``--hash`` options are
    ignored; lines with other specifiers (``>=``) are skipped. A line whose environment marker (after
    ``;``) does not hold on this Python is skipped, so a file with per-Python pins gives this Python's.
    Names are normalised (``huggingface_hub`` -> ``huggingface-hub``).
    """
    pins: dict[str, str] = {}
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line or line.startswith("-"):
            continue
        line = re.sub(r"\s--hash[= ]\S+", "", line)
        requirement, _, marker = line.partition(";")
        if marker.strip() and evaluate_markers and not _marker_applies(marker.strip()):
            continue
        match = _PIN.match(requirement)
        if match:
            pins[normalize_name(match.group(1))] = match.group(2)
    return pins


def installed_versions(names: Iterable[str]) -> dict[str, str | None]:
    """The version of each distribution installed on disk (None when not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _module_name(distribution: str) -> str:
    return {"pyyaml": "yaml", "scikit-learn": "sklearn", "pillow": "PIL"}.get(
        normalize_name(distribution), normalize_name(distribution).replace("-", "_")
    )


def loaded_versions(names: Iterable[str]) -> dict[str, str | None]:
    """The version the running Python has imported, for packages already imported (others: None).

    A package imported before ``pip`` upgraded it keeps its old ``__version__`` here while
    ``installed_versions`` already reads the new one: the sign that the session must restart.
    """
    versions: dict[str, str | None] = {}
    for name in names:
        module = sys.modules.get(_module_name(name))
        version = getattr(module, "__version__", None) if module is not None else None
        versions[name] = str(version) if version is not None else None
    return versions


def _same_version(a: str, b: str) -> bool:
    """Equal as versions, ignoring a local build label: ``2.5.1+cu121`` == ``2.5.1``."""
    try:
        from packaging.version import InvalidVersion, Version
    except ImportError:
        return a.split("+")[0] == b.split("+")[0]
    try:
        return Version(a).public == Version(b).public
    except InvalidVersion:
        return a.split("+")[0] == b.split("+")[0]


def version_problems(
    pins: Mapping[str, str],
    installed: Mapping[str, str | None],
    loaded: Mapping[str, str | None] | None = None,
) -> list[str]:
    """One readable line per package whose version differs from the pin, or whose imported version
    differs from the installed one (``loaded``, from ``loaded_versions``)."""
    problems = []
    for name, pinned in pins.items():
        have = installed.get(name)
        if have is None:
            problems.append(f"{name} is not installed (requirements.txt pins {pinned})")
        elif not _same_version(have, pinned):
            problems.append(f"{name} {have} is installed, requirements.txt pins {pinned}")
    for name, running in (loaded or {}).items():
        have = installed.get(name)
        if running is not None and have is not None and not _same_version(running, have):
            problems.append(
                f"{name} {running} is in use, but {have} is installed (imported before the upgrade)"
            )
    return problems


def free_disk_gb(path: str | os.PathLike[str] = ".") -> float:
    """Free space on the disk that holds ``path``, in GB."""
    return shutil.disk_usage(_existing(path)).free / GB


def _existing(path: str | os.PathLike[str]) -> Path:
    """``path`` or its nearest existing parent (the output folder may not exist yet)."""
    current = Path(path).resolve()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def ram_gb() -> float:
    """Total RAM of the machine, in GB (psutil when present, else /proc/meminfo)."""
    try:
        import psutil

        return psutil.virtual_memory().total / GB
    except ImportError:
        pass
    return _meminfo_total_gb(Path("/proc/meminfo"))


def _meminfo_total_gb(meminfo: Path) -> float:
    try:
        for line in meminfo.read_text(encoding="ascii").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024 / GB
    except OSError:
        pass
    if hasattr(os, "sysconf"):
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB
        except (ValueError, OSError):
            pass
    return 0.0


def check_disk(path: str | os.PathLike[str], needed_gb: float) -> float:
    """Free GB on ``path``'s disk; raises ``CourseError("low_disk")`` when it is under ``needed_gb``."""
    free = free_disk_gb(path)
    if free < needed_gb:
        raise CourseError(
            "low_disk",
            f"{free:.1f} GB free, about {needed_gb:.0f} GB needed",
            needed_gb=f"{needed_gb:.0f}",
            free_gb=f"{free:.1f}",
            path=str(path),
        )
    return free


@dataclass(frozen=True)
class GpuInfo:
    """What the preflight needs to know about GPU 0; ``name=None`` means there is no GPU."""

    name: str | None = None
    capability: tuple[int, int] | None = None
    memory_gb: float | None = None

    @property
    def present(self) -> bool:
        return self.name is not None


NO_GPU = GpuInfo()


def detect_gpu() -> GpuInfo:
    """Ask torch about GPU 0."""
    import torch

    if not torch.cuda.is_available():
        return NO_GPU
    props = torch.cuda.get_device_properties(0)
    return GpuInfo(props.name, (props.major, props.minor), props.total_memory / GB)


@dataclass
class PreflightReport:
    """Everything the preflight found; ``lines`` is what it printed."""

    profile_name: str
    profile_reason: str
    model_id: str
    python_version: str
    gpu_name: str | None
    compute_capability: str | None
    gpu_memory_gb: float | None
    ram_gb: float
    free_disk_gb: float
    versions: dict[str, str | None] = field(default_factory=dict)
    pins: dict[str, str] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    token: str = "(none)"  # masked, never the token itself
    access: AccessReport | None = None
    warnings: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No mismatch and no warning (errors raise instead of landing here)."""
        return not self.mismatches and not self.warnings


def _fallback_for(model_id: str) -> str | None:
    """An ungated copy to offer when the token cannot read ``model_id``."""
    return {LLAMA_BASE: LLAMA_BASE_UNGATED, LLAMA_INSTRUCT: LLAMA_INSTRUCT_UNGATED}.get(model_id)


def run_preflight(
    profile: Profile,
    requirements: str | os.PathLike[str] | None = "requirements.txt",
    token_check: bool | None = None,
    print_fn: Callable[[str], Any] = print,
    gpu_info: GpuInfo | None = None,
    api: Any | None = None,
    env: Mapping[str, str] | None = None,
    colab_userdata: Any | None = None,
    disk_path: str | os.PathLike[str] = ".",
    needed_disk_gb: float | None = None,
) -> PreflightReport:
    """Check GPU, RAM, disk, package versions and Hub access for ``profile``; print one line per item.

    ``token_check``: None checks the token and model access on GPU profiles only (the cpu and smoke
    tracks work offline); True or False forces it. ``gpu_info``, ``api``, ``env`` and ``colab_userdata``
    are for tests (left out: torch, the real Hub, ``os.environ``, Colab Secrets).

    Raises ``CourseError``: ``no_gpu`` on a GPU profile without a GPU, ``low_disk`` when the download
    would not fit, and the Hub access errors (``missing_token``, ``gated_no_access``...).
    """
    lines: list[str] = []

    def say(mark: str, text: str) -> None:
        line = f"  {mark} {text}"
        lines.append(line)
        print_fn(line)

    print_fn(f"Preflight for profile {profile.name!r} ({profile.model_id})")
    gpu = detect_gpu() if gpu_info is None else gpu_info
    capability = f"{gpu.capability[0]}.{gpu.capability[1]}" if gpu.capability else None
    report = PreflightReport(
        profile_name=profile.name,
        profile_reason=profile.reason,
        model_id=profile.model_id,
        python_version=platform.python_version(),
        gpu_name=gpu.name,
        compute_capability=capability,
        gpu_memory_gb=gpu.memory_gb,
        ram_gb=ram_gb(),
        free_disk_gb=free_disk_gb(disk_path),
        lines=lines,
    )
    say(OK, f"profile: {profile.name}" + (f" ({profile.reason})" if profile.reason else ""))

    # GPU
    if gpu.present:
        memory = f", {gpu.memory_gb:.1f} GB" if gpu.memory_gb is not None else ""
        say(OK, f"GPU: {gpu.name}, compute capability {capability}{memory}")
        if profile.bf16 and gpu.capability is not None and tuple(gpu.capability) < (8, 0):
            warning = (
                f"profile {profile.name!r} trains in bf16, which this GPU (compute capability {capability}) "
                "only emulates, slowly: set PROFILE = 't4' in the parameters cell"
            )
            report.warnings.append(warning)
            say(BAD, warning)
    elif profile.uses_gpu:
        say(BAD, "GPU: none found")
        raise CourseError("no_gpu", f"the {profile.name!r} profile needs a CUDA GPU", profile=profile.name)
    else:
        say(OK, "GPU: none (not needed by this profile)")
    say(OK, f"RAM: {report.ram_gb:.1f} GB")

    # Disk, before the download rather than when it fails at 90 %
    needed = DISK_NEEDED_GB.get(profile.name, 2.0) if needed_disk_gb is None else needed_disk_gb
    if report.free_disk_gb < needed:
        say(BAD, f"disk: {report.free_disk_gb:.1f} GB free, about {needed:.0f} GB needed")
        check_disk(disk_path, needed)  # raises low_disk with the advice
    say(OK, f"disk: {report.free_disk_gb:.1f} GB free (about {needed:g} GB needed)")

    # Packages
    _check_versions(report, requirements, say)
    if report.mismatches:
        advice = explain("version_mismatch", packages="; ".join(report.mismatches))
        for advice_line in advice.splitlines():
            print_fn(f"    {advice_line}")

    # Token and model access, before any download
    check = profile.uses_gpu if token_check is None else token_check
    if check and not is_local_model(profile.model_id):
        token, source = read_hf_token_with_source(env, colab_userdata)
        report.token = mask_token(token)
        fallback = _fallback_for(profile.model_id)
        try:
            report.access = check_model_access(profile.model_id, token, api=api, fallback=fallback)
        except CourseError as error:
            say(BAD, f"HF token: {report.token} ({source})")
            say(BAD, f"model access: {profile.model_id}: {error.symptom}")
            if error.key == "missing_token" and token is None:
                # Say where the token was looked for (and whether Colab's notebook access is off).
                raise CourseError("missing_token", source, **error.values) from error.__cause__
            raise
        say(
            OK,
            f"HF token: {report.token} ({source})" if token else "HF token: none, and this model needs none",
        )
        say(OK, f"model access: {report.access.message}")
    else:
        if is_local_model(profile.model_id):
            why = "local model"
        else:
            why = "token_check=False" if token_check is False else "not needed by this profile"
        say(OK, f"HF token and model access: not checked ({why})")
    return report


def _find_requirements(requirements: str | os.PathLike[str] | None) -> Path | None:
    """``requirements`` as given or, when relative and not found, beside this package (the notebook's
    working folder is not always the repository)."""
    if requirements is None:
        return None
    path = Path(requirements)
    if not path.is_file() and not path.is_absolute():
        beside = Path(__file__).resolve().parents[1] / path
        if beside.is_file():
            return beside
    return path


def _check_versions(
    report: PreflightReport,
    requirements: str | os.PathLike[str] | None,
    say: Callable[[str, str], None],
) -> None:
    pins: dict[str, str] = {}
    requirements = _find_requirements(requirements)
    if requirements is not None and Path(requirements).is_file():
        pins = requirements_pins(requirements)
    elif requirements is not None:
        say(INFO, f"requirements: {requirements} not found, versions not compared with the pins")
    # The pins, plus the core packages that are not pinned (torch: Colab brings its own CUDA build).
    names = list(dict.fromkeys([*pins, *CORE_PACKAGES]))
    report.pins = pins
    report.versions = installed_versions(names)
    report.mismatches = version_problems(pins, report.versions, loaded_versions(names))
    shown = ", ".join(f"{name} {version or '-'}" for name, version in report.versions.items())
    say(BAD if report.mismatches else OK, f"python {report.python_version}; {shown}")
    for problem in report.mismatches:
        say(BAD, problem)
