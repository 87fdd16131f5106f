"""Writers for tiny hand-made scenes in ScanNet's raw layout, so label rules can be checked exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from plyfile import PlyData, PlyElement

from lgseg.scannet.layout import scene_file_name

TSV_HEADER = ("id\traw_category\tcategory\tcount\tnyu40id\teigen13id\tnyuClass\tnyu40class\teigen13class\t"
              "ModelNet40\tModelNet10\tShapeNetCore55\tsynsetoffset\twnsynsetid\twnsynsetkey\tmpcat40\tmpcat40index")


def tsv_text(rows: list[tuple[int, str]], eol: str = "\r\r\n") -> str:
    """A labels tsv in the official 17-column layout; rows are (id, raw_category)."""
    lines = [TSV_HEADER] + [f"{i}\t{raw}\t{raw}\t1\t40\t\t\t\t\t\t\t\t\t\t\t\t" for i, raw in rows]
    return eol.join(lines) + eol


def write_ply(path: Path, coord: np.ndarray, color: np.ndarray, faces: np.ndarray) -> None:
    v = np.empty(len(coord), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"),
                                    ("green", "u1"), ("blue", "u1"), ("alpha", "u1")])
    v["x"], v["y"], v["z"] = coord.T
    v["red"], v["green"], v["blue"] = color.T
    v["alpha"] = 255
    f = np.empty(len(faces), dtype=[("vertex_indices", "i4", (3,))])
    f["vertex_indices"] = faces
    PlyData([PlyElement.describe(v, "vertex"), PlyElement.describe(f, "face")]).write(str(path))


def write_scene(root: Path, scene: str, coord, seg, groups, *, align=None, sub="scans",
                color=None, meta_extra="sceneType = Living room / Lounge") -> Path:
    """Write one scene; groups are (id, label, [segment ids]); seg None -> no segs/aggregation."""
    d = root / sub / scene
    d.mkdir(parents=True, exist_ok=True)
    coord = np.asarray(coord, dtype=np.float32)
    n = len(coord)
    color = np.full((n, 3), 128, np.uint8) if color is None else np.asarray(color, np.uint8)
    faces = np.array([[i, (i + 1) % n, (i + 2) % n] for i in range(n)], dtype=np.int32)
    write_ply(d / scene_file_name(scene, "mesh"), coord, color, faces)
    lines = []
    if align is not None:
        lines.append("axisAlignment = " + " ".join(f"{v:.6f}" for v in np.asarray(align).ravel()))
    lines += ["colorHeight = 968", meta_extra]
    (d / scene_file_name(scene, "meta")).write_text("\n".join(lines) + "\n")
    if seg is not None:
        (d / scene_file_name(scene, "segs")).write_text(
            json.dumps({"sceneId": scene, "segIndices": [int(s) for s in seg]}))
        agg = {"sceneId": f"scannet.{scene}", "appId": "Aggregator.v2",
               "segGroups": [{"id": i, "objectId": i, "segments": list(s), "label": lab} for i, lab, s in groups]}
        (d / scene_file_name(scene, "aggregation")).write_text(json.dumps(agg))
    return d


