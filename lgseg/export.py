"""A scene's mesh with a colour (and optionally a score) per vertex, as a binary PLY for MeshLab or
Open3D. The score goes into the vertex property ``quality``, which MeshLab reads as such."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from plyfile import PlyData, PlyElement

from lgseg.fileio import atomic_file


def write_colored_ply(path: str | Path, coord: np.ndarray, colors: np.ndarray, faces: np.ndarray | None = None,
                      quality: np.ndarray | None = None) -> Path:
    """Write vertices (x, y, z, red, green, blue[, quality]) and triangles; ``colors`` in [0, 1] or uint8."""
    coord = np.asarray(coord)
    colors = np.asarray(colors)
    if colors.dtype != np.uint8:
        colors = np.clip(np.round(colors * 255), 0, 255).astype(np.uint8)
    if len(colors) != len(coord) or (quality is not None and len(quality) != len(coord)):
        raise ValueError(f"{len(coord)} vertices but {len(colors)} colours"
                         + ("" if quality is None else f" and {len(quality)} scores"))
    fields = [("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")]
    if quality is not None:
        fields.append(("quality", "f4"))
    vertex = np.empty(len(coord), dtype=fields)
    for i, k in enumerate("xyz"):
        vertex[k] = coord[:, i]
    for i, k in enumerate(("red", "green", "blue")):
        vertex[k] = colors[:, i]
    if quality is not None:
        vertex["quality"] = quality
    elements = [PlyElement.describe(vertex, "vertex")]
    if faces is not None and len(faces):
        face = np.empty(len(faces), dtype=[("vertex_indices", "i4", (3,))])
        face["vertex_indices"] = faces
        elements.append(PlyElement.describe(face, "face"))
    path = Path(path)
    with atomic_file(path, "wb") as f:
        PlyData(elements, text=False).write(f)
    return path
