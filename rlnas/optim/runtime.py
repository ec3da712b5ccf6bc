"""Runtime of compiled update rules: a ``torch.optim.Optimizer`` base class and element-wise helpers.

This module imports only the standard library and torch: :func:`rlnas.optim.write_optimizer_module`
copies its source into the modules it writes, so a found optimizer runs without rlnas.

A compiled rule is a function ``update(w, g, s, h, rng, ws)`` over one *bucket* of parameters
(same step count, device and dtype): ``w`` the weights, ``g`` their gradients and ``s`` the
running averages (lists of tensors), ``h`` the scalars of this step, ``rng`` the rule's random
draws (:class:`Draws`; ``None`` for a rule without random operands), ``ws(k)`` the ``k``-th
scratch list (shaped like ``w``, kept from step to step so that a step allocates no memory). It
returns the update as ``(u, c)``: ``u`` a list of tensors, one float for all elements, or
``("div", a, b)`` / ``("mul", a, b)`` (the element-wise quotient / product of two lists, applied
with one ``addcdiv_`` / ``addcmul_``) or ``("div" | "mul", a, b, d, k)`` (that plus ``k·d``, ``d``
a list and ``k`` a float, applied first with one more ``add_``), and ``c`` a float factor; the
optimizer applies ``w ← w − lr·c·u``. With ``fused=True`` a rule's element-wise function (written by
:mod:`rlnas.optim.fused`) runs instead, compiled by ``torch.compile``, on each tensor of at least
``FUSED_MIN_ELEMENTS`` elements.

Per step ``t`` (from 1) the state is updated before the rule reads it, as Adam does:
``m ← β1·m + (1−β1)·g``, ``v ← β2·v + (1−β2)·g²``, ``gamma ← β3·gamma + (1−β3)·g³``; the rule
reads them bias-corrected (divided by ``1 − β^t``). A rule reading the ``adam`` or ``rmsprop``
operand updates ``m`` and ``v`` (or ``v``) itself, first thing, with the value of that operand in the
same pass (:func:`_adam_operand_`, torch's fused Adam kernel); the optimizer updates the rest.
Scalars of ``h``: ``delta`` (added to divisors and in the adam / rmsprop operands), ``beta1 beta2``,
``bc1 bc2 bc3`` (bias corrections), ``noise_std`` (std of ``eps``), ``anneal_std``
(``(1 + t)^−0.275``, i.e. variance ``1 / (1 + t)^0.55``), and the decays at ``τ = min(t, total_steps)``:
``ld = 1 − τ/T``, ``cd = (1 + cos(2π·cycles·τ/T)) / 2`` and
``rd = (1 + cos(π·((restarts·τ) mod T)/T)) / 2``, cosine annealing restarted at the start of each of
``restarts`` equal periods (NOS's restart decay, as the authors' TensorFlow ``sign_decay`` computes
it: back at 1 at ``τ = T``).
"""
from __future__ import annotations

import math
import numbers
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, overload

import torch

Tensors = list[torch.Tensor]
Update = Callable[[Tensors, Tensors, dict[str, Tensors], dict[str, float], "Draws | _Replay | None",
                   Callable[[int], Tensors]], tuple[Tensors | float | tuple[Any, ...], float]]
"""A compiled rule's multi-tensor update: ``(w, g, s, h, rng, ws) -> (update, factor)`` (see codegen)."""

HYPER_DEFAULTS: dict[str, Any] = {
    "beta1": 0.9, "beta2": 0.999, "beta3": 0.999, "delta": 1e-8, "noise_std": 0.1,
    "cycles": 0.5, "restarts": 3, "total_steps": None, "exact_random": False,
}
"""Hyperparameters of every compiled rule (per parameter group), besides ``lr``."""

SCHEDULER_KEYS = ("initial_lr", "max_lr", "min_lr", "base_lr", "swa_lr", "max_momentum", "base_momentum",
                  "param_names")
"""Keys a parameter group may carry besides ``params``, ``lr`` and the hyperparameters: what torch's
learning-rate schedulers and ``named_parameters`` put there (any other key is refused as a typo)."""

MAX_RESTARTS = 64
"""Most periods of the ``rd`` decay."""

BUCKET_CACHE_SIZE = 8
"""Buckets (sets of tensors stepped together) per parameter group whose scratch lists and draw buffers
are kept from step to step: when the tensors with gradients change from step to step (mixture of
experts, layer drop), older sets are forgotten, so the memory stays bounded."""


def decays(t: int, total_steps: int | None, cycles: float, restarts: int) -> dict[str, float]:
    """The decay scalars ``ld``, ``cd`` and ``rd`` at step ``t`` of ``total_steps`` (see the module docstring)."""
    if total_steps is None:
        return {}
    total = float(total_steps)
    tau = min(float(t), total)
    return {
        "ld": 1.0 - tau / total,
        "cd": 0.5 * (1.0 + math.cos(2.0 * math.pi * cycles * tau / total)),
        "rd": 0.5 * (1.0 + math.cos(math.pi * math.fmod(restarts * tau, total) / total)),
    }


# ----------------------------------------------------------- random draws
GAUSS_LEVELS = 65536
"""Levels of the fast Gaussian draws (one 16-bit random word per element)."""

GAUSS_CHUNK = 65536
"""Elements per table lookup of the fast Gaussian draws: their indices (int32) go through one buffer of
this size, which stays in the cache, instead of one as large as the weights."""

BULK_MIN_ELEMENTS = 4096
"""Fewest elements of a bucket for which the fast draws run (below, the fixed cost of their few calls
exceeds what they save: torch's own draws are as cheap or cheaper)."""

_tables: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}


def gaussian_table(dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> torch.Tensor:
    """The 65,536 values of the fast Gaussian draws, ascending: equiprobable quantiles of N(0, 1).

    Value ``i`` is the quantile ``Φ⁻¹((i + ½) / 65536)``, the whole table divided by its root mean
    square so that its variance is exactly 1 (a factor of 1.00001); its mean is 0 (the table is
    symmetric). The extreme values are ±4.325: the tails beyond (probability 1.5e-5) are cut off.
    Kolmogorov distance to N(0, 1): 1.0e-5, below the resolution 1/65536.
    """
    key = (dtype, torch.device(device))
    if key not in _tables:
        upper = torch.special.ndtri(0.5 + (torch.arange(GAUSS_LEVELS // 2, dtype=torch.float64) + 0.5) / GAUSS_LEVELS)
        table = torch.cat([-upper.flip(0), upper])
        _tables[key] = (table / table.square().mean().sqrt()).to(dtype=dtype, device=key[1])
    return _tables[key]


class WordStream:
    """Uniform 16-bit words on the CPU, fast: an additive lagged-Fibonacci generator.

    ``x[n] = x[n − 756839] + x[n − 215747]`` modulo 2^16 (Knuth, TAOCP vol. 2, 3.2.2). The trinomial
    ``z^756839 + z^215747 + 1`` is primitive over GF(2) (irreducible, checked by
    ``benchmarks/lfg_trinomial.py``, and 2^756839 − 1 is prime), so the period is
    ``2^15 · (2^756839 − 1)``, and no linear relation holds between words fewer than 756,839
    places apart. One in-place add makes up to 215,747 new words, so a draw costs about
    one pass over 2 bytes per element: a tenth of the time torch's CPU generator (mt19937) takes
    for the same bits. The last 756,839 words (1.5 MB) are the state; they are filled once, on
    the first draw, from ``generator`` (``None``: torch's global RNG) and saved by the optimizer's
    ``state_dict``, so a resumed run draws what an uninterrupted one would.
    """

    LONG_LAG = 756_839
    SHORT_LAG = 215_747

    def __init__(self, generator: torch.Generator | None) -> None:
        self.generator = generator
        self.ring: torch.Tensor | None = None
        self.position = 0

    def chunks(self, n: int) -> Iterator[tuple[int, torch.Tensor]]:
        """The next ``n`` words (int16, −32768 … 32767) as ``(offset, words)`` pieces in order; a
        piece is a view of the ring, valid until 756,839 more words are drawn."""
        if self.ring is None:
            ring = torch.empty(self.LONG_LAG, dtype=torch.int16)
            ring.random_(-(2 ** 15), 2 ** 15, generator=self.generator)
            ring[0] |= 1  # an odd word: without one, the low bit would stay 0 forever
            self.ring = ring
        done = 0
        while done < n:
            start = self.position
            source = (start - self.SHORT_LAG) % self.LONG_LAG
            size = min(n - done, self.SHORT_LAG, self.LONG_LAG - start, self.LONG_LAG - source)
            words = self.ring[start:start + size]
            words.add_(self.ring[source:source + size])  # int16 wraps around: addition modulo 2^16
            yield done, words
            done += size
            self.position = (start + size) % self.LONG_LAG

    def state(self) -> dict[str, Any] | None:
        """The generator's state (``None`` before the first draw)."""
        return None if self.ring is None else {"ring": self.ring.clone(), "position": self.position}

    def load(self, state: dict[str, Any] | None) -> None:
        """Restore :meth:`state`."""
        self.ring = None if state is None else state["ring"].to(dtype=torch.int16, device="cpu").clone()
        self.position = 0 if state is None else int(state["position"])


class Draws:
    """The random operands of a compiled rule over one bucket (tensors of one device and dtype).

    Fast draws (CPU, not ``exact``, at least ``BULK_MIN_ELEMENTS`` elements): one 16-bit word per
    element from ``stream`` (a :class:`WordStream`, kept by the optimizer from step to step; made
    from ``generator`` when not given):

    * ``mask(like, p)`` (and ``drop_(xs, p)``, which multiplies by it) is 1 where an element's
      word ``u`` (uniform on 0 … 65535) is at least ``round(p · 65536)``, else 0: the drop
      probability is ``p`` rounded to a multiple of 1/65536 (0.1 → 0.100006; 0.5 exactly);
    * ``gauss_(xs, std)`` sets an element to ``std · gaussian_table()[u]``: 65,536 equiprobable
      levels of N(0, 1), variance exactly 1, tails cut at ±4.325 (Kolmogorov distance to N(0, 1)
      1.0e-5).

    Exact draws (``exact``, and always off the CPU): torch's own, as before: ``mask`` compares a
    ``uniform_`` draw with ``p`` (drop probability ``p`` up to float rounding), ``gauss_`` is
    ``normal_``; off the CPU, one draw over all the tensors' elements (one kernel, not one per
    tensor). Both read ``generator`` (``None``: torch's global RNG); ``cache`` keeps the buffers of
    the draws from step to step.
    """

    def __init__(self, generator: torch.Generator | None, exact: bool, cache: dict[Any, Any],
                 stream: WordStream | None = None) -> None:
        self.generator = generator
        self.exact = exact
        self.cache = cache
        self.stream = stream if stream is not None else cache.setdefault("stream", WordStream(generator))

    def _fast(self, xs: Tensors) -> bool:
        return (not self.exact and bool(xs) and xs[0].device.type == "cpu"
                and sum(x.numel() for x in xs) >= BULK_MIN_ELEMENTS)

    def _buffer(self, name: str, xs: Tensors, dtype: torch.dtype) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """A flat buffer over all elements of ``xs`` and its pieces shaped like them (made once)."""
        key = (name, tuple(x.shape for x in xs), dtype, xs[0].device)
        if key not in self.cache:
            flat = torch.empty(sum(x.numel() for x in xs), dtype=dtype, device=xs[0].device)
            self.cache[key] = flat, [piece.view(x.shape) for piece, x in zip(flat.split([x.numel() for x in xs]), xs)]
        return self.cache[key]

    def _scaled_table(self, std: float, dtype: torch.dtype) -> torch.Tensor:
        """``std · gaussian_table()``, remade only when ``std`` changes (annealed noise: every step)."""
        key = ("table", dtype)
        if key not in self.cache or self.cache[key][0] != std:
            self.cache[key] = std, gaussian_table(dtype) * std
        return self.cache[key][1]

    def mask(self, like: Tensors, p: float, slot: int = 0) -> Tensors:
        """A list shaped like ``like`` of 0 (probability ``p``) and 1, drawn afresh; kept in buffer
        ``slot`` until the next draw for that slot."""
        flat, pieces = self._buffer(f"mask{slot}", like, like[0].dtype)
        if _one_call(like):
            flat.uniform_(generator=self.generator).ge_(p)
            return pieces
        if not self._fast(like):
            for piece in pieces:  # a uniform draw compared with p: on the CPU, half the time of bernoulli_(1 - p)
                piece.uniform_(generator=self.generator).ge_(p)
            return pieces
        threshold = round(p * GAUSS_LEVELS) - GAUSS_LEVELS // 2
        for offset, words in self.stream.chunks(flat.numel()):
            torch.ge(words, threshold, out=flat[offset:offset + words.numel()])
        return pieces

    def drop_(self, xs: Tensors, p: float) -> None:
        """Set each element to 0 with probability ``p`` (no rescaling), in place."""
        torch._foreach_mul_(xs, self.mask(xs, p))

    def for_fused(self, like: Tensors, kind: str, argument: float, slot: int) -> Tensors:
        """A draw of a fused update function (:mod:`rlnas.optim.fused`): with the fast draws, the 16-bit
        words themselves, shaped like ``like`` (as int32, −32768 … 32767: the compiled loop vectorizes
        int32, not int16), which the function compares or looks up as :meth:`mask` and :meth:`gauss_` do;
        else the exact draw, ``mask(like, argument)`` or ``gauss(like, argument)``."""
        if not self._fast(like):
            return self.mask(like, argument, slot) if kind == "mask" else self.gauss(like, argument, slot)
        flat, pieces = self._buffer(f"words{slot}", like, torch.int32)
        for offset, words in self.stream.chunks(flat.numel()):
            flat[offset:offset + words.numel()].copy_(words)
        return pieces

    def gauss(self, like: Tensors, std: float, slot: int = 0) -> Tensors:
        """A list shaped like ``like`` of Gaussian noise of standard deviation ``std``, drawn afresh; kept
        in buffer ``slot`` until the next draw for that slot."""
        flat, pieces = self._buffer(f"gauss{slot}", like, like[0].dtype)
        if _one_call(like):  # as gauss_ draws: the same numbers for the same generator state
            flat.normal_(0.0, std, generator=self.generator)
        else:
            self.gauss_(pieces, std)
        return pieces

    def gauss_(self, xs: Tensors, std: float) -> None:
        """Fill with Gaussian noise of standard deviation ``std``."""
        if _one_call(xs):
            flat, pieces = self._buffer("gauss_fill", xs, xs[0].dtype)
            flat.normal_(0.0, std, generator=self.generator)
            torch._foreach_copy_(xs, pieces)  # by index: a channels_last tensor gets its elements in order
            return
        if not self._fast(xs):
            for x in xs:  # in the order of the elements, not of memory (a channels_last tensor), as the fused step
                if x.is_contiguous():
                    x.normal_(0.0, std, generator=self.generator)
                else:
                    x.copy_(torch.empty(x.shape, dtype=x.dtype, device=x.device).normal_(0.0, std,
                                                                                        generator=self.generator))
            return
        table = self._scaled_table(std, xs[0].dtype)
        key = ("index", xs[0].device)
        if key not in self.cache:
            self.cache[key] = torch.empty(GAUSS_CHUNK, dtype=torch.int32, device=xs[0].device)
        index = self.cache[key]
        pieces = (words for _, words in self.stream.chunks(sum(x.numel() for x in xs)))
        words, used = next(pieces), 0
        for x in xs:
            flat = x.view(-1) if x.is_contiguous() else torch.empty(x.numel(), dtype=x.dtype, device=x.device)
            done = 0
            while done < flat.numel():
                if used == words.numel():
                    words, used = next(pieces), 0
                size = min(GAUSS_CHUNK, flat.numel() - done, words.numel() - used)
                chunk = index[:size]
                chunk.copy_(words[used:used + size].view(torch.uint16))  # 0 … 65535
                torch.index_select(table, 0, chunk, out=flat[done:done + size])
                done, used = done + size, used + size
            if not x.is_contiguous():
                x.copy_(flat.view(x.shape))
        leftover = next(pieces, None)  # runs the stream on to the end of this draw (its position)
        assert leftover is None


_UndoPoint = tuple[list[tuple[torch.Tensor, torch.Tensor, "dict[str, Any] | None"]], Any]
"""What :meth:`CompiledRuleOptimizer.step` takes back: (parameter, its weights, its state or ``None``) per
parameter with a gradient, and the random draws' state."""


def _one_call(xs: Tensors) -> bool:
    """Whether the exact draws for ``xs`` are made by one call over all their elements: off the CPU,
    where each call is a kernel launch (on the CPU they are drawn tensor by tensor, as they always were)."""
    return bool(xs) and xs[0].device.type != "cpu"


# ----------------------------------------------------------- element-wise helpers
INTO_MIN_MEAN_ELEMENTS = 16384
"""Mean tensor size from which :func:`_into_` writes tensor by tensor (one pass, one call per tensor)
instead of copying then applying the multi-tensor op (two passes, two calls in all)."""


def _into_(op: str, out: Tensors, first: Tensors, *args: Any, **kwargs: Any) -> None:
    """``out = op(first, *args, **kwargs)`` element-wise, for a torch function ``op`` that has an
    ``out=`` form and a ``torch._foreach_<op>_`` one; a list in ``args`` pairs up with ``first``.
    ``out`` may be one of the input lists (then it is overwritten element by element)."""
    overwrites_argument = any(a is out for a in args)
    if overwrites_argument or sum(x.numel() for x in first) >= INTO_MIN_MEAN_ELEMENTS * len(first):
        function = getattr(torch, op)
        for i, (target, x) in enumerate(zip(out, first)):
            function(x, *(a[i] if isinstance(a, list) else a for a in args), out=target, **kwargs)
        return
    if out is not first:
        torch._foreach_copy_(out, first)
    getattr(torch, f"_foreach_{op}_")(out, *args, **kwargs)


def _fill_(xs: Tensors, value: float) -> None:
    """Fill with ``value``."""
    for x in xs:
        x.fill_(value)


def _rpow_(xs: Tensors, base: float, exponents: Tensors) -> None:
    """``xs = base ** exponents``."""
    for x, e in zip(xs, exponents):
        torch.pow(base, e, out=x)


def _average_(name: str, average: Tensors, g: Tensors, beta: float) -> None:
    """One step of the running average ``name`` (``m`` of g, ``v`` of g², ``gamma`` of g³), in place."""
    if name == "m":
        torch._foreach_lerp_(average, g, 1.0 - beta)
        return
    torch._foreach_mul_(average, beta)
    if name == "v":
        torch._foreach_addcmul_(average, g, g, value=1.0 - beta)
    else:
        torch._foreach_add_(average, torch._foreach_pow(g, 3), alpha=1.0 - beta)


ADAM_KERNEL_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_adam_kernel_on_cpu = True
"""Whether this torch runs ``_fused_adam_`` on the CPU (from torch 2.4); set False at its first refusal."""


def _adam_operand_(out: Tensors, kind: str, g: Tensors, s: dict[str, Tensors], h: dict[str, float],
                   dummy: Tensors) -> None:
    """``out`` = this step's ``adam`` (``m̂ / (sqrt(v̂) + δ)``) or ``rmsprop`` (``g / (sqrt(v̂) + δ)``) operand,
    with the running averages it reads (``m`` and ``v``, or ``v``) updated first, in place.

    On the CPU this is one pass of torch's fused Adam kernel (``torch._fused_adam_``, what
    ``torch.optim.Adam(fused=True)`` runs) over ``out`` from zero at learning rate −1: four passes
    fewer than the multi-tensor code, and its square root is the processor's (torch's ``sqrt`` goes
    through MKL, several times slower than a division on AMD processors). ``rmsprop`` runs it with
    β1 = 0 on ``dummy`` (scratch, zeroed), whose running average is then ``g`` itself. Off the CPU,
    where the state is laid out unlike the weights, or where torch has no such kernel on the CPU,
    the multi-tensor code computes the same (``ADAM_KERNEL_DTYPES`` are the kernel's)."""
    global _adam_kernel_on_cpu
    m = s["m"] if kind == "adam" else dummy
    # the kernel walks memory: the state must be laid out as the weights (a state loaded from a checkpoint of
    # another memory format is not), a gradient laid out otherwise is copied like them
    if (_adam_kernel_on_cpu and out[0].device.type == "cpu" and out[0].dtype in ADAM_KERNEL_DTYPES
            and all(x.stride() == y.stride() == o.stride() for o, x, y in zip(out, m, s["v"]))):
        g = [x if x.stride() == o.stride() else torch.empty_like(o).copy_(x) for x, o in zip(g, out)]
        torch._foreach_zero_(out)
        if kind != "adam":
            torch._foreach_zero_(dummy)
        step = [torch.tensor(h["t"], dtype=torch.float32)] * len(out)
        try:
            torch._fused_adam_(out, g, m, s["v"], [], step, lr=-1.0, beta1=h["beta1"] if kind == "adam" else 0.0,
                               beta2=h["beta2"], weight_decay=0.0, eps=h["delta"], amsgrad=False, maximize=False)
            return
        except NotImplementedError:  # torch before 2.4 has the kernel for CUDA only: nothing was computed
            _adam_kernel_on_cpu = False
    if kind == "adam":
        _average_("m", s["m"], g, h["beta1"])
    _average_("v", s["v"], g, h["beta2"])
    _into_("sqrt", out, s["v"])
    torch._foreach_add_(out, h["delta"] * h["bc2"] ** 0.5)
    _into_("div", out, s["m"] if kind == "adam" else g, out)
    torch._foreach_mul_(out, h["bc2"] ** 0.5 / (h["bc1"] if kind == "adam" else 1.0))


def _s1(fn: Callable[[torch.Tensor], torch.Tensor], a: float) -> float:
    """A unary torch function on a float (float64; nan/inf as torch gives them)."""
    return float(fn(torch.tensor(a, dtype=torch.float64)))


def _s2(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], a: float, b: float) -> float:
    """A binary torch function on floats (float64; nan/inf as torch gives them)."""
    return float(fn(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)))


# ------------------------------------------------------------------ optimizer
FUSED_SCALARS = ("beta1", "beta2", "beta3", "one_minus_beta1", "one_minus_beta2", "one_minus_beta3",
                 "inv_bc1", "inv_bc2", "inv_bc3", "delta", "ld", "cd", "rd", "lr", "noise_std", "anneal_std")
"""The scalars a fused update function reads from its ``h`` (float64), in order (see
:mod:`rlnas.optim.fused`); ``1 − β`` comes computed, as in the multi-tensor code, and so does ``1 / bc``
(the bias correction ``1 − βᵗ``)."""

FUSED_MIN_ELEMENTS = 16384
"""Fewest elements of a tensor that ``fused=True`` updates with the compiled loop: a call of it costs
tens of microseconds (guards, wrappers), so smaller tensors take the multi-tensor code together."""

_compiled_functions: dict[Callable[..., None], Callable[..., None]] = {}


def _compiled(function: Callable[..., None]) -> Callable[..., None]:
    """``torch.compile`` of a fused update function, made once per function (sizes are dynamic)."""
    if function not in _compiled_functions:
        _compiled_functions[function] = torch.compile(function, dynamic=True, fullgraph=True)
    return _compiled_functions[function]


class CompiledRuleOptimizer(torch.optim.Optimizer):
    """Base of optimizers running a compiled rule (``update``), with per-parameter state.

    Subclasses set ``update`` (the compiled function, as a ``staticmethod``), ``rule_text`` (the rule's
    written form), ``state_names`` (running averages the rule reads, of ``m v gamma``),
    ``uses_random`` and ``uses_decay``, and for ``fused=True`` ``fused_update`` (the element-wise
    function, a ``staticmethod``) and ``draw_plan`` (its draws). ``seed`` gives the rule's random operands (``eps``,
    ``noise``, ``drop``) their own generator, saved in ``state_dict``; ``None`` uses torch's
    global RNG, like ``nn.Dropout``. The fast draws of :class:`Draws` come from one
    :class:`WordStream`, seeded from that generator on the first draw and saved in ``state_dict``.
    The hyperparameter ``exact_random`` (default False) draws them with torch's ``uniform_`` /
    ``normal_`` instead.
    """

    update: Update
    fused_update: Callable[..., None] | None = None
    draw_plan: tuple[tuple[str, str], ...] = ()
    rule_text: str = ""
    state_names: tuple[str, ...] = ()
    uses_random: bool = False
    uses_decay: bool = False
    updated_by_rule: tuple[str, ...] = ()
    """Running averages the update function updates itself (through :func:`_adam_operand_`)."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, *, seed: int | None = None, fused: bool = False,
                 **hyper: Any):
        if not isinstance(fused, bool):
            raise ValueError(f"fused must be True or False, got {fused!r}")
        if fused and self.fused_update is None:
            raise ValueError("fused=True needs the rule's element-wise function (fused_update)")
        self.fused = fused
        unknown = sorted(set(hyper) - set(HYPER_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown hyperparameter(s) {unknown} (known: lr, seed, {', '.join(HYPER_DEFAULTS)})")
        defaults = dict(HYPER_DEFAULTS, lr=lr, **hyper)
        # a decay rule's total_steps may come with each group instead: add_param_group checks every group
        _check_hyper(defaults, self.rule_text, uses_decay=False)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                                 or not 0 <= seed < 2 ** 63):
            raise ValueError(f"seed must be None or an integer in [0, 2**63), got {seed!r}")
        super().__init__(params, defaults)
        self.seed = None if seed is None else int(seed)
        self._generators: dict[torch.device, torch.Generator] = {}
        self._stream: WordStream | None = None
        self._fused_ran = False  # a fused step has run (compiled) in this optimizer
        self._reset_buffers()

    def _reset_buffers(self) -> None:
        """Empty the scratch and draw buffers (kept from step to step; not part of the state)."""
        self._param_scratch: dict[int, list[torch.Tensor]] = {}  # per tensor: its temporaries
        self._scratch: OrderedDict[tuple[int, ...], list[Tensors]] = OrderedDict()  # per bucket: the lists
        self._draw_buffers: OrderedDict[tuple[int, ...], dict[Any, Any]] = OrderedDict()
        self._real_views: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __getstate__(self) -> dict[str, Any]:
        """What ``copy.deepcopy`` and pickling keep: torch's optimizer state, the seed, ``fused`` and the
        random generators' states (a copy draws what the original would draw next)."""
        state = super().__getstate__()
        state.update(seed=self.seed, fused=self.fused, _fused_ran=self._fused_ran,
                     generators={str(d): g.get_state() for d, g in self._generators.items()},
                     word_stream=None if self._stream is None else self._stream.state())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        unpickled = "defaults" in state  # torch's load_state_dict passes only state and param_groups
        torch_adds = "differentiable" not in (state["defaults"] if unpickled else self.defaults)
        state = dict(state)
        generators, word_stream = state.pop("generators", {}), state.pop("word_stream", None)
        super().__setstate__(state)
        if torch_adds:  # a hyperparameter of torch's own optimizers, not of the rules
            self.defaults.pop("differentiable", None)
        if unpickled:
            self._restore_generators(generators, word_stream)
            self._reset_buffers()

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group, checked before anything is added (a refused group leaves the optimizer as it was)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"a parameter group must be a dict, got {type(param_group).__name__}")
        unknown = sorted(set(param_group) - {"params", "lr", *HYPER_DEFAULTS, *SCHEDULER_KEYS})
        if unknown:
            raise ValueError(f"unknown hyperparameter(s) {unknown} in a parameter group "
                             f"(known: lr, {', '.join(HYPER_DEFAULTS)})")
        _check_hyper({**self.defaults, **param_group}, self.rule_text, self.uses_decay)
        super().add_param_group(param_group)
        if getattr(self, "_fused_ran", False):  # its tensors compile on the next step, which can be taken back again
            self._fused_ran = False

    def _generator(self, device: torch.device) -> torch.Generator | None:
        if not self.uses_random or self.seed is None:
            return None
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device).manual_seed(int(self.seed))
        return self._generators[device]

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], float]) -> float: ...

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if any(p.grad is not None and p.grad.is_sparse for group in self.param_groups for p in group["params"]):
            raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
        if not self.fused or self._fused_ran or not self._compiles():
            self._step_all()
            return loss
        # the first fused step (after a group is added too) compiles, bucket after bucket: where one fails, the
        # whole step is taken back
        before = self._undo_point()
        try:
            self._step_all()
        except RuntimeError:
            self._undo(before)
            raise
        return loss

    def _compiles(self) -> bool:
        """Whether this step runs the compiled loop (a tensor with a gradient of at least ``FUSED_MIN_ELEMENTS``
        elements, counting a complex one's real and imaginary parts): only then may it compile, and fail."""
        return any(p.grad is not None and p.numel() * (2 if p.is_complex() else 1) >= FUSED_MIN_ELEMENTS
                   for group in self.param_groups for p in group["params"])

    def _undo_point(self) -> _UndoPoint:
        """Copies of what a step changes: the weights with a gradient, their state, the random draws' state."""
        saved = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    state = ({k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in self.state[p].items()}
                             if p in self.state else None)
                    saved.append((p, p.detach().clone(memory_format=torch.preserve_format), state))
        return saved, self._random_state()

    def _undo(self, before: _UndoPoint) -> None:
        saved, random_state = before
        for p, weights, state in saved:
            p.copy_(weights)
            if state is None:
                self.state.pop(p, None)
            else:
                self.state[p] = state
        self._restore_random_state(random_state)
        self._fused_ran = False

    def _step_all(self) -> None:
        for group in self.param_groups:
            buckets: dict[tuple[int, torch.device, torch.dtype],
                          tuple[Tensors, Tensors, Tensors, dict[str, Tensors]]] = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    for name in self.state_names:
                        state[name] = torch.zeros_like(p, memory_format=torch.preserve_format)
                # a complex tensor is updated as its real and imaginary parts, as torch's optimizers do
                real = torch.view_as_real if p.is_complex() else _same
                weights = self._real_view(p) if p.is_complex() else p
                stepped, w, g, s = buckets.setdefault((state["step"] + 1, p.device, weights.dtype),
                                                      ([], [], [], {n: [] for n in self.state_names}))
                stepped.append(p)
                w.append(weights)
                g.append(real(p.grad))
                for name in self.state_names:
                    s[name].append(real(state[name]))
            for (t, device, _), (stepped, w, g, s) in buckets.items():
                self._step_bucket(group, t, w, g, s, self._generator(device))
                for p in stepped:
                    self.state[p]["step"] = t

    def _step_bucket(self, group: dict[str, Any], t: int, w: Tensors, g: Tensors, s: dict[str, Tensors],
                     gen: torch.Generator | None) -> None:
        h = {
            "t": float(t), "delta": group["delta"], "noise_std": group["noise_std"],
            "beta1": group["beta1"], "beta2": group["beta2"],
            "anneal_std": (1.0 + t) ** -0.275,
            "bc1": 1.0 - group["beta1"] ** t, "bc2": 1.0 - group["beta2"] ** t, "bc3": 1.0 - group["beta3"] ** t,
            **decays(t, group["total_steps"], group["cycles"], group["restarts"]),
        }
        large = [i for i, x in enumerate(w) if x.numel() >= FUSED_MIN_ELEMENTS] if self.fused else []
        rng: Draws | _Replay | None
        if large:  # large tensors one by one through the compiled loop, small ones together as below
            # the draws of the whole bucket, as the multi-tensor code makes them: the same seed, the same numbers
            draws = self._fused_draws(group, h, w, gen)
            self._fused_step(group, h, *_pick(large, w, g, s), [[d[i] for i in large] for d in draws])
            self._fused_ran = True
            small = [i for i, x in enumerate(w) if x.numel() < FUSED_MIN_ELEMENTS]
            if not small:
                return
            w, g, s = _pick(small, w, g, s)
            rng = _Replay([[d[i] for i in small] for d in draws])
        else:
            rng = self._draws(group, w, gen)
        for name, beta in (("m", group["beta1"]), ("v", group["beta2"]), ("gamma", group["beta3"])):
            if name in s and name not in self.updated_by_rule:
                _average_(name, s[name], g, beta)
        update, factor = self.update(w, g, s, h, rng, self._workspace(w))
        if isinstance(update, float):
            torch._foreach_add_(w, -group["lr"] * update * factor)
        elif isinstance(update, tuple) and isinstance(update[0], str):  # ("div" | "mul", a, b[, c, k])
            if len(update) == 5:  # first: the list may be the weights themselves
                torch._foreach_add_(w, update[3], alpha=-group["lr"] * factor * update[4])
            apply = torch._foreach_addcdiv_ if update[0] == "div" else torch._foreach_addcmul_
            apply(w, update[1], update[2], value=-group["lr"] * factor)
        else:
            torch._foreach_add_(w, update, alpha=-group["lr"] * factor)

    def _random_state(self) -> tuple[Any, ...]:
        """What the random operands have drawn so far: the word stream, the rule's generators and torch's
        global CPU generator (drawn from when ``seed`` is None)."""
        stream = None if self._stream is None else self._stream.state()
        return stream, {d: g.get_state() for d, g in self._generators.items()}, torch.get_rng_state()

    def _restore_random_state(self, saved: tuple[Any, ...]) -> None:
        stream, generators, global_state = saved
        if stream is None:
            self._stream = None
        else:
            assert self._stream is not None
            self._stream.load(stream)
        for device in [d for d in self._generators if d not in generators]:
            del self._generators[device]  # made since: made again, from the seed, when next needed
        for device, state in generators.items():
            self._generators[device].set_state(state)
        torch.set_rng_state(global_state)

    def _draws(self, group: dict[str, Any], w: Tensors, gen: torch.Generator | None) -> Draws | None:
        """The random draws of a bucket (``None`` for a rule without random operands)."""
        if not self.uses_random:
            return None
        if self._stream is None:
            self._stream = WordStream(self._generator(torch.device("cpu")))
        cached = _recent(self._draw_buffers, w, dict, BUCKET_CACHE_SIZE * len(self.param_groups))
        return Draws(gen, bool(group.get("exact_random", False)), cached, self._stream)

    def _fused_draws(self, group: dict[str, Any], h: dict[str, float], w: Tensors,
                     gen: torch.Generator | None) -> list[Tensors]:
        """The draws of ``draw_plan`` for every tensor of a bucket, in order (see ``Draws.for_fused``)."""
        rng = self._draws(group, w, gen)
        draws: list[Tensors] = []
        for slot, (kind, argument) in enumerate(self.draw_plan):
            assert rng is not None
            draws.append(rng.for_fused(w, kind, float(argument) if kind == "mask" else h[argument], slot))
        return draws

    def _fused_step(self, group: dict[str, Any], h: dict[str, float], w: Tensors, g: Tensors,
                    s: dict[str, Tensors], draws: list[Tensors]) -> None:
        """The step of ``fused=True`` for large tensors: the compiled element-wise function tensor by
        tensor (the running averages are updated there), given the draws of ``draw_plan`` for them."""
        scalars = {"lr": group["lr"], **h}
        for k in (1, 2, 3):
            scalars[f"beta{k}"] = group[f"beta{k}"]
            scalars[f"one_minus_beta{k}"] = 1.0 - group[f"beta{k}"]
            scalars[f"inv_bc{k}"] = 1.0 / h[f"bc{k}"]
        # float64, as the multi-tensor code's floats: what only scalars compute is computed in float64 too
        vector = torch.tensor([scalars.get(name, 0.0) for name in FUSED_SCALARS], dtype=torch.float64,
                              device=w[0].device)
        assert self.fused_update is not None  # checked by __init__
        function = _compiled(self.fused_update)
        table = gaussian_table(w[0].dtype, w[0].device)
        torch._dynamo.mark_static(table)  # its size a constant of the compiled loop
        for i, weights in enumerate(w):
            tensors = [weights, g[i], *(s[name][i] for name in self.state_names), *(d[i] for d in draws)]
            if all(x.is_contiguous() for x in tensors):  # one compiled loop for every shape
                tensors = [x.view(-1) for x in tensors]
            weights, grad, *rest = tensors
            try:
                function(weights, grad, tuple(rest[:len(self.state_names)]), tuple(rest[len(self.state_names):]),
                         vector, table)
            except torch._dynamo.exc.TorchDynamoException as err:  # no C++ compiler, no triton, ...
                reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise RuntimeError(f"fused=True: torch.compile could not compile the step of rule {self.rule_text!r} "
                                   f"({reason}); use fused=False") from None

    def _real_view(self, p: torch.Tensor) -> torch.Tensor:
        """``view_as_real(p)``, the same tensor from step to step (the scratch and draw buffers are
        keyed by the weights' identities)."""
        cached = self._real_views.get(id(p))
        if cached is None or cached[0] is not p or cached[1].data_ptr() != p.data_ptr():
            cached = self._real_views[id(p)] = (p, torch.view_as_real(p))
        return cached[1]

    def _workspace(self, w: Tensors) -> Callable[[int], Tensors]:
        """``ws(k)``: the bucket's ``k``-th scratch list, made on first use (not part of the state). The
        temporaries belong to the tensors (one per tensor and ``k``), the lists to the bucket."""
        lists = _recent(self._scratch, w, list, BUCKET_CACHE_SIZE * len(self.param_groups))

        def ws(k: int) -> Tensors:
            while len(lists) <= k:
                lists.append([self._temporary(p, len(lists)) for p in w])
            return lists[k]

        return ws

    def _temporary(self, p: torch.Tensor, k: int) -> torch.Tensor:
        """The ``k``-th temporary of tensor ``p`` (made like ``p`` on first use)."""
        temporaries = self._param_scratch.setdefault(id(p), [])
        if temporaries and (temporaries[0].shape != p.shape or temporaries[0].dtype != p.dtype
                            or temporaries[0].device != p.device):
            temporaries.clear()  # the id of a tensor gone, now another's
        while len(temporaries) <= k:
            temporaries.append(torch.empty_like(p, memory_format=torch.preserve_format))
        return temporaries[k]

    def state_dict(self) -> dict[str, Any]:
        """Torch's optimizer state plus the rule and the random generators' states."""
        state = super().state_dict()
        state["rule"] = self.rule_text
        state["generators"] = {str(d): g.get_state() for d, g in self._generators.items()}
        if self._stream is not None and self._stream.ring is not None:
            state["word_stream"] = self._stream.state()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (the rule must be the same)."""
        state_dict = dict(state_dict)
        if "rule" not in state_dict:
            raise ValueError("not the state of a rule optimizer: it has no 'rule' entry (the state_dict of "
                             "another optimizer?)")
        rule_text = state_dict.pop("rule")
        if rule_text != self.rule_text:
            raise ValueError(f"state of rule {rule_text!r} cannot be loaded into an optimizer of rule "
                             f"{self.rule_text!r}")
        self._check_loaded(state_dict)
        generators = state_dict.pop("generators", {})
        word_stream = state_dict.pop("word_stream", None)
        super().load_state_dict(state_dict)
        for entry in self.state.values():
            if "step" in entry:
                entry["step"] = int(entry["step"])  # a NumPy integer would not load from a torch.save(weights_only)
        self._restore_generators(generators, word_stream)

    def _restore_generators(self, generators: dict[str, torch.Tensor], word_stream: dict[str, Any] | None) -> None:
        """The rule's random generators and word stream from their saved states (by device name)."""
        self._generators = {}
        for device, rng_state in generators.items():
            gen = torch.Generator(device=torch.device(device))
            gen.set_state(rng_state)
            self._generators[torch.device(device)] = gen
        self._stream = None
        if word_stream is not None:
            self._stream = WordStream(self._generator(torch.device("cpu")))
            self._stream.load(word_stream)

    def _check_loaded(self, state_dict: dict[str, Any]) -> None:
        """Refuse, before anything is loaded, a state whose groups lack hyperparameters, or hold bad ones, or whose
        per-parameter entries lack a running average or do not have their parameter's shape (torch
        pairs the saved parameters with this optimizer's in order, and checks only the counts)."""
        groups = state_dict.get("param_groups", [])
        for k, group in enumerate(groups):
            missing = [n for n in ("lr", *HYPER_DEFAULTS) if n not in group]
            if missing:
                raise ValueError(f"the saved parameter group {k} lacks the hyperparameter(s) {missing}")
            try:  # as where they are given: a bad value would fail the next step, or quietly misbehave
                _check_hyper(group, self.rule_text, self.uses_decay)
            except ValueError as exc:
                raise ValueError(f"the saved parameter group {k}: {exc}") from None
        ours = [p for group in self.param_groups for p in group["params"]]
        saved = [i for group in groups for i in group.get("params", [])]
        if len(groups) != len(self.param_groups) or len(saved) != len(ours):
            return  # torch's own check says so
        for p, i in zip(ours, saved):
            entry = state_dict.get("state", {}).get(i)
            if not entry:
                continue
            missing = [n for n in ("step", *self.state_names) if n not in entry]
            if missing:
                raise ValueError(f"the saved state of parameter {i} lacks {missing}")
            step = entry["step"]
            if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
                raise ValueError(f"the saved step of parameter {i} must be an integer >= 0, got {step!r:.60}")
            for name in self.state_names:
                if tuple(entry[name].shape) != tuple(p.shape):
                    raise ValueError(f"the saved {name!r} of parameter {i} has shape {tuple(entry[name].shape)}, "
                                     f"the parameter {tuple(p.shape)}")


class _Replay:
    """The draws of a bucket's small tensors under ``fused=True``, for the multi-tensor code: taken, in
    order, from the draws made once for the whole bucket (``Draws.for_fused``: 16-bit words or exact
    values), so that each tensor gets the numbers the multi-tensor code alone would have drawn for it."""

    def __init__(self, draws: list[Tensors]) -> None:
        self.queue = list(draws)

    def mask(self, like: Tensors, p: float, slot: int = 0) -> Tensors:
        """The next draw as masks of 0 and 1 (``Draws.mask``)."""
        return [piece if piece.dtype != torch.int32 else _mask(piece, p).to(x.dtype)
                for piece, x in zip(self.queue.pop(0), like)]

    def drop_(self, xs: Tensors, p: float) -> None:
        """``Draws.drop_`` with the next draw."""
        torch._foreach_mul_(xs, self.mask(xs, p))

    def gauss_(self, xs: Tensors, std: float) -> None:
        """``Draws.gauss_`` with the next draw: the table at the words, or the exact draw itself."""
        for piece, x in zip(self.queue.pop(0), xs):
            if piece.dtype == torch.int32:
                piece = gaussian_table(x.dtype, x.device)[piece.long() & (GAUSS_LEVELS - 1)] * std
            x.copy_(piece)


def _same(x: torch.Tensor) -> torch.Tensor:
    return x


def _recent(cache: OrderedDict[tuple[int, ...], Any], w: Tensors, make: Callable[[], Any], size: int) -> Any:
    """The entry of bucket ``w`` (its tensors' identities) in ``cache``, made on first use; the cache
    keeps the ``size`` buckets used last."""
    key = tuple(id(p) for p in w)
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    cache[key] = entry = make()
    while len(cache) > size:
        cache.popitem(last=False)
    return entry


def _mask(draw: torch.Tensor, p: float) -> torch.Tensor:
    """In a fused update function: the keep-mask (bool) of 16-bit words, as ``Draws.mask`` makes it, or
    an exact draw's mask itself."""
    if draw.dtype == torch.int32:
        return draw >= round(p * GAUSS_LEVELS) - GAUSS_LEVELS // 2
    return draw


def _gauss(draw: torch.Tensor, std: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """In a fused update function: the Gaussian of 16-bit words, as ``Draws.gauss_`` makes it (the
    table's value at the word read as unsigned), or an exact draw itself (already scaled)."""
    if draw.dtype == torch.int32:
        # unsafe: no bounds check per element (the indices are within the table by construction)
        return torch.ops.aten._unsafe_index(table, [draw & (GAUSS_LEVELS - 1)]) * std
    return draw


def _pick(indices: list[int], w: Tensors, g: Tensors,
          s: dict[str, Tensors]) -> tuple[Tensors, Tensors, dict[str, Tensors]]:
    """The weights, gradients and running averages of the tensors at ``indices`` of a bucket."""
    return [w[i] for i in indices], [g[i] for i in indices], {n: [x[i] for i in indices] for n, x in s.items()}


def _number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _check_hyper(group: dict[str, Any], rule_text: str, uses_decay: bool) -> None:
    """Refuse a parameter group's bad hyperparameter (``ValueError``, one line)."""
    number = _number
    if not number(group["lr"]) or group["lr"] < 0:
        raise ValueError(f"lr must be a finite number >= 0, got {group['lr']!r:.60}")
    for name in ("beta1", "beta2", "beta3"):
        if not number(group[name]) or not 0.0 <= group[name] < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {group[name]!r:.60}")
    for name in ("delta", "noise_std"):
        if not number(group[name]) or group[name] < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {group[name]!r:.60}")
    if not isinstance(group["exact_random"], bool):
        raise ValueError(f"exact_random must be True or False, got {group['exact_random']!r:.60}")
    if not number(group["cycles"]) or not group["cycles"] > 0:
        raise ValueError(f"cycles must be a finite number > 0, got {group['cycles']!r:.60}")
    restarts = group["restarts"]
    if isinstance(restarts, bool) or not isinstance(restarts, int) or not 1 <= restarts <= MAX_RESTARTS:
        raise ValueError(f"restarts must be an integer in [1, {MAX_RESTARTS}], got {restarts!r:.60}")
    total = group["total_steps"]
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 1):
        raise ValueError(f"total_steps must be a positive integer or None, got {total!r:.60}")
    if uses_decay and total is None:
        raise ValueError(f"rule {rule_text!r} uses a decay operand (ld, cd or rd): give total_steps")
