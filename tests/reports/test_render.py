"""Smoke tests of every renderer: each plot kind becomes a PNG and an SVG."""
from __future__ import annotations

import numpy as np
import pytest
from report_fixtures import snapshot, trial

pytest.importorskip("matplotlib")

from rlnas.errors import ConfigError, RlnasError
from rlnas.reports import render
from rlnas.reports.compare import regret_bands
from rlnas.reports.history import accuracy_vs_cost, diagnostic_series, search_history
from rlnas.reports.policy import Heatmap

TRIALS = [trial(i, float(i % 7), metrics={"test_acc": 90.0 + i % 5, "params_m": 1.0 + i % 3}) for i in range(30)]


def _figures():
    snap = snapshot("a", TRIALS, diagnostics=[(i, {"loss": 1.0 / i, "entropy": 2.0}) for i in range(1, 10)])
    heat = Heatmap(("d=0", "d=1"), np.array([0.0, 5.0, 10.0]), np.array([[0.5, 0.7, 0.9], [0.5, 0.3, 0.1]]),
                   "proposals told", "test")
    return {
        "history": render.history_figure({"a": search_history(snap.history), "b": search_history(snap.history[:10])}),
        "regret": render.regret_figure(regret_bands({"a": [snap, snap]})),
        "diagnostics": render.diagnostics_figure(diagnostic_series(snap.diagnostics)),
        "heatmap": render.heatmap_figure(heat),
        "pareto": render.pareto_figure(accuracy_vs_cost(snap.history)),
    }


@pytest.mark.parametrize("kind", ["history", "regret", "diagnostics", "heatmap", "pareto"])
def test_every_plot_kind_renders_to_png_and_svg(kind, tmp_path) -> None:
    figure = _figures()[kind]
    png = render.save_figure(figure, tmp_path / f"{kind}.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    svg = render.save_figure(figure, tmp_path / f"{kind}.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg


def test_svg_bytes_are_the_same_for_the_same_data() -> None:
    assert render.figure_bytes(_figures()["pareto"], "svg") == render.figure_bytes(_figures()["pareto"], "svg")


def test_bad_output_paths_are_refused(tmp_path) -> None:
    figure = _figures()["pareto"]
    with pytest.raises(ConfigError, match=r"must end in \.png or \.svg"):
        render.save_figure(figure, tmp_path / "plot.jpg")
    with pytest.raises(ConfigError, match=r"give the file a name before \.png \(e\.g\. plot\.png\)"):
        render.save_figure(figure, tmp_path / ".png")
    assert render.save_figure(figure, tmp_path / "new" / "plot.png").is_file()  # folders are created
    (tmp_path / "file").write_text("")
    with pytest.raises(RlnasError, match="cannot write"):
        render.save_figure(figure, tmp_path / "file" / "plot.png")
    assert not (tmp_path / "plot.jpg").exists() and sorted(p.name for p in (tmp_path / "new").iterdir()) == ["plot.png"]
    with pytest.raises(ConfigError, match="no diagnostics"):
        render.diagnostics_figure({})


def test_dollar_signs_in_names_are_drawn_as_written() -> None:
    snap = snapshot("a", TRIALS, diagnostics=[(i, {"$loss": 1.0 / i}) for i in range(1, 10)])
    name = r"lr$\frac$x"  # as math: a syntax error; "run-$SEED-$LR" would silently become italics
    heat = Heatmap(("op=$a$",), np.array([0.0, 1.0]), np.array([[0.5, 0.7]]), "proposals told", "test")
    figures = [render.history_figure({name: search_history(snap.history)}, title=name),
               render.regret_figure(regret_bands({name: [snap]})),
               render.diagnostics_figure(diagnostic_series(snap.diagnostics), title=name),
               render.heatmap_figure(heat, title=name)]
    for figure in figures:
        svg = render.figure_bytes(figure, "svg").decode()
        assert name in svg
    assert "op=$a$" in svg and "$loss" in render.figure_bytes(figures[2], "svg").decode()


def test_a_history_without_a_completed_trial_is_not_drawn_blank() -> None:
    failed = snapshot("f", [trial(i, None) for i in range(3)])
    with pytest.raises(ConfigError, match="no completed trial to draw: f has none"):
        render.history_figure({"f": search_history(failed.history)})


def test_the_heat_map_is_an_image_inside_the_svg() -> None:
    wide = Heatmap(("d=0", "d=1"), np.arange(1.0, 3001.0), np.full((2, 3000), 0.5), "trials", "test")
    svg = render.figure_bytes(render.heatmap_figure(wide), "svg")
    assert b"<image" in svg and len(svg) < 200_000  # 6,000 cells as SVG paths took megabytes


def test_a_band_of_one_query_is_drawn_as_a_dot() -> None:
    one = snapshot("one", [trial(0, 80.0, metrics={"test_acc": 80.0})])
    figure = render.regret_figure(regret_bands({"one": [one]}))
    line = figure.axes[0].lines[0]
    assert len(line.get_xdata()) == 1 and line.get_marker() == "o"  # a one-point line alone shows nothing
    low, high = figure.axes[0].get_xlim()
    ticks = [t for t in figure.axes[0].get_xticks() if low <= t <= high]
    assert ticks and all(float(t).is_integer() for t in ticks)  # (0.94 ... 1.06 queries)


def test_a_history_of_one_trial_has_a_dot_and_whole_trial_numbers() -> None:
    one = snapshot("one", [trial(0, 80.0)])
    figure = render.history_figure({"one": search_history(one.history)})
    ax = figure.axes[0]
    assert ax.lines[0].get_marker() == "o"  # (one point of a line: only the faint scatter dot showed)
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)  # (0.945, 0.960, ... trials)


def test_the_pareto_legend_does_not_sit_on_a_point() -> None:
    from rlnas.reports.history import CostAccuracy, pareto_front

    cost, accuracy = np.array([0.264, 0.460, 0.485]), np.array([97.49, 96.10, 96.66])
    points = CostAccuracy(cost, accuracy, ("a", "b", "c"), pareto_front(cost, accuracy), "latency", "accuracy")
    figure = render.pareto_figure(points)
    render.figure_bytes(figure, "png")  # laid out and drawn, as saved
    ax = figure.axes[0]
    box = ax.get_legend().get_window_extent()
    shown = ax.transData.transform(np.column_stack([points.cost, points.accuracy]))
    assert not any(box.contains(x, y) for x, y in shown)  # ((0.460, 96.10) was under the legend, lower right)
