"""Reader for ScanNet v2 scans in their released layout (``lgseg.scannet.layout`` names the files).

A scene folder holds the mesh (xyz, rgb, faces), the segmentation (segment id per vertex), the
aggregation (objects as groups of segments with a raw category; absent for test scenes) and the
metadata (``key = value`` lines with the ``axisAlignment`` 4x4 matrix). ``read_scene`` returns the
vertices and, when asked, their normals (from the mesh's faces, as Pointcept's preprocessing
computes them) in the axis-aligned frame. Every problem is an InputError naming the scene and file.
Vertex coordinates follow the processed layout's one rule (``lgseg.scene_io.check_coordinates``:
finite, within 1 km), as read and again once axis-aligned; the axisAlignment matrix must be finite.
Every id (a segment of the segs or aggregation file, a segGroup's id, a tsv row's id) is an integer
in 0..2**31 - 1 (``ID_MAX``: the int32 of the label arrays it ends up in); a segGroup id is one object's,
so two groups may not share one.
Only regular files are read (a FIFO would block forever, /dev/zero fill the memory), each within
a bound on its size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from plyfile import PlyData, PlyParseError

from lgseg.errors import InputError
from lgseg.fileio import open_regular, read_regular
from lgseg.scannet.layout import find_scene_dir, scene_file
from lgseg.scene_io import check_coordinates

MiB = 1 << 20
META_LIMIT = MiB  # <scene>.txt: a dozen key = value lines (~1 KB)
LABELS_LIMIT = 16 * MiB  # the official labels tsv is ~0.2 MB
MESH_LIMIT = 1 << 30  # ScanNet's decimated _vh_clean_2 meshes are tens of MB at most
JSON_BASE = MiB  # segs/aggregation JSON: this much besides ...
SEGS_PER_VERTEX = 16  # ... one segment id (<= 7 digits and ", ") per mesh vertex
AGG_PER_SEGMENT = 128  # ... one group entry (id, label, ...) and list item per segment
# segGroup ids become int32 instance ids and tsv ids int32 raw ids; segment ids (ScanNet's are vertex
# numbers, < 1e6) take the same bound, so one rule holds for every id of a scan
ID_MAX = int(np.iinfo(np.int32).max)
MESH_FIX = "re-download or regenerate this file"

@dataclass
class SegGroup:
    id: int
    label: str
    segments: np.ndarray  # segment ids (int64)


@dataclass
class RawScene:
    scene_id: str
    coord: np.ndarray  # (N, 3) float32, axis-aligned when the meta file has axisAlignment
    color: np.ndarray  # (N, 3) uint8
    faces: np.ndarray  # (F, 3) int32
    seg_indices: np.ndarray | None  # (N,) int64 segment id per vertex
    seg_groups: list[SegGroup] | None  # None for unannotated (test) scenes
    axis_alignment: np.ndarray | None  # (4, 4) float64
    meta: dict[str, str]
    segment_ids: np.ndarray | None = None  # sorted unique segment ids
    normal: np.ndarray | None = None  # (N, 3) float32 unit vertex normals in coord's frame, when asked

    @property
    def num_vertices(self) -> int:
        return len(self.coord)


def read_meta(path: Path, scene: str | None = None) -> tuple[dict[str, str], np.ndarray | None]:
    """Parse ``key = value`` lines; return them and the axisAlignment matrix (or None)."""
    fix = "every ScanNet scene folder has a <scene>.txt; re-download it"
    try:
        text = read_regular(path, "scene metadata file", fix, META_LIMIT, scene).decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(path, f"not UTF-8 text ({e.reason} at byte {e.start})", fix, scene=scene) from None
    meta = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            meta[key.strip()] = value.strip()
    if "axisAlignment" not in meta:
        return meta, None
    try:
        values = [float(v) for v in meta["axisAlignment"].split()]
    except ValueError:
        values = []
    if len(values) != 16:
        raise InputError(path, "axisAlignment must hold 16 numbers (a 4x4 row-major matrix)",
                         "fix or remove the axisAlignment line", scene=scene)
    finite = [np.isfinite(v) for v in values]
    if not all(finite):
        i = finite.index(False)
        raise InputError(path, f"axisAlignment holds {values[i]} (row {i // 4 + 1}, column {i % 4 + 1}): the "
                         "matrix must be finite", "fix or remove the axisAlignment line", scene=scene)
    return meta, np.array(values, dtype=np.float64).reshape(4, 4)


def read_mesh(path: Path, scene: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices (N,3 float32), colours (N,3 uint8) and triangles (F,3 int32) of a ScanNet PLY; the
    vertices checked (``check_coordinates``) as stored, before any cast or alignment."""
    fix = "re-download the scene's _vh_clean_2.ply"
    try:
        with open_regular(path, "mesh file", fix, MESH_LIMIT, scene) as f:
            ply = _read_ply(f)
        v = ply["vertex"].data
        xyz = np.stack([v["x"], v["y"], v["z"]], axis=1)
        color = np.stack([v["red"], v["green"], v["blue"]], axis=1).astype(np.uint8)
        faces = _faces(ply)
    except (PlyParseError, ValueError, KeyError, IndexError, EOFError, OSError, TypeError) as e:
        raise InputError(path, f"truncated or corrupt PLY ({type(e).__name__}: {e})", MESH_FIX, scene=scene) from None
    if len(xyz) == 0:
        raise InputError(path, "mesh has no vertices", "re-download this file", scene=scene)
    check_coordinates(xyz, path, scene, MESH_FIX)
    return xyz.astype(np.float32), color, faces


def _read_ply(f: BinaryIO) -> PlyData:
    # ScanNet meshes are triangles: declaring the face list length lets plyfile read faces as one
    # array (~100x faster than its per-face parse); it checks every length and we fall back if not.
    try:
        return PlyData.read(f, known_list_len={"face": {"vertex_indices": 3}})
    except PlyParseError as e:
        if "unexpected list length" not in str(e):
            raise
        f.seek(0)
        return PlyData.read(f)


def _faces(ply: PlyData) -> np.ndarray:
    if "face" not in [e.name for e in ply.elements]:
        return np.zeros((0, 3), dtype=np.int32)
    faces = ply["face"].data["vertex_indices"]
    if faces.dtype == object:  # generic parse: one array per face
        if any(len(f) != 3 for f in faces):
            raise ValueError("the mesh has faces that are not triangles")
        faces = np.vstack(faces) if len(faces) else np.zeros((0, 3))
    return np.asarray(faces, dtype=np.int32).reshape(-1, 3)


def vertex_normals(coord: np.ndarray, faces: np.ndarray, rotation: np.ndarray | None = None) -> np.ndarray:
    """Unit normal of each vertex, (N, 3) float32: the sum of the normals of the faces around it, each
    weighted by the face's area, normalised (Pointcept's ``vertex_normal`` in its ScanNet
    preprocessing). A face's normal follows its winding: (v1 - v0) x (v2 - v0), whose length is twice
    its area, so summing the cross products is the area weighting. A vertex on no face with an area
    (or whose faces cancel) gets (0, 0, 0), as in Pointcept. ``rotation`` (3x3): the normals of the
    mesh turned by it (axisAlignment's rotation; a translation moves no normal).

    Vectorised on one contiguous array per axis and corner (fancy indexing and arithmetic on (F, 3)
    columns, or np.cross, took 2-3x as long): 9 gathers, the cross product by components, one
    bincount per axis and corner, the rotation of the sums and one normalisation. The cross products
    are float32, like the mesh's coordinates (within 2e-7 of float64 and 20% faster); the sums float64."""
    n = len(coord)
    if len(faces) == 0:
        return np.zeros((n, 3), dtype=np.float32)
    x, y, z = (np.ascontiguousarray(coord[:, axis], dtype=np.float32) for axis in range(3))
    f0, f1, f2 = (np.ascontiguousarray(faces[:, corner], dtype=np.intp) for corner in range(3))
    x0, y0, z0 = x[f0], y[f0], z[f0]
    ax, ay, az = x[f1] - x0, y[f1] - y0, z[f1] - z0
    bx, by, bz = x[f2] - x0, y[f2] - y0, z[f2] - z0
    cross = (ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx)
    sums = []
    for c in cross:
        c = c.astype(np.float64)  # once: bincount would cast float32 weights at every call
        total = np.bincount(f0, c, n)
        total += np.bincount(f1, c, n)
        total += np.bincount(f2, c, n)
        sums.append(total)
    if rotation is not None:  # rotating the sums is rotating every face's normal: one pass, not two
        r = np.asarray(rotation, dtype=np.float64)
        sums = [r[i, 0] * sums[0] + r[i, 1] * sums[1] + r[i, 2] * sums[2] for i in range(3)]
    length = np.sqrt(sums[0] * sums[0] + sums[1] * sums[1] + sums[2] * sums[2])
    scale = np.divide(1.0, length, out=np.zeros_like(length), where=length > _NO_AREA)
    return np.stack([s * scale for s in sums], axis=1, dtype=np.float32)


_NO_AREA = 1e-12  # m^2: a summed normal shorter than this (a square micrometre) has no direction


def _read_json(path: Path, scene: str | None, what: str, limit: int) -> dict:
    data = read_regular(path, f"{what} file", "re-download the scene", limit, scene)
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, an int of > 4300 digits
        raise InputError(path, f"invalid JSON ({str(e)[:120]})", "re-download this file", scene=scene) from None


def _id(value) -> int | None:
    """``value`` (parsed JSON) as an id, an integer in 0..ID_MAX, else None. A float is taken only when
    integral (3.0 is 3: JSON writers in JavaScript or pandas may write one so), never rounded or
    truncated onto another id; a bool is no id (JSON true would be 1)."""
    if type(value) is float and value.is_integer():
        value = int(value)
    return value if type(value) is int and 0 <= value <= ID_MAX else None


def _ids(values, name: str, path: Path, scene: str | None, what: str = "segment id") -> np.ndarray:
    """A JSON list of ids (``_id``) as int64, or an InputError naming the first entry that is none."""
    if not isinstance(values, list):
        raise InputError(path, f"{name} is {json.dumps(values)[:40]}, not a list of {what}s", "re-download this file",
                         scene=scene)
    if set(map(type, values)) <= {int}:  # the usual case, checked vectorised
        try:
            arr = np.array(values, dtype=np.int64)
        except OverflowError:  # beyond int64: find it below
            arr = None
        if arr is not None and (not arr.size or (arr.min() >= 0 and arr.max() <= ID_MAX)):
            return arr
    ids = [_id(v) for v in values]
    if None in ids:
        i = ids.index(None)
        raise InputError(path, f"{name}[{i}] is {json.dumps(values[i])[:40]}: a {what} must be an integer in "
                         f"0..{ID_MAX}", "re-download this file", scene=scene)
    return np.array(ids, dtype=np.int64)


def read_segments(path: Path, num_vertices: int, scene: str | None = None) -> np.ndarray:
    data = _read_json(path, scene, "segmentation", JSON_BASE + SEGS_PER_VERTEX * num_vertices)
    if not isinstance(data, dict) or "segIndices" not in data:
        raise InputError(path, "no 'segIndices' key", "re-download this file", scene=scene)
    seg = _ids(data["segIndices"], "segIndices", path, scene)
    if seg.ndim != 1 or len(seg) != num_vertices:
        raise InputError(path, f"segIndices has {seg.size} entries but the mesh has {num_vertices} "
                         "vertices", "the segs file and the _vh_clean_2.ply must come from the same "
                         "scan; re-download both", scene=scene)
    return seg


def read_aggregation(path: Path, known_segments: np.ndarray, scene: str | None = None) -> list[SegGroup]:
    """Object groups; every listed segment must exist in the scene's segmentation. A group's id is an
    id (``_id``: 3.0 is 3, 3.5, -1 or 2**40 an error) that no other group has: it is the object's
    instance id, so a repeated one would merge two objects into one."""
    data = _read_json(path, scene, "aggregation", JSON_BASE + AGG_PER_SEGMENT * len(known_segments))
    groups = data.get("segGroups") if isinstance(data, dict) else None
    if not isinstance(groups, list):
        raise InputError(path, "no 'segGroups' list", "re-download this file", scene=scene)
    out = []
    first: dict[int, int] = {}  # id -> position of the group that has it
    for i, g in enumerate(groups):
        if not isinstance(g, dict) or not {"id", "label", "segments"} <= g.keys():
            raise InputError(path, f"malformed segGroups[{i}] {json.dumps(g)[:80]}", "each group needs id, label "
                             "and segments; re-download this file", scene=scene)
        label = str(g["label"])
        gid = _id(g["id"])
        if gid is None:
            raise InputError(path, f"segGroups[{i}] ({label!r}) has id {json.dumps(g['id'])[:40]}: a segGroup id "
                             f"must be an integer in 0..{ID_MAX} (the object's instance id)",
                             "re-download this file", scene=scene)
        if gid in first:
            j = first[gid]
            raise InputError(path, f"segGroups[{i}] ({label!r}) repeats id {gid} of segGroups[{j}] "
                             f"({out[j].label!r}): the two objects would merge into one instance",
                             "give each segGroup its own id, or re-download this file", scene=scene)
        first[gid] = i
        out.append(SegGroup(gid, label, _ids(g["segments"], f"segGroups[{i}].segments", path, scene)))
    listed = np.concatenate([g.segments for g in out]) if out else np.zeros(0, np.int64)
    if not np.isin(listed, known_segments).all():  # one check for all groups, then find the culprit
        group = next(g for g in out if not np.isin(g.segments, known_segments).all())
        unknown = np.setdiff1d(group.segments, known_segments)
        raise InputError(path, f"segGroup {group.id} ({group.label!r}) names {len(unknown)} "
                         f"segment(s) absent from the segs file, e.g. {unknown[:3].tolist()}",
                         "the aggregation and segs files must come from the same scan", scene=scene)
    return out


def read_scene(raw_dir: str | Path, scene: str, annotations: bool = True, normals: bool = False) -> RawScene:
    """Read one scene; with ``annotations`` the segs and aggregation files are required, with
    ``normals`` the vertex normals are computed (``vertex_normals``: about a third of preprocessing's
    time, so only preprocessing asks for them)."""
    scene_dir = find_scene_dir(raw_dir, scene)
    meta_path = scene_file(scene_dir, "meta")
    meta, align = read_meta(meta_path, scene)
    mesh, color, faces = read_mesh(scene_file(scene_dir, "mesh"), scene)
    if len(faces) and (faces.min() < 0 or faces.max() >= len(mesh)):
        raise InputError(scene_file(scene_dir, "mesh"), "faces index vertices that do not exist",
                         "re-download this file", scene=scene)
    coord = mesh
    if align is not None:
        # einsum, not @: a BLAS call would start OpenBLAS threads that spin against the other
        # preprocessing workers (2 workers ran no faster than 1). In float64, checked before the cast:
        # a finite but absurd matrix overflows to inf here, which the check names.
        with np.errstate(over="ignore", invalid="ignore"):
            aligned = np.einsum("nj,ij->ni", mesh.astype(np.float64), align[:3, :3]) + align[:3, 3]
        check_coordinates(aligned, meta_path, scene, "fix or remove the axisAlignment line",
                          where=" after this file's axisAlignment")
        coord = aligned.astype(np.float32)
    # from the mesh as stored, turned by the alignment's rotation (no translation) and made unit
    # again (the matrix is written to a few decimals, so not exactly orthonormal)
    normal = vertex_normals(mesh, faces, None if align is None else align[:3, :3]) if normals else None
    seg, groups, segment_ids = None, None, None
    if annotations:
        seg = read_segments(scene_file(scene_dir, "segs"), len(coord), scene)
        segment_ids = np.unique(seg)
        groups = read_aggregation(scene_file(scene_dir, "aggregation"), segment_ids, scene)
    return RawScene(scene, coord, color, faces, seg, groups, align, meta, segment_ids, normal)
