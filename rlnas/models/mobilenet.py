"""One builder for every mobile space: decodes the layer strings of :mod:`rlnas.spaces.blocks`.

Every conv has no bias and is followed by an affine BatchNorm, except ``lin`` layers and the
squeeze-excite convs (bias, no BN). The classifier (dropout + linear) is appended.

Two options adapt the ImageNet networks (stride-2 stem, 32x down-sampling, meant for 224 px) to
small images without changing the architecture's identity (its layer strings and its cost):
``stem_stride`` replaces the stride of the first layer (1 keeps 28x28 digits at 2x2 after the
last stage instead of 1x1), and ``input_size`` resizes every input (bilinear) to that many
pixels before the first layer, so a network can be trained on images larger or smaller than
the data's own size (see :func:`rlnas.models.create_model` for how a searched resolution maps
onto it).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import nn
from torch.nn import functional as F

from rlnas.spaces.blocks import (
    BlockSpec,
    expanded_channels,
    make_divisible,
    parse_block,
)


def activation(code: str) -> nn.Module:
    """The module of an activation code (``re``, ``r6``, ``hs``, ``sw``, ``no``)."""
    return {"re": nn.ReLU, "r6": nn.ReLU6, "hs": nn.Hardswish, "sw": nn.SiLU, "no": nn.Identity}[code]()


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: str = "no") -> nn.Sequential:
    """Conv2d (same padding, no bias) -> BatchNorm2d -> activation."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out), activation(act),
    )


class SqueezeExcite(nn.Module):
    """Global pool -> 1x1 conv -> ReLU -> 1x1 conv -> hard-sigmoid gate."""

    def __init__(self, channels: int, ratio: float):
        super().__init__()
        hidden = make_divisible(channels * ratio, 8)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * nn.functional.hardsigmoid(self.expand(nn.functional.relu(self.reduce(s))))


class MobileBlock(nn.Module):
    """A ``cn``, ``ds`` or ``ir`` layer, with its identity shortcut when ``skip`` is set."""

    def __init__(self, spec: BlockSpec, c_in: int, c_out: int):
        super().__init__()
        if spec.skip and (spec.stride != 1 or c_in != c_out):
            raise ValueError(f"a shortcut needs stride 1 and equal widths ({c_in} -> {c_out}, stride {spec.stride})")
        self.skip = spec.skip
        k, s = spec.kernel, spec.stride
        if spec.op == "cn":
            self.body = conv_bn(c_in, c_out, k, s, act=spec.act)
        elif spec.op == "ds":
            self.body = nn.Sequential(conv_bn(c_in, c_in, k, s, groups=c_in, act=spec.act), conv_bn(c_in, c_out, 1))
        elif spec.op == "ir":
            mid = expanded_channels(c_in, spec.expansion)
            layers: list[nn.Module] = [conv_bn(c_in, mid, 1, act=spec.act),
                                       conv_bn(mid, mid, k, s, groups=mid, act=spec.act)]
            if spec.se:
                layers.append(SqueezeExcite(mid, spec.se))
            layers.append(conv_bn(mid, c_out, 1))
            self.body = nn.Sequential(*layers)
        else:
            raise ValueError(f"MobileBlock cannot build op {spec.op!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.skip else y


class MobileNet(nn.Module):
    """A network from layer strings; ``width_mult`` scales every width with ``make_divisible(c * w, 8)``.

    ``stem_stride`` (default: the layer string's) overrides the stride of the first layer;
    ``input_size`` (default: none) resizes inputs to ``input_size x input_size`` pixels first.
    """

    def __init__(self, layers: Sequence[str], num_classes: int = 1000, width_mult: float = 1.0,
                 dropout: float = 0.0, in_channels: int = 3, stem_stride: int | None = None,
                 input_size: int | None = None):
        super().__init__()
        if stem_stride not in (None, 1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride!r}")
        if input_size is not None and (isinstance(input_size, bool) or not isinstance(input_size, int)
                                       or input_size < 1):
            raise ValueError(f"input_size must be a positive integer, got {input_size!r}")
        self.input_size = input_size
        features: list[nn.Module] = []
        head: list[nn.Module] = []
        c = in_channels
        pooled = False
        for index, text in enumerate(layers):
            spec = parse_block(text)
            if index == 0 and stem_stride is not None:
                spec = replace(spec, stride=stem_stride)
            if spec.op == "pool":
                pooled = True
                continue
            out = spec.channels if width_mult == 1.0 else make_divisible(spec.channels * width_mult, 8)
            if spec.op == "lin":
                if not pooled:
                    raise ValueError("a 'lin' layer must come after 'pool'")
                head += [nn.Linear(c, out, bias=spec.bias), activation(spec.act)]
            else:
                if pooled:
                    raise ValueError(f"layer {text!r} comes after the global pool")
                features.append(MobileBlock(spec, c, out))
            c = out
        self.features = nn.Sequential(*features)
        self.head = nn.Sequential(*head)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = resize(x, self.input_size)
        x = self.features(x).mean((2, 3))
        return self.classifier(self.dropout(self.head(x)))


def scaled_input_size(input_size: int | None, resolution: int, largest_resolution: int) -> int | None:
    """Pixels a candidate of ``resolution`` sees when ``input_size`` stands for the space's largest
    resolution: ``round(input_size * resolution / largest_resolution)`` (None stays None)."""
    if input_size is None:
        return None
    return max(1, round(input_size * resolution / largest_resolution))


def resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """``x`` resized (bilinear) to ``size x size`` pixels; unchanged when ``size`` is None or already met
    (a traced or exported network always resizes, so it accepts any input size)."""
    if size is None or (not torch.jit.is_tracing() and tuple(x.shape[-2:]) == (size, size)):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
