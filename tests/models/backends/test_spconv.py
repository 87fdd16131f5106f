"""spconv-specific behaviour that the engine-equivalence tests do not reach."""

from __future__ import annotations

import pytest
import torch

from lgseg.models.backends.spconv import SpconvConv, import_spconv
from lgseg.models.registry import build_model

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_cuda_builds_default_algorithm_still_runs_on_cpu_tensors():
    """A CUDA build of spconv gives every conv implicit GEMM, which asserts ``indices.is_cuda``:
    first seen on an H200, predicting on the CPU with a model trained on the GPU. Each call picks
    the algorithm by the tensors' device, so setting the CUDA build's default changes nothing here."""
    spconv = import_spconv()
    torch.manual_seed(0)
    net = build_model({"name": "Res16UNet14S", "backend": "spconv"}, feature_dim=None, num_classes=5).eval()
    g = torch.Generator().manual_seed(0)
    xyz = torch.unique(torch.randint(-13, 11, (900, 3), generator=g), dim=0)[:600]
    coords = torch.cat([torch.zeros(len(xyz), 1, dtype=torch.long), xyz], 1).int()
    feats = torch.rand(len(coords), 3, generator=g)
    with torch.no_grad():
        want = net(coords, feats)
        convs = [m for m in net.modules() if isinstance(m, SpconvConv) and m.op is not None]
        assert convs
        for m in convs:  # what the modules hold after construction on a CUDA build
            m.op.algo = spconv.ConvAlgo.MaskImplicitGemm
        got = net(coords, feats)
    assert torch.equal(want, got)
