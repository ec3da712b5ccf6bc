"""Mobile search spaces (OFA MobileNetV3, ProxylessNAS, ProxylessNAS-Enlarged, TuNAS MobileNetV3-like).

All four are one :class:`MobileSpace`: a resolution, then stages of layers whose kernel,
expansion, squeeze-excite, skip and stage width / depth may be searched. A candidate turns
into a :class:`MobileArch` (input resolution + one layer string per layer, see
:mod:`rlnas.spaces.blocks`), which ``rlnas.models`` builds with one builder.

Decision names: ``resolution``; ``{stage}_filters``; ``{stage}_depth``; and per layer
``{stage}_l{i}_kernel`` / ``_expand`` / ``_se`` / ``_skip``; a decision exists only where
there is more than one choice. Decisions of a layer that is skipped (or beyond the stage
depth) are *inactive*: they do not change the network. :attr:`MobileSpace.size` counts
every assignment (what the agents search); :attr:`MobileSpace.num_architectures` counts
distinct networks.

Key: ``|``-separated groups: ``r<res>`` when the resolution is searched, then one group per
stage holding a decision: ``c<filters>:`` when the width is searched, then one token per
layer joined by ``.``: ``k<kernel>`` / ``e<expansion>`` / ``se`` (present only for the
searched parts; ``se`` only when on), wrapped in parentheses when the layer is skipped or
beyond the depth (its inactive settings are kept, so keys round-trip exactly). Example
(ProxylessNAS-Mobile): ``k3|k5e3.k3e3.(k3e3).(k3e3)|k7e3.k3e3.k5e3.k5e3|...``.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rlnas.errors import InvalidCandidate
from rlnas.spaces.base import Candidate, Categorical, Choice, Space
from rlnas.spaces.blocks import BlockSpec, format_block, round_filters


@dataclass(frozen=True)
class LayerDef:
    """One layer slot of a stage and the choices it offers."""

    op: str
    """Layer kind: ``cn``, ``ds``, ``ir`` or ``lin`` (``lin`` follows a global pool)."""
    stride: int = 1
    """Stride of the layer (the depthwise conv for ``ds``/``ir``)."""
    act: str = "re"
    """Activation code (see :mod:`rlnas.spaces.blocks`)."""
    kernels: tuple[int, ...] = (1,)
    """Kernel size choices."""
    expansions: tuple[int, ...] = (1,)
    """Expansion ratio choices (``ir`` only)."""
    se: tuple[bool, ...] = (False,)
    """Squeeze-excite choices."""
    optional: bool = False
    """True when the layer may be skipped (replaced by the identity)."""
    residual: bool = False
    """True when the layer gets an identity shortcut (requires stride 1, equal widths)."""
    bias: bool = True
    """Bias of a ``lin`` layer."""


@dataclass(frozen=True)
class StageDef:
    """Layers that share one output width."""

    name: str
    """Prefix of the stage's decision names."""
    filters: tuple[int, ...]
    """Output width choices."""
    layers: tuple[LayerDef, ...]
    """The layer slots."""
    depths: tuple[int, ...] = ()
    """Choices of how many leading layers are used (empty: all, subject to ``optional``)."""


@dataclass(frozen=True)
class MobileArch:
    """A concrete mobile network: input resolution and one layer string per layer."""

    resolution: int
    layers: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict:
        """JSON-able form."""
        return {"resolution": self.resolution, "layers": list(self.layers)}


def scaled_filter_choices(base: int, multipliers: Sequence[float]) -> tuple[int, ...]:
    """Sorted distinct widths ``round8(base * m)`` (TuNAS's filter multipliers)."""
    return tuple(sorted({round_filters(base * m) for m in multipliers}))


class MobileSpace(Space):
    """A searchable stack of mobile stages (see the module docstring)."""

    def __init__(self, name: str, stages: Sequence[StageDef], resolutions: Sequence[int] = (224,),
                 se_ratio: float = 0.25):
        self.stages = tuple(stages)
        self.resolutions = tuple(resolutions)
        self.se_ratio = se_ratio
        decisions: list[Categorical] = []
        if len(self.resolutions) > 1:
            decisions.append(Categorical("resolution", self.resolutions))
        for st in self.stages:
            if st.depths and any(layer.optional for layer in st.layers):
                raise ValueError(f"stage {st.name!r}: a stage has either depths or optional layers")
            if len(st.filters) > 1:
                decisions.append(Categorical(f"{st.name}_filters", st.filters))
            if len(st.depths) > 1:
                decisions.append(Categorical(f"{st.name}_depth", st.depths))
            for i, layer in enumerate(st.layers):
                for suffix, choices in self._layer_choices(layer):
                    decisions.append(Categorical(f"{st.name}_l{i}_{suffix}", choices))
        super().__init__(name, decisions)

    @staticmethod
    def _layer_choices(layer: LayerDef) -> list[tuple[str, tuple[Choice, ...]]]:
        out: list[tuple[str, tuple[Choice, ...]]] = []
        for suffix, choices in (("kernel", layer.kernels), ("expand", layer.expansions), ("se", layer.se)):
            if len(choices) > 1:
                out.append((suffix, tuple(choices)))
        if layer.optional:
            out.append(("skip", (False, True)))
        return out

    # --------------------------------------------------------------- helpers
    def setting(self, c: Mapping[str, Choice], name: str, fixed: Sequence[Choice]) -> Choice:
        """The value of decision ``name`` in ``c``, or the only value in ``fixed`` when it is not searched."""
        return c[name] if len(fixed) > 1 else fixed[0]

    def layer_active(self, c: Mapping[str, Choice], st: StageDef, i: int) -> bool:
        """Whether layer ``i`` of stage ``st`` is in the network of ``c`` (not skipped, within the depth)."""
        if st.depths:
            return i < int(self.setting(c, f"{st.name}_depth", st.depths))
        return not (st.layers[i].optional and c[f"{st.name}_l{i}_skip"])

    def arch(self, candidate: Mapping[str, Choice]) -> MobileArch:
        """The network of ``candidate``: resolution and layer strings (inactive layers left out)."""
        self.validate(candidate)
        c = candidate
        layers: list[str] = []
        width = 3
        pooled = False
        for st in self.stages:
            out = int(self.setting(c, f"{st.name}_filters", st.filters))
            for i, layer in enumerate(st.layers):
                if not self.layer_active(c, st, i):
                    continue
                p = f"{st.name}_l{i}_"
                if layer.op == "lin" and not pooled:
                    layers.append("pool")
                    pooled = True
                se = bool(self.setting(c, p + "se", layer.se))
                spec = BlockSpec(
                    op=layer.op, kernel=int(self.setting(c, p + "kernel", layer.kernels)), stride=layer.stride,
                    expansion=float(self.setting(c, p + "expand", layer.expansions)), channels=out,
                    se=self.se_ratio if se else 0.0, act=layer.act,
                    skip=layer.residual and layer.stride == 1 and width == out, bias=layer.bias,
                )
                layers.append(format_block(spec))
                width = out
        if not pooled:
            layers.append("pool")
        return MobileArch(int(self.setting(c, "resolution", self.resolutions)), tuple(layers))

    @property
    def num_architectures(self) -> int:
        """Number of distinct networks (inactive decisions collapsed)."""
        total = len(self.resolutions)
        for st in self.stages:
            per = [math.prod(len(x) for x in (layer.kernels, layer.expansions, layer.se)) for layer in st.layers]
            if st.depths:
                count = sum(math.prod(per[:d]) for d in st.depths)
            else:
                count = math.prod(p + (1 if layer.optional else 0) for p, layer in zip(per, st.layers))
            total *= len(st.filters) * count
        return total

    # ------------------------------------------------------------------ keys
    def _keyed_stages(self) -> list[StageDef]:
        return [st for st in self.stages
                if len(st.filters) > 1 or len(st.depths) > 1 or any(self._layer_choices(x) for x in st.layers)]

    def key(self, candidate: Mapping[str, Choice]) -> str:
        """Compact readable key (see the module docstring); exact inverse of :meth:`from_key`."""
        self.validate(candidate)
        c = candidate
        groups = [f"r{c['resolution']}"] if len(self.resolutions) > 1 else []
        for st in self._keyed_stages():
            tokens = []
            for i, layer in enumerate(st.layers):
                p = f"{st.name}_l{i}_"
                tok = ""
                if len(layer.kernels) > 1:
                    tok += f"k{c[p + 'kernel']}"
                if len(layer.expansions) > 1:
                    tok += f"e{c[p + 'expand']}"
                if len(layer.se) > 1 and c[p + "se"]:
                    tok += "se"
                if not tok and (layer.optional or len(st.depths) > 1):
                    tok = "x"
                if tok:
                    tokens.append(tok if self.layer_active(c, st, i) else f"({tok})")
            head = f"c{c[st.name + '_filters']}" if len(st.filters) > 1 else ""
            groups.append(head + (":" if head and tokens else "") + ".".join(tokens))
        return "|".join(groups)

    def identity(self, candidate: Mapping[str, Choice]) -> str:
        """The network itself (:meth:`arch`): candidates that differ only in the choices of layers
        they leave out (skipped, beyond the depth) are one network."""
        return json.dumps(self.arch(candidate).to_json(), separators=(",", ":"))

    def from_key(self, key: str) -> Candidate:
        """Parse a key written by :meth:`key`; :class:`InvalidCandidate` names the bad part."""
        if not isinstance(key, str):
            raise InvalidCandidate(f"a {self.name} key must be a str, got {type(key).__name__}")
        where = f"{self.name} key {key[:50]!r}{'...' if len(key) > 50 else ''}"
        groups = key.split("|")
        choices: dict[str, Choice] = {}
        if len(self.resolutions) > 1:
            first = groups.pop(0)
            if not re.fullmatch(r"r\d+", first):
                raise InvalidCandidate(f"{where}: first group {first!r} must be the resolution 'r<int>'")
            choices["resolution"] = int(first[1:])
        stages = self._keyed_stages()
        if len(groups) != len(stages):
            raise InvalidCandidate(f"{where} has {len(groups)} stage group(s), expected {len(stages)}")
        for st, group in zip(stages, groups):
            self._parse_group(st, group, choices, where)
        return self.candidate(choices)

    def _parse_group(self, st: StageDef, group: str, choices: dict[str, Choice], where: str) -> None:
        if len(st.filters) > 1:
            m = re.fullmatch(r"c(\d+)(?::(.*))?", group)
            if m is None:
                raise InvalidCandidate(f"{where}: stage {st.name} group {group!r} must start with 'c<filters>'")
            choices[f"{st.name}_filters"] = int(m.group(1))
            group = m.group(2) or ""
        slots = [(i, x) for i, x in enumerate(st.layers)
                 if self._layer_choices(x) or len(st.depths) > 1]
        tokens = group.split(".") if group else []
        if len(tokens) != len(slots):
            raise InvalidCandidate(f"{where}: stage {st.name} has {len(tokens)} layer token(s), expected {len(slots)}")
        active = []
        for (i, layer), tok in zip(slots, tokens):
            skipped = tok.startswith("(") and tok.endswith(")")
            body = tok[1:-1] if skipped else tok
            m = re.fullmatch(r"(?:k(\d+))?(?:e(\d+))?(se)?|x", body)
            if m is None:
                raise InvalidCandidate(f"{where}: stage {st.name} layer token {tok!r} is not like 'k5e6se'")
            k, e, se = (m.groups() if body != "x" else (None, None, None))
            p = f"{st.name}_l{i}_"
            for present, suffix, value, n in ((k, "kernel", k, len(layer.kernels)),
                                               (e, "expand", e, len(layer.expansions))):
                if (present is not None) != (n > 1):
                    must = "must" if n > 1 else "must not"
                    raise InvalidCandidate(f"{where}: stage {st.name} token {tok!r} {must} give the {suffix}")
                if value is not None:
                    choices[p + suffix] = int(value)
            if len(layer.se) > 1:
                choices[p + "se"] = se is not None
            elif se is not None:
                raise InvalidCandidate(f"{where}: stage {st.name} token {tok!r}: squeeze-excite is not searched here")
            if layer.optional:
                choices[p + "skip"] = skipped
            elif skipped and not st.depths:
                raise InvalidCandidate(f"{where}: stage {st.name} layer {i} cannot be skipped")
            active.append(not skipped)
        if len(st.depths) > 1:
            depth = sum(active)
            if active != [True] * depth + [False] * (len(active) - depth):
                raise InvalidCandidate(f"{where}: stage {st.name}: layers beyond the depth must be the last ones, "
                                       "in parentheses")
            choices[f"{st.name}_depth"] = depth

    def extreme(self, largest: bool) -> Candidate:
        """The largest (last choice everywhere, nothing skipped) or smallest candidate."""
        choices: dict[str, Choice] = {}
        for d in self.decisions:
            if d.name.endswith("_skip"):
                choices[d.name] = not largest
            else:
                choices[d.name] = d.choices[-1] if largest else d.choices[0]
        return self.candidate(choices)

    def known(self) -> dict[str, Candidate]:
        """``largest`` and ``smallest`` networks of the space."""
        return {"largest": self.extreme(True), "smallest": self.extreme(False)}


# ------------------------------------------------------------------- spaces
def _ir_stage(name: str, filters: tuple[int, ...], n: int, stride: int, act: str, kernels: tuple[int, ...],
              expansions: tuple[int, ...], se: tuple[bool, ...], optional: bool,
              depths: tuple[int, ...] = ()) -> StageDef:
    first = LayerDef("ir", stride, act, kernels, expansions, se)
    rest = LayerDef("ir", 1, act, kernels, expansions, se, optional=optional, residual=True)
    return StageDef(name, filters, (first,) + (rest,) * (n - 1), depths)


OFA_RESOLUTIONS = tuple(range(128, 225, 4))


class OFAMobileNetV3Space(MobileSpace):
    """Once-for-All MobileNetV3: 5 stages of depth {2,3,4}, kernel {3,5,7}, expansion {3,4,6}
    per layer, input resolution {128, 132, ..., 224}; widths of OFA at width multiplier 1.0
    (pass ``width_mult=1.2`` to the model builder for OFA's w1.2 networks)."""

    def __init__(self, resolutions: Sequence[int] = OFA_RESOLUTIONS) -> None:
        k, e = (3, 5, 7), (3, 4, 6)
        stages = [StageDef("stem", (16,), (LayerDef("cn", 2, "hs", (3,)),)),
                  StageDef("first", (16,), (LayerDef("ds", 1, "re", (3,), residual=True),))]
        for i, (c, s, act, se) in enumerate(
            ((24, 2, "re", False), (40, 2, "re", True), (80, 2, "hs", False), (112, 1, "hs", True),
             (160, 2, "hs", True)),
            start=1,
        ):
            stages.append(_ir_stage(f"s{i}", (c,), 4, s, act, k, e, (se,), False, depths=(2, 3, 4)))
        stages += [StageDef("head", (960,), (LayerDef("cn", 1, "hs", (1,)),)),
                   StageDef("feature", (1280,), (LayerDef("lin", 1, "hs", bias=False),))]
        super().__init__("ofa_mbv3", stages, resolutions)


# Widths of ProxylessNAS-Mobile / TuNAS's ProxylessNAS space: stem, first block, 6 stages, head.
PROXYLESS_FILTERS = (32, 16, 32, 40, 80, 96, 192, 320, 1280)
PROXYLESS_STAGES = ((4, 2), (4, 2), (4, 2), (4, 1), (4, 2), (1, 1))  # (layers, stride)
TUNAS_MULTIPLIERS = (0.5, 0.625, 0.75, 1.0, 1.25, 1.5, 2.0)


def _proxyless_stages(filters: Sequence[tuple[int, ...]]) -> list[StageDef]:
    stages = [StageDef("stem", filters[0], (LayerDef("cn", 2, "re", (3,)),)),
              StageDef("first", filters[1], (LayerDef("ds", 1, "re", (3, 5, 7)),))]
    for i, (n, s) in enumerate(PROXYLESS_STAGES, start=1):
        stages.append(_ir_stage(f"s{i}", filters[1 + i], n, s, "re", (3, 5, 7), (3, 6), (False,), True))
    stages.append(StageDef("head", filters[8], (LayerDef("cn", 1, "re", (1,)),)))
    return stages


class ProxylessSpace(MobileSpace):
    """ProxylessNAS space as reproduced by TuNAS: per layer kernel {3,5,7} x expansion {3,6},
    every non-first layer of a stage may be skipped, widths of ProxylessNAS-Mobile (~2.2e21)."""

    def __init__(self) -> None:
        super().__init__("proxyless", _proxyless_stages([(f,) for f in PROXYLESS_FILTERS]))

    def known(self) -> dict[str, Candidate]:
        """``largest``, ``smallest`` and ``proxylessnas_mobile`` (Cai et al., 2019)."""
        out = super().known()
        out["proxylessnas_mobile"] = self.from_key(PROXYLESSNAS_MOBILE_KEY)
        return out


PROXYLESSNAS_MOBILE_KEY = (
    "k3|k5e3.k3e3.(k3e3).(k3e3)|k7e3.k3e3.k5e3.k5e3|k7e6.k5e3.k5e3.k5e3|k5e6.k5e3.k5e3.k5e3|"
    "k7e6.k7e6.k7e3.k7e3|k7e6"
)


class ProxylessEnlargedSpace(MobileSpace):
    """ProxylessNAS-Enlarged (TuNAS): the ProxylessNAS space plus a width per stage, base widths
    (16, 16, 16, 32, 64, 128, 256, 512, 1024) times {0.5, 0.625, 0.75, 1, 1.25, 1.5, 2} (~1.4e28)."""

    def __init__(self) -> None:
        base = (16, 16, 16, 32, 64, 128, 256, 512, 1024)
        super().__init__("proxyless_enlarged",
                         _proxyless_stages([scaled_filter_choices(b, TUNAS_MULTIPLIERS) for b in base]))


class TunasMobileNetV3Space(MobileSpace):
    """TuNAS MobileNetV3-like space: stem kernel {3,5}, optional stem separable conv, 5 stages of
    4 layers with kernel {3,5,7}, expansion {1..6}, squeeze-excite on/off, skippable non-first
    layers, a width per stage; hard-swish in the later stages and a MobileNetV3 head (~8.5e42)."""

    def __init__(self) -> None:
        f = [scaled_filter_choices(b, TUNAS_MULTIPLIERS) for b in (16, 16, 32, 64, 128, 256, 512, 1024)]
        k, e, se = (3, 5, 7), (1, 2, 3, 4, 5, 6), (False, True)
        stages = [StageDef("stem", f[0], (LayerDef("cn", 2, "hs", (3, 5)),
                                         LayerDef("ds", 1, "re", k, optional=True, residual=True)))]
        for i, (s, act) in enumerate((((2, "re"), (2, "re"), (2, "hs"), (1, "hs"), (2, "hs"))), start=1):
            stages.append(_ir_stage(f"s{i}", f[i], 4, s, act, k, e, se, True))
        stages += [StageDef("head", f[6], (LayerDef("cn", 1, "hs", (1,)),)),
                   StageDef("feature", f[7], (LayerDef("lin", 1, "hs"),))]
        super().__init__("tunas_mbv3", stages)
