"""``RuleOptimizer``: any update rule of the language as a ``torch.optim.Optimizer``."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from rlnas.errors import ConfigError
from rlnas.optim import runtime
from rlnas.optim.codegen import CompiledSource, compile_source
from rlnas.optim.fused import FusedSource, fused_source
from rlnas.optim.rule import Rule, as_rule


@lru_cache(maxsize=256)
def compiled(rule_text: str) -> tuple[CompiledSource, runtime.Update, FusedSource, Callable[..., None]]:
    """The generated sources of a rule (multi-tensor and fused) and their functions, made once per rule."""
    rule = as_rule(rule_text)
    source, fused = compile_source(rule), fused_source(rule)
    namespace = dict(vars(runtime))
    exec(compile(f"{source.source}\n\n{fused.source}", f"<rule {rule_text}>", "exec"), namespace)
    return source, namespace[source.name], fused, namespace[fused.name]


class RuleOptimizer(runtime.CompiledRuleOptimizer):
    """A ``torch.optim.Optimizer`` applying ``w ← w − lr · rule(...)`` (see :mod:`rlnas.optim.runtime`).

    ``rule`` is a :class:`~rlnas.optim.rule.Rule`, a written rule (``"m / sqrt(v)"``) or a rule
    name (``"powersign"``). Hyperparameters (per parameter group): ``lr``, ``beta1`` (0.9),
    ``beta2`` (0.999), ``beta3`` (0.999), ``delta`` (1e-8), ``noise_std`` (0.1), ``cycles`` (0.5),
    ``restarts`` (3), ``total_steps`` (needed by rules reading ``ld``, ``cd`` or ``rd``); ``seed``
    seeds the rule's own random generator (``None``: torch's global RNG). ``fused=True`` runs each
    step as one ``torch.compile``-d element-wise loop per tensor (:mod:`rlnas.optim.fused`): seconds
    to compile per rule, then the fastest steps, for long training runs; it needs what
    ``torch.compile`` needs (on the CPU, a C++ compiler).

    Bad input raises a one-line :class:`~rlnas.errors.ConfigError` (or
    :class:`~rlnas.optim.rule.RuleSyntaxError` for a malformed rule).
    """

    def __init__(self, params: Iterable[Any], rule: Rule | str, lr: float = 1e-3, *, seed: int | None = None,
                 fused: bool = False, **hyper: Any):
        self._use_rule(str(as_rule(rule)))
        try:
            super().__init__(params, lr, seed=seed, fused=fused, **hyper)
        except ConfigError:  # from add_param_group below: already said
            raise
        except ValueError as err:
            raise ConfigError(f"RuleOptimizer: {err}") from None

    def _use_rule(self, rule_text: str) -> None:
        """Take the compiled functions of a written rule (made once per rule)."""
        source, function, fused_plan, fused_function = compiled(rule_text)
        self.rule_text = source.rule_text
        self.state_names = source.state_names
        self.uses_random = source.uses_random
        self.uses_decay = source.uses_decay
        self.updated_by_rule = source.updated_by_rule
        self.update = function  # instance attributes: called without self
        self.fused_update = fused_function
        self.draw_plan = fused_plan.draws
        self.source = source.source
        self.fused_source = fused_plan.source

    def __getstate__(self) -> dict[str, Any]:
        """The base class's state plus the rule (its functions are compiled again on unpickling)."""
        return {**super().__getstate__(), "rule_text": self.rule_text}

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        if "rule_text" in state:  # unpickling (torch's load_state_dict calls this too, without it)
            self._use_rule(state.pop("rule_text"))
        super().__setstate__(state)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a parameter group (checked first: a refused group is not added)."""
        try:
            super().add_param_group(param_group)
        except ValueError as err:
            raise ConfigError(f"RuleOptimizer: {err}") from None

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a ``state_dict`` of an optimizer of the same rule over parameters of the same shapes."""
        try:
            super().load_state_dict(state_dict)
        except ValueError as err:
            raise ConfigError(f"RuleOptimizer: {err}") from None

    def __repr__(self) -> str:
        return f"RuleOptimizer({self.rule_text!r}, lr={self.defaults['lr']})"
