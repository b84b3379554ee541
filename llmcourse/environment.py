"""What is installed and what the machine has (packages, GPU, RAM, disk, Drive), and the preflight check. GB = 10^9
bytes throughout (nvidia-smi and Colab show GiB = 2^30 bytes: Colab's "12.7 GB" of RAM is 13.6 GB here)."""

from __future__ import annotations

import gc
import os
import platform
import shutil
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NamedTuple

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from llmcourse.hub_access import AccessReport, check_model_access, is_local_model, mask_token, read_hf_token_with_source
from llmcourse.troubleshooting import CourseError

GB = 1e9
REPO_ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO_ROOT / "requirements.txt"
# Where outputs and caches go without Drive: the checkout, or (installed from git) the working directory.
WORK_ROOT = REPO_ROOT if REQUIREMENTS.is_file() else Path.cwd()
# Where Colab mounts Google Drive. $COURSE_DRIVE_MOUNT moves it, for the test that plays a fresh Colab runtime.
DRIVE_ROOT = Path(os.environ.get("COURSE_DRIVE_MOUNT", "/content/drive")) / "MyDrive"
DRIVE_FOLDER = "llm-reasoning-course"
# Free disk a profile needs: the 8B model's 16 GB download plus checkpoints and results.
DISK_NEEDED_GB = {"t4": 20.0, "ampere": 20.0, "cpu": 2.0, "smoke": 0.5}
COLAB_FREE_RAM_GB = 13.6  # a free Colab runtime's RAM, in GB (10^9 bytes): its gauge shows 12.7 (GiB)
# Below these a GPU profile still runs, with advice: a T4 has 15.8 GB, a free Colab COLAB_FREE_RAM_GB of RAM.
ADVISED_GPU_GB, ADVISED_RAM_GB = 15.0, 13.0
OK, BAD = "✓", "✗"


# --- packages (pitfall 10: a package imported before pip upgraded it stays old in the running kernel) ---


def requirements_pins(path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """``{name: version}`` for each ``name==version`` line (marker holding here) of a requirements file; without a
    path: the checkout's requirements.txt, else (installed from git) the package's dependencies, read from it."""
    if path is None and not REQUIREMENTS.is_file():
        from importlib.metadata import requires

        lines = requires("llmcourse") or []
    else:
        lines = Path(path or REQUIREMENTS).read_text(encoding="utf-8").splitlines()
    pins = {}
    for line in lines:
        line = line.split(" #")[0].split(" --")[0].strip()  # comments, --hash options
        if not line or line.startswith(("#", "-")):
            continue
        req = Requirement(line)
        exact = [spec.version for spec in req.specifier if spec.operator == "=="]
        if exact and (req.marker is None or req.marker.evaluate()):
            pins[canonicalize_name(req.name)] = exact[0]
    return pins


# THE package list: the pins, plus torch (not pinned: Colab brings its own CUDA build).
PACKAGES = ("torch", *requirements_pins())


def _installed(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def installed_versions(names=PACKAGES) -> dict[str, str | None]:
    """The version of each distribution installed on disk (None when not installed)."""
    return {name: _installed(name) for name in names}


def _same(a: str, b: str) -> bool:
    """Equal as versions, ignoring a local build label: ``2.5.1+cu121`` == ``2.5.1``."""
    try:
        return Version(a).public == Version(b).public
    except InvalidVersion:
        return a.split("+")[0] == b.split("+")[0]


def stale_imports(modules: Mapping | None = None, names=PACKAGES) -> list[tuple[str, str, str]]:
    """(package, version in memory, version installed) for each imported package that differs from the installed one."""
    modules = sys.modules if modules is None else modules
    loaded = {name: getattr(modules.get(name.replace("-", "_")), "__version__", None) for name in names}
    return [(name, str(loaded[name]), have) for name, have in installed_versions(names).items()
            if loaded[name] is not None and have is not None and not _same(str(loaded[name]), have)]


def version_problems(pins: Mapping[str, str], installed: Mapping[str, str | None], stale=()) -> list[str]:
    """One readable line per package that differs from its pin, or that was imported before the upgrade."""
    problems = [f"{name} is not installed (requirements.txt pins {pinned})" if installed.get(name) is None else
                f"{name} {installed[name]} is installed, requirements.txt pins {pinned}"
                for name, pinned in pins.items() if installed.get(name) is None or not _same(installed[name], pinned)]
    return problems + [f"{name} {old} is in memory, but {new} is installed (imported before the upgrade)"
                       for name, old, new in stale]


def warn_if_restart_needed(modules: Mapping | None = None, print_fn=print) -> bool:
    """Print how to restart when a package in memory is older than the one installed; True if so."""
    problems = version_problems({}, {}, stale_imports(modules))
    if problems:
        print_fn(str(CourseError("version_mismatch", packages="; ".join(problems))))
    return bool(problems)


# --- the machine: GPU, memory, disk ---------------------------------------------------------------------


class GpuInfo(NamedTuple):  # GPU 0; name None: there is none
    name: str | None = None
    capability: tuple[int, int] | None = None
    memory_gb: float | None = None

    present = property(lambda self: self.name is not None)

    def __str__(self) -> str:
        return f"{self.name}, compute capability {'.'.join(map(str, self.capability))}, {self.memory_gb:.1f} GB"


def detect_gpu() -> GpuInfo:
    import torch

    if not torch.cuda.is_available():
        return GpuInfo()
    props = torch.cuda.get_device_properties(0)
    return GpuInfo(props.name, (props.major, props.minor), props.total_memory / GB)


def ram_gb() -> float:
    import psutil  # installed with accelerate

    return psutil.virtual_memory().total / GB


def process_ram_gb() -> float:  # the resident set size of this Python process
    import psutil

    return psutil.Process().memory_info().rss / GB


def free_disk_gb(path: str | os.PathLike[str] = ".") -> float:
    """Free space on the disk that holds ``path`` (or its nearest existing parent), in GB."""
    path = Path(path).resolve()
    return shutil.disk_usage(next(p for p in (path, *path.parents) if p.exists())).free / GB


def check_disk(path: str | os.PathLike[str], needed_gb: float) -> float:
    """Free GB on ``path``'s disk; raises ``CourseError("low_disk")`` when it is under ``needed_gb``."""
    free = free_disk_gb(path)
    if free < needed_gb:
        raise CourseError("low_disk", f"{free:.1f} GB free, about {needed_gb:.1f} GB needed",
                          needed_gb=f"{needed_gb:.1f}", free_gb=f"{free:.1f}", path=str(path))
    return free


def _cuda():  # torch.cuda, when torch is imported and has a CUDA device (no torch imported: no GPU memory in use)
    torch = sys.modules.get("torch")
    return torch.cuda if torch is not None and torch.cuda.is_available() else None


def free_memory() -> None:
    """Give back what can be given back: Python garbage, then PyTorch's cached GPU blocks."""
    gc.collect()
    if (cuda := _cuda()) is not None and cuda.is_initialized():
        cuda.empty_cache()


def reset_peak_memory() -> None:
    """Start a new peak measurement (call before the step you want to measure)."""
    if (cuda := _cuda()) is not None:
        cuda.reset_peak_memory_stats()


def peak_memory_gb() -> float | None:
    """GPU memory reserved at most since ``reset_peak_memory()`` (what must fit on the card), in GB; None: no CUDA."""
    return cuda.max_memory_reserved() / GB if (cuda := _cuda()) is not None else None


# accelerate's should_reduce_batch_size misses these two out-of-memory messages.
_ALSO_OUT_OF_MEMORY = ("CUDA error: out of memory", "CUBLAS_STATUS_ALLOC_FAILED")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for GPU and CPU out-of-memory errors (accelerate's test, plus ``MemoryError`` and torch's type)."""
    from accelerate.utils.memory import should_reduce_batch_size

    torch = sys.modules.get("torch")
    if isinstance(exc, MemoryError) or (torch is not None and isinstance(exc, torch.OutOfMemoryError)):
        return True
    return should_reduce_batch_size(exc) or (
        isinstance(exc, RuntimeError) and any(text in str(exc) for text in _ALSO_OUT_OF_MEMORY))


@contextmanager
def out_of_memory_advice(stage: str, batch_size: int) -> Iterator[None]:
    """Turn an out-of-memory error inside the block (``stage``: "training" or "generation") into a ``CourseError``
    that says what to lower. Memory is freed; checkpoints already written stay, so a rerun resumes."""
    try:
        yield
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        error = CourseError(f"out_of_memory_{stage}", f"at batch size {batch_size}", suggestion=max(1, batch_size // 2))
        error.__cause__ = exc
    else:
        return
    free_memory()  # outside the except block, so the failed step's tensors can be released
    raise error


class track_peak_rss:
    """``with track_peak_rss() as rss:`` then ``rss.start_gb``, ``rss.peak_gb``: the process's RSS (GB) before the block
    and at its highest inside it, sampled every ``interval`` s (``rss.sample()`` where you expect a peak, too)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.start_gb = self.peak_gb = process_ram_gb()
        self._stop, self._interval = threading.Event(), interval
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def sample(self) -> None:
        self.peak_gb = max(self.peak_gb, process_ram_gb())

    def __enter__(self) -> track_peak_rss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


# --- where the series keeps what one notebook hands to the next ------------------------------------------


def on_colab() -> bool:
    return "COLAB_RELEASE_TAG" in os.environ or Path("/content").is_dir() and "COLAB_GPU" in os.environ


def mount_drive() -> bool:
    """Mount Google Drive on Colab (asks the learner once); False elsewhere or if they decline."""
    if on_colab() and not DRIVE_ROOT.is_dir():
        try:
            from google.colab import drive  # type: ignore[import-not-found]

            drive.mount(str(DRIVE_ROOT.parent))
        except Exception as err:  # declined, or a Colab hiccup: carry on with local storage
            print(f"Google Drive not mounted ({err}); results stay in this runtime only.")
    return on_colab() and DRIVE_ROOT.is_dir()


def course_home(profile: str | None = None) -> Path:
    """The profile's folder for results, adapter, checkpoints, figures: ``$COURSE_HOME``, else Google Drive when
    mounted (a disconnect loses nothing), else ``outputs/`` beside the course (``WORK_ROOT``). Profiles never mix."""
    default = DRIVE_ROOT / DRIVE_FOLDER if DRIVE_ROOT.is_dir() else WORK_ROOT / "outputs"
    root = Path(os.environ.get("COURSE_HOME") or default)
    home = root / profile if profile else root
    home.mkdir(parents=True, exist_ok=True)
    return home


def course_folder(profile: str, name: str) -> Path:
    """The folder ``name`` (``results``, ``adapter``, ``checkpoints``, ``figures``) in the profile's course home."""
    return course_home(str(Path(profile, name)))


def save_pretrained_whole(folder: Path, *objects) -> Path:
    """``save_pretrained`` of each object into ``folder``, whole or not at all (``results.write_whole``)."""
    from llmcourse.results import write_whole

    with write_whole(folder) as partial:
        for obj in objects:
            obj.save_pretrained(partial)
    return Path(folder)


# --- the preflight: everything above, checked before the first big download --------------------------------


@dataclass
class PreflightReport:  # what the preflight found
    profile_name: str
    gpu_name: str | None
    gpu_memory_gb: float | None
    ram_gb: float
    free_disk_gb: float
    versions: dict[str, str | None] = field(default_factory=dict)
    pins: dict[str, str] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    token: str = "(none)"  # masked, never the token itself
    access: AccessReport | None = None
    warnings: list[str] = field(default_factory=list)


def run_preflight(profile, requirements: str | os.PathLike[str] | None = None, token_check: bool | None = None,
                  print_fn: Callable[[str], Any] = print, gpu_info: GpuInfo | None = None, api: Any | None = None,
                  env: Mapping[str, str] | None = None, colab_userdata: Any | None = None,
                  disk_path: str | os.PathLike[str] = ".", needed_disk_gb: float | None = None) -> PreflightReport:
    """Check GPU, RAM, disk, package versions and Hub access for ``profile``, one printed line per item. Raises
    ``CourseError`` for what would make the next cells fail (``no_gpu``, ``low_disk``, Hub access); version
    mismatches and a small GPU or RAM print advice and go on. ``token_check``: None checks the token on GPU
    profiles only (the cpu and smoke tracks work offline). ``requirements``: as ``requirements_pins``; ``gpu_info``,
    ``api``, ``env``... are for tests."""

    def say(mark: str, text: str) -> None:
        print_fn(f"  {mark} {text}")

    def warn(text: str) -> None:
        report.warnings.append(text)
        say(BAD, text)

    print_fn(f"Preflight for profile {profile.name!r} ({profile.model_id})")
    gpu = detect_gpu() if gpu_info is None else gpu_info
    report = PreflightReport(profile.name, gpu.name, gpu.memory_gb, ram_gb(), free_disk_gb(disk_path))
    say(OK, f"profile: {profile.name}" + (f" ({profile.reason})" if profile.reason else ""))
    if gpu.present:
        say(OK, f"GPU: {gpu}")
        if profile.bf16 and tuple(gpu.capability) < (8, 0):
            warn(f"profile {profile.name!r} trains in bf16, which this GPU (compute capability {gpu.capability[0]}."
                 f"{gpu.capability[1]}) only emulates, slowly: set PROFILE = 't4' in the parameters cell")
        if profile.uses_gpu and gpu.memory_gb < ADVISED_GPU_GB:
            warn(f"only {gpu.memory_gb:.1f} GB of GPU memory (a T4 has 15.8 GB): lower BATCH_SIZE and "
                 "EVAL_BATCH_SIZE in notebooks 02-04, or switch to a T4 runtime")
    elif profile.uses_gpu:
        say(BAD, "GPU: none found")
        raise CourseError("no_gpu", f"the {profile.name!r} profile needs a CUDA GPU", profile=profile.name)
    else:
        say(OK, "GPU: none (not needed by this profile)")
    say(OK, f"RAM: {report.ram_gb:.1f} GB")
    if profile.uses_gpu and report.ram_gb < ADVISED_RAM_GB:
        warn(f"only {report.ram_gb:.1f} GB of RAM (a free Colab has {COLAB_FREE_RAM_GB} GB): loading works; in notebook 05, "
             "restart the runtime before merging the adapter")

    needed = DISK_NEEDED_GB.get(profile.name, 2.0) if needed_disk_gb is None else needed_disk_gb
    free = report.free_disk_gb
    say(OK if free >= needed else BAD, f"disk: {free:.1f} GB free (about {needed:g} GB needed)")
    check_disk(disk_path, needed)  # before the download rather than when it fails at 90 %

    report.pins = requirements_pins(requirements)
    names = list(dict.fromkeys(["torch", *report.pins]))
    report.versions = installed_versions(names)
    report.mismatches = version_problems(report.pins, report.versions, stale_imports(names=names))
    shown = ", ".join(f"{name} {have or '-'}" for name, have in report.versions.items())
    say(BAD if report.mismatches else OK, f"python {platform.python_version()}; {shown}")
    for problem in report.mismatches:
        say(BAD, problem)
    if report.mismatches:
        print_fn(textwrap.indent(str(CourseError("version_mismatch", packages="; ".join(report.mismatches))), "    "))

    local = is_local_model(profile.model_id)
    if local or not (profile.uses_gpu if token_check is None else token_check):
        say(OK, f"HF token and model access: not checked ({'local model' if local else 'not needed here'})")
        return report
    token, source = read_hf_token_with_source(env, colab_userdata)
    report.token = mask_token(token)
    try:
        report.access = check_model_access(profile.model_id, token, api=api)
    except CourseError as error:
        say(BAD, f"HF token: {report.token} ({source})")
        say(BAD, f"model access: {profile.model_id}: {error.symptom}")
        if error.key == "missing_token" and token is None:  # say where the token was looked for
            raise CourseError("missing_token", source, **error.values) from error.__cause__
        raise
    say(OK, f"HF token: {report.token} ({source})" if token else "HF token: none, and this model needs none")
    say(OK, f"model access: {report.access.message}")
    return report


if __name__ == "__main__":  # colab_setup.sh: the versions installed and the GPU
    print("versions: " + ", ".join(f"{n} {v or '-'}" for n, v in installed_versions().items()))
    gpu = detect_gpu()
    print(f"GPU: {gpu}" if gpu.present else "GPU: none (the cpu track runs; Colab: Runtime > Change runtime type)")
