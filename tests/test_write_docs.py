"""benchmarks/write_docs.py: an agent page takes that agent's rows of the NB201 tables, never a comparison row."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import write_docs

RESULTS = """### CIFAR-10

| agent | 50 queries | found |
|---|---|---|
| local | 93.93 ± 0.33 | 78% |
| tpe | 94.05 ± 0.31 | 78% |

| vs | 50 queries |
|---|---|
| local | +0.143 (+2.1) |
"""


def test_agent_rows_skip_the_comparison_tables() -> None:
    rows = write_docs.agent_rows(RESULTS, "local")
    assert rows == ("**CIFAR-10**\n\n| agent | 50 queries | found |\n|---|---|---|\n| local | 93.93 ± 0.33 | 78% |\n")
    assert write_docs.agent_rows(RESULTS, "random") == ""


def test_a_gpu_benchmark_is_never_run_here(monkeypatch, capsys) -> None:
    ran: list[str] = []
    monkeypatch.setattr(write_docs, "run", lambda bench, workers=None: ran.append(bench.name))
    for name in ("write_page", "update_agent_pages", "update_ablation"):
        monkeypatch.setattr(write_docs, name, lambda: None)
    gpu = [b.name for b in write_docs.BENCHMARKS if b.gpu]
    assert gpu == ["gpu_checks"]
    monkeypatch.setattr(sys, "argv", ["write_docs.py", "--run", "all"])
    assert write_docs.main() == 0
    assert ran == [b.name for b in write_docs.BENCHMARKS if not b.gpu]
    monkeypatch.setattr(sys, "argv", ["write_docs.py", "--run", "overhead,gpu_checks"])
    with pytest.raises(SystemExit) as stop:
        write_docs.main()
    assert stop.value.code == 2
    assert "gpu_checks runs on a GPU machine" in capsys.readouterr().err
    assert ran == [b.name for b in write_docs.BENCHMARKS if not b.gpu]  # nothing ran: refused before the first
