"""lgseg.lifting: projection, visibility, fusion and mask lifting, checked against values worked out by
hand and against a plain Python loop over points and views (an independent re-statement of the rules
in lgseg/lifting.py's docstring: Python's round() also rounds halves to even)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lgseg.errors import InputError
from lgseg.lifting import (Fused, View, fuse, lift_mask_ids, load_fused, project, save_fused, scale_intrinsic,
                           visible, world_to_camera)

W, H = 64, 48
K = np.array([[48.0, 0, 32.0, 0], [0, 48.0, 24.0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
# camera at (1, 0, 1.5) looking along world +y: camera x = world x, camera y (down) = world -z, camera z = world y
POSE = np.array([[1.0, 0, 0, 1.0], [0, 0, 1, 0.0], [0, -1, 0, 1.5], [0, 0, 0, 1]])
WALL = 3.0  # the wall y = 3 is 3 m in front of the camera at every pixel


def world(cam):
    """World point of a camera-frame point (x right, y down, z forward) for POSE."""
    x, y, z = cam
    return np.array([1.0 + x, z, 1.5 - y])


def wall_view(depth=None) -> View:
    return View(POSE, K, np.full((H, W), WALL, np.float32) if depth is None else depth)


# ---- projection and visibility, by hand -------------------------------------------------------

def test_a_point_on_the_wall_projects_to_the_pixel_worked_out_by_hand_and_is_visible():
    # camera (0.3, 0.2, 3): u = 0.3*48/3 + 32 = 36.8 -> 37, v = 0.2*48/3 + 24 = 27.2 -> 27
    p = world((0.3, 0.2, 3.0))[None]
    u, v, z = project(p, wall_view())
    assert (u.tolist(), v.tolist()) == ([37], [27]) and u.dtype == v.dtype == np.int64
    assert z == pytest.approx([3.0])
    mask, mu, mv = visible(p, wall_view())
    assert mask.tolist() == [True] and (mu.tolist(), mv.tolist()) == ([37], [27])


def test_occluded_outside_and_behind_the_camera_are_not_visible():
    pts = np.array([world((0.6, 0.4, 6.0)),  # behind the wall, on the same ray: same pixel, z 6 vs depth 3
                    world((3.0, 0.0, 3.0)),  # u = 48 + 32 = 80 >= 64
                    world((0.3, 0.2, -3.0))])  # behind the camera
    u, v, z = project(pts, wall_view())
    assert (u[0], v[0]) == (37, 27) and z[0] == pytest.approx(6.0)
    assert (u[2], v[2]) == (-1, -1) and z[2] == pytest.approx(-3.0)
    assert visible(pts, wall_view())[0].tolist() == [False, False, False]


def test_the_border_rule_keeps_u_10_and_drops_u_9_and_the_far_side_alike():
    # u = x*16 + 32 at z = 3: x = -22/16 -> 10, -23/16 -> 9, 21/16 -> 53 = W-11, 22/16 -> 54 = W-10
    xs = [-22 / 16, -23 / 16, 21 / 16, 22 / 16]
    pts = np.array([world((x, 0.0, 3.0)) for x in xs])
    mask, u, v = visible(pts, wall_view(), border=10)
    assert u.tolist() == [10, 9, 53, 54] and v.tolist() == [24] * 4
    assert mask.tolist() == [True, False, True, False]
    assert visible(pts, wall_view(), border=0)[0].tolist() == [True] * 4
    # rows alike: v = y*16 + 24; v = 10 in, 9 out, 37 = H-11 in, 38 out
    pts = np.array([world((0.0, y, 3.0)) for y in (-14 / 16, -15 / 16, 13 / 16, 14 / 16)])
    mask, u, v = visible(pts, wall_view())
    assert v.tolist() == [10, 9, 37, 38] and mask.tolist() == [True, False, True, False]


def test_halves_round_to_even_as_openscene_np_round():
    # identity pose, z = 2 (exact binary arithmetic): u = x*48/2 + 32, v = y*48/2 + 24
    view = View(np.eye(4), K, np.full((H, W), 2.0, np.float32))
    pts = np.array([[0.4375, 0.0625, 2.0],  # u = 10.5 + 32 = 42.5 -> 42, v = 1.5 + 24 = 25.5 -> 26
                    [-0.4375, -0.0625, 2.0]])  # u = 21.5 -> 22, v = 22.5 -> 22
    u, v, _ = project(pts, view)
    assert u.tolist() == [42, 22] and v.tolist() == [26, 22]
    assert [round(42.5), round(25.5), round(21.5), round(22.5)] == [42, 26, 22, 22]  # Python agrees


def test_relative_and_absolute_occlusion():
    pts = np.array([world((0.0, 0.0, 2.5)),  # |3 - 2.5| = 0.5: <= 0.25*3 = 0.75, > 0.25 m
                    world((0.0, 0.0, 2.8)),  # 0.2: both
                    world((0.0, 0.0, 3.7)),  # 0.7: relative only
                    world((0.0, 0.0, 3.8))])  # 0.8: neither
    assert visible(pts, wall_view())[0].tolist() == [True, True, True, False]
    assert visible(pts, wall_view(), occlusion=0.25, occlusion_mode="absolute")[0].tolist() == [False, True, False,
                                                                                                  False]
    assert visible(pts, wall_view(), occlusion=0.9, occlusion_mode="absolute")[0].tolist() == [True] * 4
    with pytest.raises(ValueError, match="occlusion_mode"):
        visible(pts, wall_view(), occlusion_mode="metres")


def test_a_pixel_without_depth_fails_the_occlusion_test():
    p = world((0.3, 0.2, 3.0))[None]
    for bad in (0.0, np.nan, np.inf, -3.0):
        depth = np.full((H, W), WALL, np.float32)
        depth[27, 37] = bad
        assert visible(p, wall_view(depth))[0].tolist() == [False], bad
        assert visible(p, wall_view(depth), occlusion=10, occlusion_mode="absolute")[0].tolist() == [False], bad


def test_axis_aligned_points_project_like_their_raw_counterparts():
    a = math.radians(30)
    align = np.array([[math.cos(a), -math.sin(a), 0, 0.5], [math.sin(a), math.cos(a), 0, -1.0], [0, 0, 1, 0.2],
                      [0, 0, 0, 1]])
    rng = np.random.default_rng(0)
    raw = np.vstack([world((0.3, 0.2, 3.0)), world((rng.uniform(-1, 1), rng.uniform(-0.7, 0.7), 3.0))])
    aligned = (raw @ align[:3, :3].T + align[:3, 3]).astype(np.float64)
    u0, v0, z0 = project(raw, wall_view())
    u1, v1, z1 = project(aligned, wall_view(), axis_alignment=align)
    assert (u0.tolist(), v0.tolist()) == (u1.tolist(), v1.tolist()) and (u0[0], v0[0]) == (37, 27)
    np.testing.assert_allclose(z0, z1, atol=1e-12)
    assert visible(aligned, wall_view(), axis_alignment=align)[0].all()
    np.testing.assert_allclose(world_to_camera(POSE, align) @ align, np.linalg.inv(POSE), atol=1e-12)
    # without the alignment the aligned points land elsewhere
    assert project(aligned, wall_view())[0].tolist() != u0.tolist()


def test_views_refuse_bad_poses_and_intrinsics():
    depth = np.ones((H, W), np.float32)
    with pytest.raises(ValueError, match="non-finite"):
        View(np.full((4, 4), -np.inf), K, depth)  # ScanNet's invalid frame
    with pytest.raises(ValueError, match="shape"):
        View(np.eye(3), K, depth)
    with pytest.raises(ValueError, match="fx"):
        View(np.eye(4), np.diag([0.0, 1, 1]), depth)
    with pytest.raises(ValueError, match="depth"):
        View(np.eye(4), K, np.ones(5))
    with pytest.raises(ValueError, match="float metres"):
        View(np.eye(4), K, np.full((H, W), 3000, np.uint16))  # ScanNet's PNG millimetres, not yet / 1000
    view = View(np.eye(4), K[:3, :3], depth.astype(np.float64))  # 3x3 intrinsic accepted
    assert view.depth.dtype == np.float32 and view.size == (W, H)


def test_scale_intrinsic_gives_openscenes_320x240_values():
    k = np.array([[577.870605, 0, 319.5, 0], [0, 577.870605, 239.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    s = scale_intrinsic(k, (640, 480), (320, 240))
    np.testing.assert_allclose([s[0, 0], s[1, 1], s[0, 2], s[1, 2]], [288.9353025, 288.9353025, 159.5, 119.5])


# ---- fusion and mask ids against a loop -----------------------------------------------------------

def look_at(eye, target):
    """camera_to_world of a camera at eye looking at target, world z up, image y down."""
    f = np.asarray(target, float) - eye
    f /= np.linalg.norm(f)
    r = np.cross(f, [0.0, 0.0, 1.0])
    r /= np.linalg.norm(r)
    d = np.cross(f, r)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = r, d, f, eye
    return m


def floor_depth(pose, k, w, h):
    """Depth (camera z) of the floor z = 0 at every pixel; 0 where the ray misses it."""
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    rays = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u, float)], -1)  # z_cam = 1
    dz = rays @ pose[:3, :3].T
    t = -pose[2, 3] / dz[..., 2]
    return np.where((dz[..., 2] < 0) & (t > 0), t, 0).astype(np.float32)


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(1)
    w, h = 40, 30
    k = np.array([[30.0, 0, 19.5], [0, 30.0, 14.5], [0, 0, 1]])
    floor = np.c_[rng.uniform(0, 4, (250, 2)), np.zeros(250)]
    above = np.c_[rng.uniform(0, 4, (50, 2)), rng.uniform(0.05, 1.5, 50)]  # near the floor: some pass the test
    behind = rng.uniform(-3, 7, (20, 3))
    points = np.vstack([floor, above, behind]).astype(np.float32)
    views = []
    for _ in range(7):
        eye = np.r_[rng.uniform(-1, 5, 2), rng.uniform(1.0, 2.5)]
        pose = look_at(eye, np.r_[rng.uniform(0.5, 3.5, 2), 0.0])
        depth = floor_depth(pose, k, w, h)
        depth[rng.random(depth.shape) < 0.05] = 0  # holes
        views.append(View(pose, k, depth))
    maps = [rng.normal(0, 1, (h, w, 5)).astype(np.float32) for _ in views]
    other = [rng.normal(0, 1, (h // 2, w // 2, 5) if j % 2 else (17, 23, 5)).astype(np.float32)
             for j in range(len(views))]  # half and an uneven 23/40 x 17/30 resolution
    masks = [rng.integers(0, 4, (h, w)) for _ in views]
    return points, views, maps, other, masks


def brute_force(points, views, border=10, occlusion=0.25, mode="relative"):
    """Per (point, view): None or (u, v, z, unrounded u, unrounded v), one point and one view at a time."""
    out = []
    for p in points.astype(np.float64):
        row = []
        for view in views:
            c = np.linalg.inv(view.camera_to_world) @ np.r_[p, 1.0]
            x, y, z = c[:3]
            k = view.intrinsic
            h, w = view.depth.shape
            if z <= 0:
                row.append(None)
                continue
            uf, vf = x * k[0, 0] / z + k[0, 2], y * k[1, 1] / z + k[1, 2]
            u, v = round(uf), round(vf)
            if not (border <= u < w - border and border <= v < h - border):
                row.append(None)
                continue
            d = float(view.depth[v, u])
            tol = occlusion * d if mode == "relative" else occlusion
            row.append((u, v, z, uf, vf) if d > 0 and abs(d - z) <= tol else None)
        out.append(row)
    return out


def sample(fmap, u, v, depth_shape):
    h, w = depth_shape
    h2, w2 = fmap.shape[:2]
    return fmap[min(math.floor((v + 0.5) * h2 / h), h2 - 1), min(math.floor((u + 0.5) * w2 / w), w2 - 1)]


@pytest.mark.parametrize("rule", ["mean", "nearest", "center"])
@pytest.mark.parametrize("res", ["full", "other"])
def test_fusion_matches_a_loop_over_points_and_views(scene, rule, res):
    points, views, maps, other, _ = scene
    maps = maps if res == "full" else other
    seen = brute_force(points, views, border=2)
    fused = fuse(points, views, maps, rule=rule, border=2)
    count = [sum(s is not None for s in row) for row in seen]
    assert fused.view_count.tolist() == count and fused.view_count.dtype == np.int32
    assert 30 < sum(c > 0 for c in count) < len(points) and max(count) >= 3  # the scene tests something
    assert fused.point_index.tolist() == [i for i, c in enumerate(count) if c > 0]
    assert fused.point_index.dtype == np.int32 and fused.features.dtype == np.float16
    expect = []
    for i in fused.point_index:
        hits = [(j, s) for j, s in enumerate(seen[i]) if s is not None]
        feats = [sample(maps[j], s[0], s[1], views[j].depth.shape) for j, s in hits]
        if rule == "mean":
            expect.append(np.mean(feats, axis=0))
        else:
            def key(js):
                j, s = js
                if rule == "nearest":
                    return s[2]
                h, w = views[j].depth.shape
                return math.hypot(s[3] - (w - 1) / 2, s[4] - (h - 1) / 2) / math.hypot(w / 2, h / 2)
            best = min(range(len(hits)), key=lambda n: (key(hits[n]), n))  # ties: the earliest view
            expect.append(feats[best])
    np.testing.assert_allclose(fused.features.astype(np.float32), np.array(expect), rtol=1e-3, atol=2e-3)
    if rule != "mean":  # copied, not averaged: exactly the float16 of the map value
        np.testing.assert_array_equal(fused.features, np.array(expect).astype(np.float16))


def test_fusion_is_independent_of_the_chunk_and_loads_each_map_once_in_order(scene):
    points, views, maps, _, _ = scene
    calls = []

    def load(i):
        calls.append(i)
        return maps[i]

    a = fuse(points, views, maps, border=2)
    b = fuse(points, views, load, border=2, chunk=7)
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.view_count, b.view_count)
    assert calls == sorted(set(calls)) and len(calls) == sum(1 for j in range(len(views)) if
                                                              (visible(points, views[j], border=2)[0]).any())


def test_feature_maps_at_half_resolution_are_sampled_at_the_scaled_pixel():
    # depth pixel (37, 27) of a 64x48 image -> map pixel (floor(37.5/2), floor(27.5/2)) = (18, 13) of 32x24
    fmap = np.stack(np.meshgrid(np.arange(32.0), np.arange(24.0)), -1).astype(np.float32)  # (24, 32, 2): [i, j]
    fused = fuse(world((0.3, 0.2, 3.0))[None], [wall_view()], [fmap])
    assert fused.features.tolist() == [[18.0, 13.0]]
    # 3/8 of the size: (floor(37.5*24/64), floor(27.5*18/48)) = (14, 10) (floor(37*3/8) would give 13)
    fmap = np.stack(np.meshgrid(np.arange(24.0), np.arange(18.0)), -1)
    assert fuse(world((0.3, 0.2, 3.0))[None], [wall_view()], [fmap]).features.tolist() == [[14.0, 10.0]]
    # same size: the depth pixel itself
    fmap = np.stack(np.meshgrid(np.arange(64.0), np.arange(48.0)), -1)
    assert fuse(world((0.3, 0.2, 3.0))[None], [wall_view()], [fmap]).features.tolist() == [[37.0, 27.0]]
    # a (D, H', W') map passed as a moved-axis view
    chw = np.ascontiguousarray(np.moveaxis(fmap, -1, 0))
    assert fuse(world((0.3, 0.2, 3.0))[None], [wall_view()], [np.moveaxis(chw, 0, -1)]).features.tolist() == [[37, 27]]


def test_fusion_mean_of_two_views_and_unseen_points_dropped():
    p = np.array([world((0.3, 0.2, 3.0)), world((0.6, 0.4, 6.0))])  # seen; occluded
    maps = [np.full((H, W, 3), 1.0, np.float32), np.full((H, W, 3), 2.0, np.float32)]
    fused = fuse(p, [wall_view(), wall_view()], maps)
    assert fused.point_index.tolist() == [0] and fused.view_count.tolist() == [2, 0]
    assert fused.features.tolist() == [[1.5, 1.5, 1.5]]
    dense, seen = fused.dense()
    assert dense.shape == (2, 3) and seen.tolist() == [True, False] and dense[1].tolist() == [0, 0, 0]


@pytest.mark.parametrize("rule", ["nearest", "center"])
def test_ties_go_to_the_earliest_view(rule):
    p = world((0.3, 0.2, 3.0))[None]
    maps = [np.full((H, W, 1), float(j), np.float32) for j in range(3)]
    depth = np.full((H, W), WALL, np.float32)
    depth[27, 37] = 0  # view 0 does not see it; views 1 and 2 are the same frame
    assert fuse(p, [wall_view(depth), wall_view(), wall_view()], maps, rule=rule).features.tolist() == [[1.0]]


def test_fusion_refuses_what_float16_cannot_hold_and_bad_maps():
    p = world((0.3, 0.2, 3.0))[None]
    for rule in ("mean", "nearest"):
        with pytest.raises(ValueError, match="float16"):
            fuse(p, [wall_view()], [np.full((H, W, 2), 1e5, np.float32)], rule=rule)
        with pytest.raises(ValueError, match="float16"):
            fuse(p, [wall_view()], [np.full((H, W, 2), np.nan, np.float32)], rule=rule)
    with pytest.raises(ValueError, match="channels"):
        fuse(p, [wall_view(), wall_view()], [np.ones((H, W, 2)), np.ones((H, W, 3))])
    with pytest.raises(ValueError, match="2 feature maps for 1 views"):
        fuse(p, [wall_view()], [np.ones((H, W, 2))] * 2)
    with pytest.raises(ValueError, match="rule"):
        fuse(p, [wall_view()], [np.ones((H, W, 2))], rule="max")


def test_mask_ids_match_a_loop(scene):
    points, views, _, _, masks = scene
    point, view, mask_id = lift_mask_ids(points, views, masks, border=2)
    assert point.dtype == view.dtype == mask_id.dtype == np.int32
    seen = brute_force(points, views, border=2)
    expect = sorted((j, i, int(masks[j][s[1], s[0]])) for i, row in enumerate(seen) for j, s in enumerate(row)
                    if s is not None and masks[j][s[1], s[0]] != 0)
    assert list(zip(view.tolist(), point.tolist(), mask_id.tolist())) == expect and len(expect) > 50
    # half-resolution masks: sampled like feature maps
    small = [m[::2, ::2] for m in masks]
    point, view, mask_id = lift_mask_ids(points, views, small, border=2)
    expect = sorted((j, i, int(sample(small[j], s[0], s[1], views[j].depth.shape))) for i, row in enumerate(seen)
                    for j, s in enumerate(row) if s is not None and sample(small[j], s[0], s[1], views[j].depth.shape))
    assert list(zip(view.tolist(), point.tolist(), mask_id.tolist())) == expect


def test_mask_ids_by_hand_and_refusals():
    p = np.array([world((0.3, 0.2, 3.0)), world((-0.3, 0.2, 3.0))])  # pixels (37, 27) and (27, 27)
    mask = np.zeros((H, W), np.int64)
    mask[27, 37] = 7
    point, view, mask_id = lift_mask_ids(p, [wall_view(), wall_view()], [np.zeros_like(mask), mask])
    assert (point.tolist(), view.tolist(), mask_id.tolist()) == ([0], [1], [7])
    mask[27, 27] = -2
    with pytest.raises(ValueError, match="negative"):
        lift_mask_ids(p, [wall_view()], [mask])
    with pytest.raises(ValueError, match="integer"):
        lift_mask_ids(p, [wall_view()], [mask.astype(float)])


# ---- storage ------------------------------------------------------------------------------------------

def test_save_load_round_trip_in_float16(tmp_path, scene):
    points, views, maps, _, _ = scene
    fused = fuse(points, views, maps, border=2)
    save_fused(tmp_path / "f", fused)
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == [".lgseg-product", "count.npy", "feat.npy",
                                                                 "point.npy"]
    assert np.load(tmp_path / "f" / "feat.npy").dtype == np.float16
    back = load_fused(tmp_path / "f", num_points=len(points))
    for name in ("features", "point_index", "view_count"):
        np.testing.assert_array_equal(getattr(back, name), getattr(fused, name))
        assert getattr(back, name).dtype == getattr(fused, name).dtype
    dense, seen = load_fused(tmp_path / "f", dense=True)
    assert dense.shape == (len(points), 5) and seen.sum() == len(fused.point_index)
    np.testing.assert_array_equal(dense[seen], fused.features)
    save_fused(tmp_path / "f", fused)  # an earlier run's folder is replaced
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("x")
    with pytest.raises(InputError, match="lgseg did not write"):
        save_fused(tmp_path / "notes", fused)
    assert (tmp_path / "notes" / "mine.txt").exists()


def fused_small():
    return Fused(np.ones((2, 3), np.float16), np.array([1, 3], np.int32), np.array([0, 2, 0, 1], np.int32))


@pytest.mark.parametrize("name, array, message", [
    ("feat.npy", np.ones((2, 3), np.float32), "float16"),
    ("feat.npy", np.ones((3, 3), np.float16), "point.npy: 2 point indices for the 3 feature rows of feat.npy"),
    ("feat.npy", np.full((2, 3), np.inf, np.float16), "NaN or inf"),
    ("point.npy", np.array([1, 4], np.int32), "outside 0..3"),
    ("point.npy", np.array([3, 1], np.int32), "increasing"),
    ("point.npy", np.array([1, 3], np.int64), "int32"),
    ("count.npy", np.array([0, 2, 1, 1], np.int32), "disagree"),
    ("count.npy", np.array([0, 2, -1, 1], np.int32), "negative"),
])
def test_corrupt_files_are_refused_naming_the_file(tmp_path, name, array, message):
    save_fused(tmp_path / "f", fused_small())
    np.save(tmp_path / "f" / name, array)
    with pytest.raises(InputError, match=message) as e:
        load_fused(tmp_path / "f")
    assert str(tmp_path / "f") in str(e.value) and name in str(e.value) and "\n" not in str(e.value)


def test_truncated_missing_and_wrong_size_files_are_refused(tmp_path):
    save_fused(tmp_path / "f", fused_small())
    with pytest.raises(InputError, match="count.npy: 4 points, but the scene has 5"):
        load_fused(tmp_path / "f", num_points=5)
    feat = tmp_path / "f" / "feat.npy"
    feat.write_bytes(feat.read_bytes()[:-4])
    with pytest.raises(InputError, match="feat.npy: not a readable .npy array"):
        load_fused(tmp_path / "f")
    feat.unlink()
    with pytest.raises(InputError, match="feat.npy: fused feature file is missing"):
        load_fused(tmp_path / "f")
