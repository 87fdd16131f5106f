"""Res16UNet variants, the SegmentationNet wrapper and the model registry (tiny CPU inputs)."""

from __future__ import annotations

import pytest
import torch

from lgseg.models.registry import MODELS, build_model
from lgseg.models.res16unet import (Res16UNet14A, Res16UNet14S, Res16UNet34C, Res16UNet34D, Res16UNetBase,
                                    SegmentationNet, count_parameters)


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_scene(n_per_item: int = 150, batches: int = 2, extent: int = 16, seed: int = 0):
    """Unique random voxels in ``batches`` items: coords (M, 4) int32, RGB-like feats (M, 3)."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for b in range(batches):
        xyz = torch.unique(torch.randint(0, extent, (3 * n_per_item, 3), generator=g), dim=0)
        xyz = xyz[torch.randperm(len(xyz), generator=g)[:n_per_item]]
        rows.append(torch.cat([torch.full((len(xyz), 1), b), xyz], 1))
    coords = torch.cat(rows).int()
    return coords, torch.rand(len(coords), 3, generator=g) - 0.5


def expected_params(cls: type[Res16UNetBase], in_ch: int = 3, k1: int = 3,
                    feature_dim: int | None = None, num_classes: int | None = None) -> int:
    """Parameter count derived from the architecture description, independently of the code."""
    L, P, init = cls.LAYERS, cls.PLANES, cls.INIT_DIM

    def blocks(inp: int, planes: int, count: int) -> int:
        n = 0
        for _ in range(count):
            n += 27 * inp * planes + 27 * planes * planes + 4 * planes  # two 3^3 convs + two BN
            n += (inp * planes + 2 * planes) if inp != planes else 0     # 1x1 downsample + BN
            inp = planes
        return n

    n = k1 ** 3 * in_ch * init + 2 * init
    width = init
    for i in range(4):  # stride-2 k2 conv keeps the width, then the blocks
        n += 8 * width * width + 2 * width + blocks(width, P[i], L[i])
        width = P[i]
    for i, skip in enumerate((P[2], P[1], P[0], init)):
        p = P[4 + i]
        n += 8 * width * p + 2 * p + blocks(p + skip, p, L[4 + i])
        width = p
    out = feature_dim or width
    if out != width:
        n += width * out + 2 * out  # 1x1 projection conv (no bias) + BN
    if num_classes:
        n += out * num_classes + num_classes
    return n


def test_34c_parameter_count_and_forward():
    """The paper's baseline: ~37.9M parameters with a 200-class head; logits on a tiny scene."""
    net = SegmentationNet(Res16UNet34C(), num_classes=200)
    n = count_parameters(net)
    assert n == expected_params(Res16UNet34C, num_classes=200)
    assert 37.5e6 < n < 38.3e6
    coords, feats = tiny_scene(60, batches=1)
    out = net.eval()(coords, feats)
    assert out.shape == (len(coords), 200) and torch.isfinite(out).all()


def test_34d_is_512_wide_without_final_relu():
    """The CLIP backbone: 512-d features straight from block8 (no projection), can be negative."""
    backbone = Res16UNet34D()
    assert backbone.projection is None and backbone.out_channels == 512 and not backbone.final_relu
    assert count_parameters(backbone) == expected_params(Res16UNet34D)
    net = SegmentationNet(backbone)
    coords, feats = tiny_scene(60, extent=40)  # train-mode BN needs > 1 voxel at stride 16
    with torch.no_grad():
        out = net(coords, feats)  # train-mode BN: the residual sum is centred, so negatives appear
    assert out.shape == (len(coords), 512)
    assert (out < 0).any()


@pytest.mark.parametrize("cls", [Res16UNet14A, Res16UNet14S])
@pytest.mark.parametrize("feature_dim", [None, 64])
@pytest.mark.parametrize("num_classes", [None, 7])
def test_output_widths(cls, feature_dim, num_classes):
    net = SegmentationNet(cls(feature_dim=feature_dim), num_classes=num_classes).eval()
    assert count_parameters(net) == expected_params(cls, feature_dim=feature_dim, num_classes=num_classes)
    assert (net.backbone.projection is None) == (feature_dim is None)
    assert (net.classifier is None) == (num_classes is None)
    coords, feats = tiny_scene(80)
    with torch.no_grad():
        out, f = net(coords, feats), net.features(coords, feats)
    width = feature_dim or cls.PLANES[-1]
    assert net.feature_dim == width
    assert f.shape == (len(coords), width)
    assert out.shape == (len(coords), num_classes or width)


def test_feature_dim_equal_to_last_planes_adds_no_projection():
    assert Res16UNet14S(feature_dim=Res16UNet14S.PLANES[-1]).projection is None


def test_final_relu_controls_sign_of_features():
    coords, feats = tiny_scene()
    torch.manual_seed(0)
    with torch.no_grad():
        relu = SegmentationNet(Res16UNet14S(final_relu=True))(coords, feats)
        linear = SegmentationNet(Res16UNet14S(final_relu=False))(coords, feats)
    assert (relu >= 0).all() and (relu > 0).any()
    assert (linear < 0).any()


def test_output_rows_follow_input_rows():
    """Shuffling the input rows shuffles the output rows identically; duplicates share a voxel."""
    torch.manual_seed(0)
    net = SegmentationNet(Res16UNet14S(), num_classes=5).eval()
    coords, feats = tiny_scene()
    perm = torch.randperm(len(coords))
    with torch.no_grad():
        out = net(coords, feats)
        out_perm = net(coords[perm], feats[perm])
        dup = net(torch.cat([coords, coords[:3]]), torch.cat([feats, feats[:3]]))
    torch.testing.assert_close(out_perm, out[perm], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(out[perm], out, atol=1e-3)  # the permutation does move rows
    assert dup.shape == (len(coords) + 3, 5)
    torch.testing.assert_close(dup[-3:], dup[:3])


def test_input_validation():
    net = SegmentationNet(Res16UNet14S())
    coords, feats = tiny_scene(20, batches=1)
    with pytest.raises(ValueError, match="coords"):
        net(coords[:, 1:], feats)
    with pytest.raises(ValueError, match="integer"):
        net(coords.float(), feats)
    with pytest.raises(ValueError, match="feats"):
        net(coords, feats[:, :2])
    with pytest.raises(ValueError, match="num_classes"):
        SegmentationNet(Res16UNet14S(), num_classes=0)


def test_gradients_reach_the_stem():
    net = SegmentationNet(Res16UNet14S(), num_classes=3)
    coords, feats = tiny_scene()
    torch.nn.functional.cross_entropy(net(coords, feats), torch.randint(0, 3, (len(coords),))).backward()
    stem = net.backbone.conv0p1s1.kernel.grad
    assert stem is not None and stem.abs().sum() > 0
    assert net.classifier.kernel.grad.abs().sum() > 0


def toy_room() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A 20x20 floor (class 0) with a hollow 5x5x5 box standing on it (class 1), no colour cue."""
    floor = torch.stack(torch.meshgrid(torch.arange(20), torch.arange(20), torch.zeros(1, dtype=torch.long),
                                       indexing="ij"), -1).reshape(-1, 3)
    cube = torch.stack(torch.meshgrid(torch.arange(5), torch.arange(5), torch.arange(5), indexing="ij"),
                       -1).reshape(-1, 3)
    shell = cube[((cube == 0) | (cube == 4)).any(1)] + torch.tensor([7, 7, 1])
    xyz = torch.cat([floor, shell])
    coords = torch.cat([torch.zeros(len(xyz), 1, dtype=torch.long), xyz], 1).int()
    labels = torch.cat([torch.zeros(len(floor)), torch.ones(len(shell))]).long()
    return coords, torch.ones(len(xyz), 3), labels


def test_overfits_a_toy_scene():
    """30 Adam steps separate floor from box by geometry alone (constant input colour)."""
    torch.manual_seed(0)
    coords, feats, labels = toy_room()
    net = SegmentationNet(Res16UNet14S(), num_classes=2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        logits = net(coords, feats)
        torch.nn.functional.cross_entropy(logits, labels).backward()
        opt.step()
    with torch.no_grad():
        acc = (net(coords, feats).argmax(1) == labels).float().mean().item()
    assert acc >= 0.98


def test_build_model_passes_config_and_context():
    net = build_model({"name": "Res16UNet14S", "in_channels": 6, "conv1_kernel_size": 5, "bn_momentum": 0.1},
                      feature_dim=24, num_classes=11)
    assert isinstance(net.backbone, Res16UNet14S) and net.arch == "Res16UNet14S"
    assert net.backbone.conv0p1s1.kernel.shape == (125, 6, Res16UNet14S.INIT_DIM)
    assert net.backbone.bn0.bn.momentum == 0.1 and net.backbone.block8[0].norm1.bn.momentum == 0.1
    assert net.feature_dim == 24 and net.classifier.kernel.shape == (24, 11)
    default = build_model({"name": "Res16UNet14S"}, feature_dim=None, num_classes=None)
    assert default.backbone.bn0.bn.momentum == 0.02 and default.classifier is None
    assert set(MODELS.keys()) == {"Res16UNet34C", "Res16UNet34D", "Res16UNet14A", "Res16UNet14S"}


def test_build_model_errors():
    with pytest.raises(ValueError, match="Res16UNet34C.*Res16UNet14S.*'UNet'"):
        build_model({"name": "UNet"}, feature_dim=None, num_classes=None)
    with pytest.raises(ValueError, match="model.dropout .*allowed keys: name, backend, in_channels"):
        build_model({"name": "Res16UNet14S", "dropout": 0.1}, feature_dim=None, num_classes=None)
    with pytest.raises(ValueError, match="'name'"):
        build_model({"type": "Res16UNet14S"}, feature_dim=None, num_classes=None)
    with pytest.raises(ValueError, match="feature_dim"):  # context is not a cfg key
        build_model({"name": "Res16UNet14S", "feature_dim": 8}, feature_dim=None, num_classes=None)
    with pytest.raises(ValueError, match="conv1_kernel_size"):
        build_model({"name": "Res16UNet14S", "conv1_kernel_size": 0}, feature_dim=None, num_classes=None)


def test_block_bn_momentum_reaches_exactly_the_residual_blocks_two_bns():
    """The authors' model: the 46 BNs inside 34C's 23 blocks at 0.1; stem, strided, transposed-conv
    and the 7 downsample BNs at bn_momentum (reference-notes 1.12)."""
    net = build_model({"name": "Res16UNet34C", "block_bn_momentum": 0.1}, feature_dim=None, num_classes=None)
    momenta = {name: m.momentum for name, m in net.named_modules() if isinstance(m, torch.nn.BatchNorm1d)}
    in_blocks = {n for n in momenta if n.split(".")[-2] in ("norm1", "norm2")}
    assert len(in_blocks) == 46 and len(momenta) == 62
    assert len([n for n in momenta if ".downsample." in n]) == 7
    assert all(momenta[n] == 0.1 for n in in_blocks)
    assert all(momenta[n] == 0.02 for n in set(momenta) - in_blocks)
    default = build_model({"name": "Res16UNet34C"}, feature_dim=None, num_classes=None)
    assert {m.momentum for m in default.modules() if isinstance(m, torch.nn.BatchNorm1d)} == {0.02}


@pytest.mark.parametrize("backend", ["minkowski", "spconv"])
def test_minkowski_init_is_the_engines_default_uniform(backend):
    """init minkowski: kernel and bias uniform in +-1/sqrt(Cin k^3) (Cout k^3 for transposed convs),
    as MinkowskiEngine's reset_parameters leaves the authors' model; kaiming: normal, zero bias."""
    torch.manual_seed(0)
    net = build_model({"name": "Res16UNet34C", "backend": backend, "init": "minkowski"}, feature_dim=None,
                      num_classes=200)
    b = net.backbone
    cases = {"conv0p1s1": (3 * 27, b.conv0p1s1.kernel), "block3.0.conv1": (64 * 27, b.block3[0].conv1.kernel),
             "convtr5p8s2": (128 * 8, b.convtr5p8s2.kernel),  # transposed: Cout (not Cin 256) x k^3
             "classifier": (96, net.classifier.kernel)}
    for name, (fan, w) in cases.items():
        bound = 1 / fan ** 0.5
        assert w.abs().max() <= bound, name
        # uniform(-a, a) has std a/sqrt(3); 10^4+ samples put it within 3 %
        assert abs(w.std().item() / (bound / 3 ** 0.5) - 1) < 0.03, name
    assert 0 < net.classifier.bias.abs().max() <= 1 / 96 ** 0.5
    kaiming = build_model({"name": "Res16UNet34C", "backend": backend}, feature_dim=None, num_classes=200)
    assert torch.count_nonzero(kaiming.classifier.bias) == 0
    w = kaiming.backbone.block3[0].conv1.kernel
    assert w.abs().max() > 1 / (64 * 27) ** 0.5  # a normal's tail passes the uniform bound


def test_build_model_rejects_an_unknown_init():
    with pytest.raises(ValueError, match="init must be one of kaiming, minkowski"):
        build_model({"name": "Res16UNet14S", "init": "xavier"}, feature_dim=None, num_classes=None)
