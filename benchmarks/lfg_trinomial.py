"""Check that the fast random words' generator has the period its documentation claims.

``rlnas.optim.runtime.WordStream`` is the additive lagged-Fibonacci generator
``x[n] = x[n − r] + x[n − s] mod 2^16``. Its period is ``2^15 · (2^r − 1)`` when the trinomial
``z^r + z^s + 1`` is primitive over GF(2). ``2^r − 1`` is a Mersenne prime for r = 756839, so
there an irreducible trinomial is primitive; and a trinomial of prime degree r with no root
(``f(0) = f(1) = 1``) is irreducible exactly when ``z^(2^r) ≡ z (mod f)``. This script squares
``z`` r times modulo f, one coefficient per byte with NumPy (about five minutes for r = 756839),
and first checks the method on small trinomials whose answer is known.

    python benchmarks/lfg_trinomial.py
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from rlnas.optim.runtime import WordStream


def frobenius_fixes_z(r: int, s: int) -> bool:
    """Whether ``z^(2^r) ≡ z`` modulo ``z^r + z^s + 1`` over GF(2) (needs ``0 < s < r / 2``)."""
    if not 0 < s < r / 2:
        raise ValueError(f"need 0 < s < r/2, got r={r}, s={s}")
    poly = np.zeros(r, dtype=np.uint8)
    poly[1] = 1
    square = np.zeros(2 * r - 1, dtype=np.uint8)
    for _ in range(r):
        square[:] = 0
        square[::2] = poly  # over GF(2), (Σ a_i z^i)^2 = Σ a_i z^(2i)
        for _ in range(2):  # z^(r+j) = z^(s+j) + z^j; after one round the top is below r + s
            high = square[r:].copy()
            square[r:] = 0
            square[s:s + high.size] ^= high
            square[:high.size] ^= high
        poly = square[:r].copy()
    z = np.zeros(r, dtype=np.uint8)
    z[1] = 1
    return bool(np.array_equal(poly, z))


KNOWN = ((7, 1, True), (7, 3, True), (7, 2, False), (127, 1, True), (127, 2, False), (521, 32, True),
         (521, 31, False), (607, 105, True), (607, 104, False))
"""Small trinomials of Mersenne-prime degree: irreducible or not (from the published tables)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    for r, s, expected in KNOWN:
        assert frobenius_fixes_z(r, s) == expected, (r, s)
    print(f"method checked on {len(KNOWN)} small trinomials of known answer")
    r, s = WordStream.LONG_LAG, WordStream.SHORT_LAG
    start = time.time()
    if not frobenius_fixes_z(r, s):
        raise SystemExit(f"z^{r} + z^{s} + 1 is REDUCIBLE: the period claimed for WordStream is wrong")
    print(f"z^{r} + z^{s} + 1: irreducible, hence primitive ({time.time() - start:.0f} s); "
          f"period of the words: 2^15 * (2^{r} - 1)")


if __name__ == "__main__":
    main()
