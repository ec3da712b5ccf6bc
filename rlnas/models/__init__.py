"""PyTorch networks built from candidates: ``create_model(space, candidate, **options)``.

One builder per space family, chosen by ``space.name`` (``list_models()`` names them):

* ``nb201`` -> :class:`NB201Network` (``num_classes=10``, ``channels=16``, ``cells_per_stage=5``)
* ``darts`` -> :class:`DartsNetworkCIFAR` (``num_classes=10``, ``channels=36``, ``layers=20``,
  ``auxiliary=False``, ``drop_path_prob=0.0``)
* ``ofa_mbv3``, ``proxyless``, ``proxyless_enlarged``, ``tunas_mbv3`` -> :class:`MobileNet`
  (``num_classes=1000``, ``width_mult=1.0``, ``dropout=0.0``, ``in_channels=3``,
  ``stem_stride=None``, ``input_size=None``); the input resolution the candidate asks for is
  ``space.arch(candidate).resolution`` (also set as ``model.resolution``). For small images,
  ``stem_stride=1`` keeps feature maps from shrinking to 1x1, and ``input_size=S`` makes the
  network resize its input to ``S`` pixels for the space's largest resolution and to
  ``round(S * r / r_max)`` for a candidate of resolution ``r`` (so OFA's resolution choice
  acts on small data too); both leave the layer strings, hence the cost models, unchanged.

``create_supernet(space, **options)`` builds the weight-sharing supernet of a mobile space
(:class:`~rlnas.models.supernet.MobileSupernet`, same options plus ``remat``).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from rlnas.errors import ConfigError
from rlnas.models.darts import DartsNetworkCIFAR
from rlnas.models.mobilenet import MobileNet, scaled_input_size
from rlnas.models.nb201 import NB201Network, nb201_param_count
from rlnas.spaces.base import Choice, Space


def _nb201(space: Space, candidate: Mapping[str, Choice], **kw: Any) -> nn.Module:
    return NB201Network(space.candidate(candidate), **kw)


def _darts(space: Space, candidate: Mapping[str, Choice], **kw: Any) -> nn.Module:
    return DartsNetworkCIFAR(space.candidate(candidate), **kw)


def _mobile(space: Space, candidate: Mapping[str, Choice], *, input_size: int | None = None,
            **kw: Any) -> nn.Module:
    arch = space.arch(candidate)  # type: ignore[attr-defined]
    size = scaled_input_size(input_size, arch.resolution, max(space.resolutions))  # type: ignore[attr-defined]
    model = MobileNet(arch.layers, input_size=size, **kw)
    model.resolution = arch.resolution
    return model


MODELS: dict[str, Callable[..., nn.Module]] = {
    "nb201": _nb201,
    "darts": _darts,
    "ofa_mbv3": _mobile,
    "proxyless": _mobile,
    "proxyless_enlarged": _mobile,
    "tunas_mbv3": _mobile,
}


def _mobile_supernet(space: Space, **kw: Any) -> nn.Module:
    from rlnas.models.supernet import MobileSupernet

    return MobileSupernet(space, **kw)


SUPERNETS: dict[str, Callable[..., nn.Module]] = {
    "ofa_mbv3": _mobile_supernet,
    "proxyless": _mobile_supernet,
    "proxyless_enlarged": _mobile_supernet,
    "tunas_mbv3": _mobile_supernet,
}


def create_supernet(space: Space, **kwargs: Any) -> nn.Module:
    """The weight-sharing supernet of ``space`` (``supernet(x, candidate)`` runs one path).

    Raises :class:`ConfigError` for a space without a supernet or an unknown option.
    """
    if space.name not in SUPERNETS:
        raise ConfigError(f"no supernet for space {space.name!r} (choices: {', '.join(sorted(SUPERNETS))})")
    try:
        return SUPERNETS[space.name](space, **kwargs)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            raise ConfigError(f"supernet of space {space.name!r}: {exc}") from None
        raise


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
    "MODELS",
    "SUPERNETS",
    "DartsNetworkCIFAR",
    "MobileNet",
    "NB201Network",
    "count_parameters",
    "create_model",
    "create_supernet",
    "list_models",
    "nb201_param_count",
]
