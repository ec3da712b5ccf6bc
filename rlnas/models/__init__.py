"""PyTorch networks built from candidates: ``create_model(space, candidate, **options)``.

One builder per space family, chosen by ``space.name`` (``list_models()`` names them):

* ``nb201`` -> :class:`NB201Network` (``num_classes=10``, ``channels=16``, ``cells_per_stage=5``)
* ``darts`` -> :class:`DartsNetworkCIFAR` (``num_classes=10``, ``channels=36``, ``layers=20``,
  ``auxiliary=False``, ``drop_path_prob=0.0``)
* ``ofa_mbv3``, ``proxyless``, ``proxyless_enlarged``, ``tunas_mbv3`` -> :class:`MobileNet`
  (``num_classes=1000``, ``width_mult=1.0``, ``dropout=0.0``); the input resolution the
  candidate asks for is ``space.arch(candidate).resolution`` (also set as ``model.resolution``).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from rlnas.errors import ConfigError
from rlnas.spaces.base import Choice, Space
from rlnas.models.darts import DartsNetworkCIFAR
from rlnas.models.enas import EnasMacroNetwork, EnasMicroNetwork
from rlnas.models.mobilenet import MobileNet
from rlnas.models.nb201 import NB201Network, nb201_param_count


def _nb201(space: Space, candidate: Mapping[str, Choice], **kw: Any) -> nn.Module:
    return NB201Network(space.candidate(candidate), **kw)


def _darts(space: Space, candidate: Mapping[str, Choice], **kw: Any) -> nn.Module:
    return DartsNetworkCIFAR(space.candidate(candidate), **kw)


def _mobile(space: Space, candidate: Mapping[str, Choice], **kw: Any) -> nn.Module:
    arch = space.arch(candidate)  # type: ignore[attr-defined]
    model = MobileNet(arch.layers, **kw)
    model.resolution = arch.resolution
    return model


MODELS: dict[str, Callable[..., nn.Module]] = {
    "nb201": _nb201,
    "darts": _darts,
    "ofa_mbv3": _mobile,
    "proxyless": _mobile,
    "proxyless_enlarged": _mobile,
    "tunas_mbv3": _mobile,
    "enas_macro": lambda space, candidate, **kw: EnasMacroNetwork(space.candidate(candidate), **kw),
    "enas_micro": lambda space, candidate, **kw: EnasMicroNetwork(space.candidate(candidate), **kw),
}


def list_models() -> list[str]:
    """Space names :func:`create_model` can build networks for, sorted."""
    return sorted(MODELS)


def create_model(space: Space, candidate: Mapping[str, Choice], **kwargs: Any) -> nn.Module:
    """The PyTorch network of ``candidate`` in ``space``; keyword options go to the builder.

    Raises :class:`ConfigError` for a space without a builder or an unknown option, and
    :class:`~rlnas.errors.InvalidCandidate` when ``candidate`` is not in ``space``.
    """
    if space.name not in MODELS:
        raise ConfigError(f"no model builder for space {space.name!r} (choices: {', '.join(list_models())})")
    try:
        return MODELS[space.name](space, candidate, **kwargs)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            raise ConfigError(f"space {space.name!r}: {exc}") from None
        raise


def count_parameters(model: nn.Module, exclude: str | None = None) -> int:
    """Number of parameters, leaving out those whose name contains ``exclude``."""
    return sum(p.numel() for n, p in model.named_parameters() if exclude is None or exclude not in n)


__all__ = [
    "create_model", "list_models", "count_parameters", "MODELS",
    "NB201Network", "DartsNetworkCIFAR", "MobileNet", "nb201_param_count",
]
