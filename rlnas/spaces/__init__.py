"""Search spaces and their registry (``create_space`` / ``list_spaces``)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rlnas.errors import ConfigError
from rlnas.spaces.base import Candidate, Categorical, Choice, Space
from rlnas.spaces.darts import DARTS_OPS, DartsSpace
from rlnas.spaces.enas import EnasMacroSpace, EnasMicroSpace
from rlnas.spaces.mobilenet import (
    MobileArch, MobileSpace, OFAMobileNetV3Space, ProxylessEnlargedSpace, ProxylessSpace, TunasMobileNetV3Space,
)
from rlnas.spaces.nb201 import NB201_OPS, NB201Space

SPACES: dict[str, Callable[..., Space]] = {
    "nb201": NB201Space,
    "darts": DartsSpace,
    "ofa_mbv3": OFAMobileNetV3Space,
    "proxyless": ProxylessSpace,
    "proxyless_enlarged": ProxylessEnlargedSpace,
    "tunas_mbv3": TunasMobileNetV3Space,
    "enas_macro": EnasMacroSpace,
    "enas_micro": EnasMicroSpace,
}


def register_space(name: str, factory: Callable[..., Space]) -> None:
    """Make ``create_space(name)`` build spaces with ``factory``."""
    SPACES[name] = factory


def list_spaces() -> list[str]:
    """Names accepted by :func:`create_space`, sorted."""
    return sorted(SPACES)


def create_space(name: str, **kwargs: Any) -> Space:
    """Build the registered space ``name``; :class:`ConfigError` names the choices when unknown."""
    if name not in SPACES:
        raise ConfigError(f"unknown space {name!r} (choices: {', '.join(list_spaces())})")
    return SPACES[name](**kwargs)


__all__ = [
    "Candidate", "Categorical", "Choice", "Space", "NB201Space", "NB201_OPS", "DartsSpace", "DARTS_OPS",
    "MobileSpace", "MobileArch", "OFAMobileNetV3Space", "ProxylessSpace", "ProxylessEnlargedSpace",
    "TunasMobileNetV3Space",
    "SPACES", "register_space", "list_spaces", "create_space",
]
