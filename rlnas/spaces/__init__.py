"""Search spaces and their registry (``create_space`` / ``list_spaces``)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rlnas.errors import ConfigError
from rlnas.registry import Registry
from rlnas.spaces.base import Candidate, Categorical, Choice, Space
from rlnas.spaces.darts import DARTS_OPS, DartsSpace
from rlnas.spaces.mobilenet import (
    MobileArch,
    MobileSpace,
    OFAMobileNetV3Space,
    ProxylessEnlargedSpace,
    ProxylessSpace,
    TunasMobileNetV3Space,
)
from rlnas.spaces.nb201 import NB201_OPS, NB201Space
from rlnas.spaces.nbgraph import NBGraphSpace

SPACES: Registry[Callable[..., Space]] = Registry("space", {
    "nb201": "rlnas.spaces.nb201:NB201Space",
    "nbgraph": "rlnas.spaces.nbgraph:NBGraphSpace",
    "nbgraph_proteins": "rlnas.spaces.nbgraph:nbgraph_proteins_space",
    "darts": "rlnas.spaces.darts:DartsSpace",
    "ofa_mbv3": "rlnas.spaces.mobilenet:OFAMobileNetV3Space",
    "proxyless": "rlnas.spaces.mobilenet:ProxylessSpace",
    "proxyless_enlarged": "rlnas.spaces.mobilenet:ProxylessEnlargedSpace",
    "tunas_mbv3": "rlnas.spaces.mobilenet:TunasMobileNetV3Space",
    "optimizer_rules": "rlnas.spaces.optimizer_rules:OptimizerRulesSpace",
    "enas_macro": "rlnas.spaces.enas:EnasMacroSpace",
    "enas_micro": "rlnas.spaces.enas:EnasMicroSpace",
})
"""Space factories by name (``create_space`` calls them with its keyword options)."""

BUILT_IN_MODEL_SPACES = ("nb201", "darts", "ofa_mbv3", "proxyless", "proxyless_enlarged", "tunas_mbv3",
                         "enas_macro", "enas_micro")
"""The spaces whose networks :data:`rlnas.models.MODELS` builds out of the box (the train evaluator's),
named here too so that listing them needs no torch."""


def register_space(name: str, factory: str | Callable[..., Space]) -> None:
    """Make ``create_space(name)`` build spaces with ``factory`` (or a ``"module:attr"`` path)."""
    SPACES.register(name, factory)


def list_spaces() -> list[str]:
    """Names accepted by :func:`create_space`, sorted."""
    return SPACES.list()


def create_space(name: str, **kwargs: Any) -> Space:
    """Build the registered space ``name``; :class:`ConfigError` names the choices when unknown."""
    if not isinstance(name, str):
        raise ConfigError(f"space must be a registered name or a Space, got {type(name).__name__} {name!r}")
    space = SPACES.create(name, **kwargs)
    if not isinstance(space, Space):  # a plugin's factory that returns something else
        raise ConfigError(f"space {name!r}: its registered factory returned {type(space).__name__} {space!r}, "
                          "not a Space")
    return space


__all__ = [
    "Candidate", "Categorical", "Choice", "Space", "NB201Space", "NB201_OPS", "DartsSpace", "DARTS_OPS",
    "MobileSpace", "MobileArch", "OFAMobileNetV3Space", "ProxylessSpace", "ProxylessEnlargedSpace",
    "TunasMobileNetV3Space", "NBGraphSpace",
    "SPACES", "BUILT_IN_MODEL_SPACES", "register_space", "list_spaces", "create_space",
]
