"""The running kernel against the installed packages (pitfall 10 in docs/PITFALLS.md).

Colab starts with torch, transformers and friends already installed, and may have imported some of
them. A package imported before ``pip`` upgraded it stays old in the running kernel, and the errors
it then gives (missing arguments, strange tracebacks) say nothing about the real cause.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

WATCHED = {
    "torch": "torch",
    "transformers": "transformers",
    "peft": "peft",
    "trl": "trl",
    "bitsandbytes": "bitsandbytes",
    "accelerate": "accelerate",
    "datasets": "datasets",
    "huggingface_hub": "huggingface-hub",
}


def stale_imports(modules: dict | None = None) -> list[tuple[str, str, str]]:
    """(package, version in memory, version installed) for each imported package that is out of date."""
    modules = sys.modules if modules is None else modules
    stale = []
    for module_name, dist in WATCHED.items():
        module = modules.get(module_name)
        loaded = getattr(module, "__version__", None) if module is not None else None
        if loaded is None:
            continue
        try:
            installed = version(dist)
        except PackageNotFoundError:
            continue
        if str(loaded).split("+")[0] != installed.split("+")[0]:
            stale.append((dist, str(loaded), installed))
    return stale


def warn_if_restart_needed(modules: dict | None = None, print_fn=print) -> bool:
    """Print how to restart when a package in memory is older than the one installed; True if so."""
    stale = stale_imports(modules)
    if not stale:
        return False
    from llmcourse.troubleshooting import explain

    detail = ", ".join(f"{name} {old} in memory but {new} installed" for name, old, new in stale)
    print_fn(explain("version_mismatch", detail, packages=detail))
    return True
