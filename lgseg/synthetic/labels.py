"""The synthetic set's label vocabulary: what the labels tsv knows, which raw strings appear in
aggregation files (the label traps of the real data), how often each class is drawn, and how a
split's objects are allocated to its rooms (``allocate``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping

import numpy as np

from lgseg.scannet.constants import CLASS_NAMES, CLASS_SPLIT, NAME_TO_INDEX, SPLITS, VALID_CLASS_IDS
from lgseg.synthetic.appearance import CATEGORIES, class_appearance, class_category

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

#: the vocabularies of the tsv's nyu40class and mpcat40 columns, in id order (1-based; mpcat40 0 = void)
NYU40 = ("wall floor cabinet bed chair sofa table door window bookshelf picture counter blinds "
         "desk shelves curtain dresser pillow mirror floor_mat clothes ceiling books refridgerator "
         "television paper towel shower_curtain box whiteboard person night_stand toilet sink lamp "
         "bathtub bag otherstructure otherfurniture otherprop").split()
MPCAT40 = ("void wall floor chair door table picture cabinet cushion window sofa bed curtain "
           "chest_of_drawers plant sink stairs ceiling toilet stool towel mirror tv_monitor shower "
           "column bathtub counter fireplace lighting beam railing shelving blinds gym_equipment seating "
           "board_panel furniture appliances clothes objects misc").split()
# Classes whose nyu40class / mpcat40 is more specific than their category's (the category table
# in ``appearance`` gives the rest).
_NYU40_OF = {
    "wall": "wall", "floor": "floor", "bookshelf": "bookshelf", "desk": "desk", "dresser": "dresser",
    "pillow": "pillow", "mirror": "mirror", "mat": "floor_mat", "clothes": "clothes", "jacket": "clothes",
    "ceiling": "ceiling", "book": "books", "refrigerator": "refridgerator", "tv": "television",
    "towel": "towel", "shower curtain": "shower_curtain", "whiteboard": "whiteboard",
    "nightstand": "night_stand", "toilet": "toilet", "sink": "sink", "bathtub": "bathtub",
    "blinds": "blinds", "ceiling light": "lamp", "light": "lamp", "plant": "otherprop",
}
_MPCAT40_OF = {
    "wall": "wall", "floor": "floor", "ceiling": "ceiling", "dresser": "chest_of_drawers",
    "nightstand": "chest_of_drawers", "stool": "stool", "bench": "seating", "seat": "seating",
    "towel": "towel", "mirror": "mirror", "tv": "tv_monitor", "monitor": "tv_monitor",
    "shower": "shower", "shower floor": "shower", "shower door": "shower", "shower wall": "shower",
    "bathtub": "bathtub", "toilet": "toilet", "sink": "sink", "fireplace": "fireplace",
    "stairs": "stairs", "blinds": "blinds", "clothes": "clothes", "jacket": "clothes", "hat": "clothes",
    "shoe": "clothes", "blanket": "objects", "mat": "objects", "stuffed animal": "objects",
    "pillar": "column", "range hood": "appliances", "fire alarm": "objects", "bookshelf": "shelving",
}

STRUCTURE_CLASSES = ("wall", "floor")  # room structure, never drawn as objects
TAIL_EXPONENT = 1.1  # p ∝ (frequency rank + 5) ** -TAIL_EXPONENT for the objects beyond the guaranteed ones


@lru_cache(maxsize=1)
def _class_probabilities() -> tuple[np.ndarray, np.ndarray]:
    """(drawable class indices, their probabilities), p ∝ (frequency rank + 5) ** -1.1: all head
    classes first, then common, then tail, each in index order."""
    ranked = [i for split in SPLITS for i, s in enumerate(CLASS_SPLIT)
              if s == split and CLASS_NAMES[i] not in STRUCTURE_CLASSES]
    p = (np.arange(len(ranked)) + 5.0) ** -TAIL_EXPONENT
    return np.asarray(ranked, dtype=np.int64), p / p.sum()


def sample_classes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` class indices with the long-tailed frequency of ``_class_probabilities``."""
    classes, p = _class_probabilities()
    return classes[rng.choice(len(classes), size=n, p=p)]


def guaranteed_classes(rng: np.random.Generator, minimum: Mapping[str, int], budget: int) -> np.ndarray:
    """The guaranteed objects of a split: ``minimum[split of c]`` copies of every drawable class c.

    When they exceed ``budget`` (few rooms), they are taken round by round (one copy of every
    class still owed one, in a random order, then the next round) until the budget is spent, so
    small sets still spread over as many classes as they can hold.
    """
    classes, _ = _class_probabilities()
    owed = np.array([int(minimum[CLASS_SPLIT[c]]) for c in classes])
    out: list[int] = []
    for r in range(int(owed.max(initial=0))):
        this_round = classes[owed > r]
        out.extend(int(c) for c in this_round[rng.permutation(len(this_round))])
    return np.asarray(out[:budget], dtype=np.int64)


def _load(c: int) -> tuple[str, float]:
    """(placement group, how much of the room one instance of class c takes: m² of floor or
    support, m of wall, 1 per ceiling item)."""
    a = class_appearance(c)
    w, d, _ = a.size
    if a.placement == "panel":
        return "panel", w
    if a.placement == "ceiling":
        return "ceiling", 1.0
    return ("prop" if a.placement == "prop" else "floor"), w * d


def allocate(rng: np.random.Generator, n_scenes: int, per_scene: int,
             minimum: Mapping[str, int]) -> list[list[tuple[int, bool]]]:
    """The objects of a split's ``n_scenes`` rooms: ``per_scene * n_scenes`` classes (at least the
    guaranteed ones), dealt so that every room gets a similar share of floor, wall and support load.

    First the guaranteed copies (``guaranteed_classes``), then the rest drawn with the long-tailed
    ``sample_classes``. Objects are dealt largest first, each to the room with the least load of
    its placement group so far (ties: fewest objects, then lowest room index). Returns per room a
    list of ``(class index, guaranteed)``.
    """
    if n_scenes <= 0:
        return []
    budget = max(per_scene, 0) * n_scenes
    sure = guaranteed_classes(rng, minimum, budget)
    extra = sample_classes(rng, max(budget - len(sure), 0))
    objects = [(int(c), True) for c in sure] + [(int(c), False) for c in extra]
    loads = [_load(c) for c, _ in objects]
    order = sorted(range(len(objects)), key=lambda i: (-loads[i][1], rng.random()))
    rooms: list[list[tuple[int, bool]]] = [[] for _ in range(n_scenes)]
    room_load = {g: np.zeros(n_scenes) for g in ("floor", "panel", "ceiling", "prop")}
    for i in order:
        group, amount = loads[i]
        counts = np.array([len(r) for r in rooms])
        k = int(np.lexsort((np.arange(n_scenes), counts, room_load[group]))[0])
        rooms[k].append(objects[i])
        room_load[group][k] += amount
    return rooms


def tsv_columns_of(name: str) -> tuple[str, str]:
    """(nyu40class, mpcat40) of a class or label trap: its own where listed, else its category's."""
    category = CATEGORIES[class_category(name)]
    return _NYU40_OF.get(name, category.nyu40class), _MPCAT40_OF.get(name, category.mpcat40)


def tsv_rows() -> list[list[str]]:
    """Rows of the labels tsv: the 200 classes, aliases, ids outside the 200, and a duplicate."""

    def row(cid: int, raw: str, category: str, count: int) -> list[str]:
        name = category.strip()
        nyu_class, mp_class = tsv_columns_of(name)
        nyu = NYU40.index(nyu_class) + 1
        specific = nyu < 38  # nyuClass names the object only below otherstructure/furniture/prop
        return [str(cid), raw, category, str(count), str(nyu), "", name if specific else "", nyu_class,
                "", "", "", "", "", "", "", mp_class, str(MPCAT40.index(mp_class))]

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
