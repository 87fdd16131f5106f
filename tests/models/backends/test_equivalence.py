"""The two sparse-conv engines give one network: same weights, same outputs, same training step.

Tolerance: both engines sum the same float32 products in different orders (gather-GEMM-scatter
in different kernel and point orders), so each layer differs by a few ulps (~1e-7 relative);
through a U-Net's 20-70 convolutions and BatchNorms that grows to ~1e-6-1e-5 of the output's
scale. 1e-4 of the scale leaves room for that and still catches any misplaced kernel offset,
which changes outputs at the 1e-1 level.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from lgseg.errors import LgsegError
from lgseg.models.backends import BACKENDS, get_backend
from lgseg.models.registry import build_model

RTOL = 1e-4  # of the output's scale (max abs value), see the module docstring


pytestmark = pytest.mark.usefixtures("one_thread")


def scene(n_per_item: int = 300, batches: int = 3, lo: int = -13, hi: int = 11, seed: int = 0):
    """Unique random voxels in ``batches`` items, coordinates in [lo, hi) (negative ones included)."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for b in range(batches):
        xyz = torch.unique(torch.randint(lo, hi, (3 * n_per_item, 3), generator=g), dim=0)
        xyz = xyz[torch.randperm(len(xyz), generator=g)[:n_per_item]]
        rows.append(torch.cat([torch.full((len(xyz), 1), b), xyz], 1))
    coords = torch.cat(rows).int()
    return coords, torch.rand(len(coords), 3, generator=g) - 0.5


def twins(name: str, num_classes: int | None = 7, offsets: bool = False, feature_dim: int | None = None, **cfg):
    """The same network on both engines, with the same (random) weights and BN statistics."""
    torch.manual_seed(0)
    mink = build_model({"name": name, "backend": "minkowski", **cfg}, feature_dim=feature_dim,
                       num_classes=num_classes, offsets=offsets)
    with torch.no_grad():  # BN statistics that are not the identity, so eval mode tests them too
        for mod in mink.modules():
            if isinstance(mod, nn.BatchNorm1d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
    sp = build_model({"name": name, "backend": "spconv", **cfg}, feature_dim=feature_dim, num_classes=num_classes,
                     offsets=offsets)
    sp.load_state_dict(mink.state_dict(), strict=True)
    return mink, sp


def assert_close_to_scale(a: torch.Tensor, b: torch.Tensor, what: str = "") -> None:
    scale = a.abs().max().item()
    assert scale > 0, f"{what}: all-zero output proves nothing"
    diff = (a - b).abs().max().item()
    assert diff <= RTOL * scale, f"{what}: max abs difference {diff:.3g} > {RTOL} x scale {scale:.3g}"


def test_state_dicts_have_the_same_names_and_shapes():
    mink, sp = twins("Res16UNet34D", num_classes=200)
    a, b = mink.state_dict(), sp.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape for k in a)
    # the canonical (MinkowskiEngine) layout: (k^3, Cin, Cout), (Cin, Cout) for 1x1 convs
    assert a["backbone.conv0p1s1.kernel"].shape == (27, 3, 32)
    assert a["backbone.conv1p1s2.kernel"].shape == (8, 32, 32)
    assert a["classifier.kernel"].shape == (512, 200)


@pytest.mark.parametrize("kind", ["submanifold k3", "strided k2", "transposed k2"])
def test_every_kernel_offset_maps_to_the_same_neighbour(kind):
    """One-hot kernels, one offset at a time, through each engine's own convolution: the
    kernel-offset order of the two engines, derived from the engines themselves."""
    coords, _ = scene(200, batches=2, lo=-6, hi=6, seed=1)
    feats = torch.randn(len(coords), 1, generator=torch.Generator().manual_seed(2))
    volume = 27 if kind == "submanifold k3" else 8
    nets = {}
    for name in BACKENDS:
        b = get_backend(name)
        if kind == "submanifold k3":
            layers = [b.conv(1, 1, 3, level=0)]
        else:  # down then up: the output lies on the input voxels, comparable row by row
            layers = [b.conv(1, 1, 2, 2, level=0), b.conv_transpose(1, 1, 2, 2, level=0)]
        nets[name] = (b, layers)
    for k in range(volume):
        outs = {}
        for name, (b, layers) in nets.items():
            with torch.no_grad():
                for i, layer in enumerate(layers):
                    probed = i == (1 if kind == "transposed k2" else 0)
                    layer.kernel.zero_()
                    if probed:
                        layer.kernel[k] = 1.0
                    else:  # the other layer passes values through every offset
                        layer.kernel.fill_(1.0)
                x, inverse = b.sparse_tensor(coords, feats)
                out = x
                for layer in layers:
                    out = layer(out)
                outs[name] = b.features(out, x)[inverse]
        assert_close_to_scale(outs["minkowski"], outs["spconv"], f"{kind}, kernel offset {k}")


@pytest.mark.parametrize("name,train", list(itertools.product(["Res16UNet14S", "Res16UNet34C", "Res16UNet34D"],
                                                               [False, True])))
def test_same_weights_same_outputs(name, train):
    mink, sp = twins(name, num_classes=None if name == "Res16UNet34D" else 7)
    coords, feats = scene()
    mink.train(train), sp.train(train)
    with torch.no_grad():
        a, b = mink(coords, feats), sp(coords, feats)
    assert a.shape == b.shape == (len(coords), mink.feature_dim if name == "Res16UNet34D" else 7)
    assert_close_to_scale(a, b, f"{name} {'train' if train else 'eval'}")
    if train:  # BN running statistics moved the same way
        for key, value in mink.state_dict().items():
            if "running" in key:
                assert_close_to_scale(value, sp.state_dict()[key], key)


@pytest.mark.parametrize("train", [False, True])
def test_the_instance_variant_gives_the_same_logits_and_offsets(train):
    mink, sp = twins("Res16UNet14S", num_classes=7, offsets=True)
    coords, feats = scene()
    mink.train(train), sp.train(train)
    with torch.no_grad():
        a, b = mink(coords, feats), sp(coords, feats)
    assert a["offsets"].shape == (len(coords), 3) and a["logits"].shape == (len(coords), 7)
    for key in ("logits", "offsets"):
        assert_close_to_scale(a[key], b[key], f"instance {key} {'train' if train else 'eval'}")


def test_the_csc_loss_of_both_engines_features_agrees():
    """One CSC step's loss and gradients on two views through each engine: the same to the
    engines' tolerance. The features are pretraining's (a projection, no final ReLU): the loss
    normalises them, and a ReLU's all-zero feature vector would make that ill-conditioned."""
    from lgseg.losses import CSCLoss

    mink, sp = twins("Res16UNet14S", num_classes=None, feature_dim=16)
    coords, feats = scene(n_per_item=200, batches=2, seed=3)  # batch items 0 and 1: the two views
    rows_a, rows_b = torch.nonzero(coords[:, 0] == 0)[:, 0], torch.nonzero(coords[:, 0] == 1)[:, 0]
    k = min(len(rows_a), len(rows_b))
    matches = torch.stack([rows_a[:k], rows_b[:k]], 1)
    position = coords[matches[:, 0], 1:].float() * 0.1
    loss_fn, values, grads = CSCLoss(num_matches=k), {}, {}
    for name, net in (("minkowski", mink), ("spconv", sp)):
        net.zero_grad()
        out = net(coords, feats)
        loss = loss_fn(out, out, matches, position)
        loss.backward()
        values[name] = loss.detach().reshape(1)
        grads[name] = net.backbone.conv0p1s1.kernel.grad.clone()
    assert_close_to_scale(values["minkowski"], values["spconv"], "csc loss")
    assert_close_to_scale(grads["minkowski"], grads["spconv"], "csc gradient of the stem")


def test_duplicate_coordinates_share_one_voxel_on_both_backends():
    mink, sp = twins("Res16UNet14S")
    coords, feats = scene(100, batches=2)
    coords, feats = torch.cat([coords, coords[:20]]), torch.cat([feats, feats[:20]])
    with torch.no_grad():
        a, b = mink.eval()(coords, feats), sp.eval()(coords, feats)
    torch.testing.assert_close(a[-20:], a[:20])
    assert_close_to_scale(a, b, "duplicates")


@pytest.mark.parametrize("name", ["Res16UNet14S", "Res16UNet34C"])
def test_one_sgd_step_gives_the_same_weights(name):
    mink, sp = twins(name)
    coords, feats = scene(250, batches=2, seed=3)
    labels = torch.randint(0, 7, (len(coords),), generator=torch.Generator().manual_seed(4))
    for net in (mink, sp):
        net.train()
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        nn.functional.cross_entropy(net(coords, feats), labels).backward()
        opt.step()
    pa, pb = dict(mink.named_parameters()), dict(sp.named_parameters())
    for key in pa:
        assert_close_to_scale(pa[key].grad, pb[key].grad, f"gradient {key}")
        assert_close_to_scale(pa[key].detach(), pb[key].detach(), f"weight {key}")


@pytest.mark.parametrize("src,dst", [("minkowski", "spconv"), ("spconv", "minkowski")])
def test_a_checkpoint_from_one_backend_predicts_the_same_labels_on_the_other(tmp_path, src, dst):
    from lgseg.engine.checkpoint import load_model, save_model

    torch.manual_seed(5)
    net = build_model({"name": "Res16UNet14S", "backend": src}, feature_dim=None, num_classes=20)
    coords, feats = scene(200, batches=2, seed=6)
    net.train()
    with torch.no_grad():  # a few forward passes in train mode give BN statistics of their own
        for _ in range(3):
            net(coords, feats + 0.1 * torch.randn_like(feats))
    meta = {"kind": "finetune", "model": {"name": "Res16UNet14S", "backend": src}, "feature_dim": net.feature_dim,
            "num_classes": 20, "voxel_size": 0.05, "text": None}
    save_model(tmp_path / "m.pt", net, meta)
    loaded, _ = load_model(tmp_path / "m.pt", backend=dst)
    assert loaded.backend == dst
    with torch.no_grad():
        a, b = net.eval()(coords, feats), loaded.eval()(coords, feats)
    assert_close_to_scale(a, b, f"{src} -> {dst}")
    assert torch.equal(a.argmax(1), b.argmax(1))


def test_minkowski_refuses_the_gpu_with_the_fix():
    with pytest.raises(LgsegError, match="model.backend: spconv"):
        get_backend("minkowski").check_device(torch.device("cuda"))
    get_backend("spconv").check_device(torch.device("cuda"))  # spconv runs there


def test_unknown_backend_names_the_choices():
    with pytest.raises(ValueError, match="minkowski, spconv"):
        build_model({"name": "Res16UNet14S", "backend": "torchsparse"}, feature_dim=None, num_classes=2)
