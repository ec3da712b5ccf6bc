"""A finished NAS-Bench-201 study and its HTML report, shared by the report tests and the screenshot script."""
from __future__ import annotations

from pathlib import Path

from rlnas import create_study
from rlnas.evaluators.tabular import NB201Evaluator
from rlnas.reports.html import build_report
from rlnas.reports.snapshot import take_snapshot


def write_nb201_report(path: Path, trials: int = 120, storage: str | None = None) -> Path:
    """Run REINFORCE (batch 5, factorized) for ``trials`` NB201 trials and write its report to ``path``."""
    study = create_study(space="nb201", agent="reinforce", agent_config={"batch_size": 5, "lr": 0.05},
                         evaluator=NB201Evaluator("cifar10"), seed=0, name="nb201-reinforce-demo", storage=storage)
    study.optimize(trials)
    path.write_text(build_report(take_snapshot(study.store, study.name), study.space), encoding="utf-8")
    return path
