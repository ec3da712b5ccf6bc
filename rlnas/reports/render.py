"""Matplotlib renderers of the plot data in :mod:`rlnas.reports` (``pip install 'rlnas[plot]'``).

Each ``*_figure`` function takes plot data and returns a ``matplotlib.figure.Figure`` built
without pyplot (no global state, no display: the Agg canvas), which :func:`save_figure`
writes as PNG or SVG and :func:`figure_bytes` turns into bytes for the HTML report.
"""
from __future__ import annotations

import io
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlnas.errors import ConfigError, RlnasError
from rlnas.files import write_atomically
from rlnas.reports.compare import RegretData
from rlnas.reports.history import HISTORY_AXES, CostAccuracy, History
from rlnas.reports.policy import Heatmap
from rlnas.reports.regret import Band

FORMATS = ("png", "svg")
PANEL_TITLE_CHARS = 48
"""Characters per line of a panel's title (a 4.6-inch panel)."""


def _literal(text: str) -> str:
    """``text`` drawn as written: matplotlib reads ``$...$`` as math (a study named ``lr$x$``, a metric ``$``)."""
    return text.replace("$", r"\$")


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("plots need matplotlib: pip install 'rlnas[plot]'") from None
    return Figure(figsize=(width, height), layout="constrained")


def save_figure(figure: Any, path: str | Path) -> Path:
    """Write ``figure`` to ``path`` (``.png`` or ``.svg``, chosen by the suffix), creating missing folders."""
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if path.name.lower() in (".png", ".svg"):  # a dot file, whose suffix is empty
        raise ConfigError(f"cannot write {path}: give the file a name before {path.name} (e.g. plot{path.name})")
    if fmt not in FORMATS:
        raise ConfigError(f"cannot write {path}: the file name must end in .png or .svg")
    data = figure_bytes(figure, fmt)
    try:
        return write_atomically(path, data)
    except OSError as exc:
        raise RlnasError(f"cannot write {path}: {exc.strerror}") from None


def figure_bytes(figure: Any, fmt: str = "svg") -> bytes:
    """``figure`` as PNG or SVG bytes (SVG with text as text and no date: the same data give the same bytes)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown figure format {fmt!r} (choices: {', '.join(FORMATS)})")
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "rlnas"}):
        figure.savefig(buffer, format=fmt, dpi=110, metadata=metadata)
    return buffer.getvalue()


def _whole_numbers(ax: Any, x: np.ndarray) -> None:
    """Ticks at whole numbers only (no trial 1.5), and room around one or two points: matplotlib's own
    margin around a single x put fractional ticks there (0.94 ... 1.06 queries)."""
    from matplotlib.ticker import MaxNLocator

    finite = x[np.isfinite(x)]
    if finite.size and finite.max() - finite.min() < 2:
        ax.set_xlim(finite.min() - 1, finite.max() + 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def history_figure(histories: Mapping[str, History], title: str = "") -> Any:
    """Reward per trial (dots) and best so far (line), one colour per study."""
    if not any(np.isfinite(h.reward).any() for h in histories.values()):
        raise ConfigError(f"no completed trial to draw: {', '.join(histories)} "
                          f"{'has' if len(histories) == 1 else 'have'} none")
    fig = _figure(7.0, 3.8)
    ax = fig.add_subplot()
    for label, h in histories.items():
        line, = ax.plot(h.x, h.best, linewidth=1.6, label=_literal(f"{label} (best so far)"), drawstyle="steps-post",
                        marker="o" if len(h.x) == 1 else None, markersize=4)  # one trial: a dot
        ax.scatter(h.x, h.reward, s=7, alpha=0.35, color=line.get_color(), linewidths=0)
    first = next(iter(histories.values()))
    if first.xlabel == HISTORY_AXES["trials"]:
        _whole_numbers(ax, np.concatenate([np.asarray(h.x, dtype=float) for h in histories.values()]))
    ax.set_xlabel(_literal(first.xlabel))
    ax.set_ylabel("reward")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title(_literal(title or "search history"))
    return fig


def bands_figure(panels: Mapping[str, Sequence[Band]], *, xlabel: str = "queries",
                 ylabel: str = "test regret (accuracy points)", title: str | None = None,
                 logy: bool = True, floor: float = 1e-2) -> Any:
    """One panel per key (mean line + shaded band per :class:`Band`).

    With ``logy`` the y axis is logarithmic and values below ``floor`` are drawn at ``floor``.
    """
    names = list(panels)
    fig = _figure(4.6 * len(names), 3.8)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        for band in panels[name]:
            mean, low, high = band.mean, band.low, band.high
            if logy:
                mean, low, high = (np.clip(v, floor, None) for v in (mean, low, high))
            line, = ax.plot(band.x, mean, label=_literal(f"{band.label} ({band.runs} runs)"), linewidth=1.4,
                            marker="o" if len(band.x) == 1 else None, markersize=4)  # one query: a dot
            ax.fill_between(band.x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        if logy:
            ax.set_yscale("log")
            ax.set_ylim(bottom=floor)
        ax.set_title(_literal(textwrap.fill(name, PANEL_TITLE_CHARS)))  # a long title wraps instead of being cut off
        if xlabel == "queries":
            _whole_numbers(ax, np.concatenate([np.asarray(b.x, dtype=float) for b in panels[name]] or [np.zeros(0)]))
        ax.set_xlabel(_literal(xlabel))
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel(_literal(ylabel))
    axes[-1].legend(loc="upper right", fontsize="small")
    if title:
        fig.suptitle(_literal(title))
    return fig


def regret_figure(data: RegretData, title: str = "") -> Any:
    """Regret against queries with 95 % bands (see :func:`rlnas.reports.compare.regret_bands`)."""
    return bands_figure({title or f"regret of {data.metric} (optimum {data.optimum:.2f}: {data.optimum_source})":
                         data.bands}, ylabel=f"regret ({data.metric} points)")


def plot_bands(panels: Mapping[str, Sequence[Band]], path: str | Path, **options: Any) -> Path:
    """Draw :func:`bands_figure` into ``path`` (PNG or SVG), creating its folder."""
    return save_figure(bands_figure(panels, **options), path)


def diagnostics_figure(series: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str = "") -> Any:
    """One small panel per diagnostic against the number of proposals told."""
    if not series:
        raise ConfigError("the study has no diagnostics: an agent stores them after each learning update (none "
                          "happened yet, e.g. fewer results than a policy-gradient batch; random search, evolution "
                          "and local search never learn)")
    cols = min(3, len(series))
    rows = -(-len(series) // cols)
    fig = _figure(3.4 * cols, 2.3 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (name, (x, y)) in zip(axes, series.items()):
        ax.plot(x, y, linewidth=1.0, marker="o" if len(x) == 1 else None, markersize=3)  # one update: a dot
        ax.set_title(_literal(name), fontsize="medium")
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize="small")
    for ax in axes[len(series):]:
        ax.set_visible(False)
    fig.supxlabel("proposals told")
    fig.suptitle(_literal(title or "agent diagnostics per update"))
    return fig


def heatmap_figure(heatmap: Heatmap, title: str = "") -> Any:
    """Rows ``decision=choice``, columns over the search, colour = probability (0..1)."""
    rows = len(heatmap.rows)
    fig = _figure(7.5, 1.2 + 0.16 * rows)
    ax = fig.add_subplot()
    x = heatmap.x
    edges = heatmap.edges
    if edges is None:  # columns centred on their x
        edges = np.concatenate([[x[0] - 0.5], (x[1:] + x[:-1]) / 2, [x[-1] + 0.5]]) if len(x) > 1 else \
            np.array([x[0] - 0.5, x[0] + 0.5])
    # rasterized: a long search has thousands of columns, which as SVG shapes made reports of megabytes
    mesh = ax.pcolormesh(edges, np.arange(rows + 1), np.ma.masked_invalid(heatmap.values), vmin=0.0, vmax=1.0,
                         cmap="viridis", shading="flat", rasterized=True)
    ax.set_yticks(np.arange(rows) + 0.5, [_literal(row) for row in heatmap.rows], fontsize=6 if rows > 40 else 7)
    ax.invert_yaxis()
    ax.set_xlabel(_literal(heatmap.xlabel))
    fig.colorbar(mesh, ax=ax, label="probability", fraction=0.05)
    ax.set_title(_literal(title or f"decision probabilities ({heatmap.source})"))
    return fig


def pareto_figure(data: CostAccuracy, title: str = "") -> Any:
    """Every architecture as a dot, the Pareto front as a step line."""
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot()
    ax.scatter(data.cost, data.accuracy, s=10, alpha=0.45, linewidths=0, label="architectures")
    front = data.front
    ax.plot(data.cost[front], data.accuracy[front], drawstyle="steps-post", color="C3", linewidth=1.5,
            marker="o", markersize=4, label=f"Pareto front ({len(front)})")
    ax.set_xlabel(_literal(data.cost_name))
    ax.set_ylabel(_literal(data.accuracy_name))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")  # where it hides the fewest points: dominated ones fall lower right
    ax.set_title(_literal(title or f"{data.accuracy_name} against {data.cost_name}"))
    return fig


__all__ = [
    "FORMATS",
    "bands_figure",
    "diagnostics_figure",
    "figure_bytes",
    "heatmap_figure",
    "history_figure",
    "pareto_figure",
    "plot_bands",
    "regret_figure",
    "save_figure",
]
