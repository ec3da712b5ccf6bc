"""One self-contained HTML page per study: definition, best candidates, plots, best architecture.

Everything is inline (CSS, a few lines of JavaScript to sort the table, figures as
``data:`` URIs, the architecture as inline SVG) and a Content-Security-Policy forbids the
page any other source, so the file opens offline and makes no request.
"""
from __future__ import annotations

import base64
import importlib.util
import json
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

from rlnas.errors import ConfigError, RlnasError
from rlnas.reports.compare import summarize
from rlnas.reports.frame import number_text
from rlnas.reports.snapshot import StudySnapshot
from rlnas.spaces.base import Space, network_of
from rlnas.trial import Trial

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#1a202c;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #e2e8f0}
.muted{color:#718096;font-size:13px}.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{border:1px solid #e2e8f0;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:18px}table{border-collapse:collapse;font-size:13px;width:100%}
td,th{border-bottom:1px solid #e2e8f0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f7fafc}table.sortable th{cursor:pointer;user-select:none}
table.sortable th[aria-sort=ascending]::after{content:" \\25B2"}
table.sortable th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}code{font-size:12px;word-break:break-all}
.plots{display:grid;grid-template-columns:1fr 1fr;gap:12px}.plots .wide{grid-column:1 / -1}
figure{margin:0}figure img{max-width:100%;border:1px solid #edf2f7}
#architecture svg{max-width:100%;height:auto}.scroll{overflow-x:auto}
@media (max-width:700px){.plots{grid-template-columns:1fr}}
figcaption{font-size:13px;color:#4a5568}.note{color:#975a16;font-size:13px}
pre{background:#f7fafc;padding:8px;font-size:12px;white-space:pre-wrap;margin:0}
"""

SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.value, y = b.cells[col].dataset.value;
        var nx = parseFloat(x), ny = parseFloat(y), r;
        if (!isNaN(nx) && !isNaN(ny)) { r = nx - ny; } else { r = String(x).localeCompare(String(y)); }
        return asc ? r : -r;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


@dataclass(frozen=True)
class Plot:
    """A figure of the report: caption and SVG bytes, or the reason it is missing."""

    title: str
    svg: bytes | None
    note: str = ""
    wide: bool = False


def best_trials(snapshot: StudySnapshot, top: int = 20, space: Space | None = None) -> list[Trial]:
    """The ``top`` best COMPLETE trials by reward, one per architecture (its first best trial; with
    ``space``, one per network: :meth:`~rlnas.spaces.base.Space.identity`)."""
    network = network_of(space)
    by_network: dict[str, Trial] = {}
    for t in snapshot.completed:
        known = by_network.get(network(t))
        if known is None or t.reward > known.reward:  # type: ignore[operator]
            by_network[network(t)] = t
    return sorted(by_network.values(), key=lambda t: (-t.reward, t.slot))[:top]  # type: ignore[operator]


def failure_reasons(snapshot: StudySnapshot, limit: int = 5) -> list[tuple[str, int]]:
    """The most frequent errors of FAIL trials (first line of each), with their counts."""
    errors = [((t.error or "").strip() or "no reason stored").splitlines()[0] for t in snapshot.history
              if t.state.value == "FAIL"]
    return Counter(errors).most_common(limit)


def _accuracy_metric(snapshot: StudySnapshot) -> str:
    """``test_acc`` where the trials report it, else the accuracy the reward reads (a TuNAS study's
    ``supernet_acc``): the accuracy its Pareto figure shows."""
    available = {name for trial in snapshot.evaluated for name in trial.metrics}
    reward = snapshot.record.reward
    metric = reward.get("metric") if isinstance(reward, Mapping) else reward
    if "test_acc" in available or not isinstance(metric, str) or metric not in available:
        return "test_acc"
    return metric


def report_plots(snapshot: StudySnapshot, space: Space) -> list[Plot]:
    """The figures of a study's report; a figure that does not apply says why instead."""
    from rlnas.reports.history import (
        accuracy_vs_cost,
        diagnostic_series,
        search_history,
    )
    from rlnas.reports.policy import choice_heatmap, policy_heatmap
    from rlnas.reports.render import (
        diagnostics_figure,
        figure_bytes,
        heatmap_figure,
        history_figure,
        pareto_figure,
    )

    def heat() -> Any:
        try:
            data = policy_heatmap(snapshot, space)
        except ConfigError:
            data = choice_heatmap(snapshot, space)
        return heatmap_figure(data)

    wide = {"Agent diagnostics per update", "Decision probabilities over the search"}
    makers: list[tuple[str, Callable[[], Any]]] = [
        ("Search history: reward per trial and best so far",
         lambda: history_figure({snapshot.name: search_history(snapshot.evaluated)})),
        ("Search history against evaluation time",
         lambda: history_figure({snapshot.name: search_history(snapshot.evaluated, "time")})),
        ("Agent diagnostics per update", lambda: diagnostics_figure(diagnostic_series(snapshot.diagnostics))),
        ("Decision probabilities over the search", heat),
        ("Accuracy against cost, with the Pareto front",
         lambda: pareto_figure(accuracy_vs_cost(snapshot.evaluated, _accuracy_metric(snapshot), space=space))),
    ]
    plots = []
    for title, make in makers:
        try:
            plots.append(Plot(title, figure_bytes(make(), "svg"), wide=title in wide))
        except RlnasError as exc:
            plots.append(Plot(title, None, str(exc), wide=title in wide))
    return plots


def _num(value: Any) -> str:
    return number_text(value) if isinstance(value, float) else escape(str(value))


def _reward_text(reward: str | Mapping[str, Any]) -> str:
    """A metric name as it is, a cost-aware reward's spec as JSON."""
    return reward if isinstance(reward, str) else json.dumps(reward)


def _definition(snapshot: StudySnapshot, space: Space) -> str:
    r = snapshot.record
    reward = _reward_text(r.reward)
    described = (f"{escape(r.space_name)} ({len(space.decisions)} decisions, {space.size:.3g} candidates, "
                 f"fingerprint {escape(r.fingerprint)})")
    rows = [("name", escape(r.name)), ("space", described),
            ("agent", escape(r.agent)), ("agent config", f"<pre>{escape(json.dumps(r.agent_config, indent=1))}</pre>"),
            ("evaluator", f"<pre>{escape(json.dumps(r.evaluator, indent=1))}</pre>"), ("reward", escape(reward)),
            ("seed", str(r.seed)), ("settings", f"<pre>{escape(json.dumps(r.settings))}</pre>"),
            ("rlnas version", escape(r.version)),
            ("created", escape(r.created_at.isoformat(sep=" ", timespec="seconds") if r.created_at else "-"))]
    return "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _best_table(snapshot: StudySnapshot, top: int, space: Space) -> str:
    trials = best_trials(snapshot, top, space)
    if not trials:
        return '<p class="note">No trial completed.</p>'
    metrics = sorted({m for t in trials for m in t.metrics if m != snapshot.record.reward})
    head = ["rank", "trial", f"reward ({_reward_text(snapshot.record.reward)})", *metrics, "architecture"]
    rows = []
    for rank, t in enumerate(trials, 1):
        cells = [(rank, rank), (t.number, t.number), (t.reward, _num(t.reward))]
        cells += [(t.metrics.get(m, ""), _num(t.metrics[m]) if m in t.metrics else "-") for m in metrics]
        tds = "".join(f'<td class="num" data-value="{escape(str(v))}">{shown}</td>' for v, shown in cells)
        tds += f'<td data-value="{escape(t.key)}"><code>{escape(t.key)}</code></td>'
        rows.append(f"<tr>{tds}</tr>")
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    return (f'<table class="sortable" id="best"><thead><tr>{header}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _architecture(snapshot: StudySnapshot, space: Space) -> str:
    from rlnas.reports.arch import architecture_svg
    from rlnas.study import WEIGHT_SHARING_ANSWER

    best = snapshot.best
    if best is None:
        return '<p class="note">No trial completed.</p>'
    try:
        drawing = architecture_svg(space, best.candidate)
    except ConfigError as exc:
        drawing = f'<p class="note">{escape(str(exc))}</p>'
    note = f'<p class="note">{escape(WEIGHT_SHARING_ANSWER)}.</p>' if snapshot.shares_weights else ""
    return f"<p>Trial {best.number}: <code>{escape(best.key)}</code></p>{note}{drawing}"


def build_report(snapshot: StudySnapshot, space: Space, *, top: int = 20, status: str | None = None) -> str:
    """The report page of ``snapshot`` (see the module docstring) as HTML text; ``status`` (e.g.
    ``"interrupted (target 2000 trials)"``) heads its numbers when given."""
    from rlnas import __version__

    if top < 1:
        raise ConfigError(f"top must be >= 1, got {top}")
    if importlib.util.find_spec("matplotlib") is None:  # the page is made, each plot a note in its place
        warnings.warn("the report has no plots: they need matplotlib (pip install 'rlnas[plot]')", stacklevel=2)
    s = summarize(snapshot)
    cards = [("finished trials", s.finished), ("failed", s.failed), ("distinct architectures", s.distinct),
             ("answer's reward" if snapshot.shares_weights else "best reward",
              "-" if s.best_reward is None else number_text(s.best_reward)),
             ("found at query", s.queries_to_best or "-"), ("evaluation seconds", f"{s.spent_seconds:,.0f}")]
    if status is not None:
        cards.insert(0, ("status", status))
    card_html = "".join(f'<div class="card"><span class="muted">{k}</span><b>{escape(str(v))}</b></div>'
                        for k, v in cards)
    failures = failure_reasons(snapshot)
    failure_html = "" if not failures else "<h2>Failures</h2><table><tr><th>count</th><th>error</th></tr>" + "".join(
        f'<tr><td class="num">{n}</td><td><code>{escape(e)}</code></td></tr>' for e, n in failures) + "</table>"
    figures = []
    for plot in report_plots(snapshot, space):
        if plot.svg is None:
            figures.append(f'<figure class="missing{" wide" if plot.wide else ""}">'
                           f'<figcaption>{escape(plot.title)}</figcaption>'
                           f'<p class="note">Not drawn: {escape(plot.note)}</p></figure>')
        else:
            uri = "data:image/svg+xml;base64," + base64.b64encode(plot.svg).decode()
            figures.append(f'<figure class="plot{" wide" if plot.wide else ""}">'
                           f'<img src="{uri}" alt="{escape(plot.title)}">'
                           f"<figcaption>{escape(plot.title)}</figcaption></figure>")
    title = f"rlnas report: {snapshot.name}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{escape(title)}</h1>
<p class="muted">Written by rlnas {escape(__version__)} from the store; self-contained, works offline.</p>
<div class="cards">{card_html}</div>
{failure_html}
<h2>{"Answer (the last recorded trial)" if snapshot.shares_weights else "Best architecture"}</h2>
<div id="architecture">{_architecture(snapshot, space)}</div>
<h2>Best candidates <span class="muted">(click a column to sort)</span></h2>
<div class="scroll">{_best_table(snapshot, top, space)}</div>
<h2>Plots</h2>
<div class="plots">{''.join(figures)}</div>
<h2>Definition</h2>
{_definition(snapshot, space)}
<script>{SCRIPT}</script>
</body></html>
"""


__all__ = ["CSP", "Plot", "best_trials", "build_report", "failure_reasons", "report_plots"]
