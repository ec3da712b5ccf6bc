"""On a CUDA device: the compiled optimizer, the shared supernets and searches of each kind.

Skipped on a machine without CUDA (CI has none); run on a GPU machine with
``pytest -q -n 0 tests/test_cuda.py``. A search on the GPU must store what one on the CPU
stores: its checkpoints resume on the CPU and its trained weights export on the CPU.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from rlnas.optim import RuleOptimizer, parse_rule, rule
from rlnas.study import load_study
from rlnas.trial import TrialState

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = "cuda"


def _mlp(device: str, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 300), torch.nn.Tanh(), torch.nn.Linear(300, 10)).to(device, dtype)


def _train(model: torch.nn.Module, optimizer: torch.optim.Optimizer, steps: int) -> list[float]:
    """``steps`` steps, each on a new random batch (the same batches for every call); the losses."""
    parameter = next(model.parameters())
    gen = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(steps):
        x = torch.randn(32, 64, generator=gen, dtype=parameter.dtype).to(parameter.device)
        y = torch.randint(0, 10, (32,), generator=gen).to(parameter.device)
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def _max_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_the_adam_rule_trains_like_torch_adam_on_cuda(dtype, tolerance):
    ours, theirs = _mlp(CUDA, dtype), _mlp(CUDA, dtype)
    _train(ours, RuleOptimizer(ours.parameters(), rule("adam"), lr=0.01), 200)
    _train(theirs, torch.optim.Adam(theirs.parameters(), lr=0.01), 200)
    assert _max_difference(ours, theirs) < tolerance
    assert _max_difference(ours, _mlp(CUDA, dtype)) > 0.1  # the weights did move


@pytest.mark.parametrize("text", ["drop(adam, 0.1) + eps", "drop(rmsprop, 0.1) - sqrt(g^3)"])
def test_a_random_rule_on_cuda_repeats_for_a_seed_and_its_state_moves_to_the_cpu(text):
    runs = []
    for _ in range(2):
        model = _mlp(CUDA)
        optimizer = RuleOptimizer(model.parameters(), parse_rule(text), lr=1e-3, seed=5)
        losses = _train(model, optimizer, 20)
        runs.append((losses, [p.detach().cpu() for p in model.parameters()], optimizer))
    assert runs[0][0] == runs[1][0] and all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
    assert all(torch.isfinite(torch.tensor(runs[0][0])))

    # the GPU optimizer's state goes on in a CPU optimizer: its averages land on the CPU weights
    cpu_model = _mlp("cpu")
    cpu_model.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
    cpu_optimizer = RuleOptimizer(cpu_model.parameters(), parse_rule(text), lr=1e-3, seed=5)
    cpu_optimizer.load_state_dict(runs[0][2].state_dict())
    for state in cpu_optimizer.state.values():
        assert all(v.device.type == "cpu" for v in state.values() if isinstance(v, torch.Tensor))
    assert all(torch.isfinite(torch.tensor(_train(cpu_model, cpu_optimizer, 3))))


def _params_with_gradients() -> list[torch.nn.Parameter]:
    """A matrix and a channels_last convolution weight on the GPU, zero, with gradients of ones."""
    params = [torch.nn.Parameter(torch.zeros(100, 200, device=CUDA)),
              torch.nn.Parameter(torch.zeros(8, 16, 5, 5, device=CUDA).to(memory_format=torch.channels_last))]
    for p in params:
        p.grad = torch.ones_like(p)
    return params


def test_random_operands_on_cuda_draw_at_their_rates_and_differ_between_tensors():
    dropped = _params_with_gradients()
    RuleOptimizer(dropped, parse_rule("drop(g, 0.3) * 1"), lr=1.0, seed=0).step()
    for p in dropped:  # each weight moves by -1 or stays: dropped with probability 0.3
        assert set(p.unique().tolist()) == {-1.0, 0.0}
        assert (p == 0).float().mean().item() == pytest.approx(0.3, abs=0.02)
    assert not torch.equal(dropped[0].flatten()[:3200], dropped[1].flatten())  # not one draw repeated per tensor

    noisy = _params_with_gradients()
    RuleOptimizer(noisy, parse_rule("keep(eps, 1)"), lr=1.0, seed=0, noise_std=0.5).step()
    for p in noisy:
        assert p.std().item() == pytest.approx(0.5, rel=0.05) and abs(p.mean().item()) < 0.05
    assert noisy[1].is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("text", ["drop(rmsprop, 0.1) - sqrt(g^3)", "adam + eps"])
def test_fused_rules_on_cuda_match_the_multi_tensor_step(text):
    pytest.importorskip("triton")
    results = []
    for fused in (False, True):
        model = _mlp(CUDA)  # a 64x300 and a 300x10 weight: the first is fused (>= 16,384 elements)
        _train(model, RuleOptimizer(model.parameters(), parse_rule(text), lr=1e-3, seed=3, fused=fused), 10)
        results.append([p.detach() for p in model.parameters()])
    for plain, fused in zip(*results):
        torch.testing.assert_close(fused, plain, rtol=1e-4, atol=1e-5)


def test_enas_supernets_on_cuda_compute_the_child_and_share_exactly_its_path():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "enas_gpu.py"
    spec = importlib.util.spec_from_file_location("enas_gpu", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    lines = bench.check_supernets(CUDA)
    print("\n".join(lines))
    for line in lines:  # "| enas_macro | 1.2e-06 | yes (k of the path's n tensors moved) |"
        _, _, difference, sharing, _ = line.split("|")
        # convolutions may take TF32 on the GPU: a difference of its rounding, not of another network
        assert float(difference) < 1e-2 and sharing.strip().startswith("yes"), line


def rlnas(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "rlnas", *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"rlnas {' '.join(args)} exited {result.returncode}: {result.stderr}"
    return result


SEARCHES = {
    "train": ["--space", "darts", "--evaluator", "train", "--dataset", "digits", "--agent", "l2nas",
              "--epochs", "0.2"],
    "tunas": ["--space", "proxyless", "--agent", "tunas", "--evaluator", "supernet", "--dataset", "digits",
              "--eval-option", "batch_size=32", "--eval-option", "valid_batch_size=64",
              "--eval-option", 'model_kwargs={"width_mult": 0.35, "stem_stride": 1, "input_size": 8}',
              "--eval-option", "record_every=8", "--epochs", "2"],
    "enas": ["--space", "enas_micro", "--agent", "enas", "--evaluator", "shared", "--dataset", "digits",
             "--eval-option", "batch_size=128", "--eval-option", "valid_batch_size=64",
             "--eval-option", 'model_kwargs={"channels": 4, "layers": 1}', "--set", "controller_steps=2",
             "--set", "batch_size=3", "--set", "lstm_hidden=16", "--epochs", "6"],
    "nos": ["--space", "optimizer_rules", "--evaluator", "optimizer", "--dataset", "digits", "--agent", "ppo",
            "--controller", "lstm", "--set", "batch_size=2", "--eval-option", "network=mlp",
            "--eval-option", "steps=10", "--eval-option", "lr_grid=[0.1]"],
}


def _settled(trial) -> bool:
    """Complete, or (an update rule) failed as diverged: a rule may diverge on any device."""
    return trial.state is TrialState.COMPLETE or (trial.error or "").startswith("RuleDiverged")


@pytest.mark.parametrize("kind", sorted(SEARCHES))
def test_a_search_on_cuda_resumes_on_the_cpu_and_exports_there(kind, tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    rlnas("search", *SEARCHES[kind], "--trials", "3", "--device", CUDA, "--name", "s", "--storage", url,
          "--no-progress")
    first = load_study("s", url).trials
    assert len(first) == 3 and all(_settled(t) for t in first), [t.error for t in first]

    rlnas("resume", "s", "--trials", "6", "--device", "cpu", "--storage", url, "--no-progress")
    trials = load_study("s", url).trials
    assert len(trials) == 6 and all(_settled(t) for t in trials), [t.error for t in trials]
    assert any(t.state is TrialState.COMPLETE for t in trials)

    if kind == "nos":
        target = tmp_path / "found.py"
        rlnas("export", "s", "--optimizer", str(target), "--storage", url)
        assert "class " in target.read_text() and "torch.optim.Optimizer" in target.read_text()
    else:
        pytest.importorskip("onnx")
        rlnas("export", "s", "--onnx", str(tmp_path / "best.onnx"), "--storage", url)
        assert (tmp_path / "best.onnx").stat().st_size > 0
    assert json.loads(rlnas("best", "s", "--json", "--storage", url).stdout)
