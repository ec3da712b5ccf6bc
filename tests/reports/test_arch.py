"""Architecture drawings: the graph and block data, and SVG that parses."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from rlnas.errors import ConfigError
from rlnas.reports.arch import architecture_svg, cell_graphs, mobile_blocks
from rlnas.spaces import create_space


def test_nb201_cell_graph_has_the_edges_of_the_arch_string_without_none() -> None:
    space = create_space("nb201")
    cell = space.from_key("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|")
    (graph,) = cell_graphs(space, cell)
    assert [n.label for n in graph.nodes] == ["in", "1", "2", "out"]
    assert [(e.source, e.target, e.label) for e in graph.edges] == [
        ("0", "1", "nor_conv_3x3"), ("1", "2", "skip_connect"), ("0", "3", "avg_pool_3x3"), ("2", "3", "nor_conv_1x1")]


def test_darts_cells_follow_the_genotype() -> None:
    space = create_space("darts")
    normal, reduce = cell_graphs(space, space.known()["darts_v2"])
    assert normal.title == "normal cell" and reduce.title == "reduce cell"
    ops = [(e.source, e.target, e.label) for e in normal.edges if e.label != "concat"]
    assert ops[:3] == [("c_{k-2}", "0", "sep_conv_3x3"), ("c_{k-1}", "0", "sep_conv_3x3"),
                       ("c_{k-2}", "1", "sep_conv_3x3")]
    assert ops[-1] == ("0", "3", "dil_conv_3x3") and len(ops) == 8
    assert sum(e.label == "concat" for e in normal.edges) == 4


def test_mobile_blocks_track_the_feature_map() -> None:
    space = create_space("proxyless")
    blocks = mobile_blocks(space, space.sample(np.random.default_rng(0)))
    assert blocks[0].detail == "224×224×3" and blocks[1].label == "conv 3×3 s2" and blocks[1].size == 112
    assert blocks[-1].label == "global pool" and blocks[-2].channels == 1280
    assert blocks[-2].size == 7  # five stride-2 stages: 224 / 32
    with pytest.raises(ConfigError, match="not a mobile space"):
        mobile_blocks(create_space("nb201"), create_space("nb201").known()["all_skip"])


@pytest.mark.parametrize("name", ["nb201", "darts", "ofa_mbv3", "proxyless", "proxyless_enlarged", "tunas_mbv3"])
def test_every_space_draws_as_well_formed_svg(name: str) -> None:
    space = create_space(name)
    svg = architecture_svg(space, space.sample(np.random.default_rng(1)), title="best")
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and float(root.get("height")) > 50
    assert len(root.findall(".//{http://www.w3.org/2000/svg}text")) > 4


def test_collapse_point_finds_downsampling_of_a_single_pixel() -> None:
    from rlnas.reports.arch import collapse_point

    space = create_space("proxyless")
    smallest = space.known()["smallest"]
    on_digits = mobile_blocks(space, smallest, 1, resolution=8)
    at = collapse_point(on_digits)
    assert at is not None and on_digits[at - 1].size == 1 and "s2" in on_digits[at].label
    assert collapse_point(mobile_blocks(space, smallest, 1, resolution=28)) is None  # mnist5k: 1x1 only at the end
    assert collapse_point(mobile_blocks(space, smallest)) is None  # 224x224


def test_spaces_without_a_drawing_say_which_are_drawn() -> None:
    space = create_space("enas_micro")
    with pytest.raises(ConfigError, match="rlnas draws the cells of nb201 and darts and the blocks of mobile spaces, "
                                          "not the architectures of space 'enas_micro'"):
        architecture_svg(space, space.sample(np.random.default_rng(0)))
