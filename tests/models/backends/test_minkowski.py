import numpy as np
import torch

from lgseg.models.backends.minkowski import import_minkowski


def test_minkowski_conv_matches_dense_conv3d():
    """A real MinkowskiEngine convolution (CPU build, Python 3.11) equals torch's dense conv3d."""
    ME = import_minkowski()
    torch.manual_seed(0)
    coords = torch.tensor([[0, 1, 1, 1], [0, 1, 2, 1], [0, 2, 2, 2], [0, 3, 1, 2]], dtype=torch.int32)
    feats = torch.randn(4, 2, requires_grad=True)
    conv = ME.MinkowskiConvolution(2, 3, kernel_size=3, dimension=3, bias=False)
    out = conv(ME.SparseTensor(feats, coordinates=coords))
    out.F.sum().backward()
    assert feats.grad is not None and torch.isfinite(feats.grad).all()

    dense = torch.zeros(1, 2, 5, 5, 5)
    for (_, x, y, z), f in zip(coords.tolist(), feats.detach()):
        dense[0, :, x, y, z] = f
    # ME kernel (k^3, Cin, Cout), offsets enumerated with the first axis fastest
    k = conv.kernel.detach().reshape(3, 3, 3, 2, 3).permute(4, 3, 2, 1, 0)
    ref = torch.nn.functional.conv3d(dense, k, padding=1)
    got = out.features_at_coordinates(coords[:, :].float()).detach()
    expected = torch.stack([ref[0, :, x, y, z] for _, x, y, z in coords.tolist()])
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5)


def test_a_training_step_on_minkowski_is_bitwise_repeatable():
    """MinkowskiEngine's CPU backward races on more than one OpenMP thread (3 of 40 steps gave
    gradients off by up to 6.5e-3 of their scale, and every step differed in the last bits): the
    backend runs it on one, so the same step gives the same gradients to the bit."""
    from torch import nn

    from lgseg.models.registry import build_model

    g = torch.Generator().manual_seed(3)
    coords = torch.cat([torch.cat([torch.full((400, 1), b), torch.randint(-12, 12, (400, 3), generator=g)], 1)
                        for b in range(2)]).int()
    feats, labels = torch.rand(len(coords), 3, generator=g), torch.randint(0, 7, (len(coords),), generator=g)
    grads = []
    for _ in range(4):
        torch.manual_seed(0)
        net = build_model({"name": "Res16UNet14S", "backend": "minkowski"}, feature_dim=None, num_classes=7).train()
        nn.functional.cross_entropy(net(coords, feats), labels).backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    assert all(torch.equal(grads[0], other) for other in grads[1:])
