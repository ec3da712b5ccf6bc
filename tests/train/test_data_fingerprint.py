"""A study keeps a digest of external data and refuses to go on when the data under it changed."""
from __future__ import annotations

import shutil
from importlib import resources

import numpy as np
import pytest

from rlnas import create_study, load_study
from rlnas.datasets import load_dataset
from rlnas.errors import ConfigError
from rlnas.evaluators.train import TrainEvaluator
from rlnas.study.data_check import data_fingerprint_of

DIGITS = resources.files("rlnas.data") / "digits_8x8.npz"


def _copy_digits(path):
    with resources.as_file(DIGITS) as source:
        shutil.copy(source, path)
    return str(path)


def _edit_labels(path):
    data = dict(np.load(path))
    data["labels"] = data["labels"].copy()
    data["labels"][:3] = (data["labels"][:3] + 1) % 10
    np.savez(path, **data)


def test_fingerprint_follows_the_content_not_the_path(tmp_path):
    a, b = _copy_digits(tmp_path / "a.npz"), _copy_digits(tmp_path / "b.npz")
    first = load_dataset("digits", a).fingerprint
    assert first == load_dataset("digits", b).fingerprint  # same bytes elsewhere
    assert len(first) == 16 and int(first, 16) >= 0
    assert load_dataset("digits", a, split_seed=1).fingerprint != first  # another split
    _edit_labels(b)
    assert load_dataset("digits", b).fingerprint != first


def _evaluator(root):
    return TrainEvaluator("nb201", "digits", data_root=root, steps=1, batch_size=16)


def test_resume_on_changed_data_is_refused_and_stores_nothing(tmp_path):
    root, url = _copy_digits(tmp_path / "d.npz"), f"sqlite:///{tmp_path / 'x.db'}"
    study = create_study(space="nb201", agent="random", evaluator=_evaluator(root), seed=0, storage=url, name="s")
    study.optimize(n_trials=2)
    digest = load_study("s", url).record.settings["data_fingerprint"]
    assert digest == load_dataset("digits", root).fingerprint
    original = (tmp_path / "d.npz").read_bytes()
    _edit_labels(root)
    with pytest.raises(ConfigError, match=r"the data at .*d\.npz are not those its trials were measured on"):
        load_study("s", url, evaluator=_evaluator(root)).optimize(n_trials=4)
    again = load_study("s", url)
    assert len(again.trials) == 2 and again.record.settings["n_trials"] == 2  # nothing stored
    (tmp_path / "d.npz").write_bytes(original)  # the data back: it goes on
    load_study("s", url, evaluator=_evaluator(root)).optimize(n_trials=3)
    assert len(load_study("s", url).trials) == 3


def test_a_study_from_before_digests_gets_one_on_its_next_run(tmp_path):
    root, url = _copy_digits(tmp_path / "d.npz"), f"sqlite:///{tmp_path / 'x.db'}"
    study = create_study(space="nb201", agent="random", evaluator=_evaluator(root), seed=0, storage=url, name="s")
    settings = {k: v for k, v in study.record.settings.items() if k != "data_fingerprint"}
    study.store.update_settings(study.record.id, settings)  # as stored before digests existed
    load_study("s", url, evaluator=_evaluator(root)).optimize(n_trials=1)
    assert load_study("s", url).record.settings["data_fingerprint"] == load_dataset("digits", root).fingerprint


def test_shipped_data_and_plugins_without_the_method_have_no_digest(tmp_path):
    assert data_fingerprint_of(TrainEvaluator("nb201", "digits", steps=1)) is None
    assert data_fingerprint_of(object()) is None

    class Odd:
        def data_fingerprint(self):
            return 5

    with pytest.raises(ConfigError, match=r"Odd.data_fingerprint\(\) must return a non-empty string or None"):
        data_fingerprint_of(Odd())
