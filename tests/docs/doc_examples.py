"""Find the examples in README.md and docs/**/*.md, and run them as a reader would.

A fenced block is an example when it is ``python`` (run as a script) or a shell block
(``bash``, ``sh``, ``shell`` or no language) whose first line starts with a command
(``rlnas``, ``python``, ``pytest``, ``pip``); other blocks (output, grammars) are text. The
blocks of one page run in order in one fresh temporary folder, so a page may build on its
earlier blocks. The README's install prefix (``python3.11 -m venv .venv && . .venv/bin/activate
&& pip install ... &&``) is replaced by the environment the tests run in.

An HTML comment right before a block changes how it runs:
``<!-- docs-test: skip REASON -->`` (not run, the reason is reported) or
``<!-- docs-test: slow -->`` (a long example; every page's test carries the ``slow`` marker anyway).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("rlnas", "python", "pytest", "pip")
SHELLS = ("bash", "sh", "shell", "")
_FENCE = re.compile(r"^```(\S*)\s*$")
_MARK = re.compile(r"^<!--\s*docs-test:\s*(skip|slow)\b\s*(.*?)\s*-->\s*$")
_INSTALL = re.compile(r"^(python3(\.\d+)? -m venv \S+|\. \S+/bin/activate|pip install .*)$")


@dataclass(frozen=True)
class Example:
    """One runnable block of a page."""

    page: str
    line: int
    language: str
    code: str
    skip: str | None = None
    slow: bool = False

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def examples(page: Path) -> list[Example]:
    """The examples of ``page`` in order (see the module docstring)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        language, start = m.group(1).lower(), i
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        code = "\n".join(lines[i + 1:end]) + "\n"
        previous = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        mark = _MARK.match(previous)
        first = strip_install(next((ln.strip() for ln in code.splitlines() if ln.strip()), ""))
        runnable = language == "python" or (language in SHELLS and first.split(" ")[0] in COMMANDS)
        if runnable:
            found.append(Example(str(page.relative_to(ROOT)), start + 1, "python" if language == "python" else "bash",
                                 code, skip=(mark.group(2) or "no reason given") if mark and mark.group(1) == "skip"
                                 else None, slow=bool(mark and mark.group(1) == "slow")))
        i = end + 1
    return found


def strip_install(command: str) -> str:
    """Drop a leading ``venv && activate && pip install ... &&`` chain: the tests' environment stands in for it."""
    parts = [p.strip() for p in command.split("&&")]
    while parts and _INSTALL.match(parts[0]):
        parts.pop(0)
    return " && ".join(parts)


def run(example: Example, folder: Path, timeout: float = 900.0) -> subprocess.CompletedProcess[str]:
    """Run ``example`` in ``folder`` with this interpreter's scripts first on PATH and the checkout importable."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env['PYTHONPATH']}" if env.get("PYTHONPATH") else str(ROOT)
    env.setdefault("OMP_NUM_THREADS", "1")
    if example.language == "python":
        script = folder / f"example_{example.line}.py"
        script.write_text(example.code, encoding="utf-8")
        command = [sys.executable, str(script)]
    else:
        lines = [strip_install(ln) for ln in example.code.splitlines()]
        command = ["bash", "-euo", "pipefail", "-c", "\n".join(lines)]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
