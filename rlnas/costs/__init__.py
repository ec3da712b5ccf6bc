"""Cost models: parameter and FLOP counts, measured latency, and a per-layer latency lookup table."""
from __future__ import annotations

from rlnas.costs.measure import count_flops, count_params, measure_latency
from rlnas.costs.table import LatencyTable, Unit, model_units

__all__ = ["count_params", "count_flops", "measure_latency", "LatencyTable", "Unit", "model_units"]
