"""Per-class appearance of the synthetic objects: a shape family, a size and a base colour that
depend on the label only (never on the seed), so classes are learnable from xyz + rgb."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from lgseg.scannet.constants import CLASS_NAMES, NAME_TO_INDEX

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
