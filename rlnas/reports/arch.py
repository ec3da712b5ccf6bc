"""The best architecture as a drawing: cells (NB201, DARTS) as graphs, mobile networks as block diagrams.

:func:`cell_graphs` and :func:`mobile_blocks` compute what is drawn (pure data, tested);
:func:`architecture_svg` writes it as one standalone SVG document (no matplotlib needed).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from rlnas.errors import ConfigError
from rlnas.spaces.base import Choice, Space
from rlnas.spaces.blocks import parse_block

OP_COLORS = {"conv": "#2b6cb0", "pool": "#2f855a", "skip": "#718096", "none": "#c53030"}


@dataclass(frozen=True)
class Node:
    """A node of a cell graph at grid position (``column``, ``row``)."""

    id: str
    label: str
    column: float
    row: float


@dataclass(frozen=True)
class Edge:
    """An operation from node ``source`` to node ``target``."""

    source: str
    target: str
    label: str


@dataclass(frozen=True)
class CellGraph:
    """One cell: its title, nodes and edges (``none`` edges are left out: they carry nothing)."""

    title: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


@dataclass(frozen=True)
class Block:
    """One layer of a mobile network: what it is and the feature map it outputs."""

    label: str
    detail: str
    channels: int
    size: int
    """Height (= width) of the output feature map; 1 after global pooling."""


def cell_graphs(space: Space, candidate: Mapping[str, Choice]) -> list[CellGraph]:
    """The cell graph(s) of an ``nb201`` or ``darts`` candidate."""
    candidate = space.candidate(candidate)
    if space.name == "nb201":
        from rlnas.spaces.nb201 import NB201_EDGES, edge_name

        nodes = tuple(Node(str(i), "in" if i == 0 else ("out" if i == 3 else str(i)), i, 0) for i in range(4))
        edges = tuple(Edge(str(s), str(t), str(candidate[edge_name(s, t)])) for s, t in NB201_EDGES
                      if candidate[edge_name(s, t)] != "none")
        return [CellGraph("cell", nodes, edges)]
    if space.name == "darts":
        from rlnas.spaces.darts import (
            DARTS_CELLS,
            DARTS_CONCAT,
            DARTS_NODES,
            cell_edges,
        )

        graphs = []
        for cell in DARTS_CELLS:
            nodes = [Node("c_{k-2}", "k-2", 0, -0.6), Node("c_{k-1}", "k-1", 0, 0.6)]
            nodes += [Node(str(i), str(i), i + 1, 0) for i in range(DARTS_NODES)]
            nodes.append(Node("c_{k}", "out", DARTS_NODES + 1, 0))
            state = ["c_{k-2}", "c_{k-1}"] + [str(i) for i in range(DARTS_NODES)]
            edges = [Edge(state[src], str(e // 2), op) for e, (op, src) in enumerate(cell_edges(candidate, cell))
                     if op != "none"]
            edges += [Edge(state[s], "c_{k}", "concat") for s in DARTS_CONCAT]
            graphs.append(CellGraph(f"{cell} cell", tuple(nodes), tuple(edges)))
        return graphs
    raise ConfigError(f"space {space.name!r} has no cell graph (cells: nb201, darts)")


def mobile_blocks(space: Space, candidate: Mapping[str, Choice], in_channels: int = 3,
                  resolution: int | None = None) -> list[Block]:
    """Input and every layer of a mobile-space candidate, with its output feature map.

    ``resolution`` overrides the candidate's input resolution (e.g. the size of the images a
    train evaluator feeds it).
    """
    arch_of = getattr(space, "arch", None)
    if arch_of is None:
        raise ConfigError(f"space {space.name!r} is not a mobile space")
    arch = arch_of(space.candidate(candidate))
    size, channels = resolution or arch.resolution, in_channels
    blocks = [Block("input", f"{size}×{size}×{channels}", channels, size)]
    names = {"cn": "conv", "ds": "sep conv", "ir": "MBConv", "lin": "linear"}
    for text in arch.layers:
        spec = parse_block(text)
        if spec.op == "pool":
            size = 1
            blocks.append(Block("global pool", f"1×1×{channels}", channels, 1))
            continue
        size = math.ceil(size / spec.stride)
        channels = spec.channels
        parts = [f"{spec.kernel}×{spec.kernel}"] if spec.op != "lin" else []
        if spec.op == "ir":
            parts.insert(0, f"e{spec.expansion:g}")
        if spec.stride > 1:
            parts.append(f"s{spec.stride}")
        if spec.se:
            parts.append("SE")
        if spec.skip:
            parts.append("+skip")
        blocks.append(Block(f"{names[spec.op]} {' '.join(parts)}".strip(), f"{size}×{size}×{channels}",
                            channels, size))
    return blocks


def collapse_point(blocks: Sequence[Block]) -> int | None:
    """Index of the first layer that still downsamples (stride 2) a feature map already 1×1, or ``None``.

    From there on the network's convolutions see a single pixel: it trains, but learns little.
    """
    for i in range(1, len(blocks)):
        if blocks[i - 1].size == 1 and " s2" in f" {blocks[i].label}" and blocks[i].label != "global pool":
            return i
    return None


def _op_color(label: str) -> str:
    for part, color in OP_COLORS.items():
        if part in label:
            return color
    return "#4a5568"


def _cell_svg(graph: CellGraph, y0: float, width: float) -> tuple[list[str], float]:
    columns = max(n.column for n in graph.nodes) or 1
    step = (width - 120) / columns
    height = 120.0 + 70 * (max(n.row for n in graph.nodes) - min(n.row for n in graph.nodes))
    mid = y0 + 30 + height / 2
    pos = {n.id: (60 + n.column * step, mid + n.row * 70) for n in graph.nodes}
    out = [f'<text x="10" y="{y0 + 20:.0f}" class="title">{escape(graph.title)}</text>']
    seen: dict[tuple[str, str], int] = {}
    for e in graph.edges:
        (x1, y1), (x2, y2) = pos[e.source], pos[e.target]
        k = seen.get((e.source, e.target), 0)
        seen[(e.source, e.target)] = k + 1
        span = abs(x2 - x1) / step
        bend = 0.0 if span <= 1 and k == 0 else (-1) ** (k + int(span)) * (28 * span + 18 * k)
        dx, dy = x2 - x1, y2 - y1
        length = math.hypot(dx, dy) or 1.0
        cx, cy = (x1 + x2) / 2 - dy / length * bend, (y1 + y2) / 2 + dx / length * bend
        lx, ly = (x1 + 2 * cx + x2) / 4, (y1 + 2 * cy + y2) / 4
        color = _op_color(e.label)
        concat = e.label == "concat"  # the cell output joins its nodes: drawn faint, unlabelled
        look = ' stroke-width="1" stroke-dasharray="4 3" opacity="0.6"' if concat else ' stroke-width="1.6"'
        out.append(f'<path d="M{x1:.1f},{y1:.1f} Q{cx:.1f},{cy:.1f} {x2:.1f},{y2:.1f}" stroke="{color}" '
                   f'fill="none"{look} marker-end="url(#arrow)"/>')
        if not concat:
            out.append(f'<text x="{lx:.1f}" y="{ly + 3:.1f}" class="op" fill="{color}">{escape(e.label)}</text>')
    for n in graph.nodes:
        x, y = pos[n.id]
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="17" class="node"/>')
        out.append(f'<text x="{x:.1f}" y="{y + 4:.1f}" class="label">{escape(n.label)}</text>')
    return out, height + 40


def _blocks_svg(blocks: Sequence[Block], y0: float, width: float) -> tuple[list[str], float]:
    out, row_h = [], 26.0
    for i, b in enumerate(blocks):
        y = y0 + i * row_h
        fill = "#edf2f7" if b.label in ("input", "global pool") else "#ebf4ff"
        out.append(f'<rect x="40" y="{y:.0f}" width="{width - 200:.0f}" height="{row_h - 6:.0f}" rx="4" '
                   f'fill="{fill}" stroke="#4a5568"/>')
        out.append(f'<text x="50" y="{y + 15:.0f}" class="block">{escape(b.label)}</text>')
        out.append(f'<text x="{width - 150:.0f}" y="{y + 15:.0f}" class="size">{escape(b.detail)}</text>')
    return out, len(blocks) * row_h + 10


def architecture_svg(space: Space, candidate: Mapping[str, Choice], *, width: int = 760, title: str = "") -> str:
    """A standalone SVG drawing of ``candidate``: its cell graph(s), or a block diagram for mobile spaces."""
    parts: list[str] = []
    y = 0.0
    if title:
        parts.append(f'<text x="10" y="18" class="title">{escape(title)}</text>')
        y = 26.0
    if space.name in ("nb201", "darts"):
        for graph in cell_graphs(space, candidate):
            drawn, height = _cell_svg(graph, y, width)
            parts += drawn
            y += height
    elif getattr(space, "arch", None) is None:
        raise ConfigError(f"rlnas draws the cells of nb201 and darts and the blocks of mobile spaces, not the "
                          f"architectures of space {space.name!r}")
    else:
        drawn, height = _blocks_svg(mobile_blocks(space, candidate), y + 6, width)
        parts += drawn
        y += height + 6
    style = ("text{font-family:sans-serif}.title{font-size:14px;font-weight:bold}"
             ".op{font-size:11px;text-anchor:middle;paint-order:stroke;stroke:#fff;stroke-width:3px}"
             ".label{font-size:11px;text-anchor:middle}.node{fill:#fff;stroke:#1a202c;stroke-width:1.5}"
             ".block{font-size:12px}.size{font-size:12px;fill:#4a5568}")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y:.0f}" '
            f'viewBox="0 0 {width} {y:.0f}" role="img" aria-label="architecture">'
            f'<defs><marker id="arrow" viewBox="0 0 10 10" refX="27" refY="5" markerWidth="7" markerHeight="7" '
            f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#4a5568"/></marker></defs>'
            f"<style>{style}</style>{''.join(parts)}</svg>")


__all__ = ["Block", "CellGraph", "Edge", "Node", "architecture_svg", "cell_graphs", "collapse_point", "mobile_blocks"]
