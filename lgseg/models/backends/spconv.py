"""The spconv 2.x backend: what runs on today's GPUs (wheels for the CPU and CUDA 11.8-12.6).

Its modules keep the canonical parameters (MinkowskiEngine's names and ``kernel`` layout) and
hand spconv its own layout at every call, so a state dict is the same on both engines and
checkpoints need no conversion. The two layouts differ by an exact permutation:

- MinkowskiEngine: ``kernel[k, cin, cout]``, offset ``k`` enumerated with x fastest:
  ``k = ix + K*iy + K*K*iz``.
- spconv (KRSC): ``weight[cout, ix, iy, iz, cin]``.

Both engines correlate (out[p] += in[p + offset] W) with the same offsets: for K = 3 the offset
of index i is i - 1, for the K = 2, stride-2 down- and up-sampling it is i (times the input's
stride), the upsampling reusing the downsampling's neighbour pairs. tests/models/test_backends.py
derives these facts from both engines with one-hot kernels.

Coordinates: spconv indexes a box of non-negative cells, so voxel coordinates are shifted by a
multiple of 2^4 (the U-Net's deepest stride), which keeps every level's stride-2 grid where
MinkowskiEngine puts it (floor(c / 2s) * 2s), negative coordinates included.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

D = 3
ALIGN = 16  # 2^4: coordinate shifts that keep the stride-2 grids of all four levels


def import_spconv():
    """``spconv.pytorch``, able to run backward on a CPU-only torch.

    spconv 2.3.8 asks torch for the current CUDA stream on every call, which fails without CUDA
    (upstream issue #366); on such a machine the stream handle is 0 (its CPU kernels ignore it).
    """
    # spconv's modules ask torch.fx whether they are traced, which logs a deprecation notice
    logging.getLogger("torch.fx._symbolic_trace").setLevel(logging.ERROR)
    try:
        import spconv.pytorch as spconv
        from spconv.pytorch import cppcore, ops
    except ImportError as e:
        raise ImportError(f"spconv 2.3.8 is not installed or failed to load ({e}); run ./install.sh") from e
    if not torch.cuda.is_available():
        for mod in (cppcore, ops):
            mod.get_current_stream = _no_stream
    return spconv


def one_cpu_thread(features: torch.Tensor) -> None:
    """spconv's CPU convolutions are only correct while torch runs one intra-op thread.

    With two, about one output row in 10^4 convolutions took another voxel's input (measured
    on spconv 2.3.8 with torch 2.13; its neighbour pairs were right, the gather or scatter was
    not; tests/models/backends/test_equivalence.py caught it). So a CPU forward sets one thread,
    which also holds for the backward that follows. GPU tensors are left alone.
    """
    if features.device.type == "cpu" and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def _no_stream() -> int:
    return 0


def kernel_to_spconv(kernel: torch.Tensor, k: int) -> torch.Tensor:
    """Canonical (k^3, Cin, Cout), x fastest -> spconv's (Cout, kx, ky, kz, Cin)."""
    cin, cout = kernel.shape[1:]
    return kernel.reshape(k, k, k, cin, cout).permute(4, 2, 1, 0, 3).contiguous()


def kernel_from_spconv(weight: torch.Tensor) -> torch.Tensor:
    """spconv's (Cout, kx, ky, kz, Cin) -> canonical (k^3, Cin, Cout), x fastest."""
    cout, k, _, _, cin = weight.shape
    return weight.permute(3, 2, 1, 4, 0).reshape(k ** 3, cin, cout)


class SpconvConv(nn.Module):
    """A sparse convolution with the canonical ``kernel`` (and ``bias``) parameters.

    k = 1: a matrix product on the features (exact, no neighbour search). Otherwise stride 1 is
    a submanifold conv (output on the input's voxels), stride 2 a strided conv, ``transpose`` the
    inverse of the strided conv of the same ``level`` (output on that conv's input voxels).
    """

    def __init__(self, spconv, cin: int, cout: int, kernel_size: int, stride: int = 1, bias: bool = False,
                 level: int = 0, transpose: bool = False) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = cin, cout, kernel_size
        self.is_transpose = transpose
        volume = kernel_size ** D
        self.kernel = nn.Parameter(torch.empty(volume, cin, cout) if volume > 1 else torch.empty(cin, cout))
        self.bias = nn.Parameter(torch.empty(1, cout)) if bias else None  # (1, Cout) as MinkowskiEngine
        if volume == 1:
            if stride != 1:
                raise ValueError("a 1x1x1 convolution with stride is not used by these networks")
            self.op = None
            return
        common = dict(bias=False, algo=None)
        if transpose:
            op = spconv.SparseInverseConv3d(cin, cout, kernel_size, indice_key=f"down{level}", bias=False)
        elif stride == 1:
            op = spconv.SubMConv3d(cin, cout, kernel_size, padding=kernel_size // 2, indice_key=f"subm{level}",
                                   **common)
        else:
            op = spconv.SparseConv3d(cin, cout, kernel_size, stride=stride, indice_key=f"down{level}", **common)
        op.weight = None  # the weight lives in self.kernel; spconv's own would be a second copy
        self.op = op
        # a CUDA build of spconv defaults to implicit GEMM, which only runs on the GPU: CPU tensors
        # (a model moved to the CPU, prediction with --device cpu) take the native algorithm
        self.algo = {"cuda": op.algo, "cpu": spconv.ConvAlgo.Native}

    def forward(self, x):
        one_cpu_thread(x.features)
        if self.op is None:
            out = x.features @ self.kernel.to(x.features.dtype)
            return x.replace_feature(out if self.bias is None else out + self.bias.to(out.dtype))
        op = self.op
        op.algo = self.algo[x.features.device.type]
        bias = None if self.bias is None else self.bias.view(-1)
        return op._conv_forward(op.training, x, kernel_to_spconv(self.kernel, self.kernel_size), bias,
                                name=op.name, sparse_unique_name=op._sparse_unique_name)

    def extra_repr(self) -> str:
        kind = "transpose" if self.is_transpose else ("1x1" if self.op is None else type(self.op).__name__)
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, {kind}"


class SpconvBatchNorm(nn.Module):
    """BatchNorm1d on the features, named ``bn`` as in MinkowskiEngine."""

    def __init__(self, channels: int, momentum: float) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(channels, momentum=momentum)

    def forward(self, x):
        return x.replace_feature(self.bn(x.features))


class SpconvReLU(nn.Module):
    def forward(self, x):
        return x.replace_feature(F.relu(x.features))


class SpconvBackend:
    """Sparse tensors are ``spconv.SparseConvTensor``; parameters in the canonical layout."""

    name = "spconv"

    def __init__(self) -> None:
        self.spconv = import_spconv()

    def conv(self, cin: int, cout: int, kernel_size: int, stride: int = 1, bias: bool = False,
             level: int = 0) -> nn.Module:
        return SpconvConv(self.spconv, cin, cout, kernel_size, stride, bias, level)

    def conv_transpose(self, cin: int, cout: int, kernel_size: int, stride: int, level: int) -> nn.Module:
        return SpconvConv(self.spconv, cin, cout, kernel_size, stride, False, level, transpose=True)

    def batch_norm(self, channels: int, momentum: float) -> nn.Module:
        return SpconvBatchNorm(channels, momentum)

    def relu(self) -> nn.Module:
        return SpconvReLU()

    @staticmethod
    def add(a, b):
        return a.replace_feature(a.features + b.features)

    @staticmethod
    def cat(a, b):
        # an upsampled tensor lies on its skip's voxels in the skip's order (the inverse conv
        # reuses the strided conv's input indices)
        return a.replace_feature(torch.cat([a.features, b.features], 1))

    def sparse_tensor(self, coords: torch.Tensor, feats: torch.Tensor):
        """``(tensor, inverse)``: one voxel per distinct coordinate (its first input row's features)."""
        coords = coords.to(feats.device, torch.int64)
        voxels, inverse = torch.unique(coords, dim=0, return_inverse=True)
        rows = torch.arange(len(coords), device=coords.device)
        first = torch.full((len(voxels),), len(coords), device=coords.device).scatter_reduce_(
            0, inverse, rows, "amin")
        xyz = voxels[:, 1:]
        lo = torch.div(xyz.min(0).values, ALIGN, rounding_mode="floor") * ALIGN
        xyz = xyz - lo
        shape = (torch.div(xyz.max(0).values, ALIGN, rounding_mode="floor") + 1) * ALIGN
        indices = torch.cat([voxels[:, :1], xyz], 1).int().contiguous()
        x = self.spconv.SparseConvTensor(feats[first], indices, shape.tolist(), int(voxels[:, 0].max()) + 1)
        return x, inverse

    @staticmethod
    def features(out, x) -> torch.Tensor:
        if out.indices.shape != x.indices.shape:
            raise RuntimeError("backbone output is not on the input coordinates")
        return out.features

    def check_device(self, device: torch.device) -> None:
        return None
