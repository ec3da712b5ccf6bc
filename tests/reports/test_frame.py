"""Trials as rows and as a pandas DataFrame."""
from __future__ import annotations

import math
import sys

import pytest
from report_fixtures import T0, trial

from rlnas.errors import ConfigError
from rlnas.reports.frame import trial_table, trials_dataframe


def _trials():
    a = trial(0, 5.0, metrics={"valid_acc": 5.0, "test_acc": 4.0}, start=0, end=2.5)
    b = trial(1, None, start=3, end=4)
    return [type(a)(**{**a.__dict__, "candidate": {"op": "conv", "k": 3}}),
            type(b)(**{**b.__dict__, "candidate": {"op": "pool", "k": 5}})]


def test_rows_hold_every_field_and_the_choices() -> None:
    columns, rows = trial_table(_trials())
    assert columns == ["number", "slot", "state", "key", "reward", "test_acc", "valid_acc", "cost_seconds",
                       "started_at", "finished_at", "duration_s", "error", "orphaned", "params_op", "params_k"]
    assert rows[0]["duration_s"] == 2.5 and rows[0]["params_op"] == "conv" and rows[0]["test_acc"] == 4.0
    assert rows[1]["state"] == "FAIL" and rows[1]["reward"] is None and rows[1]["error"] == "boom"
    assert trial_table([]) == (columns[:5] + ["cost_seconds", "started_at", "finished_at", "duration_s", "error",
                                              "orphaned"], [])


def test_dataframe_has_the_same_rows_with_datetimes() -> None:
    pd = pytest.importorskip("pandas")
    frame = trials_dataframe(_trials())
    assert list(frame.columns) == trial_table(_trials())[0] and len(frame) == 2
    assert frame.loc[0, "reward"] == 5.0 and math.isnan(frame.loc[1, "reward"])
    assert frame.loc[0, "started_at"] == pd.Timestamp(T0) and frame["params_k"].tolist() == [3, 5]


def test_without_pandas_the_error_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ConfigError, match=r"pip install 'rlnas\[pandas\]'"):
        trials_dataframe(_trials())


def test_study_trials_dataframe_has_one_row_per_trial_and_the_choices() -> None:
    pytest.importorskip("pandas")
    from rlnas import create_study
    from rlnas.testing.toy import ToyEvaluator

    evaluator = ToyEvaluator(decisions=2, choices=3)
    study = create_study(space=evaluator.space, agent="random", evaluator=evaluator, seed=0)
    study.optimize(5)
    frame = study.trials_dataframe()
    assert len(frame) == 5 and list(frame.columns[-2:]) == ["params_d0", "params_d1"]
    assert frame["valid_acc"].tolist() == [t.metrics["valid_acc"] for t in study.trials]
    assert frame["params_d1"].tolist() == [t.candidate["d1"] for t in study.trials]
