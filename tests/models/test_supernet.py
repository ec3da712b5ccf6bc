"""Mobile supernets: a path with inherited weights is exactly the stand-alone network; masks, warm-up, remat."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rlnas.errors import ConfigError
from rlnas.models import create_model, create_supernet
from rlnas.models.supernet import LayerPath, StagePath, decision_role
from rlnas.models.supernet_layers import recalibrate_batchnorm
from rlnas.spaces import create_space

torch.set_num_threads(1)
MOBILE = ("proxyless", "proxyless_enlarged", "tunas_mbv3", "ofa_mbv3")
SMALL = {"num_classes": 10, "in_channels": 1, "width_mult": 0.35, "stem_stride": 1, "input_size": 20}


def candidates(space, n: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)] + [space.extreme(True), space.extreme(False)]


@pytest.mark.parametrize("name", MOBILE)
def test_a_path_with_inherited_weights_is_the_stand_alone_network(name: str) -> None:
    space = create_space(name)
    supernet = create_supernet(space, **SMALL).double().train()
    x = torch.randn(6, 1, 20, 20, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for cand in candidates(space, 4):
        model = create_model(space, cand, **SMALL).double().train()
        for p in model.parameters():
            p.data.fill_(float("nan"))
        supernet.copy_to(model, cand)
        assert not any(torch.isnan(p).any() for p in model.parameters()), "a weight was not copied"
        torch.testing.assert_close(model(x), supernet(x, cand), rtol=1e-12, atol=1e-12)


def test_float32_paths_match_too_and_extract_builds_the_network() -> None:
    space = create_space("tunas_mbv3")
    supernet = create_supernet(space, **SMALL)
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    for cand in candidates(space, 2, seed=3):
        model = supernet.extract(cand).train()
        torch.testing.assert_close(model(x), supernet(x, cand))


def test_unused_filters_neither_change_the_output_nor_get_gradient() -> None:
    space = create_space("proxyless_enlarged")
    supernet = create_supernet(space, **SMALL)
    cand = space.extreme(False)  # smallest widths and expansions: most filters unused
    x = torch.randn(4, 1, 20, 20, generator=torch.Generator().manual_seed(4))
    y = torch.tensor([0, 1, 2, 3])
    loss = F.cross_entropy(supernet(x, cand), y)
    loss.backward()
    expand = supernet.stages[2][0].expand  # first block of stage s1: expansion conv at the largest width
    path = supernet.path(cand).stages[2].layers[0]
    assert 0 < path.mid < expand.conv.weight.shape[0]
    assert expand.conv.weight.grad[path.mid :].abs().sum() == 0
    assert expand.conv.weight.grad[: path.mid].abs().sum() > 0
    before = supernet(x, cand).detach()
    with torch.no_grad():
        expand.conv.weight[path.mid :] += 10.0
    torch.testing.assert_close(supernet(x, cand), before, rtol=0, atol=0)


def test_kernel_choices_own_their_weights_and_warm_up_averages_them() -> None:
    space = create_space("tunas_mbv3")
    supernet = create_supernet(space, **SMALL)
    stem = supernet.stages[0][0]  # 'cn' stem with kernel {3, 5}: one conv + BN per kernel
    assert {k: m.conv.weight.shape[-1] for k, m in stem.convs.items()} == {"3": 3, "5": 5}
    x = torch.randn(3, 1, 20, 20, generator=torch.Generator().manual_seed(5))
    one = [stem(x, LayerPath(True, (k,), (False,), 1, 0, 16)) for k in (3, 5)]
    both = stem(x, LayerPath(True, (3, 5), (False,), 1, 0, 16))
    torch.testing.assert_close(both, (one[0] + one[1]) / 2)


def test_op_warm_up_of_skips_and_depths() -> None:
    space = create_space("ofa_mbv3")
    supernet = create_supernet(space, **SMALL)
    cand = space.extreme(True)
    channels = supernet.stages[2][0].expand.conv.in_channels
    x = torch.randn(3, channels, 10, 10, generator=torch.Generator().manual_seed(6))
    stage = supernet.path(cand, all_ops={"s1_depth"}).stages[2]
    assert stage.depths == (2, 3, 4)
    blocks = supernet.stages[2]
    at_depth = [supernet._stage(blocks, StagePath(stage.layers, (d,)), x) for d in (2, 3, 4)]
    torch.testing.assert_close(supernet._stage(blocks, stage, x), sum(at_depth) / 3)

    proxyless = create_space("proxyless")
    net = create_supernet(proxyless, **SMALL)
    layers = net.path(proxyless.extreme(True), all_ops={"s1_l1_skip"}).stages[2].layers
    assert layers[1].active is None and layers[2].active is True
    h = torch.randn(3, net.stages[2][0].expand.conv.in_channels, 10, 10, generator=torch.Generator().manual_seed(7))
    on = net._stage(net.stages[2], StagePath(layers[:1] + (LayerPath(True, *_rest(layers[1])),)), h)
    off = net._stage(net.stages[2], StagePath(layers[:1]), h)
    half = net._stage(net.stages[2], StagePath(layers[:2]), h)
    torch.testing.assert_close(half, (on + off) / 2)


def _rest(p: LayerPath) -> tuple:
    return p.kernels, p.se, p.c_in, p.mid, p.c_out


def test_decision_roles_and_bad_warm_up_names() -> None:
    space = create_space("tunas_mbv3")
    roles = {d.name: decision_role(d.name) for d in space.decisions}
    assert roles["s1_filters"] == roles["s1_l0_expand"] == "filters"
    assert roles["s1_l0_kernel"] == roles["s1_l0_se"] == roles["s1_l1_skip"] == "op"
    assert decision_role("resolution") is None
    supernet = create_supernet(space, **SMALL)
    with pytest.raises(ConfigError, match="not op decisions"):
        supernet.path(space.extreme(True), all_ops={"s1_filters"})


def test_remat_gives_the_same_outputs_and_gradients() -> None:
    space = create_space("proxyless")
    torch.manual_seed(0)
    plain = create_supernet(space, **SMALL)
    remat = create_supernet(space, **SMALL, remat=True)
    remat.load_state_dict(plain.state_dict())
    x = torch.randn(4, 1, 20, 20, generator=torch.Generator().manual_seed(8))
    y = torch.tensor([1, 2, 3, 4])
    warm = {d.name for d in space.decisions if decision_role(d.name) == "op"}
    for cand, all_ops in ((space.extreme(True), ()), (space.extreme(False), warm)):
        for net in (plain, remat):
            net.zero_grad()
            F.cross_entropy(net(x, cand, all_ops=all_ops), y).backward()
        for a, b in zip(plain.parameters(), remat.parameters()):
            torch.testing.assert_close(a.grad, b.grad)


def test_stem_stride_keeps_small_feature_maps_and_input_size_makes_resolution_matter() -> None:
    space = create_space("proxyless")
    cand = space.extreme(True)
    sizes = {}
    for stride in (None, 1):
        model = create_model(space, cand, in_channels=1, num_classes=10, width_mult=0.35, stem_stride=stride)
        sizes[stride] = model.eval().features(torch.zeros(1, 1, 28, 28)).shape[-1]
    assert sizes == {None: 1, 1: 2}

    ofa = create_space("ofa_mbv3")
    small, large = (ofa.candidate({**ofa.extreme(True), "resolution": r}) for r in (128, 224))
    seen = []
    for cand in (small, large):
        model = create_model(ofa, cand, in_channels=1, num_classes=10, width_mult=0.35, input_size=28)
        model.features[0].register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[-1]))
        model.eval()(torch.zeros(1, 1, 28, 28))
    assert seen == [16, 28]  # round(28 * 128 / 224) and 28
    supernet = create_supernet(ofa, in_channels=1, num_classes=10, width_mult=0.35, input_size=28)
    assert supernet.path(small).input_size == 16


def test_recalibrated_batchnorm_holds_the_average_batch_statistics() -> None:
    space = create_space("proxyless")
    supernet = create_supernet(space, **SMALL)
    cand = space.extreme(False)
    model = supernet.extract(cand).eval()
    gen = torch.Generator().manual_seed(9)
    batches = [torch.randn(8, 1, 20, 20, generator=gen) for _ in range(2)]
    recalibrate_batchnorm(model, batches)
    stem = model.features[0].body
    means = [stem[0](b).mean((0, 2, 3)) for b in batches]
    torch.testing.assert_close(stem[1].running_mean, (means[0] + means[1]) / 2)
    assert not model.training


def test_bad_spaces_and_options() -> None:
    with pytest.raises(ConfigError, match="unknown supernet .nb201."):
        create_supernet(create_space("nb201"))
    with pytest.raises(ConfigError, match=r"unknown option\(s\) widht_mult"):
        create_supernet(create_space("proxyless"), widht_mult=0.5)
    with pytest.raises(ConfigError, match="stem_stride must be 1 or 2"):
        create_supernet(create_space("proxyless"), stem_stride=3)
