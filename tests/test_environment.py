"""Tests for llmcourse.environment: packages, the machine, memory, storage and the printed preflight block."""

from __future__ import annotations

import dataclasses
import types

import pytest
import torch
from huggingface_hub.errors import GatedRepoError

from llmcourse import environment
from llmcourse.environment import (
    PACKAGES,
    GpuInfo,
    PreflightReport,
    check_disk,
    free_disk_gb,
    installed_versions,
    ram_gb,
    requirements_pins,
    run_preflight,
    stale_imports,
    version_problems,
)
from llmcourse.profiles import LLAMA_BASE_UNGATED, PROFILES
from llmcourse.troubleshooting import CourseError

TOKEN = "hf_" + "Zq7" * 11 + "wxyz"  # built at runtime: no token-like literal in the repository
T4 = GpuInfo("Tesla T4", (7, 5), 15.8)
NO_GPU = GpuInfo()


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


def test_the_package_list_is_the_requirements_file_plus_torch():
    assert PACKAGES == ("torch", *requirements_pins(environment.REPO_ROOT / "requirements.txt"))
    assert {"transformers", "peft", "trl", "bitsandbytes", "huggingface-hub"} <= set(PACKAGES)


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
    problems = version_problems({}, {}, [("transformers", "4.46.0", "5.23.0")])
    assert problems == ["transformers 4.46.0 is in memory, but 5.23.0 is installed (imported before the upgrade)"]


# --- disk and RAM -------------------------------------------------------------------------


def test_disk(tmp_path):
    assert free_disk_gb(tmp_path) > 0
    assert free_disk_gb(tmp_path / "not" / "made" / "yet") > 0
    assert check_disk(tmp_path, 0.001) > 0
    with pytest.raises(CourseError) as info:
        check_disk(tmp_path, 10**9)
    err = info.value
    assert err.key == "low_disk"
    assert "1000000000.0 GB" in err.cause and str(tmp_path) in err.cause
    assert "outputs/" in err.fix


def test_ram_is_in_the_courses_gb():
    import psutil

    assert environment.GB == 1e9
    assert ram_gb() == pytest.approx(psutil.virtual_memory().total / 1e9)
    assert 0.01 < environment.process_ram_gb() < ram_gb()


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
    assert report.gpu_name == "Tesla T4" and report.gpu_memory_gb == 15.8
    assert report.mismatches == [] and report.versions["pytest"] == pytest.__version__
    assert "torch" in report.versions  # shown even when not pinned
    assert "✓ GPU: Tesla T4, compute capability 7.5, 15.8 GB" in printed
    assert all(line.startswith(("Preflight", "  ✓", "  ✗", "    ")) for line in lines)


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
    assert report.mismatches
    assert "Restart session" in printed and "run the notebook from the top" in printed
    assert "✗ pytest" in printed


def test_by_default_the_preflight_compares_with_the_course_pins():
    report = preflight_with(PROFILES["cpu"], [], gpu_info=NO_GPU)
    assert report.pins == requirements_pins() and "torch" in report.versions


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


def test_a_small_gpu_or_little_ram_is_advice_not_an_error(monkeypatch):
    lines: list[str] = []
    monkeypatch.setattr(environment, "ram_gb", lambda: 12.0)
    small = GpuInfo("Tesla P4", (6, 1), 8.0)
    report = preflight_with(PROFILES["t4"], lines, gpu_info=small, token_check=False)
    assert [w.split(" (")[0] for w in report.warnings] == ["only 8.0 GB of GPU memory", "only 12.0 GB of RAM"]
    assert preflight_with(PROFILES["t4"], [], gpu_info=T4, token_check=False).warnings == ["only 12.0 GB of RAM (a "
        "free Colab has 13.6 GB): loading works; in notebook 05, restart the runtime before merging the adapter"]
    assert preflight_with(PROFILES["cpu"], [], gpu_info=NO_GPU).warnings == []  # the cpu track needs neither


def test_local_model_skips_the_hub():
    lines: list[str] = []
    profile = dataclasses.replace(PROFILES["t4"], model_id="offline:tiny-random-llama3")
    api = FakeApi(AssertionError("the Hub must not be asked"))
    report = preflight_with(profile, lines, gpu_info=T4, api=api)
    assert api.calls == [] and report.access is None


def test_detect_gpu_on_this_machine():
    import torch

    info = environment.detect_gpu()
    assert info.present == torch.cuda.is_available()


def test_gpu_info():
    assert GpuInfo("A100", (8, 0), 40.0).present
    assert not NO_GPU.present


# --- packages in memory against the installed ones (pitfall 10) ---------------------------------------------

INSTALLED_TRANSFORMERS = installed_versions(["transformers"])["transformers"]


def fake_module(name, module_version):
    module = types.ModuleType(name)
    if module_version is not None:
        module.__version__ = module_version
    return module


def test_old_version_in_memory_is_reported():
    modules = {"transformers": fake_module("transformers", "0.0.1"), "torch": fake_module("torch", "0.0.2")}
    assert stale_imports(modules) == [("torch", "0.0.2", installed_versions(["torch"])["torch"]),
                                      ("transformers", "0.0.1", INSTALLED_TRANSFORMERS)]


@pytest.mark.parametrize("modules", [
    {"transformers": fake_module("transformers", INSTALLED_TRANSFORMERS)},
    {"transformers": fake_module("transformers", INSTALLED_TRANSFORMERS.split("+")[0] + "+cu121")},  # local label
    {"transformers": fake_module("transformers", None), "peft": None},  # no version, not imported
    {"numpy": fake_module("numpy", "0.0.1")},  # not one of the course's packages
    {},
])
def test_up_to_date_or_unknown_modules_are_not_reported(modules):
    assert stale_imports(modules) == []


def test_distribution_name_is_reported_not_module_name():
    modules = {"huggingface_hub": fake_module("huggingface_hub", "0.0.1")}
    assert stale_imports(modules) == [("huggingface-hub", "0.0.1", installed_versions(["huggingface-hub"])[
        "huggingface-hub"])]


def test_not_installed_package_is_skipped():
    assert stale_imports({"nothing_here_xyz": fake_module("x", "0.0.1")}, names=["nothing-here-xyz"]) == []


def test_defaults_to_sys_modules():
    import transformers  # noqa: F401  (the real, current module is in sys.modules)

    assert all(name != "transformers" for name, _, _ in stale_imports())


def test_warn_prints_restart_advice_once():
    printed: list[str] = []
    assert environment.warn_if_restart_needed({"transformers": fake_module("transformers", "0.0.1")}, printed.append)
    assert len(printed) == 1
    assert f"transformers 0.0.1 is in memory, but {INSTALLED_TRANSFORMERS} is installed" in printed[0]
    assert "Restart session" in printed[0]
    printed.clear()
    assert not environment.warn_if_restart_needed({}, printed.append) and printed == []


# --- memory ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    torch.cuda.OutOfMemoryError("x"),
    RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB"),
    RuntimeError("CUDA error: out of memory"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:83] DefaultCPUAllocator: can't allocate memory"),
    RuntimeError("CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate(handle)"),
    RuntimeError("MPS backend out of memory"),
    MemoryError(),
])
def test_out_of_memory_is_recognised(error):
    assert environment.is_out_of_memory(error)


@pytest.mark.parametrize("error", [
    RuntimeError("CUDA error: an illegal memory access was encountered"),
    ValueError("out of memory"),  # not an error type an allocator raises
    KeyError("x"),
    RuntimeError("shape mismatch"),
])
def test_other_errors_are_not(error):
    assert not environment.is_out_of_memory(error)


def test_out_of_memory_advice_names_the_knob_and_frees_memory(monkeypatch):
    freed = []
    monkeypatch.setattr(environment, "free_memory", lambda: freed.append(1))
    with pytest.raises(CourseError) as info, environment.out_of_memory_advice("generation", batch_size=16):
        raise torch.OutOfMemoryError("CUDA out of memory.")
    assert info.value.key == "out_of_memory_generation" and "EVAL_BATCH_SIZE to 8" in info.value.fix
    assert isinstance(info.value.__cause__, torch.OutOfMemoryError) and freed == [1]


def test_memory_reports_on_this_machine():
    environment.free_memory()
    environment.reset_peak_memory()
    if not torch.cuda.is_available():
        assert environment.peak_memory_gb() is None


def test_track_peak_rss_sees_a_block_that_allocates():
    with environment.track_peak_rss(interval=0.001) as rss:
        block = bytearray(200_000_000)
        rss.sample()
        del block
    assert rss.peak_gb - rss.start_gb > 0.1


# --- where the series keeps its files ---------------------------------------------------------------------

COLAB_VARS = ("COLAB_RELEASE_TAG", "COLAB_GPU")


@pytest.fixture
def home(tmp_path, monkeypatch):
    root = tmp_path / "course"
    monkeypatch.setenv("COURSE_HOME", str(root))
    for name in COLAB_VARS:
        monkeypatch.delenv(name, raising=False)
    return root


def test_course_home_uses_env_and_keeps_profiles_apart(home):
    assert environment.course_home("t4") == home / "t4" and (home / "t4").is_dir()
    assert environment.course_home() == home
    assert environment.course_home("cpu") != environment.course_home("smoke")


@pytest.mark.parametrize("name", ["results", "adapter", "checkpoints", "figures"])
def test_course_folder_creates_the_subfolder_and_keeps_contents(home, name):
    path = environment.course_folder("cpu", name)
    assert path == home / "cpu" / name and path.is_dir()
    (path / "before_x.json").write_text("{}", encoding="utf-8")
    assert environment.course_folder("cpu", name) == path and (path / "before_x.json").read_text() == "{}"


def test_without_course_home_drive_when_mounted_else_repo_outputs(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_HOME", raising=False)
    monkeypatch.setattr(environment, "DRIVE_ROOT", tmp_path / "no-drive")
    monkeypatch.setattr(environment, "WORK_ROOT", tmp_path / "repo")
    assert environment.course_home("cpu") == tmp_path / "repo" / "outputs" / "cpu"
    monkeypatch.setattr(environment, "DRIVE_ROOT", tmp_path / "repo")
    assert environment.course_home("t4") == tmp_path / "repo" / environment.DRIVE_FOLDER / "t4"


def test_colab_and_drive(home, monkeypatch, tmp_path, capsys):
    assert environment.on_colab() is False and environment.mount_drive() is False
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20240726")
    assert environment.on_colab() is True
    monkeypatch.setattr(environment, "DRIVE_ROOT", tmp_path / "not-mounted")
    assert environment.mount_drive() is False  # google.colab is not installed here
    assert "Google Drive not mounted" in capsys.readouterr().out
    monkeypatch.setattr(environment, "DRIVE_ROOT", tmp_path)
    assert environment.mount_drive() is True


def test_save_pretrained_whole_leaves_no_partial_folder(tmp_path):
    class Saves:
        def save_pretrained(self, folder):
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "weights").write_text("w")

    out = environment.save_pretrained_whole(tmp_path / "model", Saves())
    assert sorted(p.name for p in out.iterdir()) == ["weights"]
    assert not (tmp_path / "model.partial").exists()
