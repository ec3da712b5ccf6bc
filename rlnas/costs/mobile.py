"""Latency units of the mobile spaces straight from their layer strings, without building a network.

A mobile candidate is a list of layer strings (``space.arch(candidate).layers``) that
``rlnas.models.MobileNet`` builds one :class:`~rlnas.models.mobilenet.MobileBlock` each, then
a global pool, optional ``lin`` layers and the classifier. Here each block becomes one unit keyed
by its layer string, its input and output widths and its input resolution — the
``(in_ch, out_ch, kernel, expansion, stride, resolution, se, act)`` of the block — and the pool +
``lin`` layers + classifier one ``head`` unit. Widths follow ``MobileNet`` exactly
(``make_divisible(channels * width_mult, 8)``); each conv keeps ``ceil``-like same padding, so
a layer of kernel ``k`` and stride ``s`` maps resolution ``r`` to ``(r + 2 (k // 2) - k) // s + 1``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rlnas.costs.table import Unit
from rlnas.spaces.base import Choice, Space


def is_mobile_space(space: Space) -> bool:
    """Whether ``space`` describes its candidates as mobile layer strings (has ``arch``)."""
    return callable(getattr(space, "arch", None))


def mobile_units(space: Space, candidate: Mapping[str, Choice], *, width_mult: float = 1.0,
                 num_classes: int = 1000, in_channels: int = 3, resolution: int | None = None,
                 **_: Any) -> list[Unit]:
    """The units of ``candidate``'s ``MobileNet`` (``resolution`` overrides the candidate's own).

    Other model keyword arguments (``dropout``) do not change inference latency and are ignored.
    """
    from rlnas.models.mobilenet import MobileBlock, MobileNet
    from rlnas.spaces.blocks import make_divisible, parse_block

    arch = space.arch(candidate)  # type: ignore[attr-defined]
    r = int(resolution or arch.resolution)
    c = int(in_channels)
    units: list[Unit] = []
    layers = list(arch.layers)
    for i, text in enumerate(layers):
        spec = parse_block(text)
        if spec.op == "pool":
            head = ["pool"] + layers[i + 1 :]
            key = f"head|{'/'.join(head[1:])}|in={c}x{r}x{r}|classes={num_classes}|w={width_mult:g}"
            units.append(Unit(key, (lambda h=head, c=c: MobileNet(h, num_classes, width_mult, in_channels=c)),
                              ((c, r, r),)))
            return units
        out = spec.channels if width_mult == 1.0 else make_divisible(spec.channels * width_mult, 8)
        key = f"{text}|in={c}x{r}x{r}|out={out}"
        units.append(Unit(key, (lambda s=spec, a=c, b=out: MobileBlock(s, a, b)), ((c, r, r),)))
        r = (r + 2 * (spec.kernel // 2) - spec.kernel) // spec.stride + 1
        c = out
    # no explicit pool: MobileNet still pools and classifies
    key = f"head||in={c}x{r}x{r}|classes={num_classes}|w={width_mult:g}"
    units.append(Unit(key, (lambda c=c: MobileNet(["pool"], num_classes, width_mult, in_channels=c)), ((c, r, r),)))
    return units
