"""The synthetic world's camera (lgseg.synthetic.camera) and the numpy z-buffer rasterizer
(lgseg.synthetic.render), against hand-computed expectations and brute-force references:
coverage of pixel centres, exact and ray-plane depth, the z-test, perspective-correct
barycentrics, near-plane culling, no cracks on shared edges, a ray-casting reference, ScanNet's
intrinsics, the camera path and one real synthetic scene rendered from its path."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from lgseg.synthetic.camera import (
    _box_distance, camera_path, instance_boxes, look_rotation, scannet_intrinsics,
)
from lgseg.synthetic.render import Camera, interpolate, nearest_vertex, rasterize


def _K(fx, fy, cx, cy, size=4):
    k = np.eye(size)
    k[0, 0], k[1, 1], k[0, 2], k[1, 2] = fx, fy, cx, cy
    return k


def _rigid(rng):
    """A random world -> camera rigid motion (proper rotation, translation)."""
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    e = np.eye(4)
    e[:3, :3], e[:3, 3] = q, rng.normal(size=3)
    return e


def _to_world(cam_points, world_to_camera):
    inv = np.linalg.inv(world_to_camera)
    return cam_points @ inv[:3, :3].T + inv[:3, 3]


def _rays(cam: Camera):
    """(H, W, 3) camera-frame rays through the pixel centres, z = 1."""
    j, i = np.mgrid[0:cam.height, 0:cam.width].astype(np.float64)
    return np.stack([(i - cam.cx) / cam.fx, (j - cam.cy) / cam.fy, np.ones_like(i)], axis=-1)


def _inside_closed(p, a, b, c):
    """Brute force: is 2D point p in the closed triangle abc (either winding)?"""
    def cross(o, s, t):
        return (s[0] - o[0]) * (t[1] - o[1]) - (s[1] - o[1]) * (t[0] - o[0])
    d = (cross(a, b, p), cross(b, c, p), cross(c, a, p))
    return all(x >= 0 for x in d) or all(x <= 0 for x in d)


# ---------------------------------------------------------------- coverage


@pytest.mark.parametrize("tilted", [False, True])
@pytest.mark.parametrize("winding", [(0, 1, 2), (0, 2, 1)])
def test_a_triangle_covers_exactly_the_pixel_centres_inside_it(tilted, winding):
    cam = Camera(_K(30.0, 28.0, 19.3, 14.6), 40, 30, np.eye(4))
    uv = np.array([[2.3, 3.7], [36.1, 9.2], [12.8, 27.4]])  # pixel coordinates of the corners
    z = np.array([1.0, 2.5, 1.6]) if tilted else np.full(3, 2.0)
    verts = np.column_stack([(uv[:, 0] - cam.cx) / cam.fx * z, (uv[:, 1] - cam.cy) / cam.fy * z, z])
    r = rasterize(verts, np.array([winding]), cam)
    proj = np.column_stack([cam.fx * verts[:, 0] / z + cam.cx, cam.fy * verts[:, 1] / z + cam.cy])
    want = np.array([[_inside_closed((i, j), *proj) for i in range(cam.width)] for j in range(cam.height)])
    assert want.sum() > 100
    np.testing.assert_array_equal(r.mask, want)
    np.testing.assert_array_equal(r.face[want], 0)
    assert (r.depth[~want] == 0).all() and (r.bary[~want] == 0).all()
    assert (r.depth[want] >= z.min() - 1e-6).all() and (r.depth[want] <= z.max() + 1e-6).all()


def test_pixel_centres_on_the_edges_are_covered():
    # corners exactly on pixel centres (binary fractions: the projection is exact), edges through
    # rows of pixel centres; the closed triangle holds them, counted by hand in integers
    cam = Camera(_K(16.0, 16.0, 2.0, 1.0, size=3), 24, 20, np.eye(4))
    corners = np.array([[2, 1], [22, 1], [2, 17]])  # right angle at (2, 1), legs 20 and 16 pixels
    verts = np.column_stack([(corners[:, 0] - 2) / 16, (corners[:, 1] - 1) / 16, np.ones(3)])
    r = rasterize(verts, np.array([[0, 1, 2]]), cam)
    j, i = np.mgrid[0:20, 0:24]
    want = (i >= 2) & (j >= 1) & (16 * (i - 2) + 20 * (j - 1) <= 320)  # the hypotenuse, integer test
    np.testing.assert_array_equal(r.mask, want)
    assert r.mask[1, 2] and r.mask[1, 22] and r.mask[17, 2]  # the corners themselves


# ---------------------------------------------------------------- depth


def _quad(z_of, half=50.0):
    """A large quad (2 faces) far beyond the image border, corners (x, y, z_of(x, y))."""
    xy = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
    return np.column_stack([xy, [z_of(x, y) for x, y in xy]]), np.array([[0, 1, 2], [0, 2, 3]])


@pytest.mark.parametrize("z", [1.7, 2.0, 3.25, 0.3])
def test_depth_on_a_fronto_parallel_plane_is_exactly_its_z(z):
    cam = Camera(scannet_intrinsics(64, 48, "depth"), 64, 48, np.eye(4))
    verts, faces = _quad(lambda x, y: z, half=20 * z)
    r = rasterize(verts, faces, cam)
    assert r.mask.all()
    np.testing.assert_array_equal(r.depth, np.float32(z))


def test_depth_on_a_tilted_plane_is_the_ray_plane_intersection():
    rng = np.random.default_rng(3)
    cam = Camera(scannet_intrinsics(80, 60, "color"), 80, 60, _rigid(rng))
    # plane 0.3 x - 0.2 y + z = 2.5 in the camera frame, meshed as one quad, seen from a random pose
    cam_verts, faces = _quad(lambda x, y: 2.5 - 0.3 * x + 0.2 * y, half=3.0)
    r = rasterize(_to_world(cam_verts, cam.world_to_camera), faces, cam)
    assert r.mask.all()
    rays = _rays(cam)
    t = 2.5 / (rays @ np.array([0.3, -0.2, 1.0]))  # depth = t, as the rays have z = 1
    assert np.abs(r.depth - t).max() < 1e-5
    assert np.ptp(t) > 0.3  # the plane is far from fronto-parallel


def test_the_nearer_of_two_overlapping_triangles_wins():
    cam = Camera(_K(20.0, 20.0, 15.5, 15.5), 32, 32, np.eye(4))
    # screen: the near face holds u + v <= 35 (and u, v >= 5.5), the far one u + v >= 25 (u, v <= 23.5)
    near_tri = np.array([[-1.0, -1.0, 2.0], [1.4, -1.0, 2.0], [-1.0, 1.4, 2.0]])
    far_tri = np.array([[1.2, 1.2, 3.0], [-2.1, 1.2, 3.0], [1.2, -2.1, 3.0]])
    verts = np.concatenate([near_tri, far_tri])
    for faces, near_id in ((np.array([[0, 1, 2], [3, 4, 5]]), 0), (np.array([[3, 4, 5], [0, 1, 2]]), 1)):
        r = rasterize(verts, faces, cam)
        alone = [rasterize(verts, faces[k:k + 1], cam).mask for k in range(2)]
        both = alone[0] & alone[1]
        assert both.sum() > 100 and (alone[0] & ~alone[1]).any() and (alone[1] & ~alone[0]).any()
        np.testing.assert_array_equal(r.face[both], near_id)  # whatever the drawing order
        np.testing.assert_array_equal(r.depth[both], np.float32(2.0))
        np.testing.assert_array_equal(r.mask, alone[0] | alone[1])
        far_only = alone[1 - near_id] & ~alone[near_id]
        np.testing.assert_array_equal(r.depth[far_only], np.float32(3.0))


# ---------------------------------------------------------------- barycentrics


def test_perspective_correct_barycentrics_reproduce_a_linear_function_of_position():
    cam = Camera(_K(60.0, 60.0, 31.5, 23.5), 64, 48, np.eye(4))
    verts = np.array([[-1.2, -0.8, 1.0], [2.5, -1.5, 4.0], [-0.5, 2.0, 2.5]])
    faces = np.array([[0, 1, 2]])
    r = rasterize(verts, faces, cam)
    a, b = np.array([0.7, -1.3, 2.1]), 0.4
    got = interpolate(r, faces, verts @ a + b)[..., 0]
    surface = _rays(cam) * r.depth[..., None].astype(np.float64)  # the point each pixel sees
    m = r.mask
    assert m.sum() > 300
    np.testing.assert_allclose(got[m], (surface @ a + b)[m], atol=2e-5)
    np.testing.assert_allclose(r.bary.sum(axis=2)[m], 1.0, atol=1e-6)
    assert (r.bary[m] >= 0).all()
    # the positions themselves, and screen-space (affine) interpolation would be far off
    np.testing.assert_allclose(interpolate(r, faces, verts)[m], surface[m], atol=1e-5)
    proj = verts[:, :2] / verts[:, 2:] * 60 + [31.5, 23.5]
    j, i = np.nonzero(m)
    lam = np.linalg.solve(np.vstack([proj.T, np.ones(3)]), np.vstack([i, j, np.ones_like(i)]))
    assert np.abs(lam.T @ (verts @ a + b) - (surface @ a + b)[m]).max() > 0.3


def test_nearest_vertex_and_interpolate_by_hand():
    # corners at pixels (0, 0), (8, 0), (0, 8) of a fronto-parallel face: weights (1 - (i+j)/8, i/8, j/8)
    cam = Camera(_K(8.0, 8.0, 0.0, 0.0), 10, 10, np.eye(4))
    verts = np.zeros((8, 3))
    verts[[5, 2, 7]] = [[0, 0, 1], [1, 0, 1], [0, 1, 1]]
    faces = np.array([[5, 2, 7]])
    r = rasterize(verts, faces, cam)
    j, i = np.mgrid[0:10, 0:10]
    inside = i + j <= 8
    np.testing.assert_array_equal(r.mask, inside)
    want = np.stack([1 - (i + j) / 8, i / 8, j / 8], axis=-1) * inside[..., None]
    np.testing.assert_array_equal(r.bary, want.astype(np.float32))
    colors = np.zeros((8, 3), np.uint8)
    colors[[5, 2, 7]] = [[255, 0, 0], [0, 255, 0], [0, 0, 255]]
    img = interpolate(r, faces, colors)
    assert img.dtype == np.float32 and img.shape == (10, 10, 3)
    np.testing.assert_array_equal(img[4, 2], [63.75, 63.75, 127.5])  # row 4, column 2
    np.testing.assert_array_equal(img[9, 9], [0, 0, 0])
    nv = nearest_vertex(r, faces)
    assert nv.dtype == np.int32
    assert nv[1, 1] == 5 and nv[1, 6] == 2 and nv[6, 1] == 7 and nv[9, 9] == -1
    assert nv[0, 4] == 5  # weights (0.5, 0.5, 0): the first of the face's vertices
    labels = np.arange(8) * 10
    np.testing.assert_array_equal(np.where(nv >= 0, labels[nv], -1)[[1, 1, 6], [1, 6, 1]], [50, 20, 70])


# ---------------------------------------------------------------- culling and watertightness


def test_faces_behind_the_camera_or_crossing_the_near_plane_are_dropped():
    cam = Camera(_K(20.0, 20.0, 15.5, 11.5), 32, 24, np.eye(4))
    verts = np.array([
        [-1, -1, -2.0], [1, -1, -2.0], [0, 1, -2.0],     # 0: behind the camera
        [-1, -1, 0.01], [1, -1, 2.0], [0, 1, 2.0],       # 1: one corner nearer than near
        [-1, -1, 0.0], [1, -1, 2.0], [0, 1, 2.0],        # 2: one corner in the camera plane
        [-1, -1, -1.0], [1, -1, 3.0], [0, 1, 3.0],       # 3: crossing the camera plane
        [-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0, 0.5, 2.0],  # 4: a normal face
    ])
    faces = np.arange(15).reshape(5, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by zero or invalid casts either
        r = rasterize(verts, faces, cam)
        empty = rasterize(verts, faces[:4], cam)
    assert set(np.unique(r.face)) == {-1, 4} and r.stats["faces_kept"] == 1
    assert not empty.mask.any() and (empty.depth == 0).all()
    assert not rasterize(verts[:3], faces[:1], cam).mask.any()
    assert not rasterize(np.zeros((0, 3)), np.zeros((0, 3), int), cam).mask.any()
    # near moves the cut: corner 3 at 1 cm counts once near is below it
    assert 1 in rasterize(verts, faces, cam, near=0.005).face


def _box_mesh(n, merged=True):
    """The surface of the cube [-1, 1]^3, an n x n grid of quads (2 faces each) per side;
    merged: the sides share their border vertices (else duplicated, same coordinates)."""
    g = np.linspace(-1, 1, n + 1)
    a, b = np.meshgrid(g, g, indexing="ij")
    verts, faces = [], []
    for axis in range(3):
        for side in (-1.0, 1.0):
            p = np.zeros((n + 1, n + 1, 3))
            p[..., axis] = side
            p[..., (axis + 1) % 3], p[..., (axis + 2) % 3] = a, b
            idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1) + sum(len(v) for v in verts)
            q = np.stack([idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]], axis=-1).reshape(-1, 4)
            faces.append(np.concatenate([q[:, [0, 1, 2]], q[:, [0, 2, 3]]]))
            verts.append(p.reshape(-1, 3))
    verts, faces = np.concatenate(verts), np.concatenate(faces)
    if merged:
        verts, inv = np.unique(verts, axis=0, return_inverse=True)
        faces = inv.reshape(-1)[faces]
    return verts, faces


@pytest.mark.parametrize("merged", [True, False])
def test_a_closed_box_seen_from_inside_has_no_empty_pixel(merged):
    verts, faces = _box_mesh(8, merged)
    # axis-aligned view whose grid lines and diagonals pass exactly through pixel centres
    # (u = 20 - 16 y on the side x = 1), then random orientations and positions
    look = np.eye(4)
    look[:3, :3] = look_rotation(0.0, 0.0).T
    views = [Camera(_K(16.0, 16.0, 20.0, 20.0), 41, 41, look)]
    rng = np.random.default_rng(0)
    for _ in range(4):
        e = _rigid(rng)
        e[:3, 3] = -e[:3, :3] @ rng.uniform(-0.3, 0.3, 3)  # the camera somewhere near the middle
        views.append(Camera(scannet_intrinsics(64, 48, "depth"), 64, 48, e))
    for cam in views:
        r = rasterize(verts, faces, cam)
        assert r.mask.all(), f"{(~r.mask).sum()} empty pixels"
        # depth: where the ray leaves the box
        origin = np.linalg.inv(cam.world_to_camera)[:3, 3]
        d = _rays(cam) @ cam.world_to_camera[:3, :3]  # world directions (z_cam = 1)
        with np.errstate(divide="ignore"):
            t = np.where(d > 0, (1 - origin) / d, np.where(d < 0, (-1 - origin) / d, np.inf)).min(axis=-1)
        assert np.abs(r.depth - t).max() < 1e-5


def test_a_pixel_centre_on_a_shared_edge_in_floating_point_is_covered():
    # pairs of faces sharing a long edge a-b through (up to rounding) the centre of pixel (1, 1)
    # of a 3 x 3 image; fx = 1, cx = 0, z = 1: the screen coordinates are the vertex coordinates.
    # Each face evaluating the edge function in its own vertex order leaves ~0.7 % of such
    # centres outside both faces (a crack); the canonical order never does.
    rng = np.random.default_rng(5)
    cam = Camera(_K(1.0, 1.0, 0.0, 0.0), 3, 3, np.eye(4))
    p = np.array([1.0, 1.0])
    faces = np.array([[0, 1, 2], [1, 0, 3]])  # the shared edge in opposite directions
    empty = 0
    for _ in range(1500):
        d = rng.normal(size=2)
        d /= np.linalg.norm(d)
        a = p - rng.uniform(100, 300) * d
        b = a + (p - a) * rng.uniform(1.5, 3.0)
        side = 5 * np.array([-d[1], d[0]])
        mid = (a + b) / 2
        verts = np.column_stack([np.stack([a, b, mid + side, mid - side]), np.ones(4)])
        empty += not rasterize(verts, faces, cam, near=0.5).mask[1, 1]
    assert empty == 0, f"{empty} cracks"


def _ray_cast(verts_cam, faces, cam):
    """Brute-force reference, one pixel at a time: nearest hit (Moller-Trumbore in 3D) along the
    ray through the pixel centre: depth, face, the two nearest depths, the hit's edge margin."""
    rays = _rays(cam).reshape(-1, 3)
    a, b, c = (verts_cam[faces[:, k]] for k in range(3))
    e1, e2 = b - a, c - a
    depth = np.zeros(len(rays))
    face = np.full(len(rays), -1)
    gap = np.full(len(rays), np.inf)
    margin = np.full(len(rays), np.inf)
    for p, d in enumerate(rays):
        h = np.cross(d, e2)
        det = (e1 * h).sum(1)
        s = -a
        uu = (s * h).sum(1) / det
        qv = np.cross(s, e1)
        vv = (qv @ d) / det
        t = (e2 * qv).sum(1) / det
        m = np.minimum(np.minimum(uu, vv), 1 - uu - vv)
        hit = (m >= 0) & (t > 0)
        if hit.any():
            order = np.flatnonzero(hit)[np.argsort(t[hit], kind="stable")]
            depth[p], face[p] = t[order[0]], order[0]
            gap[p] = t[order[1]] - t[order[0]] if len(order) > 1 else np.inf
        margin[p] = np.abs(m).min()  # how close the ray passes to some edge
    shape = (cam.height, cam.width)
    return depth.reshape(shape), face.reshape(shape), gap.reshape(shape), margin.reshape(shape)


def test_agrees_with_brute_force_ray_casting_on_a_random_mesh():
    rng = np.random.default_rng(11)
    cam = Camera(scannet_intrinsics(48, 36, "depth"), 48, 36, _rigid(rng))
    verts_cam = np.column_stack([rng.uniform(-1.5, 1.5, (40, 2)), rng.uniform(1.0, 4.0, 40)])
    faces = np.array([rng.choice(40, 3, replace=False) for _ in range(35)])
    r = rasterize(_to_world(verts_cam, cam.world_to_camera), faces, cam)
    depth, face, gap, margin = _ray_cast(verts_cam, faces, cam)
    edge = margin < 1e-9  # a pixel centre on an edge: coverage may go either way (none expected)
    np.testing.assert_array_equal(r.mask[~edge], (face >= 0)[~edge])
    both = r.mask & (face >= 0)
    assert both.sum() > 0.5 * r.mask.size
    np.testing.assert_allclose(r.depth[both], depth[both], rtol=1e-6)
    decided = both & (gap > 1e-6)
    np.testing.assert_array_equal(r.face[decided], face[decided])  # differs only at exact ties
    assert (both & ~decided).sum() <= 2


def test_very_large_faces_are_rendered_in_chunks(monkeypatch):
    from lgseg.synthetic import render
    cam = Camera(scannet_intrinsics(64, 48, "depth"), 64, 48, np.eye(4))
    verts, faces = _quad(lambda x, y: 2.0 + 0.1 * x, half=5.0)
    whole = rasterize(verts, faces, cam)
    monkeypatch.setattr(render, "_CHUNK", 100)  # fewer candidates per chunk than one face has
    chunked = rasterize(verts, faces, cam)
    assert whole.mask.all()
    for a, b in ((whole.depth, chunked.depth), (whole.face, chunked.face), (whole.bary, chunked.bary)):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- camera


def test_scannet_intrinsics_scale_exactly():
    f = 571.623718
    np.testing.assert_array_equal(scannet_intrinsics(640, 480, "depth"),
                                  [[f, 0, 319.5, 0], [0, f, 239.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    np.testing.assert_array_equal(scannet_intrinsics(1296, 968, "color")[:2, :3],
                                  [[1170.187988, 0, 647.75], [0, 1170.187988, 483.75]])
    np.testing.assert_array_equal(scannet_intrinsics(320, 240, "depth")[:2, :3],
                                  [[285.811859, 0, 159.75], [0, 285.811859, 119.75]])
    np.testing.assert_array_equal(scannet_intrinsics(648, 242, "color")[:2, :3],
                                  [[585.093994, 0, 323.875], [0, 292.546997, 120.9375]])
    k = scannet_intrinsics(640, 480, "color")  # colour intrinsics at the depth resolution
    assert k[0, 0] == pytest.approx(1170.187988 * 640 / 1296, abs=1e-12)
    assert k[1, 1] == pytest.approx(1170.187988 * 480 / 968, abs=1e-12)
    assert k[1, 2] == pytest.approx(483.75 * 480 / 968, abs=1e-12)
    with pytest.raises(ValueError):
        scannet_intrinsics(640, 480, "infrared")
    cam = Camera(k, 640, 480, np.eye(4))
    assert cam.fx == k[0, 0] and cam.cy == k[1, 2]
    assert Camera(k[:3, :3], 640, 480, np.eye(4)).cx == k[0, 2]


def test_camera_path_poses_are_proper_inside_the_room_and_look_slightly_down():
    lo, hi = np.array([0.0, 0.0, 0.0]), np.array([4.6, 3.4, 1.25])
    poses = camera_path(lo, hi, 12, np.random.default_rng(7))
    assert len(poses) == 12
    centre = (lo + hi) / 2
    k = scannet_intrinsics(640, 480, "depth")
    top = np.array([[(i - k[0, 2]) / k[0, 0], -k[1, 2] / k[1, 1], 1] for i in (0, 639)])  # the top row's ends
    for p in poses:
        R, t = p[:3, :3], p[:3, 3]
        assert p.shape == (4, 4) and (p[3] == [0, 0, 0, 1]).all()
        np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0, abs=1e-12)
        assert (t > lo).all() and (t < hi).all()
        assert 0.7 * 1.25 < t[2] < 0.8 * 1.25
        forward = R[:, 2]
        assert 20 <= math.degrees(math.asin(-forward[2])) <= 30  # pitch down
        to_centre = (centre - t)[:2]
        cos = forward[:2] @ to_centre / np.linalg.norm(forward[:2]) / np.linalg.norm(to_centre)
        assert cos > math.cos(math.radians(15))  # towards the centre, across the room
        assert abs(R[2, 0]) < math.sin(math.radians(1))  # nearly level: the right axis horizontal
        assert ((top @ R.T)[:, 2] < 0).all()  # even the top image row looks down (there is no ceiling)
    again = camera_path(lo, hi, 12, np.random.default_rng(7))
    assert all(np.array_equal(a, b) for a, b in zip(poses, again))
    other = camera_path(lo, hi, 12, np.random.default_rng(8))
    assert not np.array_equal(poses[0], other[0])
    angles = np.unwrap([math.atan2(*(p[1::-1, 3] - centre[1::-1])) for p in poses])
    assert abs(angles[-1] - angles[0]) > math.pi  # walking around the room


def test_camera_path_keeps_clear_of_obstacles():
    lo, hi = np.zeros(3), np.array([4.0, 4.0, 1.25])
    free = camera_path(lo, hi, 8, np.random.default_rng(1))
    # a box around the first camera, another far from every camera
    p = free[0][:3, 3]
    boxes = np.array([[p - 0.2, p + 0.2], [[1.9, 1.9, 0.0], [2.1, 2.1, 0.3]]])
    moved = camera_path(lo, hi, 8, np.random.default_rng(1), obstacles=boxes)
    assert _box_distance(moved[0][None, :3, 3], boxes[:1])[0] >= 0.25
    for a, b in zip(free[1:], moved[1:]):
        if _box_distance(a[None, :3, 3], boxes)[0] >= 0.25:
            np.testing.assert_array_equal(a, b)  # frames that were clear are unchanged
    pts = np.array([[0, 0, 0], [1, 2, 3], [5, 5, 5], [-1, 4, 0]], float)
    np.testing.assert_array_equal(instance_boxes(pts, [0, 0, -1, 2])[[0, 2]],
                                  [[[0, 0, 0], [1, 2, 3]], [[-1, 4, 0], [-1, 4, 0]]])


# ---------------------------------------------------------------- a real synthetic scene


def test_a_synthetic_scene_rendered_from_its_camera_path():
    from lgseg.synthetic import write
    from lgseg.synthetic.scene import _build_scene

    dealt = write.deal(10, 0, write.OBJECTS, write.TRAIN_MIN, write.VAL_MIN)
    sc = _build_scene(np.random.default_rng([0, 1]), 0.04, 0.004, dealt[1])
    A = sc.align
    room = sc.verts.astype(np.float64) @ A[:3, :3].T + A[:3, 3]  # axis-aligned, floor at z = 0
    lo, hi = room.min(axis=0), room.max(axis=0)
    boxes = []
    for o in sc.objects:  # the furniture's axis-aligned boxes, as instance_boxes would give them
        c, s = abs(math.cos(o.yaw)), abs(math.sin(o.yaw))
        half = np.array([c * o.size[0] + s * o.size[1], s * o.size[0] + c * o.size[1]]) / 2
        boxes.append([[*(o.center[:2] - half), o.center[2]], [*(o.center[:2] + half), o.center[2] + o.size[2]]])
    poses = camera_path(lo, hi, 4, np.random.default_rng([0, 1, 7]), obstacles=boxes)
    W, H = 160, 120
    k = scannet_intrinsics(W, H, "depth")
    diagonal = np.linalg.norm(hi - lo)
    for pose in poses:
        # as ScanNet stores it: the pose in the scan frame, the mesh as written
        r = rasterize(sc.verts, sc.faces, Camera.from_pose(k, W, H, np.linalg.inv(A) @ pose))
        assert r.mask.mean() > 0.95
        assert (r.depth[r.mask] > 0.05).all() and (r.depth <= diagonal).all()
        # back-projected pixels land on the surface the barycentrics name
        cam_pts = _rays(Camera(k, W, H, np.eye(4))) * r.depth[..., None]
        world = cam_pts @ pose[:3, :3].T + pose[:3, 3]
        m = r.mask
        np.testing.assert_allclose(interpolate(r, sc.faces, room)[m], world[m], atol=2e-3)
        colors = interpolate(r, sc.faces, sc.colors)
        assert colors.min() >= 0 and colors.max() <= 255 and colors[m].std() > 10
        nv = nearest_vertex(r, sc.faces)
        assert (nv[m] >= 0).all() and (nv[~m] == -1).all() and nv.max() < len(sc.verts)
        assert np.linalg.norm(room[nv[m]] - world[m], axis=1).max() < 0.1  # a vertex of the face seen
