"""Weight-sharing supernets of the mobile spaces (TuNAS): one set of weights, one path per call.

``supernet(x, candidate)`` runs the network of one candidate of a
:class:`~rlnas.spaces.mobilenet.MobileSpace` with the shared weights:

* **filter decisions** (a stage's width ``*_filters``, a layer's expansion ``*_expand``) use
  the largest filter count any choice needs, with the filters the candidate does not use
  masked to zero (the first ``k`` filters are shared by every choice that uses ``k`` or more);
* **op decisions** own their weights as in the TuNAS code: each kernel size of a layer
  (``*_kernel``) has its own depthwise conv and BatchNorm (its own full conv for a ``cn``
  layer), squeeze-excite (``*_se``) its own module; a skipped layer (``*_skip``) or one beyond
  a stage's depth (``*_depth``) is the identity;
* ``resolution`` (OFA) resizes the input (see ``input_size``).

Op warm-up: ``supernet(x, candidate, all_ops={"s1_l0_kernel", ...})`` runs every choice of
the named op decisions and averages their outputs (a skip decision averages the layer with the
identity, a depth decision the stage outputs at every depth), as TuNAS does with probability
``p`` early in the search. Filter warm-up needs nothing special: it is the largest choice.

``remat=True`` recomputes each layer's inner activations in the backward pass
(``torch.utils.checkpoint``): only layer inputs are kept, which bounds the memory of op
warm-up to about that of a single path.

:meth:`MobileSupernet.copy_to` writes a path's weights into the stand-alone network
``rlnas.models.create_model`` builds for the candidate with the same options; a test checks
that both compute the same output.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from rlnas.errors import ConfigError
from rlnas.models.mobilenet import MobileBlock, MobileNet, resize, scaled_input_size
from rlnas.models.supernet_layers import (
    MaskedConvBN,
    MaskedLinear,
    MaskedSqueezeExcite,
    mean_of,
)
from rlnas.spaces.base import Choice, Space
from rlnas.spaces.blocks import expanded_channels, make_divisible
from rlnas.spaces.mobilenet import LayerDef, MobileSpace, StageDef

FILTER_SUFFIXES = ("_filters", "_expand")
"""Decisions whose choices are filter counts (masked; filter warm-up picks the largest)."""
OP_SUFFIXES = ("_kernel", "_se", "_skip", "_depth")
"""Decisions whose choices are different operations (own weights; op warm-up averages them all)."""


def decision_role(name: str) -> str | None:
    """``"filters"``, ``"op"`` or ``None`` (e.g. ``resolution``) for a mobile decision name."""
    if name.endswith(FILTER_SUFFIXES):
        return "filters"
    if name.endswith(OP_SUFFIXES):
        return "op"
    return None


@dataclass(frozen=True)
class WarmupPath:
    """A candidate plus the op decisions whose choices all run, averaged (TuNAS op warm-up)."""

    candidate: Mapping[str, Choice]
    all_ops: frozenset[str] = frozenset()


@dataclass(frozen=True)
class LayerPath:
    """What one layer slot computes on a path."""

    active: bool | None
    """In the network (True), skipped (False), or averaged with the identity (None: op warm-up)."""
    kernels: tuple[int, ...]
    """The kernel size, or all of them (op warm-up: outputs averaged)."""
    se: tuple[bool, ...]
    """Squeeze-excite off/on, or both (op warm-up)."""
    c_in: int
    """Input channels used."""
    mid: int
    """Expanded channels used (``ir`` layers; 0 otherwise)."""
    c_out: int
    """Output channels used."""


@dataclass(frozen=True)
class StagePath:
    """A stage's layers on a path; ``depths`` are the depths whose outputs are averaged (one unless warming up)."""

    layers: tuple[LayerPath, ...]
    depths: tuple[int, ...] | None = None


@dataclass(frozen=True)
class SupernetPath:
    """Everything a forward pass needs to know about one candidate (see :meth:`MobileSupernet.path`)."""

    input_size: int | None
    stages: tuple[StagePath, ...]
    head: tuple[LayerPath, ...]


class SuperBlock(nn.Module):
    """One ``cn``, ``ds`` or ``ir`` layer slot at its largest widths, with its kernel and SE choices."""

    def __init__(self, layer: LayerDef, c_in: int, mid: int, c_out: int, *, stride: int, residual: bool,
                 se_ratio: float):
        super().__init__()
        self.op = layer.op
        self.residual = residual
        kernels = {str(k): k for k in layer.kernels}
        if layer.op == "cn":
            self.convs = nn.ModuleDict({n: MaskedConvBN(c_in, c_out, k, stride, act=layer.act)
                                        for n, k in kernels.items()})
        elif layer.op == "ds":
            self.depthwise = nn.ModuleDict({n: MaskedConvBN(c_in, c_in, k, stride, depthwise=True, act=layer.act)
                                            for n, k in kernels.items()})
            self.pointwise = MaskedConvBN(c_in, c_out, 1)
        elif layer.op == "ir":
            self.expand = MaskedConvBN(c_in, mid, 1, act=layer.act)
            self.depthwise = nn.ModuleDict({n: MaskedConvBN(mid, mid, k, stride, depthwise=True, act=layer.act)
                                            for n, k in kernels.items()})
            self.se = MaskedSqueezeExcite(mid, se_ratio) if True in layer.se else None
            self.project = MaskedConvBN(mid, c_out, 1)
        else:
            raise ValueError(f"SuperBlock cannot build op {layer.op!r}")

    def forward(self, x: torch.Tensor, p: LayerPath) -> torch.Tensor:
        if self.op == "cn":
            y = mean_of([self.convs[str(k)](x, p.c_out) for k in p.kernels])
        elif self.op == "ds":
            h = mean_of([self.depthwise[str(k)](x, p.c_in) for k in p.kernels])
            y = self.pointwise(h, p.c_out)
        else:
            h = self.expand(x, p.mid)
            h = mean_of([self.depthwise[str(k)](h, p.mid) for k in p.kernels])
            if self.se is not None:
                h = mean_of([self.se(h, p.mid) if on else h for on in p.se])
            y = self.project(h, p.c_out)
        return x + y if self.residual else y

    @torch.no_grad()
    def copy_to(self, block: MobileBlock, p: LayerPath) -> None:
        """Write this slot's weights of path ``p`` into the stand-alone ``block``."""
        (k,), (se,) = p.kernels, p.se
        body = block.body
        if self.op == "cn":
            self.convs[str(k)].copy_to(body, p.c_in, p.c_out)
        elif self.op == "ds":
            self.depthwise[str(k)].copy_to(body[0], p.c_in, p.c_in)
            self.pointwise.copy_to(body[1], p.c_in, p.c_out)
        else:
            self.expand.copy_to(body[0], p.c_in, p.mid)
            self.depthwise[str(k)].copy_to(body[1], p.mid, p.mid)
            if se:
                self.se.copy_to(body[2], p.mid)
            self.project.copy_to(body[-1], p.mid, p.c_out)


class MobileSupernet(nn.Module):
    """The supernet of a mobile space (see the module docstring).

    Options as for ``create_model`` on a mobile space (``num_classes``, ``width_mult``,
    ``dropout``, ``in_channels``, ``stem_stride``, ``input_size``) plus ``remat``.
    """

    def __init__(self, space: Space, *, num_classes: int = 1000, width_mult: float = 1.0, dropout: float = 0.0,
                 in_channels: int = 3, stem_stride: int | None = None, input_size: int | None = None,
                 remat: bool = False):
        super().__init__()
        if not isinstance(space, MobileSpace):
            raise ConfigError(f"space {space.name!r} has no mobile supernet (mobile spaces only)")
        if stem_stride not in (None, 1, 2):
            raise ConfigError(f"supernet: stem_stride must be 1 or 2, got {stem_stride!r}")
        if input_size is not None and (isinstance(input_size, bool) or not isinstance(input_size, int)
                                       or input_size < 1):
            raise ConfigError(f"supernet: input_size must be a positive integer, got {input_size!r}")
        self.space = space
        self.op_decisions = frozenset(d.name for d in space.decisions if decision_role(d.name) == "op")
        self.options = {"num_classes": num_classes, "width_mult": width_mult, "dropout": dropout,
                        "in_channels": in_channels, "stem_stride": stem_stride, "input_size": input_size}
        self.width_mult, self.in_channels, self.input_size = width_mult, in_channels, input_size
        self.remat = bool(remat)
        stages, head = [], []
        widths: tuple[int, ...] = (in_channels,)
        first = True
        for st in space.stages:
            self._check_stage(st)
            outs = tuple(self.built_width(f) for f in st.filters)
            blocks = []
            for i, layer in enumerate(st.layers):
                c_in = max(widths) if i == 0 else max(outs)
                if layer.op == "lin":
                    head.append(MaskedLinear(c_in, max(outs), layer.bias, layer.act))
                    continue
                ins = widths if i == 0 else outs
                mid = max(expanded_channels(c, e) for c in ins for e in layer.expansions)
                stride = stem_stride if first and stem_stride is not None else layer.stride
                residual = layer.residual and layer.stride == 1 and (i > 0 or (len(ins) == 1 and ins == outs))
                blocks.append(SuperBlock(layer, c_in, mid, max(outs), stride=stride, residual=residual,
                                         se_ratio=space.se_ratio))
                first = False
            if blocks:
                stages.append(nn.ModuleList(blocks))
            widths = outs
        self.stages = nn.ModuleList(stages)
        self.head = nn.ModuleList(head)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(max(widths), num_classes)

    @staticmethod
    def _check_stage(st: StageDef) -> None:
        ops = {layer.op == "lin" for layer in st.layers}
        if len(ops) > 1 or st.layers[0].optional or (st.depths and min(st.depths) < 1):
            raise ConfigError(f"stage {st.name!r}: the supernet needs stages of conv layers or of 'lin' layers "
                              "whose first layer is always on")

    def built_width(self, filters: int) -> int:
        """Channels ``MobileNet`` builds for a layer string's ``filters`` at this ``width_mult``."""
        return filters if self.width_mult == 1.0 else make_divisible(filters * self.width_mult, 8)

    # ------------------------------------------------------------------ paths
    def path(self, candidate: Mapping[str, Choice], all_ops: Collection[str] = ()) -> SupernetPath:
        """The path of ``candidate``; decisions named in ``all_ops`` run every choice (op warm-up)."""
        space = self.space
        c = space.candidate(candidate)
        bad = [name for name in all_ops if decision_role(name) != "op" or name not in self.op_decisions]
        if bad:
            raise ConfigError(f"all_ops: {bad} are not op decisions of space {space.name!r}")
        resolution = int(space.setting(c, "resolution", space.resolutions))
        size = scaled_input_size(self.input_size, resolution, max(space.resolutions))
        width = self.in_channels
        stages, head = [], []
        for st in space.stages:
            out = self.built_width(int(space.setting(c, f"{st.name}_filters", st.filters)))
            depths = None
            if st.depths:
                name = f"{st.name}_depth"
                depths = tuple(st.depths) if name in all_ops else (int(space.setting(c, name, st.depths)),)
            layers = []
            for i, layer in enumerate(st.layers):
                p = f"{st.name}_l{i}_"
                active: bool | None = True
                if layer.optional:
                    active = None if p + "skip" in all_ops else not c[p + "skip"]
                kernels = (tuple(layer.kernels) if p + "kernel" in all_ops
                           else (int(space.setting(c, p + "kernel", layer.kernels)),))
                se = tuple(layer.se) if p + "se" in all_ops else (bool(space.setting(c, p + "se", layer.se)),)
                expansion = float(space.setting(c, p + "expand", layer.expansions))
                mid = expanded_channels(width, expansion) if layer.op == "ir" else 0
                layers.append(LayerPath(active, kernels, se, width, mid, out))
                width = out
            if st.layers[0].op == "lin":
                head.extend(layers)
            else:
                stages.append(StagePath(tuple(layers), depths))
        return SupernetPath(size, tuple(stages), tuple(head))

    # ---------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor, candidate: Mapping[str, Choice] | WarmupPath, *,
                all_ops: Collection[str] = ()) -> torch.Tensor:
        """Logits of ``candidate``'s network with the shared weights (see the module docstring);
        a :class:`WarmupPath` carries its own ``all_ops``."""
        if isinstance(candidate, WarmupPath):
            candidate, all_ops = candidate.candidate, candidate.all_ops
        plan = self.path(candidate, all_ops)
        x = resize(x, plan.input_size)
        for blocks, stage in zip(self.stages, plan.stages):
            x = self._stage(blocks, stage, x)
        x = x.mean((2, 3))
        for linear, p in zip(self.head, plan.head):
            x = linear(x, p.c_out)
        return self.classifier(self.dropout(x))

    def _stage(self, blocks: nn.ModuleList, stage: StagePath, x: torch.Tensor) -> torch.Tensor:
        if stage.depths is not None:
            outputs = []
            for i, (block, p) in enumerate(zip(blocks, stage.layers)):
                if i >= max(stage.depths):
                    break
                x = self._call(block, x, p)
                if i + 1 in stage.depths:
                    outputs.append(x)
            return mean_of(outputs)
        for block, p in zip(blocks, stage.layers):
            if p.active is None:
                x = 0.5 * (self._call(block, x, p) + x)
            elif p.active:
                x = self._call(block, x, p)
        return x

    def _call(self, block: SuperBlock, x: torch.Tensor, p: LayerPath) -> torch.Tensor:
        if self.remat and torch.is_grad_enabled():
            return checkpoint(block, x, p, use_reentrant=False)
        return block(x, p)

    # ---------------------------------------------------------------- export
    @torch.no_grad()
    def copy_to(self, model: MobileNet, candidate: Mapping[str, Choice]) -> None:
        """Write ``candidate``'s weights into ``model``, the ``create_model`` network of ``candidate``
        built with this supernet's options (BatchNorm running statistics are left as they are)."""
        plan = self.path(candidate)
        features = iter(model.features)
        for blocks, stage in zip(self.stages, plan.stages):
            depth = stage.depths[0] if stage.depths is not None else len(stage.layers)
            for i, (block, p) in enumerate(zip(blocks, stage.layers)):
                if i < depth and p.active:
                    block.copy_to(next(features), p)
        if next(features, None) is not None:
            raise ValueError("model has more layers than the candidate's path")
        for j, (linear, p) in enumerate(zip(self.head, plan.head)):
            linear.copy_to(model.head[2 * j], p.c_in, p.c_out)
        c = plan.head[-1].c_out if plan.head else plan.stages[-1].layers[-1].c_out
        model.classifier.weight.copy_(self.classifier.weight[:, :c])
        model.classifier.bias.copy_(self.classifier.bias)

    def extract(self, candidate: Mapping[str, Choice]) -> MobileNet:
        """A stand-alone ``create_model`` network of ``candidate`` holding this supernet's weights
        (BatchNorm statistics at their defaults: see :func:`recalibrate_batchnorm`)."""
        from rlnas.models import create_model

        model = create_model(self.space, candidate, **self.options)
        self.copy_to(model, candidate)
        return model.to(self.classifier.weight.device, self.classifier.weight.dtype)
