"""benchmarks/write_docs.py: an agent page takes that agent's rows of the NB201 tables, never a comparison row."""
from __future__ import annotations

import sys
from pathlib import Path

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
