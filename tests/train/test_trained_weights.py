"""Trained weights kept by the train evaluator, and ONNX exports that carry them."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rlnas import create_study
from rlnas.errors import ConfigError
from rlnas.evaluators.train import TrainEvaluator
from rlnas.evaluators.weights import (
    NoTrainedWeights,
    load_weights,
    ranked_files,
    save_weights,
)
from rlnas.export import export_onnx, study_model_options, trained_network
from rlnas.trial import TrialState

ort = pytest.importorskip("onnxruntime")


def _onnx_accuracy(path, split) -> float:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x, y = split.batch(torch.arange(len(split)))
    predicted = session.run(None, {"input": x.numpy()})[0].argmax(axis=1)
    return 100.0 * int((predicted == y.numpy()).sum()) / len(split)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    folder = tmp_path_factory.mktemp("search")
    evaluator = TrainEvaluator("nb201", "digits", epochs=1, threads=1, weights_dir=str(folder / "weights"),
                               keep_weights=2)
    study = create_study(space="nb201", agent="random", evaluator=evaluator, seed=4, name="w",
                         storage=f"sqlite:///{folder / 'runs.db'}")
    study.optimize(4)
    return study, evaluator, folder


def test_onnx_accuracy_on_the_held_out_splits_equals_the_stored_accuracy(searched) -> None:
    study, evaluator, folder = searched
    done = [t for t in study.trials if t.state is TrialState.COMPLETE]
    kept = [t for t in done if t.eval_info["weights"] is not None]
    assert len(done) == 4 and len(kept) >= 2
    checked = 0
    for trial in kept:
        try:
            model, shape = trained_network(study.record, trial)
        except NoTrainedWeights as exc:  # saved, then pushed out of the best two by a later trial
            assert "is gone (pruned by keep_weights" in str(exc)
            continue
        path = export_onnx(model, folder / f"t{trial.number}.onnx", shape)
        assert _onnx_accuracy(path, evaluator.data.valid) == trial.metrics["valid_acc"]
        assert _onnx_accuracy(path, evaluator.data.test) == trial.metrics["test_acc"]
        checked += 1
    assert checked == 2
    best_two = sorted(done, key=lambda t: (-round(t.metrics["valid_acc"], 5), t.number))[:2]
    on_disk = [load_weights(folder / "weights", p.name)["key"] for p in ranked_files(folder / "weights")]
    assert on_disk == [t.key for t in best_two]


def test_without_trained_weights_the_reason_is_plain(searched) -> None:
    study, _, _ = searched
    trial = study.trials[0]
    nb201 = type(study.record)(**{**study.record.__dict__, "evaluator": {"name": "nb201", "dataset": "cifar100"}})
    with pytest.raises(NoTrainedWeights, match="the 'nb201' evaluator of this study kept none"):
        trained_network(nb201, trial)
    unkept = {k: v for k, v in study.record.evaluator.items() if k not in ("weights_dir", "keep_weights")}
    kept_none = type(study.record)(**{**study.record.__dict__, "evaluator": unkept})  # --keep-weights none
    with pytest.raises(NoTrainedWeights, match=r"the study ran without keeping them \(--keep-weights none"):
        trained_network(kept_none, trial)  # it said "the 'train' evaluator kept none (the train evaluator keeps them"
    bare = type(trial)(**{**trial.__dict__, "eval_info": {}})
    with pytest.raises(NoTrainedWeights, match="evaluated without keeping them"):
        trained_network(study.record, bare)
    pruned = type(trial)(**{**trial.__dict__, "eval_info": {"weights": None}})
    with pytest.raises(NoTrainedWeights, match="not among the best networks kept"):
        trained_network(study.record, pruned)
    assert study_model_options({"name": "nb201", "dataset": "imagenet16-120"}) == ({"num_classes": 120}, (3, 16, 16))


def test_pruning_keeps_the_best_k_and_the_earlier_of_equals(tmp_path, monkeypatch) -> None:
    clock = iter(range(10**9, 10**12, 10**6))
    monkeypatch.setattr("rlnas.evaluators.weights.time_ns", lambda: next(clock))
    model = nn.Linear(2, 2)

    def save(key: str, acc: float, keep: int | None = 2):
        return save_weights(tmp_path, model, space="s", key=key, seed=0, model_kwargs={}, input_shape=(2,),
                            metrics={"valid_acc": acc}, keep=keep)

    assert save("a", 50.0) and save("b", 70.0) and save("c", 70.0)  # a drops out
    assert save("d", 60.0) is None and save("e", 70.0) is None  # below, and equal but later
    assert [load_weights(tmp_path, p.name)["key"] for p in ranked_files(tmp_path)] == ["b", "c"]
    assert save("f", 10.0, keep=None) and len(ranked_files(tmp_path)) == 3
    with pytest.raises(ConfigError, match="keep_weights"):
        save("g", 1.0, keep=0)
    with pytest.raises(ConfigError, match="keep_weights"):
        TrainEvaluator("nb201", keep_weights=0)
    assert np.allclose(load_weights(tmp_path, ranked_files(tmp_path)[0].name)["state_dict"]["weight"],
                       model.weight.detach().numpy())


def test_a_damaged_weights_file_is_a_one_line_error(tmp_path) -> None:
    from rlnas.errors import RlnasError

    name = save_weights(tmp_path, nn.Linear(2, 2), space="s", key="k", seed=0, model_kwargs={}, input_shape=(2,),
                        metrics={"valid_acc": 1.0}, keep=None)
    path = tmp_path / name
    path.write_bytes(path.read_bytes()[:200])  # cut short
    with pytest.raises(RlnasError, match=f"cannot read weights file {path}: it is damaged or not a file of saved "):
        load_weights(tmp_path, name)
    path.write_bytes(b"garbage\n")  # torch's first line advised weights_only=False: running the file's code
    with pytest.raises(RlnasError, match=r"it is damaged or not a file of saved weights \(Unsupported operand"):
        load_weights(tmp_path, name)
    try:
        load_weights(tmp_path, name)
    except RlnasError as exc:
        assert "weights_only" not in str(exc) and "\n" not in str(exc)
    torch.save([1, 2], path)
    with pytest.raises(RlnasError, match="is not an rlnas weights file \\(format 'list'\\)"):
        load_weights(tmp_path, name)
