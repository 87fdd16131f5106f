"""voxelize: cell identity, voxel count, representative choice, negative coordinates."""

from __future__ import annotations

import numpy as np
import pytest

from lgseg.data.voxelize import voxelize


def _points(n: int, seed: int = 0, extent: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-extent, extent, size=(n, 3))


@pytest.mark.parametrize("rng", [None, np.random.default_rng(3)])
def test_inverse_maps_every_point_to_its_cell(rng):
    coord = _points(5000, extent=0.5)
    res = voxelize(coord, 0.05, rng)
    assert res.voxel_coord.dtype == np.int32 and res.index.dtype == np.int64 and res.inverse.dtype == np.int64
    assert res.inverse.shape == (5000,)
    np.testing.assert_array_equal(res.voxel_coord[res.inverse], np.floor(coord / 0.05).astype(np.int32))
    # each representative lies in its own voxel
    np.testing.assert_array_equal(res.inverse[res.index], np.arange(len(res.index)))


def test_voxel_count_matches_distinct_cells():
    coord = _points(2000, seed=1, extent=0.3)
    res = voxelize(coord, 0.04)
    cells = np.unique(np.floor(coord / 0.04).astype(np.int64), axis=0)  # slow reference
    assert len(res.voxel_coord) == len(cells) < len(coord)  # collisions do happen here
    assert len(np.unique(res.voxel_coord, axis=0)) == len(res.voxel_coord)  # no duplicate voxels


def test_deterministic_representative_is_first_point():
    coord = _points(3000, seed=2, extent=0.3)
    res = voxelize(coord, 0.05)
    _, first = np.unique(res.inverse, return_index=True)  # first point of voxel 0, 1, ...
    np.testing.assert_array_equal(res.index, first)
    np.testing.assert_array_equal(voxelize(coord, 0.05).index, res.index)


def test_random_representative_varies_with_rng_and_is_uniform():
    coord = _points(3000, seed=2, extent=0.3)
    a = voxelize(coord, 0.05, np.random.default_rng(0))
    b = voxelize(coord, 0.05, np.random.default_rng(1))
    again = voxelize(coord, 0.05, np.random.default_rng(0))
    np.testing.assert_array_equal(a.index, again.index)
    assert (a.index != b.index).any()
    np.testing.assert_array_equal(a.voxel_coord, b.voxel_coord)  # only the representative changes

    # one voxel of 4 points: every point is drawn about a quarter of the time
    four = np.array([[0.01, 0.01, 0.01], [0.02, 0.02, 0.02], [0.03, 0.01, 0.0], [0.0, 0.04, 0.02]])
    rng = np.random.default_rng(5)
    picks = np.array([voxelize(four, 0.05, rng).index[0] for _ in range(4000)])
    counts = np.bincount(picks, minlength=4)
    assert counts.min() > 850 and counts.max() < 1150


def test_negative_coordinates_floor_down():
    coord = np.array([[-0.001, 0.0, 0.019], [0.0, -0.02, 0.02], [-0.041, 0.001, -0.0]])
    res = voxelize(coord, 0.02)
    np.testing.assert_array_equal(res.voxel_coord[res.inverse], [[-1, 0, 0], [0, -1, 1], [-3, 0, 0]])


def test_empty_and_bad_input():
    res = voxelize(np.zeros((0, 3)), 0.02)
    assert res.voxel_coord.shape == (0, 3) and len(res.index) == 0 and len(res.inverse) == 0
    for bad in (0.0, -1.0, 1e-9, float("nan"), float("inf"), True, "0.02"):  # none is a size to voxelize at
        with pytest.raises(ValueError, match=r"a voxel size must be a number of metres in \[0.001, 10\]"):
            voxelize(np.zeros((2, 3)), bad)
    with pytest.raises(ValueError, match="shape"):
        voxelize(np.zeros((2, 2)), 0.02)
