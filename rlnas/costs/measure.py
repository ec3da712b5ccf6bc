"""Parameters, FLOPs and measured CPU latency of a torch module."""
from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from rlnas.errors import ConfigError


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (shared tensors counted once)."""
    seen: dict[int, int] = {}
    for p in model.parameters():
        if not trainable_only or p.requires_grad:
            seen[id(p)] = p.numel()
    return sum(seen.values())


def _batched(input_shape: Sequence[int], batch_size: int | None = None) -> tuple[int, ...]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        return (batch_size or 1,) + shape
    if batch_size is not None:
        return (batch_size,) + shape[1:]
    return shape


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block and restore its train/eval flags afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in flags:
            m.training = training


@contextlib.contextmanager
def num_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(threads)`` (``None``: leave it alone)."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def count_flops(model: nn.Module, input_shape: Sequence[int], device: str | torch.device = "cpu") -> int:
    """FLOPs of one inference forward pass, counted by ``torch.utils.flop_counter.FlopCounterMode``.

    ``input_shape`` is ``(C, H, W)`` (batch 1) or ``(N, C, H, W)``. The counter follows the usual
    convention that a multiply-add is 2 FLOPs (so MACs = FLOPs / 2) and counts matrix products
    and convolutions only (no element-wise ops, pooling or normalization). ``device`` is where the
    input is made: ``"meta"`` (with a model on the meta device) counts without computing.
    """
    x = torch.zeros(_batched(input_shape), device=device)
    counter = FlopCounterMode(display=False)
    with eval_mode(model), torch.no_grad(), counter:
        model(x)
    return int(counter.get_total_flops())


CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.thread_time}
STATISTICS: dict[str, Callable[[list[float]], float]] = {"median": statistics.median, "min": min}


def measure_latency(model: nn.Module, input_shape: Sequence[int], *, warmup: int = 5, repeats: int = 20,
                    batch_size: int = 1, threads: int | None = 1, clock: str = "wall",
                    statistic: str = "median") -> float:
    """Median (or ``statistic="min"``) milliseconds of one inference forward pass on the CPU.

    ``input_shape`` is ``(C, H, W)``; the batch has ``batch_size`` images. ``threads`` sets
    ``torch.set_num_threads`` for the measurement (restored afterwards; ``None`` keeps it).
    ``clock="wall"`` times wall-clock; ``clock="cpu"`` (only with ``threads=1``) times the CPU
    time of the calling thread, which ignores the time other processes hold the core: use it on
    a shared machine, where wall-clock times of long calls are inflated by preemption. There,
    the minimum over the repeats is also a steadier estimate than the median.
    """
    for name, value, least in (("batch_size", batch_size, 1), ("threads", threads, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise ConfigError(f"measure_latency: {name} must be an integer >= {least}, got {value!r}")
    if clock == "cpu" and threads != 1:
        raise ConfigError("clock='cpu' measures one thread: use it with threads=1")
    x = torch.randn(_batched(input_shape, batch_size))
    with eval_mode(model), torch.inference_mode(), num_threads(threads):
        return time_call(lambda: model(x), warmup=warmup, repeats=repeats, clock=clock, statistic=statistic)


def time_call(fn: Callable[[], object], *, warmup: int = 5, repeats: int = 20, clock: str = "wall",
              statistic: str = "median") -> float:
    """Milliseconds of ``fn()``: the ``statistic`` (median or min) over ``repeats`` calls timed with
    ``clock`` (``wall`` or ``cpu``) after ``warmup`` untimed calls."""
    for name, value, least in (("repeats", repeats, 1), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(f"timing needs {name} to be an integer >= {least}, got {value!r}")
    if clock not in CLOCKS:
        raise ConfigError(f"unknown clock {clock!r} (choices: {', '.join(CLOCKS)})")
    if statistic not in STATISTICS:
        raise ConfigError(f"unknown statistic {statistic!r} (choices: {', '.join(STATISTICS)})")
    now = CLOCKS[clock]
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = now()
        fn()
        times.append((now() - start) * 1e3)
    return float(STATISTICS[statistic](times))
