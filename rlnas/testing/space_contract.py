"""Contract every space must honour; call :func:`check_space_contract` from a test."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rlnas.errors import InvalidCandidate
from rlnas.spaces.base import Space


def check_space_contract(space: Space, samples: int = 50) -> None:
    """Assert sampling, validation, encode/decode, key and JSON round trips for ``space``."""
    rng = np.random.default_rng(0)
    assert space.dim == sum(d.size for d in space.decisions)
    again = Space.from_json(json.loads(json.dumps(space.to_json())))
    assert again.fingerprint == space.fingerprint
    for _ in range(samples):
        c = space.sample(rng)
        space.validate(c)
        x = space.encode(c)
        assert x.shape == (space.dim,) and x.sum() == len(space.decisions)
        assert space.decode(x) == c
        assert space.from_key(space.key(c)) == c
        assert space.from_indices(space.indices(c)) == c
        noisy = x + rng.normal(0, 0.1, size=x.shape) * 0.5
        assert space.decode(noisy + 10 * x) == c
    with pytest.raises(InvalidCandidate):
        space.validate({})
    wrong = dict(space.sample(rng))
    wrong[space.decisions[0].name] = object.__name__ + "-not-a-choice"
    with pytest.raises(InvalidCandidate):
        space.validate(wrong)
    with pytest.raises(InvalidCandidate):
        space.decode(np.zeros(space.dim + 1))
    for _name, candidate in space.known().items():
        space.validate(candidate)
