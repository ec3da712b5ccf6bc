"""Compact layer strings for mobile networks, decoded by one builder (``rlnas.models.mobilenet``).

Pure Python: the strings and :class:`BlockSpec` are shared by the torch builder and by cost
models. One string describes one layer; fields are joined by ``_``::

    <op>[_k<kernel>][_s<stride>][_e<expansion>][_c<channels>][_se<ratio>][_a<act>][_skip][_nobias]

``op``
    ``cn``   conv k x k -> BN -> act (the stem and the 1x1 head conv);
    ``ds``   depthwise-separable: depthwise k x k -> BN -> act -> pointwise 1x1 -> BN;
    ``ir``   inverted bottleneck: pointwise expand to ``round8(in * e)`` -> BN -> act ->
             depthwise k x k (stride s) -> BN -> act -> [squeeze-excite] -> pointwise -> BN.
             The expansion conv is present for every ``e`` (write ``ds`` for the
             MobileNetV2 "expansion 1" block without it);
    ``pool`` global average pooling (no other field);
    ``lin``  fully connected layer to ``c`` units (with bias unless ``_nobias``) -> act.
``k`` kernel (default 1), ``s`` stride (default 1), ``e`` expansion ratio (``ir`` only),
``c`` output channels (required except for ``pool``), ``se`` squeeze-excite ratio of the
expanded channels (hidden = ``make_divisible(mid * ratio, 8)``, ReLU inside, hard-sigmoid
gate), ``a`` activation: ``re`` ReLU (default), ``r6`` ReLU6, ``hs`` hard-swish, ``sw``
swish/SiLU, ``no`` none; ``skip`` adds an identity shortcut (needs stride 1 and equal
in/out channels). Example: ``ir_k5_s2_e6_c40_se0.25_ahs``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from rlnas.errors import InvalidCandidate

BLOCK_OPS = ("cn", "ds", "ir", "pool", "lin")
ACTIVATIONS = ("re", "r6", "hs", "sw", "no")


@dataclass(frozen=True)
class BlockSpec:
    """One decoded layer string (see the module docstring for the fields)."""

    op: str
    kernel: int = 1
    stride: int = 1
    expansion: float = 1.0
    channels: int = 0
    se: float = 0.0
    act: str = "re"
    skip: bool = False
    bias: bool = True


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to a multiple of ``divisor`` (at least ``divisor``) without losing more than 10 %."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def round_filters(value: float, base: int = 8) -> int:
    """Round half up to a multiple of ``base`` (at least ``base``): TuNAS's filter scaling."""
    return max(base, int(value / base + 0.5) * base)


def expanded_channels(in_channels: int, expansion: float) -> int:
    """Width of an inverted bottleneck's middle layers."""
    return round_filters(in_channels * expansion)


def _num(text: str) -> str:
    value = float(text)
    return str(int(value)) if value == int(value) else repr(value)


def format_block(spec: BlockSpec) -> str:
    """Canonical string of ``spec`` (inverse of :func:`parse_block`)."""
    if spec.op == "pool":
        return "pool"
    parts = [spec.op]
    if spec.op in ("cn", "ds", "ir"):
        parts += [f"k{spec.kernel}", f"s{spec.stride}"]
    if spec.op == "ir":
        parts.append(f"e{_num(str(spec.expansion))}")
    parts.append(f"c{spec.channels}")
    if spec.se:
        parts.append(f"se{_num(str(spec.se))}")
    parts.append(f"a{spec.act}")
    if spec.skip:
        parts.append("skip")
    if not spec.bias:
        parts.append("nobias")
    return "_".join(parts)


_FIELD = re.compile(r"^(se|k|s|e|c|a)(.+)$")  # "se" before "s"


def parse_block(text: str) -> BlockSpec:
    """Decode one layer string; :class:`InvalidCandidate` says which field is wrong."""
    if not isinstance(text, str) or not text:
        raise InvalidCandidate(f"a layer string must be a non-empty str, got {text!r}")
    op, *fields = text.split("_")
    if op not in BLOCK_OPS:
        raise InvalidCandidate(f"layer {text!r}: unknown op {op!r} (choices: {', '.join(BLOCK_OPS)})")
    if op == "pool":
        if fields:
            raise InvalidCandidate(f"layer {text!r}: 'pool' takes no fields")
        return BlockSpec("pool")
    values: dict[str, object] = {}
    for field in fields:
        if field in ("skip", "nobias"):
            values[field] = True
            continue
        m = _FIELD.match(field)
        if m is None:
            raise InvalidCandidate(f"layer {text!r}: cannot read field {field!r}")
        name, raw = m.groups()
        if name in values:
            raise InvalidCandidate(f"layer {text!r}: field {name!r} given twice")
        try:
            values[name] = raw if name == "a" else (float(raw) if name in ("e", "se") else int(raw))
        except ValueError:
            raise InvalidCandidate(f"layer {text!r}: field {field!r} needs a number") from None
    act = str(values.get("a", "re"))
    if act not in ACTIVATIONS:
        raise InvalidCandidate(f"layer {text!r}: unknown activation {act!r} (choices: {', '.join(ACTIVATIONS)})")
    spec = BlockSpec(
        op=op, kernel=int(values.get("k", 1)), stride=int(values.get("s", 1)),
        expansion=float(values.get("e", 1.0)), channels=int(values.get("c", 0)),
        se=float(values.get("se", 0.0)), act=act, skip=bool(values.get("skip", False)),
        bias=not values.get("nobias", False),
    )
    if spec.channels <= 0:
        raise InvalidCandidate(f"layer {text!r}: needs a positive channel count 'c<int>'")
    if spec.kernel < 1 or spec.kernel % 2 == 0 or spec.stride not in (1, 2):
        raise InvalidCandidate(f"layer {text!r}: kernel must be odd and stride 1 or 2")
    if "e" in values and op != "ir":
        raise InvalidCandidate(f"layer {text!r}: only 'ir' layers take an expansion 'e'")
    if spec.expansion <= 0 or not 0 <= spec.se < 1:
        raise InvalidCandidate(f"layer {text!r}: expansion must be > 0 and se ratio in [0, 1)")
    if spec.se and op != "ir":
        raise InvalidCandidate(f"layer {text!r}: only 'ir' layers take squeeze-excite")
    return spec
