"""A scene's vertices grouped by instance (``instance.npy``: aggregation group id, -1 none)."""

from __future__ import annotations

import numpy as np


def instance_groups(instance: np.ndarray, keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(members, bounds)``: the vertices with an instance (and ``keep``), sorted by instance id and
    in mesh order within one, and the boundaries of each instance's run: instance ``i``'s vertices
    are ``members[bounds[i]:bounds[i + 1]]``. No such vertex: both empty."""
    has = instance >= 0 if keep is None else keep & (instance >= 0)
    members = np.flatnonzero(has)
    if not len(members):
        return members, np.zeros(0, np.int64)
    members = members[np.argsort(instance[members], kind="stable")]
    bounds = np.flatnonzero(np.r_[True, instance[members][1:] != instance[members][:-1], True])
    return members, bounds
