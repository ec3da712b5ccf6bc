import json

import numpy as np
import pytest

from rlnas.errors import ConfigError, InvalidCandidate
from rlnas.spaces import Candidate, Categorical, Space, create_space, list_spaces
from rlnas.spaces.nb201 import NB201_OPS
from rlnas.testing.space_contract import check_space_contract
from rlnas.testing.toy import toy_space

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.mark.parametrize("name", list_spaces())
def test_registered_spaces_honour_the_contract(name):
    check_space_contract(create_space(name), samples=20)


def test_toy_space_honours_the_contract():
    check_space_contract(toy_space(3, 4))


def test_unknown_space_names_the_choices():
    with pytest.raises(ConfigError, match="unknown space 'nope'.*nb201"):
        create_space("nope")


def test_categorical_rejects_bad_definitions():
    from rlnas.errors import ConfigError

    with pytest.raises(ConfigError, match="no choices"):
        Categorical("a", ())
    with pytest.raises(ConfigError, match="repeated"):
        Categorical("a", ("x", "x"))
    with pytest.raises(ConfigError, match="not a str"):
        Categorical("a", (None,))
    with pytest.raises(ConfigError, match="choices must be a list or tuple of choices, got 'abc'"):
        Categorical("a", "abc")  # was split into 'a', 'b', 'c'
    with pytest.raises(ConfigError, match=r"choice nan is not a str, int, finite float or bool"):
        Categorical("a", (float("nan"), 1.0))  # NaN is not even equal to itself: no choice could be found again
    for infinite in (float("inf"), float("-inf")):  # JSON has no infinity: exported as null, never read back
        with pytest.raises(ConfigError, match=r"choice -?inf is not a str, int, finite float or bool"):
            Categorical("patience", (5.0, infinite))
    with pytest.raises(ConfigError, match="a decision needs a non-empty name"):
        Categorical(5, (1, 2))
    with pytest.raises(ConfigError, match="a space needs a non-empty name"):
        Space(None, [Categorical("a", (1, 2))])
    with pytest.raises(ConfigError, match="a decision is a Categorical, got str 'a'"):
        Space("s", "abc")  # an AttributeError from inside


def test_candidate_is_an_immutable_hashable_mapping():
    a = Candidate({"x": 1, "y": "b"})
    b = Candidate([("x", 1), ("y", "b")])
    assert a == b and hash(a) == hash(b) and a == {"x": 1, "y": "b"}
    assert len({a, b}) == 1
    with pytest.raises(TypeError):
        a["x"] = 2  # type: ignore[index]


def test_nb201_key_is_the_official_string():
    space = create_space("nb201")
    assert space.size == 5 ** 6 == 15625 and space.dim == 30
    candidate = space.from_key(BEST)
    assert space.key(candidate) == BEST
    assert candidate["edge_0_3"] == "skip_connect" and candidate["edge_2_3"] == "nor_conv_1x1"
    assert space.known()["best_cifar10"] == candidate
    every = {space.key(space.from_indices([i] * 6)) for i in range(5)}
    assert f"|{NB201_OPS[0]}~0|+|{NB201_OPS[0]}~0|{NB201_OPS[0]}~1|+|none~0|none~1|none~2|" in every


@pytest.mark.parametrize("bad, message", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", "2 node group"),
    ("nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "must start and end with '|'"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 has 1 input edge"),
    ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operation 'conv'"),
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must come from node 0"),
    ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "must look like 'op~0'"),
    ("", "1 node group"),
])
def test_nb201_rejects_malformed_strings_saying_why(bad, message):
    with pytest.raises(InvalidCandidate, match=message):
        create_space("nb201").from_key(bad)


def test_validate_names_the_problem():
    space = create_space("nb201")
    good = dict(space.from_key(BEST))
    with pytest.raises(InvalidCandidate, match="misses decision"):
        space.validate({k: v for k, v in good.items() if k != "edge_0_1"})
    with pytest.raises(InvalidCandidate, match="unknown decision"):
        space.validate(good | {"edge_9_9": "none"})
    with pytest.raises(InvalidCandidate, match="'edge_0_1': 'conv' is not one of"):
        space.validate(good | {"edge_0_1": "conv"})


def test_encode_decode_exact_values():
    space = toy_space(2, 3)
    c = space.from_indices([2, 0])
    assert space.encode(c).tolist() == [0, 0, 1, 1, 0, 0]
    assert space.decode([0.1, 0.5, 0.2, -1, -3, 4]) == space.from_indices([1, 2])
    assert space.decode([1, 1, 0, 0, 0, 0]) == space.from_indices([0, 0]), "ties go to the first choice"
    with pytest.raises(InvalidCandidate, match="NaN"):
        space.decode([np.nan, 0, 0, 0, 0, 0])


def test_fingerprint_depends_on_decisions_only():
    a = Space("a", [Categorical("x", (1, 2))])
    b = Space("b", [Categorical("x", (1, 2))])
    c = Space("a", [Categorical("x", (2, 1))])
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert Space.from_json(json.loads(json.dumps(a.to_json()))).fingerprint == a.fingerprint


def test_sampling_is_seeded_and_uniform():
    space = create_space("nb201")
    draws = [space.sample(np.random.default_rng(3)) for _ in range(2)]
    assert draws[0] == draws[1]
    rng = np.random.default_rng(0)
    counts = np.zeros(5)
    for _ in range(5000):
        counts[space.indices(space.sample(rng))[0]] += 1
    assert np.all(np.abs(counts / 5000 - 0.2) < 0.03)


def test_a_candidate_takes_the_space_s_own_choices_whatever_their_typing():
    space = Space("s", [Categorical("se", (False, True)), Categorical("k", (3, 5, 7))])
    typed_otherwise = space.candidate({"se": 0, "k": 5.0})
    assert typed_otherwise == space.from_indices([0, 1])
    assert space.key(typed_otherwise) == space.key(space.from_indices([0, 1])) == "[false,5]"
    assert type(typed_otherwise["se"]) is bool and type(typed_otherwise["k"]) is int
