"""Grid quantization: one voxel per occupied ``voxel_size`` cell, one representative point each.

Like the reference (MinkowskiEngine ``sparse_quantize(return_index=True)``), a voxel takes the
colour and label of a single representative point; there is no majority vote. The reference's
representative is always the first point in file order, in training too; drawing a random one
per epoch (``rng``) is lgseg's option (``data.train_voxel_point``), not the reference's.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class VoxelResult(NamedTuple):
    """Voxels of a point cloud.

    voxel_coord: (M, 3) int32 grid cell of each voxel, ``floor(coord / voxel_size)``.
    index: (M,) int64 representative point of each voxel (row into the input).
    inverse: (N,) int64 voxel of each point, so ``voxel_coord[inverse] == floor(coord / voxel_size)``.
    """

    voxel_coord: np.ndarray
    index: np.ndarray
    inverse: np.ndarray


# a voxel is a point cloud's cell: below a millimetre no scan has points to fill it (ScanNet's
# meshes are ~1 cm apart), above 10 m a room is one voxel; NaN and inf are no size
VOXEL_SIZE_RANGE = (0.001, 10.0)


def check_voxel_size(voxel_size) -> float:
    """``voxel_size`` as a float if it is a finite number of metres in ``VOXEL_SIZE_RANGE``, else ValueError."""
    lo, hi = VOXEL_SIZE_RANGE
    number = isinstance(voxel_size, (int, float, np.integer, np.floating)) and not isinstance(voxel_size, bool)
    if not number or not lo <= float(voxel_size) <= hi:  # NaN fails every comparison
        raise ValueError(f"a voxel size must be a number of metres in [{lo:g}, {hi:g}], not {voxel_size!r}")
    return float(voxel_size)


def voxelize(coord: np.ndarray, voxel_size: float, rng: np.random.Generator | None = None) -> VoxelResult:
    """Quantize ``coord`` (N, 3) metres into cells of ``voxel_size`` metres.

    The representative of each voxel is its first point in input order when ``rng`` is None
    (evaluation: deterministic), else a point drawn uniformly among the voxel's points
    (training: a different point each epoch). Voxels come in lexicographic (x, y, z) order.
    """
    coord = np.asarray(coord)
    if coord.ndim != 2 or coord.shape[1] != 3:
        raise ValueError(f"coord must have shape (N, 3), not {coord.shape}")
    voxel_size = check_voxel_size(voxel_size)
    n = len(coord)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return VoxelResult(np.zeros((0, 3), dtype=np.int32), empty, empty.copy())

    # Per-axis 1-D arrays: reductions over a column of an (N, 3) array are slow in numpy.
    cells = [np.floor(coord[:, a] / voxel_size).astype(np.int64) for a in range(3)]
    lo = [c.min() for c in cells]
    dims = [int(c.max()) - int(m) + 1 for c, m in zip(cells, lo)]
    if dims[0] * dims[1] * dims[2] >= 2**62:
        raise ValueError("point cloud extent too large for voxel_size (grid key would overflow)")
    # One int64 key per cell (row-major over the occupied box): sorting 1-D keys is much faster
    # than np.unique(axis=0) on rows.
    key = cells[0] - lo[0]  # built in place: fewer temporaries of N int64
    key *= dims[1]
    key += cells[1] - lo[1]
    key *= dims[2]
    key += cells[2] - lo[2]

    order = np.argsort(key)  # quicksort: not stable, so the first point is found by a minimum below
    sorted_key = key[order]
    is_start = np.empty(n, dtype=bool)
    is_start[0] = True
    np.not_equal(sorted_key[1:], sorted_key[:-1], out=is_start[1:])
    starts = np.flatnonzero(is_start)
    counts = np.diff(np.append(starts, n))

    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.cumsum(is_start) - 1
    if rng is None:
        index = np.minimum.reduceat(order, starts)
    else:
        pick = starts + (rng.random(len(starts)) * counts).astype(np.int64)
        index = order[np.minimum(pick, starts + counts - 1)]  # guard against rounding to the end
    voxel_coord = np.empty((len(starts), 3), dtype=np.int32)
    for a in range(3):
        voxel_coord[:, a] = cells[a][index]
    return VoxelResult(voxel_coord, index.astype(np.int64, copy=False), inverse)
