"""Cameras of the synthetic world: ScanNet's intrinsics at any image size and a camera path
through a room.

Conventions (shared with ``lgseg.synthetic.render``; the image side depends on them):

* Camera frame = OpenCV / ScanNet: x right, y down, z forward (depth = z).  A camera point
  (x, y, z) projects to u = fx * x / z + cx, v = fy * y / z + cy, and pixel (column i, row j) has
  its centre at (u, v) = (i, j), as OpenScene's projection assumes when it rounds u, v.
* Intrinsics as ScanNet writes them: 4x4 [[fx, 0, cx, 0], [0, fy, cy, 0], [0, 0, 1, 0],
  [0, 0, 0, 1]] (``intrinsic/intrinsic_{color,depth}.txt``).
* Poses are camera -> world 4x4 matrices (``pose/<frame>.txt``).  ``camera_path`` returns them in
  the room's axis-aligned frame (floor at z = 0); ScanNet's poses are in the raw scan frame, so
  a pose to write for a scene with axisAlignment A is ``inv(A) @ pose`` (and the scan-frame mesh
  is seen by world_to_camera = ``inv(pose) @ A``).
"""

from __future__ import annotations

import math

import numpy as np

# ScanNet's example calibration (scene0709_00.txt; the synthetic scenes' .txt files write it):
# (width, height, fx, fy, cx, cy) of the colour and the depth sensor.  Colour and depth frames
# are aligned (same viewpoint), only their resolution and intrinsics differ.
SCANNET_SENSORS = {
    "color": (1296, 968, 1170.187988, 1170.187988, 647.75, 483.75),
    "depth": (640, 480, 571.623718, 571.623718, 319.5, 239.5),
}

# Camera path constants, chosen for the demo rooms (3-5.5 m by 3-4.5 m in the first 20 rooms of
# the demo seed, walls 1.2-1.3 m high since heights above 0.4 m are compressed, furniture along
# the walls and free-standing anywhere 0.25 m from them, no ceiling mesh):
RADIUS_FRACTION = 0.45   # the ellipse's semi-axes as a fraction of the room's half-extents: the
                         # camera 0.8-1.5 m from the walls, in front of the wall furniture, the
                         # far wall 2-4.5 m away, so a frame sees a good part of the room
HEIGHT_FRACTION = 0.75   # camera height over the floor as a fraction of the room's height: a
                         # scanner held at chest height, in proportion to the compressed walls
PITCH_DEG = 26.0         # mean downward pitch.  ScanNet's vertical half field of view is 22.8
                         # deg (depth; colour 22.5), so a pitch above that (plus the roll's effect)
                         # makes even the top image row look slightly down: it meets walls or
                         # objects below the wall tops, never the missing ceiling, while the
                         # image's lower part sees the floor and the furniture
PITCH_JITTER_DEG = 2.0   # pitch uniform in PITCH_DEG +- this: 24-28 deg
YAW_JITTER_DEG = 12.0    # yaw uniform around the direction to the room's centre: frames still
                         # look across the room (the far walls in view), each at its own part
ROLL_JITTER_DEG = 0.5    # a hand-held camera is never quite level; small enough that the top
                         # corners stay below the horizon (they rise by ~0.56 sin(roll))
POS_JITTER = 0.05        # metres, horizontal position noise around the ellipse
HEIGHT_JITTER = 0.02     # metres, height noise
TRIES = 32               # candidate positions per frame (all drawn, used with ``obstacles``):
                         # the first is the nominal one on the ellipse, the others around it
SPREAD_FRACTIONS = (0.1, 0.8)  # radius fractions (of the half-extents) of the other candidates
CLEARANCE = 0.25         # metres a camera keeps from every obstacle box: 5x the rasterizer's
                         # default near plane; without obstacles about 6 % of the demo's cameras
                         # stand in a piece of furniture or within 5 cm of it (10 of 160)


def scannet_intrinsics(width: int, height: int, sensor: str = "color") -> np.ndarray:
    """(4, 4) float64 intrinsics of ScanNet's ``sensor`` ("color": 1296 x 968, "depth":
    640 x 480) scaled to ``width`` x ``height``: fx and cx times width / W0, fy and cy times
    height / H0 (as ScanNet-based pipelines rescale them; the half-pixel shift of the centre
    convention is not corrected, like theirs)."""
    if sensor not in SCANNET_SENSORS:
        raise ValueError(f"sensor must be one of {sorted(SCANNET_SENSORS)}, got {sensor!r}")
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width} x {height}")
    w0, h0, fx, fy, cx, cy = SCANNET_SENSORS[sensor]
    sx, sy = width / w0, height / h0
    k = np.eye(4)
    k[0, 0], k[0, 2] = fx * sx, cx * sx
    k[1, 1], k[1, 2] = fy * sy, cy * sy
    return k


def look_rotation(yaw: float, pitch: float, roll: float = 0.0) -> np.ndarray:
    """(3, 3) camera -> world rotation of an OpenCV camera (x right, y down, z forward) in a
    z-up world: forward at azimuth ``yaw`` (radians from +x towards +y) tilted ``pitch``
    radians downward, then turned ``roll`` radians about the forward axis (the right axis
    towards the down axis for roll > 0).  Columns: right, down, forward; a proper rotation."""
    cp, sp = math.cos(pitch), math.sin(pitch)
    forward = np.array([cp * math.cos(yaw), cp * math.sin(yaw), -sp])
    right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])  # forward x up, normalised: horizontal
    down = np.cross(forward, right)                           # right x down = forward
    cr, sr = math.cos(roll), math.sin(roll)
    right, down = cr * right + sr * down, -sr * right + cr * down
    return np.stack([right, down, forward], axis=1)


def instance_boxes(points, instance) -> np.ndarray:
    """(M, 2, 3) axis-aligned boxes (min, max corner) of the points of each instance id >= 0
    (ids 0..M-1; an id without points gets an empty box, min > max): the ``obstacles`` of
    ``camera_path`` from a scene's instance labels, in the frame of ``points``."""
    points = np.asarray(points, dtype=np.float64)
    instance = np.asarray(instance)
    m = instance >= 0
    n = int(instance[m].max()) + 1 if m.any() else 0
    lo, hi = np.full((n, 3), np.inf), np.full((n, 3), -np.inf)
    np.minimum.at(lo, instance[m], points[m])
    np.maximum.at(hi, instance[m], points[m])
    return np.stack([lo, hi], axis=1)


def _box_distance(pos: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(C,) Euclidean distance of each position (C, 3) to the nearest box (M, 2, 3); 0 inside."""
    if not len(boxes):
        return np.full(len(pos), np.inf)
    gap = np.maximum(np.maximum(boxes[None, :, 0] - pos[:, None], pos[:, None] - boxes[None, :, 1]), 0.0)
    dist = np.sqrt((gap ** 2).sum(axis=2))
    dist[:, ~(boxes[:, 0] <= boxes[:, 1]).all(axis=1)] = np.inf  # empty boxes block nothing
    return dist.min(axis=1)


def camera_path(room_min, room_max, num_frames: int, rng: np.random.Generator, *,
                obstacles=None, clearance: float = CLEARANCE) -> list[np.ndarray]:
    """``num_frames`` camera -> world poses (4, 4) in the room's axis-aligned frame for a walk
    around the room box ``room_min``..``room_max``: positions on an ellipse about the room's
    centre (semi-axes RADIUS_FRACTION of the half-extents, random starting angle, evenly spaced,
    jittered by POS_JITTER) at HEIGHT_FRACTION of the room's height, each camera looking across
    the room towards its centre and beyond (yaw jittered by YAW_JITTER_DEG) with a downward
    pitch of PITCH_DEG +- PITCH_JITTER_DEG and a roll of at most ROLL_JITTER_DEG, so a frame sees
    the far walls, the furniture and the floor.

    ``obstacles`` (M, 2, 3), optional: boxes (min, max corner, e.g. ``instance_boxes`` of the
    furniture) the cameras keep ``clearance`` metres from: a frame whose nominal position is too
    close takes the first of TRIES - 1 other candidates around it that is clear (the clearest,
    if none is).  The candidates are drawn either way, so the poses do not depend on whether
    obstacles are given unless one is in the way.

    ``rng`` supplies all randomness: seed it apart from the scene's generator, so the scenes
    themselves stay byte-identical.  Every rotation is proper (R^T R = I, det +1) and every
    position strictly inside the room box."""
    lo, hi = np.asarray(room_min, dtype=np.float64), np.asarray(room_max, dtype=np.float64)
    if lo.shape != (3,) or hi.shape != (3,) or not (hi > lo).all():
        raise ValueError(f"need room_min < room_max, 3 values each, got {room_min}, {room_max}")
    if num_frames < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    boxes = None if obstacles is None else np.asarray(obstacles, dtype=np.float64).reshape(-1, 2, 3)
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    margin = np.minimum(0.05, 0.25 * half)  # strictly inside, whatever the room's size
    start = rng.uniform(0, 2 * math.pi)
    sector = math.pi / max(num_frames, 1)  # half the angle between consecutive frames
    poses = []
    for k in range(num_frames):  # a handful of frames: per-frame scalar maths reads best
        angle = start + 2 * sector * k + np.r_[0.0, rng.uniform(-sector, sector, TRIES - 1)]
        radius = np.r_[RADIUS_FRACTION, rng.uniform(*SPREAD_FRACTIONS, TRIES - 1)]
        xy = (centre[:2] + radius[:, None] * half[:2] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
              + rng.uniform(-POS_JITTER, POS_JITTER, (TRIES, 2)))
        z = lo[2] + HEIGHT_FRACTION * (hi[2] - lo[2]) + rng.uniform(-HEIGHT_JITTER, HEIGHT_JITTER, TRIES)
        cand = np.clip(np.column_stack([xy, z]), lo + margin, hi - margin)
        pick = 0
        if boxes is not None:
            dist = _box_distance(cand, boxes)
            clear = np.flatnonzero(dist >= clearance)
            pick = int(clear[0]) if len(clear) else int(np.argmax(dist))
        pos = cand[pick]
        to_centre = centre[:2] - pos[:2]
        yaw = math.atan2(to_centre[1], to_centre[0]) if np.any(to_centre) else float(angle[pick]) + math.pi
        yaw += math.radians(rng.uniform(-YAW_JITTER_DEG, YAW_JITTER_DEG))
        pitch = math.radians(PITCH_DEG + rng.uniform(-PITCH_JITTER_DEG, PITCH_JITTER_DEG))
        roll = math.radians(rng.uniform(-ROLL_JITTER_DEG, ROLL_JITTER_DEG))
        pose = np.eye(4)
        pose[:3, :3] = look_rotation(yaw, pitch, roll)
        pose[:3, 3] = pos
        poses.append(pose)
    return poses
