"""See, compare and share results: plot data as pure functions, matplotlib renderers, one HTML report.

- :mod:`rlnas.reports.snapshot`: a study read from a store at once (record, trials, diagnostics)
- :mod:`rlnas.reports.history`: reward history, agent diagnostics, accuracy against a cost
- :mod:`rlnas.reports.regret` / :mod:`rlnas.reports.compare`: regret bands and comparison rows
- :mod:`rlnas.reports.policy`: decision probabilities over the search (heat maps)
- :mod:`rlnas.reports.render`: matplotlib figures of all of the above (``rlnas[plot]``)
- :mod:`rlnas.reports.arch`: the best architecture drawn as SVG (cell graph or block diagram)
- :mod:`rlnas.reports.html`: one self-contained HTML page per study

Only :mod:`rlnas.reports.render` (and the HTML report that embeds its figures) needs matplotlib.
"""
