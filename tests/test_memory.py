"""Tests for llmcourse.memory: out-of-memory detection and the halve-and-retry loop."""

from __future__ import annotations

import pytest
import torch

from llmcourse import memory
from llmcourse.memory import (
    free_memory,
    gpu_memory_gb,
    halve_until_fits,
    is_out_of_memory,
    memory_summary,
    peak_memory_gb,
    process_ram_gb,
    reset_peak_memory,
)
from llmcourse.troubleshooting import CourseError


@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        torch.cuda.OutOfMemoryError("x"),
        RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"),
        RuntimeError("CUDA error: out of memory"),
        RuntimeError("[enforce fail at alloc_cpu.cpp:83] DefaultCPUAllocator: can't allocate memory"),
        RuntimeError("CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate(handle)"),
        RuntimeError("MPS backend out of memory"),
        MemoryError(),
    ],
)
def test_out_of_memory_is_recognised(error):
    assert is_out_of_memory(error)


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("CUDA error: an illegal memory access was encountered"),
        ValueError("out of memory"),  # not an error type an allocator raises
        KeyError("x"),
        RuntimeError("shape mismatch"),
    ],
)
def test_other_errors_are_not(error):
    assert not is_out_of_memory(error)


def oom_above(limit: int, calls: list[int]):
    def run(size: int) -> str:
        calls.append(size)
        if size > limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory with batch {size}")
        return f"done with {size}"

    return run


def test_halves_until_it_fits():
    calls: list[int] = []
    retries: list[tuple[int, str]] = []
    result, size = halve_until_fits(
        oom_above(5, calls), start=32, on_retry=lambda n, e: retries.append((n, type(e).__name__))
    )
    assert (result, size) == ("done with 4", 4)
    assert calls == [32, 16, 8, 4]
    assert retries == [(16, "OutOfMemoryError"), (8, "OutOfMemoryError"), (4, "OutOfMemoryError")]


def test_fits_first_time():
    calls: list[int] = []
    assert halve_until_fits(oom_above(100, calls), start=16) == ("done with 16", 16)
    assert calls == [16]


def test_does_not_go_below_minimum_and_reaches_it_exactly():
    calls: list[int] = []
    assert halve_until_fits(oom_above(3, calls), start=20, minimum=3)[1] == 3
    assert calls == [20, 10, 5, 3]


def test_minimum_failing_raises_course_error_chained():
    calls: list[int] = []
    with pytest.raises(CourseError) as info:
        halve_until_fits(oom_above(0, calls), start=8, minimum=2)
    err = info.value
    assert err.key == "out_of_memory_generation"
    assert calls == [8, 4, 2]
    assert isinstance(err.__cause__, torch.OutOfMemoryError)
    assert "EVAL_BATCH_SIZE = 2" in err.detail and "8, 4, 2" in err.detail
    assert "EVAL_BATCH_SIZE to 1" in err.fix


def test_training_stage_uses_the_training_advice():
    with pytest.raises(CourseError) as info:
        halve_until_fits(oom_above(0, []), start=4, stage="training")
    assert info.value.key == "out_of_memory_training"
    assert "GRAD_ACCUM" in info.value.fix


def test_cpu_memory_error_is_retried_too():
    def run(size):
        if size > 2:
            raise MemoryError()
        return size

    assert halve_until_fits(run, start=8) == (2, 2)


def test_other_errors_propagate_unchanged():
    boom = ValueError("a real bug")
    calls: list[int] = []

    def run(size):
        calls.append(size)
        raise boom

    with pytest.raises(ValueError) as info:
        halve_until_fits(run, start=8)
    assert info.value is boom
    assert calls == [8]  # not retried


def test_keyboard_interrupt_is_not_swallowed():
    def run(size):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        halve_until_fits(run, start=8)


def test_memory_is_freed_between_tries(monkeypatch):
    freed: list[int] = []
    monkeypatch.setattr(memory, "free_memory", lambda: freed.append(1))
    halve_until_fits(oom_above(2, []), start=8)
    assert len(freed) == 2


def test_bad_arguments():
    with pytest.raises(ValueError):
        halve_until_fits(lambda n: n, start=0)
    with pytest.raises(ValueError):
        halve_until_fits(lambda n: n, start=4, stage="eval")
    assert halve_until_fits(lambda n: n, start=2, minimum=8) == (2, 2)


def test_reports_on_this_machine():
    free_memory()
    reset_peak_memory()
    gpu = gpu_memory_gb()
    assert set(gpu) == {"allocated", "reserved", "peak", "total"}
    if not torch.cuda.is_available():
        assert gpu == {"allocated": 0.0, "reserved": 0.0, "peak": 0.0, "total": None}
        assert peak_memory_gb() is None
        assert memory_summary().startswith("no GPU")
    assert 0.01 < process_ram_gb() < 1024


def test_process_ram_without_psutil(no_psutil):
    assert 0.01 < process_ram_gb() < 1024
