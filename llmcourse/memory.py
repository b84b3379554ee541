"""Memory: recognise out-of-memory errors, free memory, report it, and retry with smaller batches.

``halve_until_fits`` is what keeps an evaluation from dying on the first out-of-memory error: it
retries the same work with half the batch until it fits, and only then gives up with a message that
says which setting to lower.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from llmcourse.troubleshooting import CourseError

T = TypeVar("T")

# One unit for every memory figure the notebooks compare (measured GPU memory, the training budget's
# prediction, model footprints): GB = 10^9 bytes. (nvidia-smi and Colab's gauges show GiB = 2^30 bytes:
# a T4's "15 GB" there is 15.8 GB here.)
GB = 1e9

# Lower-cased fragments of out-of-memory messages from PyTorch's allocators (CUDA, MPS, CPU) and cuBLAS.
_OOM_MESSAGES = (
    "out of memory",
    "can't allocate memory",
    "not enough memory",
    "cublas_status_alloc_failed",
    "failed to allocate memory",
)


def _torch():
    """torch if it has been imported; when it has not, no torch error or CUDA memory can exist yet."""
    return sys.modules.get("torch")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for GPU out-of-memory errors (``torch.OutOfMemoryError``, "CUDA out of memory" messages) and
    for running out of CPU RAM (``MemoryError``, "can't allocate memory")."""
    if isinstance(exc, MemoryError):
        return True
    torch = _torch()
    if torch is not None:
        oom_types = tuple(
            t
            for t in (getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None))
            if isinstance(t, type)
        )
        if oom_types and isinstance(exc, oom_types):
            return True
    if isinstance(exc, RuntimeError):
        message = str(exc).lower()
        return any(fragment in message for fragment in _OOM_MESSAGES)
    return False


def _cuda_ready(torch) -> bool:
    return torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized()


def free_memory() -> None:
    """Give back what can be given back: Python garbage, then PyTorch's cached GPU blocks."""
    gc.collect()
    torch = _torch()
    if _cuda_ready(torch):
        torch.cuda.empty_cache()


def gpu_memory_gb() -> dict[str, float | None]:
    """GPU 0's memory in GB (10^9 bytes): ``allocated`` (by tensors), ``reserved`` (by PyTorch's cache), ``peak``
    (most reserved since the last reset) and ``total``. On a machine without CUDA: zeros, total None."""
    import torch

    if not torch.cuda.is_available():
        return {"allocated": 0.0, "reserved": 0.0, "peak": 0.0, "total": None}
    return {
        "allocated": torch.cuda.memory_allocated() / GB,
        "reserved": torch.cuda.memory_reserved() / GB,
        "peak": torch.cuda.max_memory_reserved() / GB,
        "total": torch.cuda.get_device_properties(0).total_memory / GB,
    }


def reset_peak_memory() -> None:
    """Start a new peak measurement (call before the step you want to measure)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_memory_gb() -> float | None:
    """Most GPU memory reserved since ``reset_peak_memory()``, in GB; None without CUDA.

    Reserved rather than allocated memory, because that is what has to fit on the card.
    """
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_reserved() / GB


def process_ram_gb() -> float:
    """RAM used by this Python process (resident set size), in GB."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / GB
    except ImportError:
        pass
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024 / GB
    except OSError:
        pass
    import resource  # peak, not current, but the best left on systems without /proc

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / GB if sys.platform == "darwin" else peak * 1024 / GB


def memory_summary() -> str:
    """One line for the learner: GPU memory in use, peak and total, and this process's RAM."""
    gpu = gpu_memory_gb()
    ram = f"RAM {process_ram_gb():.1f} GB"
    if gpu["total"] is None:
        return f"no GPU; {ram}"
    return (
        f"GPU {gpu['allocated']:.1f} GB allocated, {gpu['reserved']:.1f} GB reserved, peak {gpu['peak']:.1f} "
        f"of {gpu['total']:.1f} GB; {ram}"
    )


_STAGES = {"generation": "out_of_memory_generation", "training": "out_of_memory_training"}


def halve_until_fits(
    run: Callable[[int], T],
    start: int,
    minimum: int = 1,
    on_retry: Callable[[int, BaseException], None] | None = None,
    stage: str = "generation",
) -> tuple[T, int]:
    """Call ``run(start)``; on out-of-memory, free memory and retry with half the size, down to ``minimum``.

    Returns ``(result, size that worked)``. ``on_retry(new_size, error)`` is called before each retry
    (e.g. to tell the learner). Errors that are not out-of-memory propagate unchanged. When even
    ``minimum`` does not fit, raises ``CourseError("out_of_memory_generation" | "out_of_memory_training")``
    chained from the last out-of-memory error. ``run`` must be safe to call again (it should not keep
    partial results of a failed call).
    """
    if stage not in _STAGES:
        raise ValueError(f"stage must be one of {', '.join(_STAGES)}, not {stage!r}")
    if start < 1 or minimum < 1:
        raise ValueError(f"start and minimum must be at least 1 (got start={start}, minimum={minimum})")
    minimum = min(minimum, start)
    size = start
    tried: list[int] = []
    while True:
        try:
            return run(size), size
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            tried.append(size)
            if size <= minimum:
                setting = "EVAL_BATCH_SIZE" if stage == "generation" else "BATCH_SIZE"
                raise CourseError(
                    _STAGES[stage],
                    f"even {setting} = {size} did not fit (tried {', '.join(map(str, tried))})",
                    batch_size=size,
                    suggestion=max(1, size // 2),
                ) from exc
            size = max(minimum, size // 2)
            if on_retry is not None:
                on_retry(size, exc)
        # Freed only here, after the except block: the error's traceback keeps the failed call's
        # tensors alive until Python drops it at the end of that block.
        free_memory()


@contextmanager
def out_of_memory_advice(stage: str, batch_size: int) -> Iterator[None]:
    """Turn an out-of-memory error inside the block into a ``CourseError`` that says what to lower.

    Memory is freed first. Nothing else is touched: checkpoints already written stay, and running the
    training cell again with smaller settings resumes from the last one.
    """
    if stage not in _STAGES:
        raise ValueError(f"stage must be one of {', '.join(_STAGES)}, not {stage!r}")
    try:
        yield
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        error = CourseError(_STAGES[stage], f"at batch size {batch_size}", batch_size=batch_size,
                            suggestion=max(1, batch_size // 2))
        error.__cause__ = exc
    else:
        return
    free_memory()  # outside the except block, so the failed step's tensors can be released
    raise error


class PeakRSS:
    """The process's RSS before a block and at its highest inside it (``track_peak_rss``), in GB."""

    def __init__(self, interval: float = 0.005) -> None:
        import threading

        self.interval = interval
        self.start_gb = process_ram_gb()
        self.peak_gb = self.start_gb
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def sample(self) -> float:
        """Read the RSS now (also call it at the moments you expect a peak: a sampler can miss one)."""
        now = process_ram_gb()
        self.peak_gb = max(self.peak_gb, now)
        return now

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()


@contextmanager
def track_peak_rss(interval: float = 0.005) -> Iterator[PeakRSS]:
    """Measure the peak RSS of a block: a thread samples it every ``interval`` seconds.

    ``with track_peak_rss() as rss: ...`` then ``rss.start_gb`` and ``rss.peak_gb``.
    """
    rss = PeakRSS(interval)
    rss._thread.start()
    try:
        yield rss
    finally:
        rss._stop.set()
        rss._thread.join()
        rss.sample()
