"""Moved to :mod:`rlnas.reports.regret` (data) and :mod:`rlnas.reports.render` (drawing); kept for old imports."""
from rlnas.reports.regret import (
    Band,
    incumbent_values,
    mean_band,
    pad_last,
    regret_curve,
)
from rlnas.reports.render import plot_bands

__all__ = ["Band", "incumbent_values", "mean_band", "pad_last", "plot_bands", "regret_curve"]
