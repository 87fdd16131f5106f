"""The synthetic set's label vocabulary: what the labels tsv knows, which raw strings appear in
aggregation files (the label traps of the real data), and how often each class is drawn."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from lgseg.scannet.constants import CLASS_NAMES, CLASS_SPLIT, NAME_TO_INDEX, SPLITS, VALID_CLASS_IDS
from lgseg.synthetic.appearance import SMALL_FAMILIES, label_appearance

TSV_COLUMNS = ("id", "raw_category", "category", "count", "nyu40id", "eigen13id", "nyuClass",
               "nyu40class", "eigen13class", "ModelNet40", "ModelNet10", "ShapeNetCore55",
               "synsetoffset", "wnsynsetid", "wnsynsetkey", "mpcat40", "mpcat40index")
TSV_EOL = b"\r\r\n"  # what the ScanNet200-era labels file really uses

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


def tsv_rows() -> list[list[str]]:
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
