"""The MinkowskiEngine backend: the authors' engine, and the canonical weight layout.

MinkowskiEngine 0.5.4 (the last release) does ``from collections import Sequence``, removed in
Python 3.10; the fix was merged upstream but never released. Aliasing the ABCs back onto
``collections`` before the first import is enough, and keeps site-packages untouched. The
release builds for the CPU only against current CUDA, so this backend runs on the CPU.

One OpenMP thread: MinkowskiEngine's CPU backward races when its OpenMP loops run on more than one
thread. Measured here (Res16UNet34C, one SGD step on the same input, 2 threads): 3 of 40 runs gave
first-layer kernel gradients off by 2e-3 to 6.5e-3 of their scale, while the forward agreed to
1e-5; with one thread every run is bitwise identical, and the step was faster on 2 cores (0.83 s
against 1.03 s). Each coordinate manager sets the process's OpenMP thread count when it is made
(``num_threads``, by default the number of cores), and torch shares that OpenMP runtime, so while
this backend runs, torch's intra-op threads are one too.
"""

from __future__ import annotations

import collections
import collections.abc
import logging
import warnings

import torch
from torch import nn

from lgseg.errors import LgsegError

log = logging.getLogger(__name__)
_ABCS = ("Sequence", "Mapping", "MutableMapping", "Iterable", "Callable")
D = 3
THREADS = 1  # OpenMP threads of MinkowskiEngine's CPU kernels: more race in the backward (module docstring)


def import_minkowski():
    """Return the ``MinkowskiEngine`` module, with a clear error when it is not installed."""
    for name in _ABCS:
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))
    try:
        with warnings.catch_warnings():  # "compiled with CPU_ONLY flag" is expected here, not news
            warnings.filterwarnings("ignore", message=".*CPU_ONLY.*")
            import MinkowskiEngine as ME
    except ImportError as e:
        raise ImportError(
            "MinkowskiEngine 0.5.4 is not installed or failed to load "
            f"({e}); run ./install.sh, which builds it for the CPU") from e
    return ME


class MinkowskiBackend:
    """Sparse tensors are ``ME.SparseTensor``; modules are MinkowskiEngine's own, so their
    parameter names and kernel layout (``kernel``: (k^3, Cin, Cout), offsets with x fastest;
    (Cin, Cout) for k = 1) are the canonical ones every lgseg checkpoint uses."""

    name = "minkowski"

    def __init__(self) -> None:
        self.ME = import_minkowski()
        self._warned = False

    def conv(self, cin: int, cout: int, kernel_size: int, stride: int = 1, bias: bool = False,
             level: int = 0) -> nn.Module:
        """``level``: log2 of the input's tensor stride (used by engines that cache neighbour maps per level)."""
        return self.ME.MinkowskiConvolution(cin, cout, kernel_size=kernel_size, stride=stride, bias=bias, dimension=D)

    def conv_transpose(self, cin: int, cout: int, kernel_size: int, stride: int, level: int) -> nn.Module:
        """Upsampling onto the coordinates of ``level`` (the input of the matching strided conv)."""
        return self.ME.MinkowskiConvolutionTranspose(cin, cout, kernel_size=kernel_size, stride=stride, bias=False,
                                                     dimension=D)

    def batch_norm(self, channels: int, momentum: float) -> nn.Module:
        return self.ME.MinkowskiBatchNorm(channels, momentum=momentum)

    def relu(self) -> nn.Module:
        return self.ME.MinkowskiReLU(inplace=True)

    @staticmethod
    def add(a, b):
        return a + b

    def cat(self, a, b):
        return self.ME.cat(a, b)

    def sparse_tensor(self, coords: torch.Tensor, feats: torch.Tensor):
        """``(tensor, inverse)``: one voxel per distinct coordinate, ``inverse`` maps input rows to voxels."""
        # RANDOM_SUBSAMPLE: a plain gather (unique coordinates need no averaging), while
        # UNWEIGHTED_AVERAGE would add a sparse matmul in forward and backward
        if torch.get_num_threads() > 1 and not self._warned:
            # info, not a warning: by design (module docstring), and prediction runs here by default
            log.info("MinkowskiEngine runs with one CPU thread (its backward races with more); torch's "
                     "%d intra-op threads become one too. Use model.backend: spconv for more threads",
                     torch.get_num_threads())
            self._warned = True
        x = self.ME.SparseTensor(feats, coordinates=coords.to(feats.device, torch.int32), device=feats.device,
                                 quantization_mode=self.ME.SparseTensorQuantizationMode.RANDOM_SUBSAMPLE,
                                 coordinate_manager=self.ME.CoordinateManager(D=D, num_threads=THREADS))
        return x, x.inverse_mapping.long()

    @staticmethod
    def features(out, x) -> torch.Tensor:
        """Rows of ``out`` (on ``x``'s coordinates) in ``x``'s voxel order."""
        if out.coordinate_map_key != x.coordinate_map_key:
            raise RuntimeError("backbone output is not on the input coordinates")
        return out.F

    def check_device(self, device: torch.device) -> None:
        if torch.device(device).type == "cuda":
            raise LgsegError(
                "model.backend minkowski runs on the CPU only: MinkowskiEngine 0.5.4 does not build against "
                "current CUDA. Set model.backend: spconv (e.g. dvc exp run -S model.backend=spconv) to use the GPU")
