"""A TuNAS search through the ``rlnas`` command: records, diagnostics, export, retrain, bad input, SIGKILL."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import torch
from test_cli import _kill_when, assert_one_line_error, completed, run  # tests/ is on sys.path under pytest

TINY = ["--space", "proxyless", "--agent", "tunas", "--evaluator", "supernet", "--dataset", "digits",
        "--eval-option", "batch_size=32", "--eval-option", "valid_batch_size=64",
        "--eval-option", 'model_kwargs={"width_mult": 0.35, "stem_stride": 1, "input_size": 8}',
        "--eval-option", "record_every=8", "--threads", "1", "--no-progress"]
ABS = ["--reward", "abs", "--target", "12", "--beta", "-7"]


def test_search_records_the_argmax_and_export_and_retrain_use_it(rlnas_bin, sqlite_url, tmp_path):
    out = run(rlnas_bin, "search", *TINY, *ABS, "--epochs", "1", "--name", "t", "--storage", sqlite_url).stdout
    assert "Answer of weight-sharing study 't' (its last recorded trial)" in out and "latency_ms" in out
    data = json.loads(run(rlnas_bin, "export", "t", "--format", "json", "--storage", sqlite_url).stdout)
    trials = data["trials"]
    assert [t["slot"] for t in trials] == [0, 1, 2, 3, 4]  # 33 shared steps, a record every 8
    # best, the summary and export name one answer: the last record, whatever the earlier ones scored
    answer = json.loads(run(rlnas_bin, "best", "t", "--json", "--storage", sqlite_url).stdout)
    assert (answer["number"], answer["key"]) == (trials[-1]["number"], trials[-1]["key"])
    assert " ".join(out.split()).count(f"found at trial │ {trials[-1]['number']} │") == 1
    assert data["reward"] == {"name": "abs", "metric": "supernet_acc", "cost": "latency_ms", "target": 12.0,
                              "beta": -7.0}
    for t in trials:
        assert t["reward"] == pytest.approx(t["supernet_acc"] - 7.0 * abs(t["latency_ms"] / 12.0 - 1))
        assert t["cost"] == t["latency_ms"]

    from rlnas.study import load_study

    study = load_study("t", sqlite_url)
    diagnostics = study.store.diagnostics(study.record.id)
    # The controller is off for the first 25 % of the 33 steps; an update is logged after its round's step.
    assert [step for step, _ in diagnostics] == list(range(9, 34))
    lrs = [values["lr"] for _, values in diagnostics]
    assert lrs[0] == pytest.approx(0.05) and lrs[-1] == pytest.approx(0.5)
    assert {"entropy", "baseline", "reward_mean", "advantage_mean", "advantage_std"} <= set(diagnostics[0][1])

    onnx_path = tmp_path / "net.onnx"
    run(rlnas_bin, "export", "t", "--onnx", str(onnx_path), "--trial", "4", "--storage", sqlite_url)
    ort = pytest.importorskip("onnxruntime")
    study.rebuild()
    final = study.space.candidate(trials[-1]["candidate"])
    model = study.evaluator.export_model(final).to(memory_format=torch.contiguous_format)
    x = study.evaluator.data.test.batch(torch.arange(16))[0]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(logits, model(x).numpy(), atol=1e-4)

    out = run(rlnas_bin, "retrain", "t", "--epochs", "0.5", "--threads", "1", "--storage", sqlite_url).stdout
    assert "training the mode answer of 't'" in out and "t-retrain-0" in out
    retrained = json.loads(run(rlnas_bin, "export", "t-retrain-0", "--format", "json", "--storage", sqlite_url).stdout)
    assert retrained["agent"] == "fixed" and retrained["evaluator"]["name"] == "train"
    assert [t["key"] for t in retrained["trials"]] == [trials[-1]["key"]]
    assert retrained["evaluator"]["model_kwargs"]["stem_stride"] == 1
    assert "test_acc" in retrained["trials"][0]
    for study_name, extra, message in (  # both said "an ENAS study's network gets trained weights with rlnas retrain"
            ("t", ["--untrained"], "--finetune-epochs fine-tunes the weights a TuNAS (supernet) study's network "
                                   "inherits, and --untrained exports it without them"),
            ("t-retrain-0", [], "study 't-retrain-0' (fixed) trained its networks itself"),
            ("t", ["--finetune-epochs", "1e12"], "--finetune-epochs must be a number from 0 to 100,000, got 1e+12")):
        result = run(rlnas_bin, "export", study_name, "--onnx", str(tmp_path / "x.onnx"), "--finetune-epochs", "1",
                     *extra, "--storage", sqlite_url, check=False)
        assert_one_line_error(result, message)
    again = run(rlnas_bin, "retrain", "t", "--epochs", "0.5", "--threads", "1", "--storage", sqlite_url).stdout
    assert "training the" not in again  # the stored result is reported, nothing is trained again
    assert f"{retrained['trials'][0]['test_acc']:.2f}" in again
    assert len(json.loads(run(rlnas_bin, "export", "t-retrain-0", "--format", "json", "--storage",
                              sqlite_url).stdout)["trials"]) == 1


@pytest.mark.parametrize("args, message", [
    (["--reward", "abs", "--target", "1000"], "target 1000.0 ms is outside the latency range of space 'proxyless'"),
    (["--reward", "abs", "--target", "12", "--beta", "0.5"], "beta must be negative"),
    # a beta in scientific notation was taken for an option; one this large failed after the warm-up, leaving a file
    (["--reward", "abs", "--target", "12", "--beta", "-1e40"], "reward 'abs' with beta -1e+40 reaches"),
    (["--reward", "soft", "--target", "12", "--beta", "-1e4"], "reward 'soft' with beta -10000 reaches inf"),
    (["--reward", "soft", "--target", "12", "--eval-option", 'model_kwargs={"width_mult": 0.5}'],
     "no latency table ships for space 'proxyless'"),
    (["--reward", "hard", "--target", "12", "--cost", "params"], "target 12.0 M params is outside the params range"),
    (["--reward", "abs"], "--reward abs needs --target"),
    (["--target", "12"], "--target and --beta apply to --reward abs/soft/hard"),
])
def test_bad_cost_rewards_are_one_line_errors_and_store_nothing(rlnas_bin, sqlite_url, args, message):
    result = run(rlnas_bin, "search", *TINY, "--epochs", "1", *args, "--name", "bad", "--storage", sqlite_url,
                 check=False)
    assert_one_line_error(result, message)
    assert "bad" not in run(rlnas_bin, "ls", "--storage", sqlite_url, check=False).stdout


def test_sigkill_and_resume_end_in_the_same_architecture(rlnas_bin, tmp_path):
    common = [*TINY, *ABS, "--epochs", "1.5", "--seed", "3", "--name", "run"]
    reference = f"sqlite:///{tmp_path}/ref.db"
    run(rlnas_bin, "search", *common, "--storage", reference)

    path = tmp_path / "killed.db"
    url = f"sqlite:///{path}"
    first = subprocess.Popen([rlnas_bin, "search", *common, "--storage", url],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _kill_when(first, path, 3)  # killed between records: the segment after the checkpoint runs again
    run(rlnas_bin, "resume", "run", "--threads", "1", "--storage", url, "--no-progress")  # same threads: same sums
    resumed, uninterrupted = completed(rlnas_bin, "run", url), completed(rlnas_bin, "run", reference)
    assert resumed == uninterrupted and len(resumed) == 7


@pytest.mark.parametrize("extra, message", [
    (["--executor", "processes", "--workers", "2"], "it runs inline"),
    (["--trial-timeout", "5"], "--trial-timeout does not apply to a weight-sharing search"),
    (["--reuse-repeats"], "--reuse-repeats does not apply to a weight-sharing search"),
    (["--checkpoint-every", "0"], "--checkpoint-every does not apply to a weight-sharing search"),
])
def test_options_a_weight_sharing_search_cannot_use_are_refused_before_a_database_exists(rlnas_bin, tmp_path,
                                                                                          extra, message):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    result = run(rlnas_bin, "search", *TINY, "--epochs", "1", *extra, "--storage", url, check=False)
    assert_one_line_error(result, message)
    assert not (tmp_path / "w.db").exists()


def test_export_without_a_trial_takes_the_answer_the_last_record(rlnas_bin, sqlite_url, tmp_path):
    run(rlnas_bin, "search", *TINY, "--epochs", "1", "--name", "a", "--storage", sqlite_url)
    trials = completed(rlnas_bin, "a", sqlite_url)
    run(rlnas_bin, "export", "a", "--arch", str(tmp_path / "a.json"), "--storage", sqlite_url)
    assert json.loads((tmp_path / "a.json").read_text())["key"] == trials[-1][1]  # not the best-rewarded record


def test_trials_beyond_what_the_epochs_record_are_capped_with_a_warning_by_search_and_resume(rlnas_bin, sqlite_url):
    from rlnas.study import load_study

    first = run(rlnas_bin, "search", *TINY, "--epochs", "1", "--trials", "7", "--name", "w", "--storage", sqlite_url)
    short = "records 5 trial(s) over its epochs (more epochs record more): it ends there, short of --trials"
    assert f"{short} 7" in " ".join(first.stderr.split())
    assert len(load_study("w", sqlite_url).completed_trials) == 5
    again = run(rlnas_bin, "resume", "w", "--trials", "9", "--no-progress", "--storage", sqlite_url)
    assert f"{short} 9" in " ".join(again.stderr.split()) and len(load_study("w", sqlite_url).completed_trials) == 5
    quiet = run(rlnas_bin, "search", *TINY, "--epochs", "1", "--name", "q", "--storage", sqlite_url)
    assert "short of --trials" not in quiet.stderr and len(load_study("q", sqlite_url).completed_trials) == 5
    # fewer trials than the epochs record stop the training early: said (it ended 'finished' silently)
    cut = run(rlnas_bin, "search", *TINY, "--epochs", "1", "--trials", "2", "--name", "c", "--storage", sqlite_url)
    assert ("--trials 2 ends this weight-sharing search after 2 of the 5 trials its epochs record"
            in " ".join(cut.stderr.split())) and len(load_study("c", sqlite_url).completed_trials) == 2
