"""Found rules written as a module that needs only torch, and training equal to RuleOptimizer's."""
from __future__ import annotations

import copy
import json
import pickle
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rlnas.errors import ConfigError
from rlnas.optim import RuleOptimizer, runtime, write_optimizer_module
from rlnas.optim.export import FoundRule, best_rules, optimizer_module_source

RULES = [FoundRule("sign(g) * sign(m); exp(o1) * g", 0.05, 91.5, 12),
         FoundRule("drop(adam, 0.1) + eps; o1 * cd", 0.002),
         FoundRule("m / sqrt(v)", 0.01)]

TRAIN = """
import json, sys
sys.modules["rlnas"] = None  # importing rlnas now fails: the module must not need it
import torch, torch.nn.functional as F
sys.path.insert(0, sys.argv[1])
import found
fused = sys.argv[3] == "fused"
if fused:  # the fused functions as plain torch code (what torch.compile compiles), on every tensor
    found._compiled, found.FUSED_MIN_ELEMENTS = (lambda function: function), 0
torch.manual_seed(0)
out = {}
for cls in found.OPTIMIZERS:
    torch.manual_seed(0)
    width = int(sys.argv[2])
    model = torch.nn.Sequential(torch.nn.Linear(5, width), torch.nn.ReLU(), torch.nn.Linear(width, 2))
    opt = cls(model.parameters(), seed=3, total_steps=6, fused=fused)
    gen = torch.Generator().manual_seed(1)
    for _ in range(6):
        x, y = torch.randn(16, 5, generator=gen), torch.randint(0, 2, (16,), generator=gen)
        opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()
    weights = [p.detach().flatten().tolist() for p in model.parameters()]
    out[cls.__name__] = {"lr": opt.defaults["lr"], "weights": weights}
print(json.dumps({"rules": found.RULES, "trained": out}))
"""


def train_here(rule: str, lr: float, width: int = 8, fused: bool = False) -> list[list[float]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, width), nn.ReLU(), nn.Linear(width, 2))
    optimizer = RuleOptimizer(model.parameters(), rule, lr=lr, seed=3, total_steps=6, fused=fused)
    gen = torch.Generator().manual_seed(1)
    for _ in range(6):
        x, y = torch.randn(16, 5, generator=gen), torch.randint(0, 2, (16,), generator=gen)
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return [p.detach().flatten().tolist() for p in model.parameters()]


@pytest.mark.parametrize("width, mode", [(8, "multi-tensor"), (1000, "multi-tensor"), (1000, "fused")])
def test_written_module_trains_without_rlnas_exactly_like_rule_optimizer(tmp_path, width, mode, monkeypatch):
    # 66 weights: torch's draws; 8,002: the fast draws. fused: the element-wise functions, uncompiled
    if mode == "fused":
        monkeypatch.setattr(runtime, "_compiled", lambda function: function)
        monkeypatch.setattr(runtime, "FUSED_MIN_ELEMENTS", 0)
    path = write_optimizer_module(RULES, tmp_path / "found.py")
    assert path.read_text().startswith('"""Update rules found by rlnas Neural Optimizer Search.')
    out = subprocess.run([sys.executable, "-c", TRAIN, str(tmp_path), str(width), mode], capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["rules"] == {f"NOSRule{i}": r.rule for i, r in enumerate(RULES, 1)}
    for i, found in enumerate(RULES, 1):
        trained = result["trained"][f"NOSRule{i}"]
        assert trained["lr"] == found.lr  # the searched lr is the class default
        assert trained["weights"] == train_here(found.rule, found.lr, width, mode == "fused")


def test_module_imports_only_torch_and_the_standard_library():
    source = optimizer_module_source(RULES)
    imports = {line.split()[1].split(".")[0] for line in source.splitlines() if line.startswith(("import ", "from "))}
    assert imports == {"__future__", "math", "numbers", "collections", "typing", "torch"}
    assert "91.50, trial 12" in source


def test_best_rules_are_distinct_best_first_with_their_lr():
    def trial(number, key, reward, state="COMPLETE", lr=0.1):
        return SimpleNamespace(number=number, key=key, reward=reward, state=SimpleNamespace(name=state),
                               metrics={"best_lr": lr})

    trials = [trial(0, "keep(g, 1)", 90.0), trial(1, "m / sqrt(v)", 95.0, lr=0.01), trial(2, "keep(g, 1)", 93.0),
              trial(3, "adam * 1", None, state="FAIL"), trial(4, "sign(m) * 1", 95.0, lr=0.001)]
    found = best_rules(trials, n=2)
    assert [(f.rule, f.lr, f.trial) for f in found] == [("m / sqrt(v)", 0.01, 1), ("sign(m) * 1", 0.001, 4)]
    assert [f.rule for f in best_rules(trials, n=10)] == ["m / sqrt(v)", "sign(m) * 1", "keep(g, 1)"]


def test_bad_exports_fail_before_writing(tmp_path):
    with pytest.raises(ConfigError, match="must be a .py file"):
        write_optimizer_module(RULES, tmp_path / "found.txt")
    with pytest.raises(ConfigError, match="distinct Python identifiers"):
        write_optimizer_module(RULES, tmp_path / "found.py", class_names=["A", "A", "B"])
    with pytest.raises(ConfigError, match="no rule to export"):
        write_optimizer_module([], tmp_path / "found.py")
    for name in ("torch", "math", "typing"):  # Python run in that folder imported it instead (torch.py broke torch)
        with pytest.raises(ConfigError, match=f"^{name}.py would hide the installed module '{name}' from Python"):
            write_optimizer_module(RULES, tmp_path / f"{name}.py")
    assert not list(tmp_path.iterdir())
    write_optimizer_module(RULES, tmp_path / "__main__.py")  # not a module to hide (its spec is None): written
    (tmp_path / "__main__.py").unlink()
    for names in (["torch", "B", "C"], ["A", "math", "C"], ["Draws", "B", "C"], ["RULES", "B", "C"],
                  ["A", "B", "len"], ["A", "_update_2", "C"]):
        with pytest.raises(ConfigError, match=r"class name\(s\) \[.+\] would hide a name the written module uses"):
            write_optimizer_module(RULES, tmp_path / "found.py", class_names=names)
    assert not list(tmp_path.iterdir())
    (tmp_path / "folder.py").mkdir()  # IsADirectoryError, FileExistsError, a write through to the device
    (tmp_path / "file.py").write_text("")
    (tmp_path / "null.py").symlink_to("/dev/null")
    for target, reason in (("folder.py", "it is a folder"), ("file.py/x.py", "is a file, not a folder"),
                           ("null.py", "it is not a regular file")):
        with pytest.raises(ConfigError, match=f"cannot write {tmp_path / target}: .*{reason}"):
            write_optimizer_module(RULES, tmp_path / target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.py", "folder.py", "null.py"]


def test_any_title_is_written_as_given(tmp_path):
    title = 'Rules of study "a"""\\N{b}\\x'
    path = write_optimizer_module(RULES[:1], tmp_path / "titled.py", title=title)
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    assert namespace["__doc__"].startswith(title + ".\n")


def test_written_classes_survive_deepcopy_and_pickling(tmp_path, monkeypatch):
    write_optimizer_module(RULES, tmp_path / "found_copyable.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    import found_copyable  # pickling finds the classes by module and name

    for cls in found_copyable.OPTIMIZERS:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 1000), nn.ReLU(), nn.Linear(1000, 2))
        runs = [(model, cls(model.parameters(), seed=3, total_steps=10))]
        gen = torch.Generator().manual_seed(1)
        for step in range(6):
            if step == 2:  # copies of a running optimizer: its averages and random draws go on alike
                runs += [copy.deepcopy(runs[0]), pickle.loads(pickle.dumps(runs[0]))]
            x, y = torch.randn(16, 5, generator=gen), torch.randint(0, 2, (16,), generator=gen)
            for net, optimizer in runs:
                optimizer.zero_grad()
                F.cross_entropy(net(x), y).backward()
                optimizer.step()
        for net, _ in runs[1:]:
            assert all(torch.equal(p, q) for p, q in zip(model.parameters(), net.parameters())), cls.__name__


def test_one_rule_may_be_given_alone_and_bad_arguments_are_named(tmp_path):
    path = write_optimizer_module("powersign", tmp_path / "one.py")  # was read as the rules 'p', 'o', 'w', ...
    assert "class NOSRule1(" in path.read_text() and "class NOSRule2(" not in path.read_text()
    with pytest.raises(ConfigError, match="rules must be a list of rules"):
        write_optimizer_module(None, tmp_path / "none.py")  # a TypeError: 'NoneType' object is not iterable
    with pytest.raises(ConfigError, match="path must be a file path ending in .py, got None"):
        write_optimizer_module(["adam"], None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.py"]


def test_step_has_torch_s_overloads_so_a_type_checker_accepts_the_subclass():
    import inspect
    import typing

    def shapes(step):
        return [(list(inspect.signature(f).parameters), typing.get_type_hints(f, vars(runtime)))
                for f in typing.get_overloads(step)]

    ours = shapes(runtime.CompiledRuleOptimizer.step)
    assert ours == shapes(torch.optim.Optimizer.step) and len(ours) == 2  # mypy: "incompatible with supertype"


def test_found_rules_are_written_in_canonical_form_with_plain_numbers(tmp_path):
    import numpy as np

    found = [FoundRule("adam", lr=np.float64(0.01), valid_acc=np.float32(91.5), trial=np.int64(3)),
             FoundRule("sign(g)*sign(m);exp(o1)*g", 0.1)]
    path = write_optimizer_module(found, tmp_path / "canon.py")
    loaded = subprocess.run([sys.executable, "-c", "import canon; print(canon.RULES); "
                             "print([c.rule_text for c in canon.OPTIMIZERS]); print(canon.NOSRule1(["
                             "canon.torch.nn.Parameter(canon.torch.zeros(1))]).defaults['lr'])"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert loaded.returncode == 0, loaded.stderr  # np.float64(0.01) was written as is: NameError: np
    rules, texts, lr = loaded.stdout.splitlines()
    assert rules == "{'NOSRule1': 'm / sqrt(v)', 'NOSRule2': 'sign(g) * sign(m); exp(o1) * g'}"
    assert texts == "['m / sqrt(v)', 'sign(g) * sign(m); exp(o1) * g']" and lr == "0.01"
    assert "NOSRule1: m / sqrt(v)   (lr 0.01, searched valid_acc 91.50, trial 3)" in path.read_text()


@pytest.mark.parametrize("rules, kwargs, message", [
    ([FoundRule("adam", lr=True)], {}, "lr must be a finite number, got True"),
    ([FoundRule("adam", lr="0.01")], {}, "lr must be a finite number, got '0.01'"),
    ([FoundRule("adam", lr=torch.tensor(0.01))], {}, "lr must be a finite number, got tensor"),
    ([FoundRule("adam", valid_acc="91.5")], {}, "valid_acc must be a finite number"),
    ([FoundRule("adam", trial=1.5)], {}, "trial must be a finite integer"),
    ([FoundRule("adam", lr=10 ** 400)], {}, "lr must be a finite number, got 1000000"),  # not an OverflowError
    ([FoundRule(3)], {}, "a rule to export is a rule name, a written rule, a Rule or a FoundRule, got 3"),
    ([None], {}, "got None"),
    (["adam"], {"title": 123}, "title must be text without NUL characters, got 123"),
    (["adam"], {"title": "a\x00b"}, "title must be text without NUL characters"),
])
def test_bad_export_fields_are_config_errors_and_write_nothing(tmp_path, rules, kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        write_optimizer_module(rules, tmp_path / "bad.py", **kwargs)
    assert not (tmp_path / "bad.py").exists()


def test_a_class_whose_rule_decays_says_it_needs_total_steps():
    # NOSRule1(model.parameters()) as the docs show it failed for such a rule, and nothing in the module said why
    text = optimizer_module_source(["powersign-ld", "adam"])
    assert "NOSRule1: sign(g) * sign(m); o1 * ld; exp(o2) * g   (lr 0.001; decays: give total_steps)" in text
    assert "NOSRule2: m / sqrt(v)   (lr 0.001)\n" in text
    assert text.count("e.g. ``NOSRule1(model.parameters(), total_steps=10_000)``") == 1 and "NOSRule2(model" not in text
