"""Write found update rules as a Python module that needs only torch.

The module holds the runtime of :mod:`rlnas.optim.runtime` (copied verbatim), two generated
update functions per rule (the same code :class:`~rlnas.optim.RuleOptimizer` runs: multi-tensor,
and element-wise for ``fused=True``) and one
``torch.optim.Optimizer`` subclass per rule, plus ``RULES`` (class name -> written rule) and
``OPTIMIZERS`` (the classes, best first)::

    from found_optimizers import NOSRule1
    optimizer = NOSRule1(model.parameters())          # lr defaults to the rule's best searched lr
"""
from __future__ import annotations

import ast
import builtins
import importlib.util
import keyword
import numbers
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlnas.checks import is_finite_real
from rlnas.errors import ConfigError
from rlnas.files import write_atomically
from rlnas.optim import runtime
from rlnas.optim.codegen import compile_source
from rlnas.optim.fused import fused_source
from rlnas.optim.rule import Rule, as_rule


@dataclass(frozen=True)
class FoundRule:
    """A rule to export, with what the search measured for it."""

    rule: str
    """The written rule."""
    lr: float = 1e-3
    """Default learning rate of the exported class (the best one of the search's grid)."""
    valid_acc: float | None = None
    """The search's reward for the rule, if known."""
    trial: int | None = None
    """The study trial that measured it, if any."""


def best_rules(trials: Iterable[Any], n: int = 5) -> list[FoundRule]:
    """The ``n`` best distinct rules of a study's COMPLETE trials (by reward; ties: earliest trial).

    ``trials`` are :class:`~rlnas.trial.Trial` records of the ``optimizer`` evaluator: the key is
    the written rule and ``metrics["best_lr"]`` the learning rate that gave the reward.
    """
    complete = [t for t in trials if getattr(t.state, "name", "") == "COMPLETE" and t.reward is not None]
    complete.sort(key=lambda t: (-t.reward, t.number))
    found: dict[str, FoundRule] = {}
    for t in complete:
        text = str(as_rule(t.key))
        if text not in found:
            found[text] = FoundRule(text, float(t.metrics.get("best_lr", 1e-3)), float(t.reward), t.number)
        if len(found) == n:
            break
    return list(found.values())


def _runtime_body() -> str:
    """The runtime module's source without its docstring and ``from __future__`` line."""
    source = Path(runtime.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    lines = source.splitlines()
    body_start = tree.body[1].lineno - 1  # body[0] is the docstring
    return "\n".join(line for line in lines[body_start:] if line.strip() != "from __future__ import annotations")


def _module_names(rules: int) -> set[str]:
    """The names the written module defines or reads at its top level: the runtime's, the builtins,
    the generated update functions' and ``RULES`` / ``OPTIMIZERS``."""
    names = set(dir(builtins)) | {"RULES", "OPTIMIZERS"}
    names |= {f"{prefix}{i}" for prefix in ("_update_", "_fused_update_") for i in range(1, rules + 1)}
    for node in ast.parse(Path(runtime.__file__).read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


RuleLike = FoundRule | Rule | str
"""One rule to export: a :class:`FoundRule`, a :class:`~rlnas.optim.rule.Rule`, or a rule's name or written form."""


def optimizer_module_source(rules: Sequence[RuleLike] | RuleLike, *, class_names: Sequence[str] | None = None,
                            title: str = "Update rules found by rlnas Neural Optimizer Search") -> str:
    """The text of a Python module defining one ``torch.optim.Optimizer`` subclass per rule."""
    if isinstance(rules, (str, Rule, FoundRule)):  # one rule ("powersign" is not the rules p, o, w, ...)
        rules = [rules]
    if not isinstance(rules, Iterable):
        raise ConfigError(f"rules must be a list of rules (names, written rules, Rule or FoundRule), got {rules!r}")
    found = [_checked(r) if isinstance(r, FoundRule) else FoundRule(str(as_rule(_rule_text(r)))) for r in rules]
    if not found:
        raise ConfigError("no rule to export")
    names = list(class_names) if class_names is not None else [f"NOSRule{i}" for i in range(1, len(found) + 1)]
    if len(names) != len(found) or len(set(names)) != len(names) or not all(
            isinstance(n, str) and n.isidentifier() and not keyword.iskeyword(n) for n in names):
        raise ConfigError(f"class names {names!r} must be {len(found)} distinct Python identifiers")
    taken = sorted(set(names) & _module_names(len(found)))
    if taken:
        raise ConfigError(f"class name(s) {taken} would hide a name the written module uses itself")
    if not isinstance(title, str) or "\0" in title:
        raise ConfigError(f"title must be text without NUL characters, got {title!r:.80}")
    sources = [compile_source(as_rule(f.rule), f"_update_{i}") for i, f in enumerate(found, 1)]
    listing = "\n".join(f"    {name}: {f.rule}   (lr {f.lr:g}"
                        + (f", searched valid_acc {f.valid_acc:.2f}" if f.valid_acc is not None else "")
                        + (f", trial {f.trial}" if f.trial is not None else "")
                        + ("; decays: give total_steps" if compiled.uses_decay else "") + ")"
                        for name, f, compiled in zip(names, found, sources))
    title = title.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')  # the docstring shows it as given
    header = (f'"""{title}.\n\nNeeds only torch. Each class is a torch.optim.Optimizer applying w <- w - lr * rule:\n\n'
              f'{listing}\n\nHow the rules run:\n\n{runtime.__doc__.strip()}\n"""\n'
              "from __future__ import annotations\n")
    parts = [header, _runtime_body()]
    for i, (name, f, compiled) in enumerate(zip(names, found, sources), 1):
        fused = fused_source(as_rule(f.rule), f"_fused_update_{i}")
        parts.append("\n\n" + compiled.source)
        parts.append("\n\n" + fused.source)
        parts.append(
            f"\n\nclass {name}(CompiledRuleOptimizer):\n"
            f'    """Update rule ``{compiled.rule_text}``.{_decay_note(name) if compiled.uses_decay else ""}"""\n\n'
            f"    rule_text = {compiled.rule_text!r}\n"
            f"    state_names = {compiled.state_names!r}\n"
            f"    uses_random = {compiled.uses_random!r}\n"
            f"    uses_decay = {compiled.uses_decay!r}\n"
            f"    updated_by_rule = {compiled.updated_by_rule!r}\n"
            f"    update = staticmethod(_update_{i})\n"
            f"    fused_update = staticmethod(_fused_update_{i})\n"
            f"    draw_plan = {fused.draws!r}\n\n"
            f"    def __init__(self, params, lr: float = {f.lr!r}, *, seed: int | None = None, fused: bool = False,\n"
            f"                 **hyper):\n"
            f"        super().__init__(params, lr, seed=seed, fused=fused, **hyper)\n")
    parts.append(f"\n\nRULES = {dict(zip(names, (f.rule for f in found)))!r}\n"
                 f"OPTIMIZERS = [{', '.join(names)}]\n")
    text = "".join(parts)
    try:
        compile(text, "<optimizer module>", "exec")  # never hand out a module that does not parse
    except (SyntaxError, ValueError) as exc:
        raise ConfigError(f"the optimizer module would not be valid Python: {exc}") from None
    return text


def _decay_note(name: str) -> str:
    """What the docstring of class ``name`` adds when its rule decays."""
    return ("\n\n    It reads a decay operand (ld, cd or rd), which decays over the training: give ``total_steps``, "
            f"the number\n    of steps you train for, e.g. ``{name}(model.parameters(), total_steps=10_000)``.\n    ")


def _rule_text(rule: object) -> Rule | str:
    if not isinstance(rule, (Rule, str)):
        raise ConfigError(f"a rule to export is a rule name, a written rule, a Rule or a FoundRule, got {rule!r:.80}")
    return rule


def _checked(found: FoundRule) -> FoundRule:
    """``found`` with its rule in the written form the class runs and plain Python numbers (a NumPy or
    torch number would be written as ``np.float64(0.01)``, which the module could not read)."""
    rule = str(as_rule(_rule_text(found.rule)))

    def number(name: str, value: object, *, integer: bool = False) -> Any:
        kind = numbers.Integral if integer else numbers.Real
        if isinstance(value, bool) or not isinstance(value, kind) or not (integer or is_finite_real(value)):
            raise ConfigError(f"rule {rule!r}: {name} must be a finite {'integer' if integer else 'number'}, "
                              f"got {value!r:.80}")
        return int(value) if integer else float(value)

    lr = number("lr", found.lr)
    if lr <= 0:
        raise ConfigError(f"rule {rule!r}: lr must be a positive number, got {found.lr!r}")
    valid_acc = None if found.valid_acc is None else number("valid_acc", found.valid_acc)
    trial = None if found.trial is None else number("trial", found.trial, integer=True)
    return FoundRule(rule, lr, valid_acc, trial)


def write_optimizer_module(rules: Sequence[RuleLike] | RuleLike, path: str | Path, *,
                           class_names: Sequence[str] | None = None, title: str | None = None) -> Path:
    """Write :func:`optimizer_module_source` to ``path`` (a ``.py`` file) and return the path.

    ``rules`` are :class:`FoundRule` (a rule with its searched lr), :class:`~rlnas.optim.rule.Rule`
    or written rules; nothing is written when the module would not be valid.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"path must be a file path ending in .py, got {path!r}")
    path = Path(path)
    if not is_module_file(path):
        raise ConfigError(f"the optimizer module must be a .py file, got {str(path)!r}")
    check_not_shadowing(path)
    text = optimizer_module_source(rules, class_names=class_names, **({"title": title} if title else {}))
    try:  # whole or not at all; never over a folder, a device or a database
        return write_atomically(path, text.encode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None


def is_module_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a Python module file: ``NAME.py`` (not ``.py``, a hidden file without a name)."""
    return Path(path).suffix == ".py"


def _installed(name: str) -> bool:
    """Whether ``import name`` finds a module (``__main__``, loaded without a spec, is not one to hide)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def check_not_shadowing(path: str | os.PathLike[str]) -> None:
    """Refuse a module file named like an installed module (``torch.py``, ``math.py``): Python run in its
    folder would import it instead, and the written module itself imports torch."""
    name = Path(path).stem
    if name.isidentifier() and (name in sys.stdlib_module_names or _installed(name)):
        raise ConfigError(f"{Path(path).name} would hide the installed module {name!r} from Python run in its "
                          "folder; choose another name")
