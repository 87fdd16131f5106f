"""Synthetic ScanNet v2 rooms written in the exact raw layout of the real data set.

Real ScanNet cannot be downloaded here, so this module makes the project's demo data: rectangular
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
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
from plyfile import PlyData, PlyElement, PlyListProperty
from tqdm import tqdm

from lgseg.errors import InputError
from lgseg.fileio import atomic_dir, atomic_file
from lgseg.scannet.constants import CLASS_NAMES, CLASS_SPLIT, NAME_TO_INDEX, SPLITS, VALID_CLASS_IDS

__all__ = [
    "ALIASES", "IGNORED_LABELS", "UNKNOWN_LABELS", "TSV_COLUMNS", "SEGS_PARAMS", "Appearance",
    "class_appearance", "label_appearance", "sample_classes", "split_counts", "write_labels_tsv", "generate",
]

# --------------------------------------------------------------------------------------------
# Label vocabulary (what the tsv knows and which raw strings appear in aggregation files)
# --------------------------------------------------------------------------------------------

TSV_COLUMNS = ("id", "raw_category", "category", "count", "nyu40id", "eigen13id", "nyuClass",
               "nyu40class", "eigen13class", "ModelNet40", "ModelNet10", "ShapeNetCore55",
               "synsetoffset", "wnsynsetid", "wnsynsetkey", "mpcat40", "mpcat40index")
TSV_EOL = b"\r\r\n"  # what the ScanNet200-era labels file really uses
TSV_NAME = "scannetv2-labels.combined.tsv"

#: alias raw category -> the ScanNet200 class it maps to through the tsv
ALIASES: dict[str, str] = {
    "sofa": "couch", "garbage bin": "trash can", "trashcan": "trash can", "television": "tv",
    "bookcase": "bookshelf", "fridge": "refrigerator", "kitchen cabinets": "kitchen cabinet",
    "pictures": "picture", "desk chair": "office chair", "shelves": "shelf",
}
#: listed a second time at the end of the tsv with another valid id; the FIRST row must win
DUPLICATE_ROW = ("garbage bin", "trash bin")
#: raw categories the tsv maps to ids that are not among the 200 (end as "ignore")
IGNORED_LABELS: dict[str, int] = {
    "otherprop": 12, "rug": 20, "kitchen island": 25, "doll": 30, "otherfurniture": 37,
    "wall hanging": 53,
}
#: raw categories absent from the tsv altogether (also "ignore")
UNKNOWN_LABELS = ("clutter", "misc item")
#: the class whose tsv ``category`` carries a trailing space, as in the real file
TRAILING_SPACE_CLASS = "wardrobe"

SEGS_PARAMS = {"kThresh": "0.0001", "segMinVerts": "20", "minPoints": "750", "maxPoints": "30000",
               "thinThresh": "0.05", "flatThresh": "0.001", "minLength": "0.02", "maxLength": "1"}
SCENE_TYPES = ("Apartment", "Bathroom", "Bedroom / Hotel", "Bookstore / Library", "Classroom",
               "Conference Room", "Copy/Mail Room", "Dining Room", "Kitchen", "Laundry Room",
               "Living room / Lounge", "Lobby", "Misc.", "Office", "Storage/Basement/Garage")
SCENE_RE = re.compile(r"scene\d{4}_\d{2}")

_NYU40 = ("wall floor cabinet bed chair sofa table door window bookshelf picture counter blinds "
          "desk shelves curtain dresser pillow mirror floor_mat clothes ceiling books refridgerator "
          "television paper towel shower_curtain box whiteboard person night_stand toilet sink lamp "
          "bathtub bag otherstructure otherfurniture otherprop").split()
_NYU40_OF = {  # ScanNet200 class -> nyu40 id, for the tsv's informative columns
    "wall": 1, "floor": 2, "cabinet": 3, "kitchen cabinet": 3, "bed": 4, "chair": 5, "office chair": 5,
    "couch": 6, "table": 7, "coffee table": 7, "door": 8, "window": 9, "bookshelf": 10,
    "picture": 11, "counter": 12, "blinds": 13, "desk": 14, "shelf": 15, "curtain": 16,
    "dresser": 17, "pillow": 18, "mirror": 19, "mat": 20, "clothes": 21, "ceiling": 22, "book": 23,
    "refrigerator": 24, "tv": 25, "paper": 26, "towel": 27, "shower curtain": 28, "box": 29,
    "whiteboard": 30, "person": 31, "nightstand": 32, "toilet": 33, "sink": 34, "lamp": 35,
    "bathtub": 36, "bag": 37,
}

# --------------------------------------------------------------------------------------------
# Per-class appearance
# --------------------------------------------------------------------------------------------

#: shape families; "panel" hangs on a wall, "ceiling" hangs below the wall tops,
#: "small_*" rest on a table/low furniture top (or on the floor when none is free)
FAMILIES = ("box", "cylinder", "table", "chair", "sofa", "panel", "mat", "ceiling",
            "small_box", "small_cylinder")
SMALL_FAMILIES = ("small_box", "small_cylinder")


@dataclass(frozen=True)
class Appearance:
    """How instances of one raw label look, before per-instance jitter."""

    name: str
    family: str                        # one of FAMILIES
    size: tuple[float, float, float]   # width (x), depth (y, out of the wall for panels), height (z), metres
    color: tuple[int, int, int]        # base RGB
    elevation: float = 0.0             # bottom above the floor (panels only)


# Hand-set appearance of the classes: "name | family | width depth height | elevation" (metres;
# depth is out of the wall for panels, elevation is a panel's bottom above the floor).  Labels
# not listed here (the non-200 labels) get a family from keywords and a hashed size (_RANGES).
_HAND_TABLE = """
chair | chair | .5 .5 .9            office chair | chair | .6 .6 1.05     seat | chair | .5 .5 .85
table | table | 1.2 .8 .75          desk | table | 1.4 .7 .75             coffee table | table | 1 .6 .45
dining table | table | 1.6 .9 .76   end table | table | .5 .5 .55        bench | table | 1.4 .4 .45
bar | table | 2 .5 1.05             ironing board | table | 1.3 .35 .85  cart | table | .9 .55 .9
stand | table | .5 .4 .9            music stand | table | .5 .35 1.2     keyboard piano | table | 1.3 .35 .8
couch | sofa | 2 .9 .85             armchair | sofa | .85 .85 .9        sofa chair | sofa | .8 .8 .85
bed | box | 2 1.5 .55               mattress | box | 1.9 1.4 .25        cabinet | box | .8 .5 .9
kitchen cabinet | box | 1.2 .6 .9   shelf | box | 1 .35 1.6            bookshelf | box | 1 .35 1.9
refrigerator | box | .8 .7 1.8      dresser | box | 1.2 .5 .9          nightstand | box | .5 .4 .55
counter | box | 2 .6 .9             toilet | box | .4 .65 .75          bathtub | box | 1.6 .75 .55
box | box | .45 .35 .35             tv stand | box | 1.2 .45 .5         closet | box | 1.5 .6 2.1
stairs | box | .9 1.5 1             stove | box | .75 .65 .9           ottoman | box | .6 .6 .42
washing machine | box | .6 .6 .85   copier | box | .6 .65 1.1          file cabinet | box | .45 .6 1.3
shower | box | .9 .9 2              oven | box | .6 .6 .9              rack | box | .8 .4 1.5
piano | box | 1.5 .6 1.25           suitcase | box | .45 .25 .65       wardrobe | box | 1.2 .6 2
clothes dryer | box | .6 .6 .85     guitar | box | .38 .12 1           bicycle | box | 1.7 .5 1
ladder | box | .5 .1 1.8            bathroom stall | box | 1 1.5 1.9    storage bin | box | .5 .35 .3
dishwasher | box | .6 .6 .85        machine | box | .8 .6 1.2          fireplace | box | 1.4 .5 1.1
kitchen counter | box | 2.2 .65 .9  mini fridge | box | .5 .5 .85       water cooler | box | .35 .35 1.1
pillar | box | .5 .5 2.2            furniture | box | 1 .6 .8           storage container | box | .6 .4 .35
crate | box | .5 .4 .35             vacuum cleaner | box | .35 .3 1.1   broom | box | .3 .08 1.3
guitar case | box | .42 .15 1.1     divider | box | 1.5 .05 1.6        bathroom counter | box | 1.5 .55 .85
bathroom vanity | box | 1 .55 .85   structure | box | 1 .8 1.5         storage organizer | box | .6 .4 .9
folded chair | box | .45 .06 .85   luggage | box | .45 .3 .7
trash can | cylinder | .35 .35 .6   lamp | cylinder | .3 .3 1.5         plant | cylinder | .45 .45 .9
stool | cylinder | .35 .35 .6      bin | cylinder | .3 .3 .4            basket | cylinder | .4 .4 .35
fan | cylinder | .4 .4 1.2          person | cylinder | .45 .45 1.7     recycling bin | cylinder | .4 .4 .7
bucket | cylinder | .3 .3 .35       laundry basket | cylinder | .45 .45 .5  pipe | cylinder | .1 .1 2.2
column | cylinder | .4 .4 2.2       laundry hamper | cylinder | .45 .45 .65  trash bin | cylinder | .28 .28 .4
coat rack | cylinder | .5 .5 1.8    potted plant | cylinder | .35 .35 .6
door | panel | .9 .05 2 | 0         window | panel | 1.2 .06 1.2 | .9   picture | panel | .6 .03 .5 | 1.3
curtain | panel | 1.4 .08 2.1 | .2  whiteboard | panel | 1.8 .03 1.1 | .9  tv | panel | 1.1 .08 .65 | 1
mirror | panel | .6 .03 .9 | 1      radiator | panel | 1 .1 .6 | .1     towel | panel | .4 .05 .6 | 1
light switch | panel | .08 .02 .12 | 1.2   power outlet | panel | .08 .02 .08 | .3
shower curtain | panel | 1.5 .04 1.8 | .2   board | panel | 1.2 .03 .9 | 1
paper towel dispenser | panel | .3 .1 .35 | 1.1   blinds | panel | 1.2 .05 1.3 | .95
blackboard | panel | 2.5 .03 1.2 | .9   rail | panel | 1.5 .06 .06 | .9   clock | panel | .3 .05 .3 | 1.8
toilet paper holder | panel | .15 .1 .12 | .7   shower wall | panel | 1.5 .05 2 | 0
windowsill | panel | 1.2 .1 .05 | .85   bulletin board | panel | 1.2 .03 .9 | 1
doorframe | panel | 1 .08 2.1 | 0   toilet paper dispenser | panel | .25 .1 .25 | .7
shower curtain rod | panel | 1.5 .04 .04 | 2   shower door | panel | .8 .04 1.9 | 0
ledge | panel | 1.5 .1 .1 | 1        toilet seat cover dispenser | panel | .4 .06 .3 | 1
sign | panel | .45 .02 .3 | 1.6     closet door | panel | .8 .04 2.05 | 0
handicap bar | panel | .8 .08 .05 | .85   vent | panel | .4 .02 .25 | 2   mailbox | panel | .35 .1 .4 | 1.2
projector screen | panel | 2 .03 1.5 | .8   closet wall | panel | 1.5 .05 2.2 | 0
bathroom stall door | panel | .75 .04 1.7 | .2   stair rail | panel | 2 .06 .06 | .9
bathroom cabinet | panel | .6 .1 .7 | 1.2   closet rod | panel | 1.2 .05 .04 | 1.7
shower head | panel | .12 .1 .12 | 1.9   calendar | panel | .3 .01 .45 | 1.3
poster | panel | .6 .01 .9 | 1.1
ceiling | ceiling | 2 1.5 .05      ceiling light | ceiling | .6 .6 .08   light | ceiling | .4 .4 .1
range hood | ceiling | .9 .5 .4    fire alarm | ceiling | .15 .15 .05
mat | mat | 1.2 .8 .02             blanket | mat | 1.5 1.2 .03         shower floor | mat | .9 .9 .05
pillow | small_box | .5 .35 .12     book | small_box | .2 .15 .04      monitor | small_box | .55 .08 .35
keyboard | small_box | .45 .15 .03  laptop | small_box | .35 .25 .03    alarm clock | small_box | .12 .07 .08
sink | small_box | .55 .45 .18      clothes | small_box | .45 .35 .12   cushion | small_box | .45 .45 .15
bag | small_box | .35 .2 .3         backpack | small_box | .32 .22 .45  printer | small_box | .45 .4 .25
microwave | small_box | .5 .35 .3   shoe | small_box | .3 .12 .12      computer tower | small_box | .2 .45 .45
paper | small_box | .3 .21 .01      container | small_box | .35 .25 .25  telephone | small_box | .2 .2 .08
speaker | small_box | .2 .2 .3      jacket | small_box | .5 .3 .1       coffee maker | small_box | .25 .3 .35
toaster | small_box | .28 .18 .2    soap dish | small_box | .12 .09 .03  paper cutter | small_box | .4 .3 .06
tray | small_box | .45 .3 .03       toaster oven | small_box | .45 .35 .27  mouse | small_box | .1 .06 .035
scale | small_box | .3 .3 .04       tissue box | small_box | .24 .12 .09  projector | small_box | .3 .25 .12
stuffed animal | small_box | .3 .2 .3   headphones | small_box | .2 .18 .08  dish rack | small_box | .45 .35 .15
dustpan | small_box | .25 .3 .08    hair dryer | small_box | .25 .1 .22  purse | small_box | .3 .12 .22
paper bag | small_box | .3 .18 .38  laundry detergent | small_box | .25 .15 .3  object | small_box | .25 .2 .2
dumbbell | small_box | .3 .12 .12   cd case | small_box | .14 .12 .01   case of water bottles | small_box | .4 .27 .25
power strip | small_box | .3 .06 .04
bottle | small_cylinder | .07 .07 .25   cup | small_cylinder | .08 .08 .1   toilet paper | small_cylinder | .11 .11 .11
soap dispenser | small_cylinder | .07 .07 .18   paper towel roll | small_cylinder | .12 .12 .25
fire extinguisher | small_cylinder | .15 .15 .5   ball | small_cylinder | .22 .22 .22
hat | small_cylinder | .3 .3 .12    candle | small_cylinder | .07 .07 .12  plunger | small_cylinder | .12 .12 .45
decoration | small_cylinder | .15 .15 .3   water bottle | small_cylinder | .07 .07 .22
water pitcher | small_cylinder | .14 .14 .25   bowl | small_cylinder | .18 .18 .08
tube | small_cylinder | .05 .05 .2   coffee kettle | small_cylinder | .17 .17 .25
plate | small_cylinder | .25 .25 .02
"""


def _parse_hand_table(text: str) -> dict[str, tuple[str, tuple[float, float, float], float]]:
    """Entries are separated by runs of 2+ spaces; fields by '|'."""
    out = {}
    for entry in re.split(r"\s{2,}|\n", text.strip()):
        if not entry:
            continue
        fields = [f.strip() for f in entry.split("|")]
        w, d, h = (float(x) for x in fields[2].split())
        out[fields[0]] = (fields[1], (w, d, h), float(fields[3]) if len(fields) > 3 else 0.0)
    return out


_HAND = _parse_hand_table(_HAND_TABLE)
_HAND_COLOR = {"wall": (200, 196, 186), "floor": (132, 110, 88), "ceiling": (235, 235, 232)}

# Keyword rules (on whole words of the name) for labels without a hand-set entry, first match wins.
_KEYWORDS: tuple[tuple[str, frozenset[str]], ...] = (
    ("panel", frozenset("door doorframe window windowsill board picture poster sign calendar mirror "
                        "curtain blinds switch outlet vent dispenser holder rail frame wall radiator "
                        "ledge rod clock screen divider extinguisher".split())),
    ("ceiling", frozenset("ceiling hood head alarm light".split())),
    ("table", frozenset("table desk counter stand bench vanity".split())),
    ("sofa", frozenset("couch sofa armchair ottoman".split())),
    ("chair", frozenset("chair seat".split())),
    ("mat", frozenset("mat rug blanket".split())),
    ("cylinder", frozenset("can bin basket bucket column pillar pipe hamper plant cooler".split())),
    ("small_cylinder", frozenset("bottle cup candle bowl pitcher kettle roll ball plunger tube".split())),
    ("box", frozenset("cabinet shelf closet wardrobe machine dryer fridge stove oven dresser piano "
                      "fireplace crate organizer furniture cart stall stairs structure copier".split())),
)
# Hashed size ranges (width, depth, height, elevation) per family: ((lo, hi), ...).
_RANGES: dict[str, tuple[tuple[float, float], ...]] = {
    "box": ((0.4, 1.6), (0.3, 0.9), (0.4, 2.0), (0, 0)),
    "cylinder": ((0.25, 0.6), (0, 0), (0.4, 1.5), (0, 0)),
    "table": ((0.6, 1.8), (0.4, 0.9), (0.45, 1.0), (0, 0)),
    "chair": ((0.45, 0.7), (0.45, 0.7), (0.8, 1.1), (0, 0)),
    "sofa": ((0.8, 2.2), (0.7, 1.0), (0.7, 0.95), (0, 0)),
    "panel": ((0.2, 1.6), (0.02, 0.08), (0.2, 1.6), (0.1, 1.4)),
    "mat": ((0.6, 1.8), (0.4, 1.2), (0.02, 0.02), (0, 0)),
    "ceiling": ((0.3, 1.5), (0.3, 1.5), (0.03, 0.15), (0, 0)),
    "small_box": ((0.08, 0.35), (0.08, 0.35), (0.03, 0.35), (0, 0)),
    "small_cylinder": ((0.06, 0.3), (0, 0), (0.05, 0.35), (0, 0)),
}
_R3 = 1.0 / 1.2207440846057596 ** np.arange(1, 4)  # Roberts' R3 sequence steps


def _hash01(name: str, salt: str) -> float:
    """A stable number in [0, 1) from a string (independent of PYTHONHASHSEED and of the seed)."""
    digest = hashlib.blake2b(f"{salt}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def _family_of(name: str) -> str:
    words = set(name.split())
    for family, keys in _KEYWORDS:
        if words & keys:
            return family
    # No keyword: mostly small props, some furniture-sized boxes.
    h = _hash01(name, "family")
    return "box" if h < 0.3 else "small_box" if h < 0.7 else "small_cylinder"


def _base_color(name: str) -> tuple[int, int, int]:
    """Distinct per class: the 200 classes take successive points of the R3 low-discrepancy
    sequence in the RGB cube (well spread: any two differ by > 20 units); other labels hash."""
    if name in _HAND_COLOR:
        return _HAND_COLOR[name]
    idx = NAME_TO_INDEX.get(name)
    if idx is None:
        unit = np.array([_hash01(name, f"rgb{k}") for k in range(3)])
    else:
        unit = (0.5 + (idx + 1) * _R3) % 1.0
    return tuple(int(round(20 + 215 * u)) for u in unit)


@lru_cache(maxsize=None)
def label_appearance(name: str) -> Appearance:
    """The appearance of any raw label (ScanNet200 class name or not), derived from the name only."""
    if name in _HAND:
        family, size, elevation = _HAND[name]
    else:
        family = _family_of(name)
        (w, d, h, e) = [lo + (hi - lo) * _hash01(name, f"size{k}") for k, (lo, hi) in enumerate(_RANGES[family])]
        if family in ("cylinder", "small_cylinder"):
            d = w  # round footprint
        size, elevation = (round(w, 3), round(d, 3), round(h, 3)), round(e, 3)
    return Appearance(name, family, tuple(float(s) for s in size), _base_color(name), float(elevation))


def class_appearance(index: int) -> Appearance:
    """The fixed appearance of ScanNet200 class ``index`` (0..199), the same in every scene and seed."""
    return label_appearance(CLASS_NAMES[index])


# --------------------------------------------------------------------------------------------
# Long-tailed class sampling
# --------------------------------------------------------------------------------------------

STRUCTURE_CLASSES = ("wall", "floor")  # room structure, never drawn as objects


@lru_cache(maxsize=1)
def _class_probabilities() -> tuple[np.ndarray, np.ndarray]:
    """(drawable class indices, their probabilities), p ∝ (frequency rank + 5) ** -1.1."""
    ranked = [i for split in SPLITS for i, s in enumerate(CLASS_SPLIT)
              if s == split and CLASS_NAMES[i] not in STRUCTURE_CLASSES]
    p = (np.arange(len(ranked)) + 5.0) ** -1.1
    return np.asarray(ranked, dtype=np.int64), p / p.sum()


def sample_classes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` class indices with the long-tailed frequency described in the module docstring."""
    classes, p = _class_probabilities()
    return classes[rng.choice(len(classes), size=n, p=p)]


# --------------------------------------------------------------------------------------------
# Mesh primitives (local frames; faces point outward, u x v is the surface normal)
# --------------------------------------------------------------------------------------------


class _Part(NamedTuple):
    verts: np.ndarray   # (N, 3) float64
    faces: np.ndarray   # (F, 3) int64, indices into verts
    seg: np.ndarray     # (N,) local segment ids
    nz: np.ndarray      # (N,) z of the surface normal, for shading
    tone: np.ndarray    # (N,) colour factor (e.g. darker legs)


STRUCTURE_SPACING = 1.5  # walls/floor (and large object faces) are meshed this much coarser,
LARGE_FACE = 0.8         # like ScanNet's decimated planes; faces whose sides all exceed this are "large"


def _grid_faces(nu: int, nv: int) -> np.ndarray:
    """Two triangles per cell of a (nu+1) x (nv+1) vertex grid indexed i * (nv + 1) + j."""
    i, j = np.meshgrid(np.arange(nu), np.arange(nv), indexing="ij")
    a = (i * (nv + 1) + j).ravel()
    b, c, d = a + nv + 1, a + nv + 2, a + 1
    return np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])


def _chunks(n_cells: int, length: float, seg_size: float) -> np.ndarray:
    """Chunk index of each of the n_cells + 1 grid lines, about seg_size long each."""
    m = max(1, int(round(length / seg_size)))
    return np.minimum(np.arange(n_cells + 1) * m // (n_cells + 1), m - 1)


def _quad(origin, u, v, spacing: float, seg_size: float) -> _Part:
    """Triangulated grid over the parallelogram origin + s u + t v, s, t in [0, 1]."""
    origin, u, v = (np.asarray(x, dtype=np.float64) for x in (origin, u, v))
    lu, lv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    nu, nv = max(1, math.ceil(lu / spacing)), max(1, math.ceil(lv / spacing))
    s, t = np.meshgrid(np.linspace(0, 1, nu + 1), np.linspace(0, 1, nv + 1), indexing="ij")
    verts = origin + s.reshape(-1, 1) * u + t.reshape(-1, 1) * v
    cu, cv = _chunks(nu, lu, seg_size), _chunks(nv, lv, seg_size)
    seg = (cu[:, None] * (cv.max() + 1) + cv[None, :]).ravel()
    n = np.cross(u, v)
    nz = n[2] / (np.linalg.norm(n) + 1e-12)
    return _Part(verts, _grid_faces(nu, nv), seg, np.full(len(verts), nz), np.ones(len(verts)))


def _merge(parts: Sequence[_Part]) -> _Part:
    """Concatenate parts, keeping their segments apart."""
    faces, segs = [], []
    v_off = s_off = 0
    for p in parts:
        faces.append(p.faces + v_off)
        segs.append(p.seg + s_off)
        v_off += len(p.verts)
        s_off += int(p.seg.max()) + 1
    return _Part(np.concatenate([p.verts for p in parts]), np.concatenate(faces), np.concatenate(segs),
                 np.concatenate([p.nz for p in parts]), np.concatenate([p.tone for p in parts]))


def _face_spacing(u, v, spacing: float) -> float:
    """Large flat faces get a coarser grid, as ScanNet's decimated meshes do on planar regions."""
    return spacing * STRUCTURE_SPACING if min(np.linalg.norm(u), np.linalg.norm(v)) > LARGE_FACE else spacing


def _box(lo, hi, spacing: float, seg_size: float, skip: tuple[str, ...] = (), tone: float = 1.0) -> _Part:
    """Axis-aligned box surface, optionally without some faces (e.g. the hidden bottom)."""
    (x0, y0, z0), (x1, y1, z1) = lo, hi
    dx, dy, dz = x1 - x0, y1 - y0, z1 - z0
    faces = {
        "bottom": ((x0, y0, z0), (0, dy, 0), (dx, 0, 0)),
        "top": ((x0, y0, z1), (dx, 0, 0), (0, dy, 0)),
        "-y": ((x0, y0, z0), (dx, 0, 0), (0, 0, dz)),
        "+y": ((x1, y1, z0), (-dx, 0, 0), (0, 0, dz)),
        "-x": ((x0, y1, z0), (0, -dy, 0), (0, 0, dz)),
        "+x": ((x1, y0, z0), (0, dy, 0), (0, 0, dz)),
    }
    box = _merge([_quad(o, u, v, _face_spacing(u, v, spacing), seg_size)
                  for k, (o, u, v) in faces.items() if k not in skip])
    return box._replace(tone=box.tone * tone)


def _cylinder(radius: float, height: float, spacing: float, seg_size: float) -> _Part:
    """Vertical cylinder side plus a closed top disk (fan around a centre vertex), base at z = 0."""
    n_theta = max(8, math.ceil(2 * math.pi * radius / spacing))
    n_z = max(1, math.ceil(height / spacing))
    theta, z = np.meshgrid(np.linspace(0, 2 * np.pi, n_theta + 1), np.linspace(0, height, n_z + 1), indexing="ij")
    side = np.stack([radius * np.cos(theta), radius * np.sin(theta), z], -1).reshape(-1, 3)
    cu = _chunks(n_theta, 2 * math.pi * radius, seg_size)
    cv = _chunks(n_z, height, seg_size)
    side_seg = (cu[:, None] * (cv.max() + 1) + cv[None, :]).ravel()
    side_part = _Part(side, _grid_faces(n_theta, n_z), side_seg, np.zeros(len(side)), np.ones(len(side)))
    # top: rings i = 1..n_r around a centre vertex; ring index-major so _grid_faces applies
    n_r = max(1, math.ceil(radius / spacing))
    r, th = np.meshgrid(np.linspace(radius / n_r, radius, n_r), np.linspace(0, 2 * np.pi, n_theta + 1), indexing="ij")
    ring = np.stack([r * np.cos(th), r * np.sin(th), np.full_like(r, height)], -1).reshape(-1, 3)
    top = np.concatenate([ring, [[0.0, 0.0, height]]])
    centre = len(ring)
    fan = np.stack([np.full(n_theta, centre), np.arange(n_theta), np.arange(1, n_theta + 1)], 1)
    top_faces = np.concatenate([_grid_faces(n_r - 1, n_theta), fan]) if n_r > 1 else fan
    top_part = _Part(top, top_faces, np.zeros(len(top), np.int64), np.ones(len(top)), np.ones(len(top)))
    return _merge([side_part, top_part])


# --------------------------------------------------------------------------------------------
# Object shapes by family (local frame: footprint centred on the origin, base at z = 0)
# --------------------------------------------------------------------------------------------

LEG = 0.045        # leg width (m)
SMALL_OBJECT = 0.35  # objects smaller than this in every dimension form a single segment
OBJECT_SEG = 0.5   # target segment size on object surfaces (m)
STRUCTURE_SEG = 1.0  # target segment size on walls and floor (m)


def _legs(w: float, d: float, top: float, spacing: float) -> list[_Part]:
    ox, oy = w / 2 - LEG / 2 - 0.02, d / 2 - LEG / 2 - 0.02
    return [_box((sx * ox - LEG / 2, sy * oy - LEG / 2, 0), (sx * ox + LEG / 2, sy * oy + LEG / 2, top),
                 spacing, OBJECT_SEG, skip=("top", "bottom"), tone=0.6)
            for sx in (-1, 1) for sy in (-1, 1)]


def _shape(family: str, size: np.ndarray, spacing: float) -> _Part:
    """The surface of one object of ``family`` with the given (jittered) size."""
    w, d, h = (float(x) for x in size)
    lo, hi = (-w / 2, -d / 2, 0.0), (w / 2, d / 2, h)
    if family in ("cylinder", "small_cylinder"):
        part = _cylinder(w / 2, h, spacing, OBJECT_SEG)
    elif family == "table":
        top = _box((-w / 2, -d / 2, h - 0.04), hi, spacing, OBJECT_SEG)
        part = _merge([top, *_legs(w, d, h - 0.04, spacing)])
    elif family == "chair":
        seat_h = min(0.5, max(0.35, 0.5 * h))
        seat = _box((-w / 2, -d / 2, seat_h - 0.06), (w / 2, d / 2, seat_h), spacing, OBJECT_SEG)
        back = _box((-w / 2, d / 2 - 0.06, seat_h), hi, spacing, OBJECT_SEG, skip=("bottom",))
        part = _merge([seat, back, *_legs(w, d, seat_h - 0.06, spacing)])
    elif family == "sofa":
        seat_h = 0.5 * h
        base = _box(lo, (w / 2, d / 2, seat_h), spacing, OBJECT_SEG, skip=("bottom",))
        back = _box((-w / 2, d / 2 - 0.2, seat_h), hi, spacing, OBJECT_SEG, skip=("bottom",))
        arm = min(0.15, w / 6)
        arms = [_box((x0, -d / 2, seat_h), (x0 + arm, d / 2 - 0.2, seat_h + 0.2), spacing, OBJECT_SEG,
                     skip=("bottom",), tone=0.9) for x0 in (-w / 2, w / 2 - arm)]
        part = _merge([base, back, *arms])
    elif family == "panel":  # local y = 0 is the wall plane: the back face is hidden
        part = _box((-w / 2, 0.0, 0.0), (w / 2, d, h), spacing, OBJECT_SEG, skip=("-y",))
    elif family == "ceiling":  # hangs from above: no top face
        part = _box(lo, hi, spacing, OBJECT_SEG, skip=("top",))
    else:  # box, mat, small_box: resting on something, bottom hidden
        part = _box(lo, hi, spacing, OBJECT_SEG, skip=("bottom",))
    if max(w, d, h) < SMALL_OBJECT:  # small props are a single over-segment, as in real scans
        part = part._replace(seg=np.zeros(len(part.verts), np.int64))
    return part


# --------------------------------------------------------------------------------------------
# Room layout
# --------------------------------------------------------------------------------------------

WALL_MARGIN = 0.12  # floor objects keep clear of the walls, so wall panels (<= 0.1 m deep + 15 %) never touch them
GAP = 0.03          # minimum gap between footprints


@dataclass
class _Placed:
    label: str              # raw category written to the aggregation
    class_index: int        # ScanNet200 index, -1 for ignored / unknown labels
    appearance: Appearance
    size: np.ndarray        # jittered (w, d, h)
    center: np.ndarray      # (x, y, z of the base) in the aligned room frame
    yaw: float
    labelled: bool = True   # False: no segGroup at all


@dataclass
class _Room:
    width: float
    depth: float
    height: float
    floor_rects: list = field(default_factory=list)    # AABBs (x0, y0, x1, y1) of floor objects
    floor_tops: list = field(default_factory=list)     # their top heights, same order
    ceiling_rects: list = field(default_factory=list)
    wall_spans: list = field(default_factory=lambda: [[] for _ in range(4)])  # per wall: (u0, u1, z0, z1)
    supports: list = field(default_factory=list)       # tables/low boxes whose top takes small objects

    def wall_length(self, k: int) -> float:
        return self.width if k % 2 == 0 else self.depth


def _rect_free(rects: list, r: tuple) -> bool:
    return all(r[2] + GAP <= q[0] or q[2] + GAP <= r[0] or r[3] + GAP <= q[1] or q[3] + GAP <= r[1] for q in rects)


def _half_extents(w: float, d: float, yaw: float) -> tuple[float, float]:
    c, s = abs(math.cos(yaw)), abs(math.sin(yaw))
    return c * w / 2 + s * d / 2, s * w / 2 + c * d / 2


def _random_yaw(rng: np.random.Generator) -> float:
    """Mostly wall-aligned (as furniture is), sometimes arbitrary."""
    if rng.random() < 0.7:
        return float(rng.integers(4) * (math.pi / 2) + rng.normal(0, 0.05))
    return float(rng.uniform(0, 2 * math.pi))


def _place_floor(rng, room: _Room, size, rects: list, blockers: Sequence = (),
                 tries: int = 25) -> tuple[np.ndarray, float] | None:
    """Rejection-sample a footprint inside the room that overlaps no rect of ``rects`` (to which
    it is added) nor of ``blockers``."""
    for _ in range(tries):
        yaw = _random_yaw(rng)
        ex, ey = _half_extents(size[0], size[1], yaw)
        lo_x, hi_x = WALL_MARGIN + ex, room.width - WALL_MARGIN - ex
        lo_y, hi_y = WALL_MARGIN + ey, room.depth - WALL_MARGIN - ey
        if lo_x > hi_x or lo_y > hi_y:
            return None
        x, y = rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y)
        r = (x - ex, y - ey, x + ex, y + ey)
        if _rect_free(rects, r) and _rect_free(blockers, r):
            rects.append(r)
            return np.array([x, y, 0.0]), yaw
    return None


# Wall k: (yaw mapping local +y to the inward normal, origin of the along-wall coordinate u,
# direction of u).  Walls: 0 at y = 0, 1 at x = W, 2 at y = D, 3 at x = 0.
def _wall_frame(room: _Room, k: int) -> tuple[float, np.ndarray, np.ndarray]:
    W, D = room.width, room.depth
    return [(0.0, np.array([0.0, 0.0]), np.array([1.0, 0.0])),
            (math.pi / 2, np.array([W, 0.0]), np.array([0.0, 1.0])),
            (math.pi, np.array([W, D]), np.array([-1.0, 0.0])),
            (-math.pi / 2, np.array([0.0, D]), np.array([0.0, -1.0]))][k]


def _place_panel(rng, room: _Room, app: Appearance, size) -> tuple[np.ndarray, float] | None:
    w, h = float(size[0]), float(size[2])
    z0 = min(app.elevation * rng.uniform(0.9, 1.1), room.height - 0.05 - h)
    if z0 < 0:
        return None
    for _ in range(15):
        k = int(rng.integers(4))
        length = room.wall_length(k)
        if w + 0.2 > length:
            continue
        u = rng.uniform(0.1 + w / 2, length - 0.1 - w / 2)
        span = (u - w / 2, u + w / 2, z0, z0 + h)
        if all(span[1] + GAP <= s[0] or s[1] + GAP <= span[0] or span[3] <= s[2] or s[3] <= span[2]
               for s in room.wall_spans[k]):
            room.wall_spans[k].append(span)
            yaw, origin, direction = _wall_frame(room, k)
            xy = origin + u * direction
            return np.array([xy[0], xy[1], z0]), yaw
    return None


def _place_on_support(rng, room: _Room, size) -> tuple[np.ndarray, float] | None:
    """Put a small object on top of a table or low box, inside its top, clear of other props."""
    if not room.supports:
        return None
    for _ in range(10):
        sup = room.supports[int(rng.integers(len(room.supports)))]
        sw, sd = sup["size"][0], sup["size"][1]
        turn = float(rng.integers(2)) * math.pi / 2 + rng.normal(0, 0.05)  # relative to the support
        ex, ey = _half_extents(size[0], size[1], turn)
        if 2 * ex > sw - 0.04 or 2 * ey > sd - 0.04:
            continue
        lx = rng.uniform(-sw / 2 + ex + 0.02, sw / 2 - ex - 0.02)
        ly = rng.uniform(-sd / 2 + ey + 0.02, sd / 2 - ey - 0.02)
        r = (lx - ex, ly - ey, lx + ex, ly + ey)
        if _rect_free(sup["rects"], r):
            sup["rects"].append(r)
            c, s = math.cos(sup["yaw"]), math.sin(sup["yaw"])
            x, y = sup["center"][0] + c * lx - s * ly, sup["center"][1] + s * lx + c * ly
            return np.array([x, y, sup["top"]]), sup["yaw"] + turn
    return None


def _place(rng, room: _Room, obj: _Placed) -> bool:
    """Find a position for ``obj`` by its family; False when the room has no space left for it."""
    fam, size = obj.appearance.family, obj.size
    if fam == "panel":
        pose = _place_panel(rng, room, obj.appearance, size)
    elif fam == "ceiling":  # hangs down to z = height - h: avoid floor objects reaching that high
        bottom = room.height - size[2]
        tall = [r for r, top in zip(room.floor_rects, room.floor_tops) if top > bottom - 0.05]
        pose = _place_floor(rng, room, size, room.ceiling_rects, tall)
        if pose is not None:
            pose[0][2] = bottom
    else:
        size[2] = min(size[2], room.height - 0.3)  # keep clear of the wall tops and ceiling items
        pose = None
        if fam in SMALL_FAMILIES and rng.random() < 0.8:
            pose = _place_on_support(rng, room, size)
        if pose is None:
            pose = _place_floor(rng, room, size, room.floor_rects)
            if pose is not None:
                room.floor_tops.append(float(size[2]))
        if pose is not None and (fam == "table" or (fam == "box" and size[2] <= 1.2)):
            room.supports.append({"center": pose[0], "yaw": pose[1], "size": size, "top": float(size[2]), "rects": []})
    if pose is None:
        return False
    obj.center, obj.yaw = pose
    return True


# Placement order: big floor furniture first (it provides supports), then the rest.
_ORDER = {"sofa": 0, "table": 0, "box": 0, "chair": 1, "cylinder": 1, "mat": 2, "panel": 3,
          "ceiling": 3, "small_box": 4, "small_cylinder": 4}


def _draw_objects(rng: np.random.Generator, room: _Room) -> list[_Placed]:
    """Draw the scene's object list (classes, label traps) and place each object; unplaceable ones are dropped."""
    area = room.width * room.depth
    n = int(np.clip(round(8 + 0.4 * area * rng.uniform(0.8, 1.2)), 15, 40))
    objs: list[_Placed] = []
    for c in sample_classes(rng, n):
        name = CLASS_NAMES[c]
        aliases = [a for a, target in ALIASES.items() if target == name]
        label = str(rng.choice(aliases)) if aliases and rng.random() < 0.4 else name
        objs.append(_Placed(label, int(c), class_appearance(int(c)), None, None, 0.0))
    # Label traps: labels outside the 200 (via the tsv, and sometimes missing from it).
    extra = [str(rng.choice(list(IGNORED_LABELS))) for _ in range(int(rng.integers(1, 3)))]
    if rng.random() < 0.5:
        extra.append(str(rng.choice(UNKNOWN_LABELS)))
    objs += [_Placed(lab, -1, label_appearance(lab), None, None, 0.0) for lab in extra]
    for o in objs:  # per-instance size jitter ±15 %; round footprints stay round
        j = rng.uniform(0.85, 1.15, 3)
        if o.appearance.family in ("cylinder", "small_cylinder"):
            j[1] = j[0]
        o.size = np.asarray(o.appearance.size) * j
    objs.sort(key=lambda o: _ORDER[o.appearance.family])  # stable: keeps the draw order within a rank
    placed = [o for o in objs if _place(rng, room, o)]
    # ~5 % of the objects carry no annotation at all (at least one per scene).
    unlabelled = rng.random(len(placed)) < 0.05
    if placed and not unlabelled.any():
        unlabelled[int(rng.integers(len(placed)))] = True
    for o, u in zip(placed, unlabelled):
        o.labelled = not bool(u)
    return placed


# --------------------------------------------------------------------------------------------
# Scene assembly
# --------------------------------------------------------------------------------------------


class _Scene(NamedTuple):
    verts: np.ndarray      # (N, 3) float32, scan frame
    colors: np.ndarray     # (N, 3) uint8
    faces: np.ndarray      # (F, 3) int32
    seg_ids: np.ndarray    # (N,) segment id of each vertex
    groups: list           # [(label, [segment ids])]
    align: np.ndarray      # (4, 4) axisAlignment as written (rounded)
    objects: list          # placed objects


def _structure(room: _Room, spacing: float) -> list[tuple[str, _Part]]:
    W, D, H = room.width, room.depth, room.height
    s = spacing * STRUCTURE_SPACING
    walls = [((W, 0, 0), (-W, 0, 0)), ((W, D, 0), (0, -D, 0)), ((0, D, 0), (W, 0, 0)), ((0, 0, 0), (0, D, 0))]
    parts = [("wall", _quad(o, u, (0, 0, H), s, STRUCTURE_SEG)) for o, u in walls]
    parts.append(("floor", _quad((0, 0, 0), (W, 0, 0), (0, D, 0), s, STRUCTURE_SEG)))
    return parts


def _axis_alignment(rng: np.random.Generator) -> np.ndarray:
    """A rotation about z by an angle well away from multiples of 90°, plus a translation,
    rounded to the 6 decimals written to the .txt file."""
    angle = rng.integers(4) * (math.pi / 2) + rng.uniform(math.radians(10), math.radians(80))
    c, s = math.cos(angle), math.sin(angle)
    t = rng.uniform(-4, 4, 3) * np.array([1, 1, 0.1])
    a = np.array([[c, -s, 0, t[0]], [s, c, 0, t[1]], [0, 0, 1, t[2]], [0, 0, 0, 1]])
    return np.round(a, 6)


def _instance_color(rng: np.random.Generator, app: Appearance) -> np.ndarray:
    """Per-instance colour jitter: an overall gain and a small per-channel offset."""
    return np.asarray(app.color, float) * rng.uniform(0.95, 1.05) + rng.normal(0, 4, 3)


def _build_scene(rng: np.random.Generator, spacing: float, noise_std: float) -> _Scene:
    room = _Room(float(rng.uniform(3, 8)), float(rng.uniform(3, 8)), float(rng.uniform(2.4, 2.8)))
    objects = _draw_objects(rng, room)

    pieces: list[tuple[str | None, _Part, np.ndarray]] = []  # (group label or None, part in room frame, rgb)
    for label, part in _structure(room, spacing):
        pieces.append((label, part, _instance_color(rng, label_appearance(label))))
    for o in objects:
        part = _shape(o.appearance.family, o.size, spacing)
        c, s = math.cos(o.yaw), math.sin(o.yaw)
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
        part = part._replace(verts=part.verts @ rot.T + o.center)
        pieces.append((o.label if o.labelled else None, part, _instance_color(rng, o.appearance)))

    # Concatenate with scene-unique segment numbers; record groups.
    verts, faces, seg, rgb, shade = [], [], [], [], []
    groups: list[tuple[str, list[int]]] = []
    v_off = s_off = 0
    for label, part, color in pieces:
        n = len(part.verts)
        verts.append(part.verts)
        faces.append(part.faces + v_off)
        seg.append(part.seg + s_off)
        rgb.append(np.broadcast_to(color, (n, 3)))
        shade.append((0.92 + 0.08 * part.nz) * part.tone)  # brighter tops, darker sides/legs
        n_seg = int(part.seg.max()) + 1
        if label is not None:
            groups.append((label, list(range(s_off, s_off + n_seg))))
        v_off += n
        s_off += n_seg
    verts, faces, seg = np.concatenate(verts), np.concatenate(faces), np.concatenate(seg)
    rgb, shade = np.concatenate(rgb), np.concatenate(shade)

    # Sensor-like noise and per-scene lighting (brightness and a slight colour cast).
    verts = verts + rng.normal(0, noise_std, verts.shape)
    light = rng.uniform(0.88, 1.1) * rng.uniform(0.97, 1.03, 3)
    colors = np.clip(rgb * shade[:, None] * light + rng.normal(0, 4, rgb.shape), 0, 255).round().astype(np.uint8)

    # ScanNet segment ids are the index of some vertex of the segment: large and sparse.
    order = rng.permutation(len(seg))
    used, first = np.unique(seg[order], return_index=True)
    assert len(used) == s_off, "every segment number must own vertices"
    seg_id_of = order[first]  # a random member vertex of each segment
    groups = [(label, sorted(int(seg_id_of[k]) for k in segs)) for label, segs in groups]

    align = _axis_alignment(rng)
    inv = np.linalg.inv(align)  # exact inverse of the written matrix: applying it restores the room
    scan = verts @ inv[:3, :3].T + inv[:3, 3]
    return _Scene(scan.astype(np.float32), colors, faces.astype(np.int32), seg_id_of[seg], groups, align, objects)


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------


def _write_ply(path: Path, verts: np.ndarray, colors: np.ndarray, faces: np.ndarray) -> None:
    """Binary little-endian PLY, byte-identical to ``PlyData.write`` (plyfile's header), but with
    the face list packed by numpy: plyfile writes list properties one row at a time, too slowly."""
    vertex = np.empty(len(verts), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"),
                                         ("green", "u1"), ("blue", "u1"), ("alpha", "u1")])
    vertex["x"], vertex["y"], vertex["z"] = verts.T
    vertex["red"], vertex["green"], vertex["blue"] = colors.T
    vertex["alpha"] = 255
    face_el = PlyElement("face", [PlyListProperty("vertex_indices", "uint8", "int32")], len(faces))
    header = PlyData([PlyElement.describe(vertex, "vertex"), face_el], byte_order="<",
                     comments=["VCGLIB generated"]).header
    packed = np.empty(len(faces), dtype=[("n", "u1"), ("v", "<i4", (3,))])
    packed["n"], packed["v"] = 3, faces
    with open(path, "wb") as f:  # inside the scene's atomic_dir already
        f.write(header.encode("ascii") + b"\n")
        f.write(vertex.tobytes())
        f.write(packed.tobytes())


def _scene_info(rng: np.random.Generator, align: np.ndarray) -> str:
    """The <scene>.txt metadata: real ScanNet's keys, in its order."""
    frames = int(rng.integers(800, 5000))
    extrinsics = "1.000000 0.000000 0.000000 -0.051958 0.000000 1.000000 0.000000 0.000000 " \
                 "0.000000 0.000000 1.000000 0.000000 0.000000 0.000000 0.000000 1.000000"
    lines = [
        "axisAlignment = " + " ".join(f"{v:.6f}" for v in align.ravel()),
        "colorHeight = 968", f"colorToDepthExtrinsics = {extrinsics}", "colorWidth = 1296",
        "depthHeight = 480", "depthWidth = 640",
        "fx_color = 1170.187988", "fx_depth = 571.623718", "fy_color = 1170.187988", "fy_depth = 571.623718",
        "mx_color = 647.750000", "mx_depth = 319.500000", "my_color = 483.750000", "my_depth = 239.500000",
        f"numColorFrames = {frames}", f"numDepthFrames = {frames}",
        f"numIMUmeasurements = {int(frames * rng.uniform(2.0, 2.2))}",
        f"sceneType = {SCENE_TYPES[int(rng.integers(len(SCENE_TYPES)))]}",
    ]
    return "\n".join(lines) + "\n"


def _write_scene(out_dir: Path, scene: str, split: str, scene_rng: np.random.Generator,
                 spacing: float, noise_std: float) -> dict:
    sc = _build_scene(scene_rng, spacing, noise_std)
    info = _scene_info(scene_rng, sc.align)
    final = out_dir / ("scans_test" if split == "test" else "scans") / scene
    with atomic_dir(final) as d:
        _write_ply(d / f"{scene}_vh_clean_2.ply", sc.verts, sc.colors, sc.faces)
        segs = {"params": SEGS_PARAMS, "sceneId": scene, "segIndices": sc.seg_ids.tolist()}
        (d / f"{scene}_vh_clean_2.0.010000.segs.json").write_text(json.dumps(segs))
        if split != "test":
            agg = {"sceneId": f"scannet.{scene}", "appId": "Aggregator.v2",
                   "segGroups": [{"id": k, "objectId": k, "segments": segs_, "label": label}
                                 for k, (label, segs_) in enumerate(sc.groups)],
                   "segmentsFile": f"scannet.{scene}_vh_clean_2.0.010000.segs.json"}
            (d / f"{scene}.aggregation.json").write_text(json.dumps(agg))
        (d / f"{scene}.txt").write_text(info)
    return {"scene": scene, "split": split, "vertices": len(sc.verts),
            "classes": [o.class_index for o in sc.objects]}


def _tsv_rows() -> list[list[str]]:
    """Rows of the labels tsv: the 200 classes, aliases, ids outside the 200, and a duplicate."""

    def row(cid: int, raw: str, category: str, count: int) -> list[str]:
        name = category.strip()
        # informative columns only: nyu40 where known, else otherprop (small) / otherfurniture
        nyu = _NYU40_OF.get(name, 40 if label_appearance(name).family in SMALL_FAMILIES else 39)
        nyu_class, specific = _NYU40[nyu - 1], nyu < 38
        return [str(cid), raw, category, str(count), str(nyu), "", name if specific else "", nyu_class,
                "", "", "", "", "", "", "", nyu_class if specific else "objects", str(nyu)]

    rows = []
    for i, (cid, name) in enumerate(zip(VALID_CLASS_IDS, CLASS_NAMES)):
        count = int(20000 * (i + 5) ** -1.1) + 1
        rows.append(row(cid, name, name + (" " if name == TRAILING_SPACE_CLASS else ""), count))
    for alias, target in ALIASES.items():
        rows.append(row(VALID_CLASS_IDS[NAME_TO_INDEX[target]], alias, target, 37))
    for raw, cid in IGNORED_LABELS.items():
        rows.append(row(cid, raw, raw, 120))
    dup_raw, dup_target = DUPLICATE_ROW
    rows.append(row(VALID_CLASS_IDS[NAME_TO_INDEX[dup_target]], dup_raw, dup_target, 3))
    return rows


def write_labels_tsv(path: str | Path) -> None:
    """Write ``scannetv2-labels.combined.tsv`` (17 official columns, ``\\r\\r\\n`` line endings)."""
    lines = ["\t".join(TSV_COLUMNS)] + ["\t".join(r) for r in _tsv_rows()]
    with atomic_file(path, "wb") as f:
        f.write(b"".join(line.encode() + TSV_EOL for line in lines))


def split_counts(n: int, fractions: Sequence[float] = (0.7, 0.2, 0.1)) -> tuple[int, int, int]:
    """(train, val, test) scene counts: rounded fractions, with at least one val scene when
    n >= 2 and one test scene when n >= 3 (if their fraction is non-zero); train gets the rest."""
    f = np.asarray(fractions, float)
    if f.shape != (3,) or (f < 0).any() or f.sum() <= 0:
        raise ValueError(f"split fractions must be 3 non-negative numbers, got {fractions!r}")
    f = f / f.sum()
    n_test = round(n * f[2]) if n >= 3 or f[:2].sum() == 0 else 0
    n_test = max(n_test, 1) if n >= 3 and f[2] > 0 else n_test
    n_val = round(n * f[1]) if n >= 2 else 0
    n_val = max(n_val, 1) if n >= 2 and f[1] > 0 else n_val
    n_val, n_test = min(n_val, n - 1), min(n_test, max(n - 1 - n_val, 0))
    return n - n_val - n_test, n_val, n_test


def _scene_job(args: tuple) -> dict:
    out_dir, i, scene, split, seed, spacing, noise_std = args
    rng = np.random.default_rng([seed, i])  # depends on (seed, i) only, not on the worker
    return _write_scene(Path(out_dir), scene, split, rng, spacing, noise_std)


def _prune_stale(out_dir: Path, keep: dict[str, set[str]]) -> None:
    """Remove scene folders (and leftover temp folders) that the current run did not write."""
    for sub, names in keep.items():
        base = out_dir / sub
        if not base.is_dir():
            continue
        for d in base.iterdir():
            stale_scene = SCENE_RE.fullmatch(d.name) and d.name not in names
            leftover_tmp = d.name.startswith(".scene") and ".tmp-" in d.name
            if d.is_dir() and (stale_scene or leftover_tmp):
                shutil.rmtree(d)


def generate(out_dir: str | Path, num_scenes: int, seed: int = 0, workers: int = 1, progress: bool = True,
             *, spacing: float = 0.04, noise_std: float = 0.004,
             split_fractions: Sequence[float] = (0.7, 0.2, 0.1)) -> dict:
    """Write ``num_scenes`` synthetic rooms in ScanNet v2's raw layout under ``out_dir``.

    Scenes ``scene0000_00`` ... are split in order into train, val and test (``split_counts``).
    ``spacing`` is the object mesh grid step in metres (walls/floor use 1.5x), ``noise_std`` the
    Gaussian vertex noise.  Existing scene folders of an earlier run that this run does not
    write are removed.  Returns a summary: scenes per split, vertex counts, objects per class.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "exists and is not a directory", "Choose another output folder.")
    if num_scenes < 1 or num_scenes > 10000:
        raise ValueError(f"num_scenes must be in 1..10000, got {num_scenes}")
    if not spacing > 0.005 or noise_std < 0:
        raise ValueError(f"need spacing > 0.005 m and noise_std >= 0, got {spacing}, {noise_std}")
    n_train, n_val, _ = split_counts(num_scenes, split_fractions)
    scenes = [f"scene{i:04d}_00" for i in range(num_scenes)]
    splits = ["train" if i < n_train else "val" if i < n_train + n_val else "test" for i in range(num_scenes)]
    jobs = [(str(out_dir), i, scenes[i], splits[i], seed, spacing, noise_std) for i in range(num_scenes)]

    out_dir.mkdir(parents=True, exist_ok=True)
    workers = max(1, min(workers, num_scenes))
    bar = tqdm(total=num_scenes, desc="synth scenes", unit="scene", disable=not progress)
    if workers == 1:
        results = []
        for job in jobs:
            results.append(_scene_job(job))
            bar.update()
    else:
        with multiprocessing.Pool(workers) as pool:
            results = []
            for r in pool.imap(_scene_job, jobs):
                results.append(r)
                bar.update()
    bar.close()

    write_labels_tsv(out_dir / TSV_NAME)
    by_split = {s: [sc for sc, sp in zip(scenes, splits) if sp == s] for s in ("train", "val", "test")}
    for split, names in by_split.items():
        with atomic_file(out_dir / f"scannetv2_{split}.txt") as f:
            f.write("".join(f"{n}\n" for n in names))
    _prune_stale(out_dir, {"scans": set(by_split["train"] + by_split["val"]), "scans_test": set(by_split["test"])})

    per_class = Counter(CLASS_NAMES[c] for r in results for c in r["classes"] if c >= 0)
    vertices = [r["vertices"] for r in results]
    return {
        "out_dir": str(out_dir), "seed": seed,
        "scenes": {s: len(v) for s, v in by_split.items()},
        "total_vertices": int(sum(vertices)),
        "vertices_per_scene": {"min": min(vertices), "mean": int(np.mean(vertices)), "max": max(vertices)},
        "ignored_objects": sum(c < 0 for r in results for c in r["classes"]),
        "objects_per_class": dict(sorted(per_class.items(), key=lambda kv: (-kv[1], kv[0]))),
    }
