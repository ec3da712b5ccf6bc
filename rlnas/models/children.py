"""Small fixed networks that optimizer search trains ("child networks"): ``create_child(name, ...)``.

| name | network (no normalisation layers, so the optimizer alone sets the training dynamics) |
|---|---|
| ``convnet`` | conv3x3 stride 2 (C→c1) ReLU, conv3x3 stride 2 (c1→c2) ReLU, linear; ``channels=(8, 16)`` |
| ``mlp`` | flatten, ``hidden`` ReLU layers (default one of 64 units), linear |
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from rlnas.errors import ConfigError
from rlnas.registry import Registry, check_options


def _positive_ints(label: str, values: Any) -> list[int]:
    """``values`` (a list, or one integer) as a list of integers >= 1, else a :class:`ConfigError`."""
    items = [values] if isinstance(values, int) else values
    if (isinstance(items, (str, bytes)) or not hasattr(items, "__iter__")
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in items)):
        raise ConfigError(f"{label} must be integers >= 1, got {values!r}")
    return list(items)


def convnet(input_shape: Sequence[int], num_classes: int, *, channels: Sequence[int] = (8, 16),
            kernel_size: int = 3) -> nn.Module:
    """Stride-2 conv + ReLU blocks (one per entry of ``channels``) and a linear classifier.

    Strided convolutions instead of max pooling: on one CPU thread pooling cost more than the
    convolutions of this small network.
    """
    channels = _positive_ints("child network 'convnet': channels", channels)
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1:
        raise ConfigError(f"child network 'convnet': kernel_size must be an integer >= 1, got {kernel_size!r}")
    c, h, w = (int(s) for s in input_shape)
    layers: list[nn.Module] = []
    for width in channels:
        pad = kernel_size // 2
        layers += [nn.Conv2d(c, int(width), kernel_size, stride=2, padding=pad), nn.ReLU()]
        c, h, w = int(width), (h + 2 * pad - kernel_size) // 2 + 1, (w + 2 * pad - kernel_size) // 2 + 1
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * h * w, num_classes))


def mlp(input_shape: Sequence[int], num_classes: int, *, hidden: Sequence[int] = (64,)) -> nn.Module:
    """A multi-layer perceptron on the flattened image."""
    hidden = _positive_ints("child network 'mlp': hidden", hidden)
    width = 1
    for s in input_shape:
        width *= int(s)
    layers: list[nn.Module] = [nn.Flatten()]
    for units in hidden:
        layers += [nn.Linear(width, int(units)), nn.ReLU()]
        width = int(units)
    return nn.Sequential(*layers, nn.Linear(width, num_classes))


CHILD_NETWORKS: Registry[Callable[..., nn.Module]] = Registry("child network", {
    "convnet": "rlnas.models.children:convnet",
    "mlp": "rlnas.models.children:mlp",
})
"""Child networks by name: ``(input_shape, num_classes, **options) -> nn.Module``."""


def create_child(name: str, input_shape: Sequence[int], num_classes: int, **options: Any) -> nn.Module:
    """Child network ``name`` for images of ``input_shape`` (C, H, W); weights from torch's global RNG."""
    factory = CHILD_NETWORKS.get(name)
    check_options(f"child network {name!r}", factory, options, skip=2)
    return factory(input_shape, num_classes, **options)
