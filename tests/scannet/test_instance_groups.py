"""Grouping a scene's vertices by instance, by hand."""

import numpy as np

from lgseg.scannet.instances import instance_groups


def test_groups_are_sorted_by_instance_in_mesh_order():
    instance = np.array([3, -1, 0, 3, 0, 7, -1, 3])
    members, bounds = instance_groups(instance)
    groups = [members[s:e].tolist() for s, e in zip(bounds[:-1], bounds[1:])]
    assert groups == [[2, 4], [0, 3, 7], [5]]


def test_keep_narrows_the_vertices_and_nothing_left_is_empty():
    instance = np.array([3, -1, 0, 3, 0])
    members, bounds = instance_groups(instance, keep=np.array([True, True, False, True, True]))
    assert [members[s:e].tolist() for s, e in zip(bounds[:-1], bounds[1:])] == [[4], [0, 3]]
    members, bounds = instance_groups(np.full(4, -1))
    assert len(members) == 0 and len(bounds) == 0
