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

from rlnas.checks import check_option_types
from rlnas.errors import ConfigError
from rlnas.models.darts import DartsNetworkCIFAR
from rlnas.models.enas import EnasMacroNetwork, EnasMicroNetwork
from rlnas.models.mobilenet import MobileNet, scaled_input_size
from rlnas.models.nb201 import NB201Network, nb201_param_count
from rlnas.registry import Registry, check_options
from rlnas.spaces.base import Choice, Space


def _nb201(space: Space, candidate: Mapping[str, Choice], **kw: Any) -> nn.Module:
    kw = check_model_options(space, NB201Network, kw)
    return NB201Network(space.candidate(candidate), **kw)


def _darts(space: Space, candidate: Mapping[str, Choice], **kw: Any) -> nn.Module:
    kw = check_model_options(space, DartsNetworkCIFAR, kw)
    return DartsNetworkCIFAR(space.candidate(candidate), **kw)


def _mobile(space: Space, candidate: Mapping[str, Choice], **kw: Any) -> nn.Module:
    kw = check_model_options(space, MobileNet, kw)
    arch = space.arch(candidate)  # type: ignore[attr-defined]
    largest = max(space.resolutions)  # type: ignore[attr-defined]
    size = scaled_input_size(kw.pop("input_size", None), arch.resolution, largest)
    model = MobileNet(arch.layers, input_size=size, **kw)
    model.resolution = arch.resolution
    return model


def _enas_macro(space: Space, candidate: Mapping[str, Choice], **kw: Any) -> nn.Module:
    check_options(f"model of space {space.name!r}", EnasMacroNetwork, kw, skip=1)
    return EnasMacroNetwork(space.candidate(candidate), **kw)


def _enas_micro(space: Space, candidate: Mapping[str, Choice], **kw: Any) -> nn.Module:
    check_options(f"model of space {space.name!r}", EnasMicroNetwork, kw, skip=1)
    return EnasMicroNetwork(space.candidate(candidate), **kw)


MODELS: Registry[Callable[..., nn.Module]] = Registry("model builder", {
    "nb201": _nb201,
    "darts": _darts,
    "ofa_mbv3": _mobile,
    "proxyless": _mobile,
    "proxyless_enlarged": _mobile,
    "tunas_mbv3": _mobile,
    "enas_macro": _enas_macro,
    "enas_micro": _enas_micro,
})
"""Network builders by space name, each called as ``(space, candidate, **options)``."""


_POSITIVE = ("num_classes", "in_channels", "channels", "layers", "cells_per_stage", "stem_multiplier", "width_mult",
             "input_size")
_PROBABILITY = ("drop_path_prob", "dropout")
_MOST = {"channels": 1024, "layers": 256, "cells_per_stage": 64, "stem_multiplier": 64, "width_mult": 16.0,
         "input_size": 4096}
"""Largest sizes (far above any published network of these spaces): beyond them a network takes hours to
build or more memory than a machine has."""


def check_model_options(space: Space, network: type[nn.Module], options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` of ``network`` (all but its first parameter, the architecture) checked for name,
    type and range: sizes must be positive, dropout probabilities in [0, 1)."""
    what = f"the {space.name} model"
    check_options(what, network, options, skip=1)
    checked = check_option_types(network, options, what)
    for key, value in checked.items():
        if key in _POSITIVE and value is not None and not value > 0:
            raise ConfigError(f"{what} option {key!r} must be positive, got {value!r}")
        if key in _MOST and value is not None and value > _MOST[key]:
            raise ConfigError(f"{what} option {key!r} must be at most {_MOST[key]:g}, got {value!r}")
        if key in _PROBABILITY and not 0 <= value < 1:
            raise ConfigError(f"{what} option {key!r} must be in [0, 1), got {value!r}")
    return checked


def check_options_for(space: Space, options: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`check_model_options` for the network :func:`create_model` builds for ``space``, without
    building it (builders registered by others are not checked)."""
    network = {_nb201: NB201Network, _darts: DartsNetworkCIFAR, _mobile: MobileNet}.get(MODELS.get(space.name))
    return dict(options) if network is None else check_model_options(space, network, options)


SUPERNETS: Registry[Callable[..., nn.Module]] = Registry("supernet", {
    "ofa_mbv3": "rlnas.models.supernet:MobileSupernet",
    "proxyless": "rlnas.models.supernet:MobileSupernet",
    "proxyless_enlarged": "rlnas.models.supernet:MobileSupernet",
    "tunas_mbv3": "rlnas.models.supernet:MobileSupernet",
})
"""Weight-sharing supernet classes by space name, each called as ``(space, **options)``."""


def create_supernet(space: Space, **kwargs: Any) -> nn.Module:
    """The weight-sharing supernet of ``space`` (``supernet(x, candidate)`` runs one path).

    Raises :class:`ConfigError` for a space without a supernet or an unknown option.
    """
    return SUPERNETS.create(space.name, space, **kwargs)


def list_models() -> list[str]:
    """Space names :func:`create_model` can build networks for, sorted."""
    return MODELS.list()


def create_model(space: Space, candidate: Mapping[str, Choice], **kwargs: Any) -> nn.Module:
    """The PyTorch network of ``candidate`` in ``space``; keyword options go to the builder.

    Raises :class:`ConfigError` for a space without a builder or an unknown option, and
    :class:`~rlnas.errors.InvalidCandidate` when ``candidate`` is not in ``space``.
    """
    return MODELS.get(space.name)(space, candidate, **kwargs)


def count_parameters(model: nn.Module, exclude: str | None = None) -> int:
    """Number of parameters, leaving out those whose name contains ``exclude``."""
    return sum(p.numel() for n, p in model.named_parameters() if exclude is None or exclude not in n)


__all__ = [
    "create_model", "create_supernet", "list_models", "check_model_options", "check_options_for", "count_parameters",
    "MODELS", "SUPERNETS", "NB201Network", "DartsNetworkCIFAR", "MobileNet", "nb201_param_count",
]
