"""Synthetic ScanNet v2 rooms written in the exact raw layout of the real data set: the demo world.

Real ScanNet cannot be downloaded here, so this package makes the project's demo data: rectangular
rooms (floor + 4 walls) furnished with objects of the 200 ScanNet200 classes, written as
``scans/<scene>/`` (train/val) and ``scans_test/<scene>/`` (test) with the same files a real
download has (``_vh_clean_2.ply``, ``.segs.json``, ``.aggregation.json``, ``.txt``) plus the labels
tsv and the split lists.  A reader of real ScanNet reads them unchanged.

Design choices that matter downstream:

* Appearance follows what a class is (``appearance``): every class belongs to one coarse category
  of a written-down taxonomy (chair, sofa, table, cabinet, appliance, kitchenware, ...; the tsv's
  ``nyu40class`` / ``mpcat40`` columns carry it), which fixes a shape family, a size range, a
  colour family (one hue, dark to light) and an accent colour for parts; within the category a
  class differs by its proportions, its parts and its shade.  So semantically related names look
  related, as in real rooms: a modelling assumption of the demo (docs/data.md, "The synthetic demo world").
* Every split is learnable at the demo's budget (``labels.allocate``, ``write.deal``): each train
  room is dealt ``objects["train"]`` objects; first ``train_min[s]`` guaranteed instances of every
  class of the head/common/tail split s (the demo: 10 / 10 / 5), then the rest drawn with
  p ∝ (frequency rank + 5) ** -1.1 (head classes first, so a long tail remains); each val room
  ``objects["val"]``, every class at least ``val_min`` times over the val rooms.  Guaranteed
  objects are always placed and annotated (a room is enlarged until everything fits).
* Sizes are real up to 0.4 m and compressed above (``appearance.demo_length``: a 2 m bed is
  1.04 m, a 2.5 m high room 1.24 m), small props are at least 24 cm in their two largest
  dimensions and 12 cm high, and objects on walls stand 10 cm out of them, so dense rooms stay
  within the demo's voxel budget and every object spans several 8 cm voxels of its own.
* Surfaces a scanner cannot see are not meshed: the floor under closed-bottom objects, a support's
  top under its props, the wall behind objects on it and behind furniture standing against it.
  Props stand on tables, counters, low cabinets, beds, sofa seats, mats and shelf boards.
* Label traps of the real data: objects with no segGroup, labels that the tsv maps to an id
  outside the 200, labels missing from the tsv, alias labels ("sofa" -> couch), a raw category
  listed twice in the tsv (the first row counts) and a ``category`` with a trailing space.
* Each PLY is in the "scan" frame; the ``axisAlignment`` in ``<scene>.txt`` (a rotation about z
  plus a translation) maps it to the axis-aligned room with the floor at z = 0.
* Meshes are triangulated grids: ``spacing`` (4 cm) on objects, 1.5x that on walls, floor and
  large flat faces (like ScanNet's decimated planes).  Segments are ~0.5 m patches of each surface
  (1 m on walls/floor); small props are one segment.
* The classes of every room are dealt from the seed alone and scene i is built from (seed, i)
  and its dealt classes, so output bytes do not depend on ``workers``.

* Each scene is also recorded as ScanNet records a room (``frames``): ``frames`` RGB-D frames along
  a camera path through the room (``camera``), rendered from its mesh with a z-buffer (``render``),
  written as ``<scene>.sens`` with ScanNet's 2D label and instance projections for train and val
  scenes. The path has its own random stream: the meshes are the same with or without frames.

Modules, one concern each: ``appearance`` (taxonomy and per-class look), ``labels`` (vocabulary,
label traps, long-tailed class draw, allocation to rooms, the tsv's rows), ``layout`` (a room
sized for its objects, and where each stands), ``mesh`` (triangulated primitives and the shape
families with their parts), ``scene`` (a room meshed, coloured, segmented, in the scan frame),
``camera`` (ScanNet's intrinsics, a camera path through a room), ``render`` (a numpy z-buffer
rasterizer), ``frames`` (a room's RGB-D frames in ScanNet's formats) and ``write`` (files in the raw
layout; ``deal``, ``generate``); ``size`` the world's default size.
"""

import importlib

# imported on first use (PEP 562): ``lgseg``'s parser reads ``size`` alone, so no command pays for
# the generator's modules; full module names, which tests/test_dvc_deps.py reads as imports
_WHERE = {
    **dict.fromkeys(("CATEGORIES", "Appearance", "class_appearance", "class_category", "label_appearance"),
                    "lgseg.synthetic.appearance"),
    **dict.fromkeys(("ALIASES", "IGNORED_LABELS", "TSV_COLUMNS", "UNKNOWN_LABELS", "allocate", "sample_classes"),
                    "lgseg.synthetic.labels"),
    **dict.fromkeys(("RAW_SCANS", "SEGS_PARAMS", "deal", "generate", "params_options", "split_counts",
                     "write_labels_tsv"), "lgseg.synthetic.write"),
    **dict.fromkeys(("SCANNET_SENSORS", "camera_path", "instance_boxes", "look_rotation", "scannet_intrinsics"),
                    "lgseg.synthetic.camera"),
    **dict.fromkeys(("Camera", "Raster", "interpolate", "nearest_vertex", "rasterize"), "lgseg.synthetic.render"),
    **dict.fromkeys(("COLOR_SIZE", "DEPTH_SIZE", "record"), "lgseg.synthetic.frames"),
}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)


__all__ = [
    "ALIASES", "IGNORED_LABELS", "UNKNOWN_LABELS", "TSV_COLUMNS", "SEGS_PARAMS", "CATEGORIES", "Appearance",
    "class_appearance", "class_category", "label_appearance", "allocate", "sample_classes", "deal",
    "split_counts", "write_labels_tsv", "generate", "params_options", "RAW_SCANS", "SCANNET_SENSORS", "camera_path",
    "instance_boxes", "look_rotation", "scannet_intrinsics", "Camera", "Raster", "interpolate", "nearest_vertex",
    "rasterize", "COLOR_SIZE", "DEPTH_SIZE", "record",
]
