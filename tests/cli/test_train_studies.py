"""Studies of the train evaluator through the CLI: where their weights live, and what retrain keeps."""
from __future__ import annotations

import json

import pytest

from rlnas.cli import main
from rlnas.store import open_store

TRAIN = ["--space", "nb201", "--agent", "random", "--evaluator", "train", "--epochs", "0.2", "--threads", "1",
         "--no-progress"]


def rlnas(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_rm_of_a_study_sharing_a_weights_folder_takes_only_its_own_files(capsys, tmp_path) -> None:
    url, shared = f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "weights"
    for name in ("a", "b"):
        assert main(["search", *TRAIN, "--trials", "2", "--name", name, "--storage", url,
                     "--eval-option", f"weights_dir={shared}"]) == 0
    assert len(list(shared.glob("*.pt"))) == 4
    code, stdout, _ = rlnas(capsys, "rm", "a", "--storage", url)
    assert code == 0 and "its 2 weights file(s) in" in stdout and "other studies share" in stdout
    assert len(list(shared.glob("*.pt"))) == 2
    code, _, err = rlnas(capsys, "export", "b", "--onnx", str(tmp_path / "b.onnx"), "--storage", url)
    assert code == 0 and "with the weights it was trained with" in err


def test_retrain_keeps_weights_and_the_search_split(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the study's folders are stored absolute: commands run from elsewhere find them
    url = f"sqlite:///{tmp_path / 'r.db'}"
    assert main(["search", *TRAIN, "--trials", "1", "--name", "s", "--storage", url,
                 "--eval-option", "valid_fraction=0.3"]) == 0
    monkeypatch.chdir(tmp_path.parent)
    assert main(["retrain", "s", "--epochs", "0.2", "--threads", "1", "--storage", url]) == 0
    store = open_store(url, create=False)
    retrained = store.get_study("s-retrain-0")
    assert retrained.evaluator["valid_fraction"] == 0.3
    assert retrained.settings["retrain_of"] == {"study": "s", "answer": "best trial", "key": store.trials(
        store.get_study("s").id)[0].key}  # not taken back by the training run that followed
    assert retrained.evaluator["weights_dir"] == str(tmp_path / "r.db-weights" / "s-retrain-0")
    capsys.readouterr()
    code, _, err = rlnas(capsys, "export", "s-retrain-0", "--onnx", str(tmp_path / "r.onnx"), "--storage", url)
    assert code == 0 and "with the weights it was trained with" in err
    code, _, err = rlnas(capsys, "retrain", "s", "--as", "", "--storage", url)
    assert code == 2 and "a study name must be a non-empty string" in err


def test_another_keep_weights_is_another_default_name(capsys, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    for keep in ("all", "1", "none"):
        assert main(["search", *TRAIN, "--trials", "1", "--keep-weights", keep, "--storage", url]) == 0
    capsys.readouterr()
    names = [s["name"] for s in json.loads(rlnas(capsys, "ls", "--json", "--storage", url)[1])]
    assert len(set(names)) == 3  # before, the second search failed: "exists with evaluator keep_weights=..."


def test_resume_checks_the_data_before_running_a_trial(capsys, tmp_path) -> None:
    import shutil
    from importlib import resources

    data = tmp_path / "digits.npz"
    shutil.copy(resources.files("rlnas.data").joinpath("digits_8x8.npz"), data)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    assert main(["search", *TRAIN, "--dataset", "digits", "--data-root", str(data), "--trials", "1", "--name", "s",
                 "--storage", url]) == 0
    data.unlink()
    code, _, err = rlnas(capsys, "resume", "s", "--trials", "3", "--storage", url)
    assert code == 2 and err.count("\n") == 1 and "cannot load data set 'digits'" in err
    assert len(open_store(url, create=False).trials(open_store(url, create=False).get_study("s").id)) == 1


def test_a_weights_folder_that_cannot_be_made_is_refused_before_storing(capsys, tmp_path) -> None:
    (tmp_path / "x.db-weights").write_text("a file where the weights folder goes")
    for extra in ([], ["--eval-option", f"weights_dir={tmp_path / 'x.db-weights' / 'w'}"]):
        code, _, err = rlnas(capsys, "search", *TRAIN, "--trials", "1", "--keep-weights", "1", *extra,
                             "--storage", f"sqlite:///{tmp_path / 'x.db'}")
        assert code == 2 and err.count("\n") == 1 and "x.db-weights is a file, not a folder" in err, err
        assert not (tmp_path / "x.db").exists()


def test_keep_weights_prunes_a_weights_folder_given_as_an_option(capsys, tmp_path) -> None:
    url, folder = f"sqlite:///{tmp_path / 'k.db'}", tmp_path / "mine"
    assert main(["search", *TRAIN, "--trials", "3", "--keep-weights", "1", "--name", "k", "--storage", url,
                 "--eval-option", f"weights_dir={folder}"]) == 0
    assert len(list(folder.glob("*.pt"))) == 1
    code, _, err = rlnas(capsys, "search", *TRAIN, "--trials", "1", "--keep-weights", "none", "--storage", url,
                         "--eval-option", f"weights_dir={folder}")
    assert code == 2 and "--keep-weights none contradicts --eval-option weights_dir" in err


def test_an_untrained_export_of_a_train_study_fits_its_data(capsys, tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    url = f"sqlite:///{tmp_path / 'u.db'}"
    assert main(["search", *TRAIN, "--dataset", "digits", "--trials", "1", "--keep-weights", "none", "--name", "u",
                 "--storage", url]) == 0
    code, _, err = rlnas(capsys, "export", "u", "--onnx", str(tmp_path / "u.onnx"), "--storage", url)
    assert code == 0 and "UNTRAINED" in err
    graph = onnx.load(str(tmp_path / "u.onnx")).graph
    dims = [[d.dim_value for d in v.type.tensor_type.shape.dim][1:] for v in (graph.input[0], graph.output[0])]
    assert dims == [[1, 8, 8], [10]]  # digits: one channel of 8x8, ten classes (it was 3x32x32)


def test_retrain_of_a_table_study_says_which_images_to_train_on(capsys, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    for dataset in ("cifar10", "cifar100"):
        assert main(["search", "--space", "nb201", "--dataset", dataset, "--trials", "3", "--name", dataset,
                     "--no-progress", "--storage", url]) == 0
    assert main(["search", "--space", "nbgraph", "--trials", "3", "--name", "g", "--no-progress",
                 "--storage", url]) == 0
    capsys.readouterr()
    for name, message in (("cifar10", "retraining on CIFAR-10 needs its python batches (--eval-option data_root"),
                          ("cifar100", "on cifar100, for which rlnas has no loader: retrain on another data set"),
                          ("g", "searched NAS-Bench-Graph cells, graph networks rlnas does not build")):
        code, _, err = rlnas(capsys, "retrain", name, "--epochs", "0.1", "--storage", url)
        assert code == 2 and message in err and err.count("\n") == 1, err
    code, out, _ = rlnas(capsys, "retrain", "cifar100", "--epochs", "0.1", "--threads", "1",
                         "--eval-option", "dataset=digits", "--storage", url)
    assert code == 0 and "cifar100-retrain-0" in out
    assert open_store(url, create=False).get_study("cifar100-retrain-0").evaluator["dataset"] == "digits"
    (tmp_path / "afile").write_text("")  # an --output that cannot be written: refused before any training
    code, _, err = rlnas(capsys, "retrain", "cifar10", "--epochs", "0.1", "--threads", "1", "--eval-option",
                         "dataset=digits", "--output", str(tmp_path / "afile" / "r.json"), "--storage", url)
    assert code == 2 and err.endswith(f"{tmp_path / 'afile'} is a file, not a folder\n")
    assert "cifar10-retrain-0" not in [r.name for r in open_store(url, create=False).list_studies()]
    code, _, err = rlnas(capsys, "retrain", "cifar100", "--lr", "0.2", "--eval-option", "lr=0.1",
                         "--eval-option", "dataset=digits", "--storage", url)
    assert code == 2 and "--lr and --eval-option lr both set the learning rate" in err
    from rlnas.retrain import retrain_options
    from rlnas.study import load_study

    options = retrain_options(load_study("cifar10", url), 1.0, {"data_root": "/data/cifar-10-batches-py"})
    assert options["dataset"] == "cifar10" and options["data_root"] == "/data/cifar-10-batches-py"


def test_a_repeat_of_the_same_network_exports_the_weights_it_was_answered_with(capsys, tmp_path) -> None:
    from rlnas.agents import AGENTS, register_agent
    from rlnas.evaluators.train import TrainEvaluator
    from rlnas.export import trained_network
    from rlnas.spaces import create_space
    from rlnas.study import create_study
    from rlnas.testing.scripted import cycling_agent

    space = create_space("proxyless")
    a = {**space.from_indices([0] * len(space.decisions)).to_dict(), "s1_l1_skip": True}
    b = {**a, "s1_l1_kernel": space.decision("s1_l1_kernel").choices[1]}  # a skipped layer's kernel: one network
    c = {**a, "s1_l1_skip": False}  # another network

    register_agent("twins", cycling_agent("twins", (a, b, c)))
    try:
        evaluator = TrainEvaluator(space, "digits", steps=1, threads=1, weights_dir=str(tmp_path / "w"))
        study = create_study(space=space, agent="twins", evaluator=evaluator, reuse_repeats=True,
                             storage=f"sqlite:///{tmp_path / 't.db'}", name="t")
        study.optimize(n_trials=2)  # a, then b answered from a, then c
    finally:
        AGENTS.unregister("twins")
    first, repeat = study.trials[:2]
    assert repeat.repeat_of == first.number and repeat.key != first.key
    model, shape = trained_network(study.record, repeat)  # it failed: the file holds the first trial's key
    assert shape == (1, 8, 8) and sum(p.numel() for p in model.parameters()) > 0


def test_as_searched_keeps_the_searched_network_options(capsys, tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    url = f"sqlite:///{tmp_path / 'a.db'}"
    assert main(["search", *TRAIN, "--trials", "1", "--keep-weights", "none", "--name", "a", "--storage", url,
                 "--eval-option", 'model_kwargs={"channels": 4, "cells_per_stage": 1, "num_classes": 12}']) == 0
    code, _, _ = rlnas(capsys, "export", "a", "--onnx", str(tmp_path / "a.onnx"), "--as-searched", "--storage", url)
    graph = onnx.load(str(tmp_path / "a.onnx")).graph
    assert code == 0 and [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim][1:] == [12]


def test_a_failed_retrain_says_so_once(capsys, tmp_path, monkeypatch) -> None:
    # optimize's warning that no trial completed came before the command's own error
    from rlnas.evaluators.train import TrainEvaluator

    def out_of_memory(self, candidate, *, budget=None, seed=None):
        raise RuntimeError("out of memory (simulated)")

    url = f"sqlite:///{tmp_path / 'r.db'}"
    assert main(["search", "--trials", "2", "--name", "s", "--storage", url, "--no-progress"]) == 0
    monkeypatch.setattr(TrainEvaluator, "evaluate", out_of_memory)
    code, _, err = rlnas(capsys, "retrain", "s", "--epochs", "0.05", "--eval-option", "dataset=digits",
                         "--storage", url)
    assert code == 1 and err.count("\n") == 1 and "out of memory (simulated)" in err and "warning" not in err
