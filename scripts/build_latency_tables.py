"""Measure the latency tables that ship in ``rlnas/data/latency/`` (see ``LATENCY.md`` there).

For every mobile space and input-channel count, every unit configuration the space can produce
(``LatencyTable.build(max_combos=None)``: exhaustive per block position) is timed once with
``rlnas.costs.models.LATENCY_TIMING`` (one thread, thread CPU time, best of 5 after 2 warm-up
calls) at the space's own resolutions, width multiplier 0.35 and 10 classes: the deployable
networks of the ``supernet`` evaluator's default search on the shipped digit sets. Units already
timed for another channel count (all but the stem) are reused, so both tables agree.

    python scripts/build_latency_tables.py --out rlnas/data/latency
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import time
from pathlib import Path

import torch

from rlnas.costs import LatencyTable
from rlnas.costs.models import LATENCY_TIMING, shipped_table_name
from rlnas.spaces import create_space

SPACES = ("proxyless", "proxyless_enlarged", "tunas_mbv3", "ofa_mbv3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="rlnas/data/latency")
    parser.add_argument("--spaces", nargs="*", default=list(SPACES))
    parser.add_argument("--width-mult", type=float, default=0.35)
    parser.add_argument("--channels", type=int, nargs="*", default=[1, 3])
    parser.add_argument("--classes", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"# torch {torch.__version__}, {platform.machine()}, load {os.getloadavg()}, timing {LATENCY_TIMING}")
    for name in args.spaces:
        space = create_space(name)
        timed: dict[str, float] = {}
        for channels in args.channels:
            kwargs = {"width_mult": args.width_mult, "in_channels": channels, "num_classes": args.classes}
            start = time.perf_counter()
            units = LatencyTable.build(space, max_combos=None, measure=False, model_kwargs=kwargs).pending
            table = LatencyTable(space, {u.key: timed[u.key] for u in units if u.key in timed},
                                 model_kwargs=kwargs, **LATENCY_TIMING)
            measured = table.add(units)
            timed.update(table.entries)
            path = out / shipped_table_name(space, kwargs)
            path.write_bytes(gzip.compress(json.dumps(table.to_json(), sort_keys=True).encode(), mtime=0))
            print(f"{name} in={channels}: {len(table.entries)} units ({measured} timed) in "
                  f"{time.perf_counter() - start:.0f} s -> {path}")


if __name__ == "__main__":
    main()
