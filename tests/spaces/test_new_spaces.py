"""DARTS and mobile spaces: sizes, known candidates, keys, JSON, fingerprints, bad keys."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from rlnas.errors import InvalidCandidate
from rlnas.spaces import Space, create_space
from rlnas.spaces.blocks import format_block, parse_block
from rlnas.spaces.darts import DARTS_V1, DARTS_V2, is_derivable

NEW = ["darts", "ofa_mbv3", "proxyless", "proxyless_enlarged", "tunas_mbv3"]


@pytest.mark.parametrize("name", NEW)
def test_known_candidates_validate_and_round_trip(name: str) -> None:
    space = create_space(name)
    known = space.known()
    assert known
    for cand in known.values():
        space.validate(cand)
        assert space.from_key(space.key(cand)) == cand


@pytest.mark.parametrize("name", NEW)
def test_random_candidates_round_trip_keys_indices_encodings(name: str) -> None:
    space = create_space(name)
    rng = np.random.default_rng(0)
    keys = set()
    for _ in range(50):
        cand = space.sample(rng)
        key = space.key(cand)
        keys.add(key)
        assert space.from_key(key) == cand
        assert space.from_indices(space.indices(cand)) == cand
        assert space.decode(space.encode(cand)) == cand
    assert len(keys) == 50  # keys are injective: 50 random draws of a huge space differ


@pytest.mark.parametrize("name", NEW)
def test_json_round_trip_and_fingerprint(name: str) -> None:
    space = create_space(name)
    data = json.loads(json.dumps(space.to_json()))
    again = Space.from_json(data)
    assert again.fingerprint == space.fingerprint == create_space(name).fingerprint
    assert again.size == space.size
    others = {create_space(n).fingerprint for n in NEW if n != name}
    assert space.fingerprint not in others


@pytest.mark.parametrize("name, log10_size", [("darts", 22.77), ("proxyless", 21.33),
                                               ("proxyless_enlarged", 28.14), ("tunas_mbv3", 42.93),
                                               ("ofa_mbv3", 22.87)])
def test_space_sizes(name: str, log10_size: float) -> None:
    assert math.log10(create_space(name).size) == pytest.approx(log10_size, abs=0.01)


def test_sizes_match_published_orders_of_magnitude() -> None:
    # TuNAS: ProxylessNAS ~1e21, ProxylessNAS-Enlarged ~1e28, MobileNetV3-like ~1e43.
    assert round(math.log10(create_space("proxyless").size)) == 21
    assert round(math.log10(create_space("proxyless_enlarged").size)) == 28
    assert round(math.log10(create_space("tunas_mbv3").size)) == 43
    # Closed forms: 3 * 6^6 * 12^15 (ProxylessNAS), times 4^3 * 6 * 7^5 widths (Enlarged).
    assert create_space("proxyless").size == 3 * 6**6 * 12**15
    assert create_space("proxyless_enlarged").size == 3 * 6**6 * 12**15 * 4**3 * 6 * 7**5
    # DARTS: per cell prod_i ((i + 2) * 8)^2, two cells.
    assert create_space("darts").size == (16 * 24 * 32 * 40) ** 4
    # OFA: (9^2 + 9^3 + 9^4)^5 distinct networks (~2e19) per resolution, 25 resolutions.
    ofa = create_space("ofa_mbv3")
    assert ofa.num_architectures == 25 * (9**2 + 9**3 + 9**4) ** 5
    assert ofa.size == 25 * 3**5 * 9**20


def test_darts_known_genotypes_are_the_paper_strings() -> None:
    space = create_space("darts")
    known = space.known()
    assert space.key(known["darts_v1"]) == DARTS_V1
    assert space.key(known["darts_v2"]) == DARTS_V2
    assert is_derivable(known["darts_v1"]) and is_derivable(known["darts_v2"])
    # A node with the same input twice is a valid candidate, but not DARTS-derivable.
    cand = dict(known["darts_v2"])
    cand["normal_n0_in1"] = cand["normal_n0_in0"]
    space.validate(cand)
    assert not is_derivable(cand)


@pytest.mark.parametrize("key, fragment", [
    ("Genotype(normal=[])", "fields"),
    ("not a genotype(", "Genotype(...)"),
    (DARTS_V2.replace("('sep_conv_3x3', 0)", "('conv_9x9', 0)", 1), "unknown operation 'conv_9x9'"),
    (DARTS_V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"), "node 3 input 5"),
    (DARTS_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[4, 5]"), "normal_concat"),
    (DARTS_V2.replace("__import__", "x").replace("Genotype(", "print("), "Genotype"),
])
def test_darts_bad_keys(key: str, fragment: str) -> None:
    with pytest.raises(InvalidCandidate, match=None) as info:
        create_space("darts").from_key(key)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name, key, fragment", [
    ("proxyless", "k3|k5e3", "stage group(s)"),
    ("proxyless", "k3|k5e3.k3e3.(k3e3).(k3e3)|k7e3.k3e3.k5e3.k5e3|k7e6.k5e3.k5e3.k5e3|k5e6.k5e3.k5e3.k5e3|"
                  "k7e6.k7e6.k7e3.k7e3|(k7e6)", "cannot be skipped"),
    ("proxyless", "k3|k5e4.k3e3.(k3e3).(k3e3)|k7e3.k3e3.k5e3.k5e3|k7e6.k5e3.k5e3.k5e3|k5e6.k5e3.k5e3.k5e3|"
                  "k7e6.k7e6.k7e3.k7e3|k7e6", "4 is not one of"),
    ("proxyless", "k3|k5.k3e3.(k3e3).(k3e3)|k7e3.k3e3.k5e3.k5e3|k7e6.k5e3.k5e3.k5e3|k5e6.k5e3.k5e3.k5e3|"
                  "k7e6.k7e6.k7e3.k7e3|k7e6", "must give the expand"),
    ("ofa_mbv3", "r225|" + "|".join(["k3e3.k3e3.k3e3.k3e3"] * 5), "225 is not one of"),
    ("ofa_mbv3", "r224|" + "|".join(["k3e3.(k3e3).k3e3.k3e3"] * 5), "beyond the depth"),
    ("ofa_mbv3", "224|" + "|".join(["k3e3.k3e3.k3e3.k3e3"] * 5), "resolution"),
    ("tunas_mbv3", "c8:k3.(k3)|zzz", "stage group(s)"),
    ("proxyless_enlarged", "c33|" + "x" * 3, "stage group(s)"),
])
def test_mobile_bad_keys(name: str, key: str, fragment: str) -> None:
    with pytest.raises(InvalidCandidate) as info:
        create_space(name).from_key(key)
    assert fragment in str(info.value)


def test_ofa_depth_is_read_from_parentheses() -> None:
    space = create_space("ofa_mbv3")
    key = "r160|" + "|".join(["k3e3.k5e4.(k7e6).(k3e3)", "k3e3.k5e4.k7e6.(k3e3)", "k3e3.k5e4.k7e6.k3e6",
                              "k3e3.k5e4.(k7e6).(k3e3)", "k7e6.k7e6.k7e6.k7e6"])
    cand = space.from_key(key)
    assert [cand[f"s{i}_depth"] for i in range(1, 6)] == [2, 3, 4, 2, 4]
    arch = space.arch(cand)
    assert arch.resolution == 160
    assert sum(x.startswith("ir_") for x in arch.layers) == 15


def test_inactive_decisions_do_not_change_the_network() -> None:
    space = create_space("proxyless")
    cand = dict(space.known()["proxylessnas_mobile"])
    other = dict(cand, s1_l2_kernel=7, s1_l2_expand=6)  # s1_l2 is skipped in ProxylessNAS-Mobile
    assert space.key(cand) != space.key(other)
    assert space.arch(cand) == space.arch(other)


def test_layer_strings_round_trip_and_reject_bad_fields() -> None:
    for text in ["ir_k5_s2_e6_c40_se0.25_ahs", "ds_k3_s1_c16_are_skip", "lin_c1280_ahs_nobias", "pool"]:
        spec = parse_block(text)
        assert parse_block(format_block(spec)) == spec
    assert parse_block("ir_k5_s2_e6_c40_se0.25_ahs").se == 0.25
    for bad, fragment in [("zz_k3_c8", "unknown op"), ("ir_k4_c8", "odd"), ("ds_k3_e6_c8", "only 'ir'"),
                          ("ir_k3_s1_e6", "channel count"), ("ir_k3_c8_aq", "activation"), ("cn_kx_c8", "number")]:
        with pytest.raises(InvalidCandidate) as info:
            parse_block(bad)
        assert fragment in str(info.value)


def test_spaces_do_not_import_torch() -> None:
    code = "import sys, rlnas.spaces as s; [s.create_space(n) for n in s.list_spaces()]; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name, left_out, kept, setting", [
    ("proxyless", {"s1_l1_skip": True}, {"s1_l1_skip": False}, "s1_l1_kernel"),  # a skipped layer
    ("ofa_mbv3", {"s1_depth": 2}, {"s1_depth": 4}, "s1_l3_kernel"),              # a layer beyond the depth
])
def test_identity_ignores_the_choices_of_layers_left_out(name, left_out, kept, setting) -> None:
    space = create_space(name)
    base = {**space.from_indices([0] * len(space.decisions)).to_dict(), **left_out}
    a = space.candidate(base)
    b = space.candidate({**base, setting: space.decision(setting).choices[1]})
    assert space.key(a) != space.key(b) and space.identity(a) == space.identity(b)
    assert space.identity(space.candidate({**base, **kept})) != space.identity(a)
