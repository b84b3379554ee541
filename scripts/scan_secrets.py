#!/usr/bin/env python
"""Scan notebooks, outputs, logs and tracked files for access tokens before they are committed or shared.

    python scripts/scan_secrets.py [paths...]

Without paths it scans ``notebooks/``, ``outputs/``, every ``*.log`` file and, in a git repository,
every tracked (or new, not ignored) file. Notebooks are read with their cell outputs, where a printed
token usually hides. Prints ``path:line: kind (masked)``, never the secret itself, and exits 1 when
anything is found, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 20 * 1024 * 1024
SKIP_DIRS = {".venv", "venv", ".git", "__pycache__", "node_modules", ".ipynb_checkpoints", ".hypothesis"}
DEFAULT_DIRS = ("notebooks", "outputs")

# (kind, pattern). The lookbehinds stop a match inside a longer identifier.
PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("Hugging Face token", re.compile(r"(?<![A-Za-z0-9_])hf_[A-Za-z0-9]{30,}")),
    ("Hugging Face org token", re.compile(r"(?<![A-Za-z0-9_])api_org_[A-Za-z0-9]{30,}")),
    ("GitHub token", re.compile(r"(?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{36,}")),
    ("GitHub fine-grained token", re.compile(r"(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{22,}")),
    ("OpenAI key", re.compile(r"(?<![A-Za-z0-9_-])sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}")),
    ("AWS access key id", re.compile(r"(?<![A-Za-z0-9])AKIA[0-9A-Z]{16}(?![A-Za-z0-9])")),
    ("HF_TOKEN assigned a literal", re.compile(r"HF_TOKEN\s*=\s*[\"'][^\"'\n]+[\"']")),
]

# Machine details that must not reach the published executed copies (docs/executed/): a home folder
# names the user, and an absolute path names the machine. llmcourse/publish.py replaces them on publishing.
MACHINE_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("home folder (user name)", re.compile(r"(?:/home/|/Users/|[A-Za-z]:\\\\?Users\\\\?)[A-Za-z0-9._-]+")),
    ("root's home folder", re.compile(r"(?<![\w.~-])/root/")),
    ("absolute path to the course", re.compile(r"(?:^|(?<=[\s\"'(=\[]))/[^\s\"'<>]+/(?:notebooks|outputs|llmcourse)/")),
    ("absolute path to site-packages", re.compile(r"(?:^|(?<=[\s\"'(=\[]))/[^\s\"'<>]+/(?:site|dist)-packages/")),
]
PUBLISHED_DIRS = (("docs", "executed"),)

# A JSON string literal on one line, e.g. a notebook source or output line: "print(\"...\")\n".
_JSON_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
_JSON_SUFFIXES = {".ipynb", ".json", ".jsonl"}


@dataclass(frozen=True)
class Finding:
    """One suspected secret: where it is and what it looks like, masked."""

    path: str
    line: int
    kind: str
    masked: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind} ({self.masked})"


def mask(secret: str) -> str:
    """A printable stand-in: the token's prefix and last 4 characters, e.g. ``hf_...wxyz``."""
    if secret.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", secret):
        return secret.split("/")[1] + "/..." if secret.startswith("/") else "...\\"
    if secret.startswith("HF_TOKEN"):
        return "HF_TOKEN=<literal>"
    prefix = re.match(r"^(hf_|api_org_|gh[pousr]_|github_pat_|sk-|AKIA)", secret)
    head = prefix.group(1) if prefix else ""
    return f"{head}...{secret[-4:]}" if len(secret) >= 16 else f"{head}..."


def _line_texts(line: str, decode_json: bool) -> Iterator[str]:
    """The line itself and, for JSON files, the decoded string literals in it (where a notebook's
    escaped quotes, ``\\"``, would hide a quoted HF_TOKEN assignment)."""
    yield line
    if decode_json and "\\" in line:
        for match in _JSON_STRING.finditer(line):
            try:
                yield json.loads(f'"{match.group(1)}"')
            except ValueError:
                continue


def find_secrets_masked(text: str, decode_json: bool = False, published: bool = False) -> list[tuple[int, str, str]]:
    """``(line number, kind, masked secret)`` for each suspected secret in ``text``, once per line and kind.
    With ``published`` (an executed copy for readers), machine paths and home folders count too."""
    found: list[tuple[int, str, str]] = []
    patterns = PATTERNS + MACHINE_PATTERNS if published else PATTERNS
    for number, line in enumerate(text.splitlines(), start=1):
        kinds_here: set[str] = set()
        for piece in _line_texts(line, decode_json):
            for kind, pattern in patterns:
                if kind in kinds_here:
                    continue
                match = pattern.search(piece)
                if match:
                    kinds_here.add(kind)
                    found.append((number, kind, mask(match.group(0))))
    return found


def find_secrets(text: str, decode_json: bool = False) -> list[tuple[int, str]]:
    """``(line number, kind)`` for each suspected secret in ``text`` (1-based lines)."""
    return [(line, kind) for line, kind, _ in find_secrets_masked(text, decode_json)]


def read_text(path: Path) -> str | None:
    """The file's text, or None for what is not scanned: too large, binary, unreadable."""
    try:
        if path.stat().st_size > MAX_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def is_published(path: Path) -> bool:
    """True for the executed copies published for readers (``docs/executed/...``)."""
    parts = path.resolve().parts
    return any(parts[i : i + len(d)] == d for d in PUBLISHED_DIRS for i in range(len(parts)))


def _skipped(path: Path) -> bool:
    return any(part in SKIP_DIRS for part in path.parts)


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files under ``paths`` (files as given, folders walked), skipping .venv, .git and the like."""
    seen: set[Path] = set()
    for given in paths:
        root = Path(given)
        candidates = [root] if root.is_file() else sorted(root.rglob("*")) if root.is_dir() else []
        for path in candidates:
            relative = path.relative_to(root) if path != root else Path(path.name)
            if not path.is_file() or _skipped(relative) or path.resolve() in seen:
                continue
            seen.add(path.resolve())
            yield path


def scan_paths(paths: Iterable[str | Path]) -> list[Finding]:
    """Every suspected secret in the text files under ``paths`` (notebooks including their outputs)."""
    findings: list[Finding] = []
    for path in iter_files(paths):
        text = read_text(path)
        if text is None:
            continue
        decode = path.suffix.lower() in _JSON_SUFFIXES
        for line, kind, masked in find_secrets_masked(text, decode_json=decode, published=is_published(path)):
            findings.append(Finding(str(path), line, kind, masked))
    return findings


def default_paths(root: Path) -> list[Path]:
    """notebooks/, outputs/, every *.log, and the files git tracks (or would add) in ``root``."""
    paths = [root / name for name in DEFAULT_DIRS if (root / name).exists()]
    paths += [p for p in sorted(root.rglob("*.log")) if not _skipped(p.relative_to(root))]
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return paths  # not a git repository, or no git
    paths += [root / name for name in listed.decode("utf-8", errors="replace").split("\0") if name]
    return paths


def repo_root(start: Path) -> Path:
    """The git work tree holding ``start``, or ``start`` itself outside git."""
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=start, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return start
    return Path(top) if top else start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "paths", nargs="*", help="files or folders (default: notebooks/, outputs/, logs, git files)"
    )
    args = parser.parse_args(argv)
    paths = args.paths or default_paths(repo_root(Path.cwd()))
    findings = scan_paths(paths)
    for finding in findings:
        print(finding)
    if findings:
        print(
            f"{len(findings)} possible secret(s) found. Remove them (clear the notebook's outputs, delete the "
            "log), and revoke any real token at once: https://huggingface.co/settings/tokens",
            file=sys.stderr,
        )
        return 1
    print("No secrets found.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
