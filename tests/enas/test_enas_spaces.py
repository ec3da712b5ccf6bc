"""ENAS spaces: contract, closed-form sizes, keys, structure helpers, options and bad keys."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rlnas.errors import ConfigError, InvalidCandidate
from rlnas.spaces import create_space
from rlnas.spaces.enas import (
    ENAS_MACRO_OPS,
    ENAS_MICRO_OPS,
    EnasMacroSpace,
    EnasMicroSpace,
    macro_layers,
    micro_cell,
    unused_nodes,
)
from rlnas.testing.space_contract import check_space_contract


@pytest.mark.parametrize("space", [EnasMacroSpace(), EnasMacroSpace(layers=3), EnasMacroSpace(layers=1),
                                   EnasMicroSpace(), EnasMicroSpace(nodes=2)], ids=repr)
def test_contract(space) -> None:
    check_space_contract(space, samples=30)


def test_sizes_are_the_closed_forms() -> None:
    macro = create_space("enas_macro")
    assert len(macro.decisions) == 12 + 66
    assert macro.size == 6**12 * 2**66
    assert f"{macro.size:.1e}" == "1.6e+29"  # the ENAS paper's count for 12 layers
    assert EnasMacroSpace(layers=4).size == 6**4 * 2**6
    micro = create_space("enas_micro")
    assert len(micro.decisions) == 2 * 5 * 4
    per_cell = math.prod(((i + 2) * len(ENAS_MICRO_OPS)) ** 2 for i in range(5))
    assert micro.size == per_cell**2
    assert EnasMicroSpace(nodes=1).size == (2 * 5) ** 4


def test_macro_key_and_structure() -> None:
    space = EnasMacroSpace(layers=3)
    cand = space.candidate({"l0_op": "conv_3x3", "l1_op": "sep_conv_5x5", "l1_skip0": 1,
                            "l2_op": "max_pool_3x3", "l2_skip0": 0, "l2_skip1": 1})
    assert space.key(cand) == "conv_3x3|sep_conv_5x5:1|max_pool_3x3:01"
    assert macro_layers(cand) == [("conv_3x3", []), ("sep_conv_5x5", [0]), ("max_pool_3x3", [1])]
    assert space.from_key("conv_3x3|sep_conv_5x5:1|max_pool_3x3:01") == cand
    assert [space.decisions[k].name for k in space.skip_decisions()] == ["l1_skip0", "l2_skip0", "l2_skip1"]
    assert space.decision("l0_op").choices == ENAS_MACRO_OPS


def test_micro_key_structure_and_unused_nodes() -> None:
    space = EnasMicroSpace(nodes=2)
    choices = {"normal_n0_in0": 0, "normal_n0_op0": "identity", "normal_n0_in1": 1, "normal_n0_op1": "sep_conv_3x3",
               "normal_n1_in0": 2, "normal_n1_op0": "avg_pool_3x3", "normal_n1_in1": 0, "normal_n1_op1": "identity",
               "reduce_n0_in0": 1, "reduce_n0_op0": "max_pool_3x3", "reduce_n0_in1": 1, "reduce_n0_op1": "sep_conv_5x5",
               "reduce_n1_in0": 0, "reduce_n1_op0": "identity", "reduce_n1_in1": 1, "reduce_n1_op1": "identity"}
    cand = space.candidate(choices)
    key = ("normal=0:identity,1:sep_conv_3x3/2:avg_pool_3x3,0:identity;"
           "reduce=1:max_pool_3x3,1:sep_conv_5x5/0:identity,1:identity")
    assert space.key(cand) == key and space.from_key(key) == cand
    assert micro_cell(cand, "normal") == [[(0, "identity"), (1, "sep_conv_3x3")],
                                          [(2, "avg_pool_3x3"), (0, "identity")]]
    assert unused_nodes(cand, "normal") == [3]  # node 0 (state 2) feeds node 1
    assert unused_nodes(cand, "reduce") == [2, 3]


def test_every_micro_cell_has_an_output() -> None:
    # The last node is never an input, so at least one node is always concatenated.
    space = EnasMicroSpace()
    rng = np.random.default_rng(0)
    for _ in range(200):
        cand = space.sample(rng)
        for cell in ("normal", "reduce"):
            assert 6 in unused_nodes(cand, cell)


def test_fingerprints_differ_by_option() -> None:
    default = create_space("enas_macro").fingerprint
    assert EnasMacroSpace(layers=6).fingerprint != EnasMacroSpace().fingerprint == default
    assert EnasMicroSpace(nodes=4).fingerprint != EnasMicroSpace().fingerprint


@pytest.mark.parametrize("factory, option", [(EnasMacroSpace, "layers"), (EnasMicroSpace, "nodes")])
@pytest.mark.parametrize("value", [0, -1, 2.5, True, "3"])
def test_bad_options(factory, option, value) -> None:
    with pytest.raises(ConfigError, match=f"{option} must be a positive integer"):
        factory(**{option: value})


@pytest.mark.parametrize("key, fragment", [
    ("conv_3x3|conv_3x3:1", "3 '|'-separated layers"),
    ("conv_7x7|conv_3x3:1|conv_3x3:01", "unknown op 'conv_7x7'"),
    ("conv_3x3:1|conv_3x3:1|conv_3x3:01", "layer 0: needs 0 skip bit"),
    ("conv_3x3|conv_3x3:12|conv_3x3:01", "layer 1: needs 1 skip bit"),
    ("conv_3x3|conv_3x3:1|conv_3x3:2", "layer 2: needs 2 skip bit"),
    (42, "must be a str"),
])
def test_macro_bad_keys(key, fragment) -> None:
    with pytest.raises(InvalidCandidate) as info:
        EnasMacroSpace(layers=3).from_key(key)
    assert fragment in str(info.value)


GOOD = "normal=0:identity,1:identity/0:identity,2:identity;reduce=0:identity,1:identity/0:identity,2:identity"


@pytest.mark.parametrize("key, fragment", [
    (GOOD.replace(";", "|"), "'normal=...;reduce=...'"),
    (GOOD.replace("normal=", "norm="), "expected 'normal=...'"),
    (GOOD.replace("/0:identity,2:identity;", ";"), "normal needs 2"),
    (GOOD.replace("0:identity,1:identity/", "0:identity/", 1), "must be 'in:op,in:op'"),
    (GOOD.replace("0:identity,2:identity;", "0:identity,3:identity;"), "input '3' must be an int in 0..2"),
    (GOOD.replace("1:identity/", "1:conv_3x3/", 1), "unknown op 'conv_3x3'"),
])
def test_micro_bad_keys(key, fragment) -> None:
    with pytest.raises(InvalidCandidate) as info:
        EnasMicroSpace(nodes=2).from_key(key)
    assert fragment in str(info.value)
