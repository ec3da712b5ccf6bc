"""ENAS networks: stand-alone children, supernets, weight sharing, shapes and bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rlnas.errors import ConfigError
from rlnas.models import count_parameters, create_model
from rlnas.models.enas import (
    enas_supernet,
    macro_kept_outputs,
    macro_reduction_layers,
    micro_reduction_cells,
)
from rlnas.spaces import create_space
from rlnas.spaces.enas import EnasMacroSpace, EnasMicroSpace, macro_layers

torch.set_num_threads(1)
SMALL = {"enas_macro": {"channels": 4, "stem_stride": 2}, "enas_micro": {"channels": 4, "layers": 2}}
SPACES = {"enas_macro": EnasMacroSpace(layers=6), "enas_micro": EnasMicroSpace(nodes=3)}


def supernet_and_batch(name: str) -> tuple:
    torch.manual_seed(0)
    supernet = enas_supernet(SPACES[name], in_channels=1, **SMALL[name])
    x = torch.randn(8, 1, 12, 12)
    y = torch.arange(8) % 10
    return SPACES[name], supernet, x, y


@pytest.mark.parametrize("name", SPACES)
def test_a_child_of_the_supernet_computes_what_its_stand_alone_network_computes(name: str) -> None:
    space, supernet, x, _ = supernet_and_batch(name)
    rng = np.random.default_rng(0)
    for _ in range(5):
        cand = space.sample(rng)
        alone = create_model(space, cand, in_channels=1, running_stats=False, **SMALL[name])
        alone.load_state_dict(supernet.child_state_dict(cand))  # strict: exactly the same names and shapes
        for mode in (True, False):
            supernet.train(mode)
            alone.train(mode)
            assert torch.allclose(alone(x), supernet(x, cand), atol=1e-6)
        assert count_parameters(alone) == sum(t.numel() for t in supernet.child_state_dict(cand).values())
        assert count_parameters(alone) < count_parameters(supernet)
        # The default stand-alone network (running BN statistics) agrees in training mode; it only
        # adds the running-statistics buffers.
        tracked = create_model(space, cand, in_channels=1, **SMALL[name])
        missing, unexpected = tracked.load_state_dict(supernet.child_state_dict(cand), strict=False)
        buffers = ("running_mean", "running_var", "num_batches_tracked")
        assert not unexpected and missing and all(k.rsplit(".", 1)[1] in buffers for k in missing)
        supernet.train()
        assert torch.allclose(tracked.train()(x), supernet(x, cand), atol=1e-6)
        assert torch.allclose(supernet.child(cand)(x), supernet(x, cand), atol=1e-6)


def changed_names(supernet: torch.nn.Module, before: dict[str, torch.Tensor]) -> set[str]:
    return {k for k, v in supernet.state_dict().items() if not torch.equal(v, before[k])}


@pytest.mark.parametrize("name", SPACES)
def test_training_one_child_changes_exactly_the_weights_on_its_path(name: str) -> None:
    space, supernet, x, y = supernet_and_batch(name)
    rng = np.random.default_rng(1)
    # Two children with the same op (one with weights) at the first layer / on the first edge.
    first, op = ("l0_op", "sep_conv_5x5") if name == "enas_macro" else ("normal_n0_op0", "sep_conv_3x3")
    trained, other = (space.candidate({**space.sample(rng), first: op}) for _ in range(2))
    assert trained != other
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    other_before = supernet.child_state_dict(other)
    other_before = {k: v.clone() for k, v in other_before.items()}

    optimizer = torch.optim.SGD(supernet.parameters(), lr=0.1)
    supernet.train()
    optimizer.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(supernet(x, trained), y).backward()
    optimizer.step()

    path = set(supernet.child_state_dict(trained))
    # Gradient reaches exactly the child's weights; only they move. (A weight on the path can get a
    # zero gradient, e.g. a BN scale right before another BN, so "moved" may be a little smaller.)
    assert {n for n, p in supernet.named_parameters() if p.grad is not None} == path
    changed = changed_names(supernet, before)
    assert changed <= path and len(changed) > 0.9 * len(path)
    shared_op = (f"layers.0.ops.{op}." if name == "enas_macro"
                 else f"cells.{supernet.kinds.index('normal')}.edges.0_0.{op}.")
    shared = {k for k in path if k.startswith(shared_op)}
    assert shared  # the shared op has weights (a conv or a separable conv)
    other_after = supernet.child_state_dict(other)
    moved = {k for k in other_after if not torch.equal(other_after[k], other_before[k])}
    assert shared <= moved  # the other child sees the trained op's new weights
    assert moved == set(other_after) & changed  # and only weights the two children share


def test_macro_reductions_and_kept_outputs() -> None:
    assert macro_reduction_layers(12) == [3, 7]
    assert macro_reduction_layers(6) == [1, 3]
    assert macro_reduction_layers(2) == []
    space = EnasMacroSpace(layers=6)
    cand = space.from_key("conv_3x3|conv_3x3:0|conv_3x3:01|conv_3x3:000|conv_3x3:1000|conv_3x3:00000")
    # Reductions after layers 1 and 3; layer 4 takes a skip from layer 0, so output 0 is kept at both.
    assert macro_kept_outputs(macro_layers(cand)) == {(1, 0), (1, 1), (3, 0), (3, 3)}
    net = create_model(space, cand, in_channels=1, channels=4)
    assert sorted(net.reductions["1"]) == ["0", "1"] and sorted(net.reductions["3"]) == ["0", "3"]
    assert net.classifier.in_features == 16


@pytest.mark.parametrize("name, shape", [("enas_macro", (2, 3, 32, 32)), ("enas_micro", (2, 3, 32, 32)),
                                         ("enas_macro", (2, 1, 28, 28)), ("enas_micro", (2, 1, 28, 28))])
def test_full_size_spaces_build_and_run(name: str, shape: tuple[int, ...]) -> None:
    space = create_space(name)
    cand = space.sample(np.random.default_rng(0))
    net = create_model(space, cand, in_channels=shape[1], num_classes=7, **SMALL[name])
    assert net(torch.zeros(shape)).shape == (2, 7)
    supernet = enas_supernet(space, in_channels=shape[1], num_classes=7, **SMALL[name])
    assert supernet(torch.zeros(shape), cand).shape == (2, 7)


def test_micro_reduction_cells_follow_enas() -> None:
    assert micro_reduction_cells(6) == [2, 5]
    cand = create_space("enas_micro").sample(np.random.default_rng(0))
    net = create_model(create_space("enas_micro"), cand, channels=4, layers=6)
    assert [cell.bn.num_features for cell in net.cells] == [4, 4, 8, 8, 8, 16, 16, 16]


def test_bad_input_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match="no ENAS supernet for space 'nb201'"):
        enas_supernet(create_space("nb201"))
    with pytest.raises(ConfigError, match="supernet of 'enas_micro'.*width"):
        enas_supernet(create_space("enas_micro"), width=3)
    with pytest.raises(ConfigError, match="layers comes from the space"):
        enas_supernet(create_space("enas_macro"), layers=3)
    with pytest.raises(ConfigError, match="channels must be a positive integer"):
        enas_supernet(create_space("enas_macro"), channels=0)
    supernet = enas_supernet(EnasMacroSpace(layers=3), channels=4)
    with pytest.raises(ConfigError, match="has 3 layers, the candidate 12"):
        supernet(torch.zeros(1, 3, 8, 8), create_space("enas_macro").sample(np.random.default_rng(0)))
    with pytest.raises(ConfigError, match="unknown option.s. width"):
        create_model(create_space("enas_macro"), create_space("enas_macro").sample(np.random.default_rng(0)), width=2)
