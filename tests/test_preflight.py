"""Tests for llmcourse.preflight: pins, versions, disk, RAM and the printed preflight block."""

from __future__ import annotations

import dataclasses
import sys
import types

import pytest
from huggingface_hub.errors import GatedRepoError

from llmcourse import preflight
from llmcourse.preflight import (
    NO_GPU,
    GpuInfo,
    PreflightReport,
    check_disk,
    free_disk_gb,
    installed_versions,
    loaded_versions,
    ram_gb,
    requirements_pins,
    run_preflight,
    version_problems,
)
from llmcourse.profiles import LLAMA_BASE_UNGATED, PROFILES
from llmcourse.troubleshooting import CourseError

TOKEN = "hf_" + "Zq7" * 11 + "wxyz"  # built at runtime: no token-like literal in the repository
T4 = GpuInfo("Tesla T4", (7, 5), 14.7)


class FakeResponse:
    def __init__(self, status_code):
        self.status_code, self.headers, self.request = status_code, {}, None


class FakeApi:
    def __init__(self, error=None):
        self.error, self.calls = error, []

    def auth_check(self, repo_id):
        self.calls.append(repo_id)
        if self.error is not None:
            raise self.error

    def model_info(self, repo_id):
        return types.SimpleNamespace(gated="manual")


class NoSecrets:
    def get(self, name):
        raise type("SecretNotFoundError", (Exception,), {})(name)


def preflight_with(profile, lines, **kwargs):
    kwargs.setdefault("requirements", None)
    kwargs.setdefault("colab_userdata", NoSecrets())
    return run_preflight(profile, print_fn=lines.append, **kwargs)


# --- requirements and versions ---------------------------------------------------------------


def test_requirements_pins(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text(
        "# course pins\n"
        "torch==2.5.1  # comment\n"
        "transformers[torch]==5.23.0\n"
        "Huggingface_Hub == 2.4.0\n"
        "trl==1.16.0 ; python_version >= '3.0'\n"
        "never==9.9 ; python_version < '3.0'\n"
        "numpy>=1.26\n"
        "-r other.txt\n"
        "--extra-index-url https://example.org/simple\n"
        "peft==0.21.2 --hash=sha256:abc\n"
        "\n",
        encoding="utf-8",
    )
    assert requirements_pins(path) == {
        "torch": "2.5.1",
        "transformers": "5.23.0",
        "huggingface-hub": "2.4.0",
        "trl": "1.16.0",
        "peft": "0.21.2",
    }
    assert requirements_pins(path, evaluate_markers=False)["never"] == "9.9"


def test_installed_versions():
    versions = installed_versions(["pytest", "surely-not-an-installed-package-xyz"])
    assert versions["pytest"] == pytest.__version__
    assert versions["surely-not-an-installed-package-xyz"] is None


def test_version_problems():
    pins = {"torch": "2.5.1", "trl": "1.16.0", "peft": "0.21.2"}
    installed = {"torch": "2.5.1+cu121", "trl": "1.15.0", "peft": None}
    problems = version_problems(pins, installed)
    assert len(problems) == 2
    assert any("trl 1.15.0 is installed" in p and "1.16.0" in p for p in problems)
    assert any("peft is not installed" in p for p in problems)
    assert version_problems({"torch": "2.5.1"}, {"torch": "2.5.1"}) == []


def test_imported_before_upgrade_is_a_problem():
    problems = version_problems({}, {"transformers": "5.23.0"}, {"transformers": "4.46.0"})
    assert problems == [
        "transformers 4.46.0 is in use, but 5.23.0 is installed (imported before the upgrade)"
    ]


def test_loaded_versions_reads_imported_modules(monkeypatch):
    monkeypatch.setitem(sys.modules, "iniconfig", types.SimpleNamespace(__version__="0.0.1"))
    loaded = loaded_versions(["iniconfig", "surely-not-imported-xyz"])
    assert loaded == {"iniconfig": "0.0.1", "surely-not-imported-xyz": None}
    assert loaded_versions(["huggingface-hub"])["huggingface-hub"] is not None


# --- disk and RAM -------------------------------------------------------------------------


def test_disk(tmp_path):
    assert free_disk_gb(tmp_path) > 0
    assert free_disk_gb(tmp_path / "not" / "made" / "yet") > 0
    assert check_disk(tmp_path, 0.001) > 0
    with pytest.raises(CourseError) as info:
        check_disk(tmp_path, 10**9)
    err = info.value
    assert err.key == "low_disk"
    assert "1000000000 GB" in err.cause and str(tmp_path) in err.cause
    assert "outputs/" in err.fix


def test_ram(request, tmp_path):
    total = ram_gb()
    assert 0.1 < total < 100_000
    request.getfixturevalue("no_psutil")  # from here on, the /proc/meminfo fallback
    assert ram_gb() == pytest.approx(total, rel=0.01)
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       13290452 kB\nMemFree: 1 kB\n", encoding="ascii")
    assert preflight._meminfo_total_gb(meminfo) == pytest.approx(12.67, abs=0.01)


# --- run_preflight ------------------------------------------------------------------------


def test_gpu_profile_without_gpu_raises_no_gpu():
    lines: list[str] = []
    with pytest.raises(CourseError) as info:
        preflight_with(PROFILES["t4"], lines, gpu_info=NO_GPU, api=FakeApi())
    err = info.value
    assert err.key == "no_gpu"
    assert "Runtime > Change runtime type" in err.fix and "PROFILE = 'cpu'" in err.fix
    assert any("✗ GPU: none found" in line for line in lines)


def test_cpu_profile_needs_no_gpu_and_no_hub():
    lines: list[str] = []
    api = FakeApi(AssertionError("the Hub must not be asked"))
    report = preflight_with(PROFILES["cpu"], lines, gpu_info=NO_GPU, api=api)
    assert isinstance(report, PreflightReport)
    assert report.access is None and api.calls == []
    assert report.gpu_name is None and report.profile_name == "cpu"
    assert report.ram_gb > 0 and report.free_disk_gb > 0
    assert any("not checked" in line for line in lines)


def test_gpu_profile_checks_access_and_never_prints_the_token(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"pytest=={pytest.__version__}\n", encoding="utf-8")
    lines: list[str] = []
    api = FakeApi()
    report = preflight_with(
        PROFILES["t4"], lines, gpu_info=T4, api=api, env={"HF_TOKEN": TOKEN}, requirements=requirements
    )
    printed = "\n".join(lines)
    assert TOKEN not in printed and TOKEN[3:-4] not in printed
    assert "hf_...wxyz" in printed and report.token == "hf_...wxyz"
    assert TOKEN not in repr(report)
    assert api.calls == [PROFILES["t4"].model_id]
    assert report.access is not None and report.access.ok
    assert (
        report.gpu_name == "Tesla T4" and report.compute_capability == "7.5" and report.gpu_memory_gb == 14.7
    )
    assert report.mismatches == [] and report.versions["pytest"] == pytest.__version__
    assert "torch" in report.versions  # shown even when not pinned
    assert "✓ GPU: Tesla T4, compute capability 7.5, 14.7 GB" in printed
    assert all(line.startswith(("Preflight", "  ✓", "  ✗", "  ·", "    ")) for line in lines)


def test_no_token_for_gated_model():
    lines: list[str] = []
    api = FakeApi(GatedRepoError("401 Client Error.", response=FakeResponse(401)))
    with pytest.raises(CourseError) as info:
        preflight_with(PROFILES["t4"], lines, gpu_info=T4, api=api, env={})
    err = info.value
    assert err.key == "missing_token"
    assert "HF_TOKEN" in err.fix and "Secrets" in err.fix
    assert isinstance(err.__cause__, GatedRepoError)


def test_gated_refusal_offers_the_ungated_copy():
    lines: list[str] = []
    api = FakeApi(GatedRepoError("403 Client Error.", response=FakeResponse(403)))
    with pytest.raises(CourseError) as info:
        preflight_with(PROFILES["t4"], lines, gpu_info=T4, api=api, env={"HF_TOKEN": TOKEN})
    assert info.value.key == "gated_no_access"
    assert LLAMA_BASE_UNGATED in info.value.fix
    printed = "\n".join(lines) + str(info.value)
    assert TOKEN not in printed


def test_version_mismatch_prints_advice_but_goes_on(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pytest==0.0.1\n", encoding="utf-8")
    lines: list[str] = []
    report = preflight_with(PROFILES["cpu"], lines, gpu_info=NO_GPU, requirements=requirements)
    printed = "\n".join(lines)
    assert report.mismatches and not report.ok
    assert "Restart session" in printed and "run the notebook from the top" in printed
    assert "✗ pytest" in printed


def test_missing_requirements_file_is_not_fatal(tmp_path):
    lines: list[str] = []
    report = preflight_with(PROFILES["cpu"], lines, gpu_info=NO_GPU, requirements=tmp_path / "nope.txt")
    assert report.pins == {} and "torch" in report.versions


def test_low_disk_stops_before_the_download(tmp_path):
    lines: list[str] = []
    with pytest.raises(CourseError) as info:
        preflight_with(PROFILES["cpu"], lines, gpu_info=NO_GPU, disk_path=tmp_path, needed_disk_gb=10**9)
    assert info.value.key == "low_disk"
    assert any(line.startswith("  ✗ disk") for line in lines)


def test_bf16_profile_on_a_t4_warns():
    lines: list[str] = []
    report = preflight_with(PROFILES["ampere"], lines, gpu_info=T4, token_check=False)
    assert report.warnings and "PROFILE = 't4'" in report.warnings[0]


def test_local_model_skips_the_hub():
    lines: list[str] = []
    profile = dataclasses.replace(PROFILES["t4"], model_id="offline:tiny-random-llama3")
    api = FakeApi(AssertionError("the Hub must not be asked"))
    report = preflight_with(profile, lines, gpu_info=T4, api=api)
    assert api.calls == [] and report.access is None


def test_detect_gpu_on_this_machine():
    import torch

    info = preflight.detect_gpu()
    assert info.present == torch.cuda.is_available()


def test_gpu_info():
    assert GpuInfo("A100", (8, 0), 40.0).present
    assert not NO_GPU.present
