"""Synthetic ScanNet v2 rooms written in the exact raw layout of the real data set.

Real ScanNet cannot be downloaded here, so this package makes the project's demo data: rectangular
rooms (floor + 4 walls) furnished with objects of the 200 ScanNet200 classes, written as
``scans/<scene>/`` (train/val) and ``scans_test/<scene>/`` (test) with the same files a real
download has (``_vh_clean_2.ply``, ``.segs.json``, ``.aggregation.json``, ``.txt``) plus the labels
tsv and the split lists.  A reader of real ScanNet reads them unchanged.

Design choices that matter downstream:

* Classes are learnable from xyz + rgb: every class has a fixed appearance, never dependent on
  the seed (``class_appearance``): a hand-set shape family and size, and a base colour from its
  index (well spread over the RGB cube); instances jitter size by ±15 % and colour slightly.
* Long tail: objects draw class ``c`` with p ∝ (r(c) + 5) ** -1.1, where r is the class's
  frequency rank among the 198 drawable classes (all head classes first, then common, then
  tail, each in index order), so every head class is more frequent than every common class,
  and every common class more than every tail class.  Walls and floor are room structure.
* Label traps of the real data: objects with no segGroup, labels that the tsv maps to an id
  outside the 200, labels missing from the tsv, alias labels ("sofa" -> couch), a raw category
  listed twice in the tsv (the first row counts) and a ``category`` with a trailing space.
* Each PLY is in the "scan" frame; the ``axisAlignment`` in ``<scene>.txt`` (a rotation about z
  plus a translation) maps it to the axis-aligned room with the floor at z = 0.
* Meshes are triangulated grids: ``spacing`` (4 cm) on objects, 1.5x that on walls, floor and
  large flat faces (like ScanNet's decimated planes), about 30k-100k vertices per room.  Segments
  are ~0.5 m patches of each surface (1 m on walls/floor); small props are one segment.
* Scene i is seeded from (seed, i) alone, so output bytes do not depend on ``workers``.

Modules, one concern each: ``labels`` (vocabulary, label traps, long-tailed class draw, the tsv's
rows), ``appearance`` (per-class shape, size, colour), ``layout`` (objects placed in a room),
``mesh`` (triangulated primitives and object shapes), ``scene`` (a room meshed, coloured,
segmented, in the scan frame) and ``write`` (files in the raw layout; ``generate``).
"""

from lgseg.synthetic.appearance import Appearance, class_appearance, label_appearance
from lgseg.synthetic.labels import ALIASES, IGNORED_LABELS, TSV_COLUMNS, UNKNOWN_LABELS, sample_classes
from lgseg.synthetic.write import SEGS_PARAMS, generate, split_counts, write_labels_tsv

__all__ = [
    "ALIASES", "IGNORED_LABELS", "UNKNOWN_LABELS", "TSV_COLUMNS", "SEGS_PARAMS", "Appearance",
    "class_appearance", "label_appearance", "sample_classes", "split_counts", "write_labels_tsv", "generate",
]
