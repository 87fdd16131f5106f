"""What every synthetic object looks like, derived from what its class is.

The demo world's taxonomy: each of the 200 ScanNet200 classes belongs to exactly one coarse
**category** (``CATEGORIES``, written down below), and a category fixes

* a **shape family** (how the mesh is built: ``box``, ``table``, ``chair``, ``panel`` ...),
* a default **placement** (free on the floor, against a wall, on a wall at some height, below
  the ceiling, or on top of a support such as a table or a shelf board),
* a **colour family**: a segment of the RGB cube from a dark to a light colour of one hue, plus
  one accent colour for the parts that the category's classes may add,
* the ``nyu40class`` / ``mpcat40`` vocabulary of ScanNet's label table that the generator's
  tsv writes for its classes (the public columns' names; ``labels.tsv_rows``).

Within its category a class differs by facts of its own, written in ``_CLASS_TABLE``: its size
(width, depth, height in real metres, then through ``demo_length``, the demo's scale; a small
object is grown to MIN_PROP (3 voxels of 8 cm) in its two largest dimensions and, as a prop, to
MIN_PROP_HEIGHT; an object flat on a wall stands MIN_RELIEF out of it), its **parts** (a stool
is a chair with ``noback``, an office chair has a ``pedestal`` and ``arms``, a kitchen cabinet a
``plinth`` and a contrasting ``top``; parts take the category's accent colour) and its **shade**.
Shades are the points ``dark + t (light - dark)``, ``t = k / (K - 1)``, ``K = min(4, classes of
the category)``; class after class in table order takes the shade ``k`` (lowest first) that no
earlier class of its category with the same parts and similar proportions (every dimension within
a factor ``SIMILAR_SIZE``) already has, else the least used one.  So two classes of one category
always differ in shade, parts or proportions, by amounts a network sees at the demo's voxel size
(shades of one family are >= 55 RGB units apart).

This is a **modelling assumption of the demo**: as in real rooms, where an office chair looks like
a chair and a kitchen cabinet like a cabinet, classes whose names are semantically related look
related, so a text embedding of the class name carries information about its appearance.  The
appearance depends on the class name only, never on the seed; instances jitter size (±10 %) and
colour (``scene._instance_color``).  Labels outside the 200 (the label traps) take the category
named in ``_OTHER_LABELS`` with a size and shade hashed from their name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from lgseg.scannet.constants import CLASS_NAMES

#: shape families and the parts each understands (``mesh._shape`` builds them)
FAMILY_PARTS: dict[str, frozenset[str]] = {
    "box": frozenset("top plinth legs front drawers doors band headboard mattress opening steps rungs wheels "
                     "stall lid handle screen laptop".split()),
    "table": frozenset("pedestal shelf drawers front".split()),
    "chair": frozenset("noback pedestal arms folded".split()),
    "sofa": frozenset("noback noarms cushions".split()),
    "shelf": frozenset("back posts".split()),
    "panel": frozenset("frame stripes cross open knob band".split()),
    "rod": frozenset("brackets posts".split()),
    "basin": frozenset("tank pedestal walls".split()),
    "cylinder": frozenset("lid rim open base square head cap band".split()),
    "pole": frozenset("shade disc hooks brush cup body".split()),
    "plant": frozenset("tall".split()),
    "mat": frozenset("border".split()),
    "ceiling": frozenset("rim".split()),
}
FAMILIES = tuple(FAMILY_PARTS)
#: where an object goes: free on the floor, on the floor with its back to a wall, on a wall
#: (``panel``, bottom at ``elevation``), hanging below the ceiling, or on a support (``prop``)
PLACEMENTS = ("floor", "wall", "panel", "ceiling", "prop")
MIN_PROP = 0.24       # a small object's two largest dimensions are at least this (3 voxels of 8 cm)
SMALL = 0.6           # objects whose every dimension is below this count as small
MIN_PROP_HEIGHT = 0.12  # props stand at least this high (more than a voxel above their support)
MIN_RELIEF = 0.1      # objects flat on a wall stand at least this far out of it
KNEE, RATE = 0.4, 0.4  # demo scale: lengths above KNEE grow by RATE per metre (``demo_length``)
SIMILAR_SIZE = 1.4    # sizes within this factor in every dimension count as "similar proportions"
SIZE_JITTER = 0.10    # instances scale each dimension by U(1 - j, 1 + j)


@dataclass(frozen=True)
class Category:
    name: str
    family: str
    placement: str
    nyu40class: str
    mpcat40: str
    dark: tuple[int, int, int]
    light: tuple[int, int, int]
    accent: tuple[int, int, int]
    size_range: tuple[float, float]  # largest dimension of its classes (m, real scale)


# name | family | placement | nyu40class | mpcat40 | dark RGB | light RGB | accent RGB | size range: the
# largest dimension of its classes, lo hi (m, real scale; demo_length applies)
_CATEGORY_TABLE = """
chair       | chair    | floor   | chair          | chair         | 115 17 42   | 255 181 128 | 45 45 50    | .4 1.5
sofa        | sofa     | floor   | sofa           | sofa          | 17 25 115   | 140 226 255 | 235 225 200 | .6 2.2
table       | table    | floor   | table          | table         | 107 39 16   | 242 212 121 | 40 30 25    | .5 2.2
cabinet     | box      | wall    | cabinet        | cabinet       | 115 83 52   | 247 241 173 | 70 45 30    | .5 2.2
shelving    | shelf    | wall    | shelves        | shelving      | 77 89 13    | 163 230 115 | 45 45 35    | .9 2
bed         | box      | wall    | bed            | bed           | 57 26 102   | 255 166 248 | 245 245 250 | 1.8 2.2
counter     | box      | wall    | counter        | counter       | 49 66 89    | 198 195 230 | 240 235 225 | 1 2.4
appliance   | box      | wall    | otherfurniture | appliances    | 83 109 128  | 255 248 235 | 25 25 30    | .6 2
kitchenette | box      | prop    | otherprop      | appliances    | 71 39 39    | 217 191 204 | 230 230 235 | .16 .6
electronics | box      | prop    | otherprop      | objects       | 8 10 38     | 115 166 191 | 140 210 250 | .16 .6
sanitary    | basin    | wall    | otherfurniture | misc          | 84 153 153  | 242 250 255 | 170 170 180 | .16 2
door        | panel    | panel   | door           | door          | 89 24 18    | 217 163 108 | 215 195 70  | 1.6 2.2
window      | panel    | panel   | window         | window        | 46 117 153  | 191 207 255 | 250 250 250 | 1 1.5
curtain     | panel    | panel   | curtain        | curtain       | 115 17 82   | 230 153 255 | 60 60 60    | .6 2.2
picture     | panel    | panel   | picture        | picture       | 115 99 0    | 255 204 115 | 25 25 25    | .3 1
board       | panel    | panel   | otherprop      | board_panel   | 21 46 33    | 235 246 247 | 150 150 155 | 1 2.6
dispenser   | panel    | panel   | otherprop      | objects       | 9 89 69     | 126 212 230 | 245 245 245 | .16 .5
fixture     | panel    | panel   | otherprop      | objects       | 153 51 0    | 255 217 102 | 40 40 40    | .16 1
rail        | rod      | panel   | otherstructure | railing       | 48 102 10   | 117 235 127 | 120 120 120 | .8 2
overhead    | ceiling  | ceiling | otherprop      | lighting      | 153 149 46  | 255 239 191 | 90 90 90    | .2 2
column      | cylinder | floor   | otherstructure | column        | 67 89 71    | 217 217 195 | 100 100 100 | 2 2.4
partition   | box      | floor   | otherstructure | misc          | 51 64 102   | 203 184 230 | 230 230 235 | 1.4 2.2
masonry     | box      | wall    | otherstructure | misc          | 102 36 26   | 230 169 126 | 35 30 30    | 1 1.8
container   | cylinder | floor   | otherprop      | objects       | 13 89 32    | 152 217 119 | 40 40 40    | .3 .7
box         | box      | prop    | box            | objects       | 140 85 21   | 255 230 128 | 60 40 20    | .16 .6
bag         | box      | prop    | bag            | objects       | 0 74 89     | 101 224 194 | 30 30 30    | .24 1.1
textile     | box      | prop    | otherprop      | cushion       | 122 31 69   | 255 185 178 | 250 250 240 | .24 1.4
paper       | box      | prop    | paper          | objects       | 153 147 115 | 242 248 255 | 180 40 40   | .24 .4
kitchenware | cylinder | prop    | otherprop      | objects       | 0 85 128    | 136 247 244 | 40 40 40    | .16 .45
lighting    | pole     | floor   | lamp           | lighting      | 128 97 6    | 255 250 115 | 50 50 50    | 1 1.8
plant       | plant    | floor   | otherprop      | plant         | 14 82 8     | 163 217 87  | 160 75 40   | .3 .9
toiletry    | cylinder | prop    | otherprop      | objects       | 75 57 128   | 245 217 255 | 60 60 60    | .16 .3
tool        | pole     | floor   | otherprop      | objects       | 153 46 0    | 255 186 89  | 30 30 30    | .5 1.3
instrument  | box      | wall    | otherfurniture | furniture     | 38 10 14    | 166 110 91  | 245 245 240 | .9 1.5
sports      | box      | floor   | otherprop      | gym_equipment | 153 23 142  | 255 140 198 | 30 30 30    | .24 1.7
person      | cylinder | floor   | person         | misc          | 89 55 40    | 230 193 161 | 40 35 30    | 1.5 1.9
structure   | mat      | floor   | otherstructure | misc          | 132 110 88  | 200 196 186 | 0 0 0       | 1 1
"""

# name | category | width depth height (m) | parts | placement override (panel@elevation for wall objects)
# Order matters within a category: shades are assigned in this order (module docstring).
_CLASS_TABLE = """
wall | structure | 1 1 1
floor | structure | 1 1 1
chair | chair | .5 .5 .9
office chair | chair | .65 .65 1.1 | pedestal arms
seat | chair | .55 .5 .85 | arms
stool | chair | .4 .4 .65 | noback
bench | chair | 1.4 .45 .48 | noback
folded chair | chair | .45 .16 .85 | folded
couch | sofa | 2 .9 .85
armchair | sofa | .9 .85 .9
sofa chair | sofa | .8 .8 .8 | cushions
ottoman | sofa | .6 .6 .42 | noback noarms
table | table | 1.2 .8 .75
desk | table | 1.4 .7 .75 | drawers
coffee table | table | 1 .6 .45 | shelf
dining table | table | 1.6 .9 .76
end table | table | .5 .5 .55
stand | table | .5 .4 .9 | pedestal
bar | table | 2 .5 1.05 | front
cart | table | .9 .55 .9 | shelf
ironing board | table | 1.3 .35 .85 | pedestal
music stand | table | .5 .35 1.2 | pedestal
cabinet | cabinet | .8 .5 .9 | plinth
kitchen cabinet | cabinet | 1.2 .6 .9 | plinth top
file cabinet | cabinet | .45 .6 1.3 | drawers
nightstand | cabinet | .5 .4 .6 | legs
dresser | cabinet | 1.2 .5 .95 | drawers legs
tv stand | cabinet | 1.3 .45 .5 | legs
wardrobe | cabinet | 1.2 .6 2 | plinth doors
closet | cabinet | 1.6 .65 2.1 | doors
furniture | cabinet | 1 .6 .8
storage organizer | cabinet | .6 .4 .9 | drawers
bathroom cabinet | cabinet | .6 .2 .7 | doors | panel@1.2
shelf | shelving | 1 .35 1.2
bookshelf | shelving | 1 .35 1.9 | back
rack | shelving | .9 .45 1.6 | posts
bed | bed | 2 1.5 .55 | headboard mattress
mattress | bed | 1.9 1.4 .28
counter | counter | 1.8 .6 .9 | top
kitchen counter | counter | 2.2 .65 .92 | top plinth
bathroom counter | counter | 1.4 .55 .85 | top
bathroom vanity | counter | 1 .55 .85 | top doors
refrigerator | appliance | .8 .7 1.8 | front
mini fridge | appliance | .5 .5 .85 | front
stove | appliance | .75 .65 .92 | top
oven | appliance | .6 .6 .9 | front
washing machine | appliance | .6 .6 .85 | front
clothes dryer | appliance | .6 .6 .85 | band
dishwasher | appliance | .6 .6 .85 | drawers
copier | appliance | .6 .65 1.1 | top
machine | appliance | .8 .6 1.2
water cooler | appliance | .35 .35 1.1 | top
scale | kitchenette | .3 .3 .08
microwave | kitchenette | .5 .38 .3 | front
toaster | kitchenette | .28 .2 .2
toaster oven | kitchenette | .45 .35 .27 | front
coffee maker | kitchenette | .25 .3 .35 | top
printer | kitchenette | .45 .4 .25 | top
projector | kitchenette | .3 .25 .16 | front
hair dryer | kitchenette | .25 .16 .22 | handle
monitor | electronics | .55 .2 .4 | screen
computer tower | electronics | .2 .45 .45 | front
laptop | electronics | .36 .26 .24 | laptop
keyboard | electronics | .45 .16 .08
mouse | electronics | .16 .16 .08
telephone | electronics | .22 .2 .1 | handle
speaker | electronics | .2 .2 .3 | front
headphones | electronics | .2 .18 .16 | band
power strip | electronics | .35 .16 .08 | band
alarm clock | electronics | .18 .16 .16 | screen
toilet | sanitary | .42 .68 .78 | tank
sink | sanitary | .55 .45 .85 | pedestal
bathtub | sanitary | 1.6 .75 .55
shower | sanitary | .9 .9 2 | walls
shower floor | sanitary | .9 .9 .08 | | floor
soap dish | sanitary | .18 .16 .08 | | prop
door | door | .9 .06 2 | knob | panel@0
closet door | door | .8 .06 2 | stripes | panel@0
shower door | door | .8 .05 1.9 | frame | panel@0
bathroom stall door | door | .7 .05 1.6 | | panel@.25
doorframe | door | 1 .1 2.1 | open | panel@0
window | window | 1.2 .06 1.2 | cross | panel@.9
blinds | window | 1.2 .06 1.3 | stripes | panel@.95
windowsill | window | 1.2 .16 .1 | | panel@.85
curtain | curtain | 1.4 .08 2.1 | stripes | panel@.2
shower curtain | curtain | 1.5 .05 1.8 | | panel@.2
towel | curtain | .5 .06 .7 | band | panel@1
picture | picture | .6 .04 .5 | frame | panel@1.3
poster | picture | .6 .02 .9 | | panel@1.1
calendar | picture | .3 .02 .45 | band | panel@1.3
sign | picture | .45 .03 .3 | | panel@1.6
mirror | picture | .6 .03 .9 | frame | panel@1
clock | picture | .35 .06 .35 | frame | panel@1.8
whiteboard | board | 1.8 .04 1.1 | frame | panel@.9
blackboard | board | 2.5 .04 1.2 | frame | panel@.9
board | board | 1.2 .04 .9 | | panel@1
bulletin board | board | 1.2 .04 .9 | frame | panel@1
projector screen | board | 2 .04 1.5 | band | panel@.8
tv | board | 1.1 .1 .65 | frame | panel@1
paper towel dispenser | dispenser | .3 .12 .35 | band | panel@1.1
toilet paper dispenser | dispenser | .25 .12 .25 | | panel@.7
toilet seat cover dispenser | dispenser | .4 .06 .3 | | panel@1
soap dispenser | dispenser | .16 .1 .2 | band | panel@1.1
toilet paper holder | dispenser | .18 .12 .16 | | panel@.7
mailbox | dispenser | .35 .12 .4 | frame | panel@1.2
light switch | fixture | .16 .03 .2 | | panel@1.2
power outlet | fixture | .16 .03 .16 | | panel@.3
vent | fixture | .4 .03 .25 | stripes | panel@2
radiator | fixture | 1 .1 .6 | stripes | panel@.1
shower head | fixture | .16 .16 .16 | | panel@1.9
fire extinguisher | fixture | .18 .18 .5 | band | panel@.6
rail | rail | 1.5 .08 .08 | brackets | panel@.9
stair rail | rail | 2 .08 .08 | posts | panel@.9
handicap bar | rail | .8 .1 .08 | brackets | panel@.8
shower curtain rod | rail | 1.5 .08 .08 | | panel@2
closet rod | rail | 1.2 .08 .08 | | panel@1.7
ceiling | overhead | 2 1.5 .08
ceiling light | overhead | .6 .6 .1 | rim
light | overhead | .4 .4 .16
fire alarm | overhead | .2 .2 .08
range hood | overhead | .9 .5 .4
column | column | .4 .4 2.2
pillar | column | .5 .5 2.2 | square
pipe | column | .16 .16 2.2
divider | partition | 1.5 .1 1.6 | band
bathroom stall | partition | 1 1.5 1.9 | stall | wall
closet wall | partition | 1.5 .08 2.2 | | panel@0
shower wall | partition | 1.5 .08 2 | band | panel@0
structure | partition | 1 .8 1.5
fireplace | masonry | 1.4 .5 1.1 | opening
stairs | masonry | .9 1.5 1 | steps
ledge | masonry | 1.5 .12 .12 | | panel@1
ladder | masonry | .5 .12 1.8 | rungs
trash can | container | .35 .35 .6 | lid
recycling bin | container | .4 .4 .7 | rim
trash bin | container | .3 .3 .4 | open
bin | container | .3 .3 .4 | rim
bucket | container | .3 .3 .35 | open | prop
basket | container | .4 .4 .35 | open
laundry basket | container | .45 .45 .5 | open
laundry hamper | container | .45 .45 .65 | lid
storage bin | container | .5 .35 .3 | square lid
box | box | .45 .35 .35
storage container | box | .6 .4 .35 | lid
crate | box | .5 .4 .35 | band
case of water bottles | box | .4 .27 .25 | band
tissue box | box | .24 .16 .12
cd case | box | .16 .16 .08
container | box | .35 .25 .25 | lid
object | box | .3 .25 .25
bag | bag | .4 .2 .35 | handle
backpack | bag | .32 .22 .45 | band
suitcase | bag | .45 .25 .65 | handle | floor
luggage | bag | .5 .3 .7 | band | floor
purse | bag | .3 .16 .24 | handle
paper bag | bag | .3 .18 .38
guitar case | bag | .42 .16 1.1 | | wall
pillow | textile | .55 .38 .16
cushion | textile | .45 .45 .16 | band
clothes | textile | .5 .4 .12
jacket | textile | .55 .35 .1 | band
blanket | textile | 1.4 1.1 .08
mat | textile | 1.2 .8 .04 | | floor
hat | textile | .3 .3 .16 | band
shoe | textile | .3 .16 .14
stuffed animal | textile | .3 .25 .35
book | paper | .24 .18 .08 | band
paper | paper | .3 .22 .08
paper cutter | paper | .4 .32 .08 | band
bottle | kitchenware | .16 .16 .3 | cap
water bottle | kitchenware | .16 .16 .28 | band
cup | kitchenware | .16 .16 .14
bowl | kitchenware | .24 .24 .1
plate | kitchenware | .28 .28 .08
water pitcher | kitchenware | .2 .2 .28 | band
coffee kettle | kitchenware | .2 .2 .26 | cap
candle | kitchenware | .16 .16 .2 | cap
tray | kitchenware | .45 .3 .08 | square
dish rack | kitchenware | .45 .35 .16 | square band
lamp | lighting | .4 .4 1.5 | shade
fan | lighting | .45 .45 1.2 | disc
coat rack | lighting | .5 .5 1.8 | hooks
plant | plant | .5 .5 .9 | tall
potted plant | plant | .35 .35 .55
decoration | plant | .24 .24 .3 | | prop
toilet paper | toiletry | .16 .16 .16
paper towel roll | toiletry | .16 .16 .3 | band
laundry detergent | toiletry | .25 .16 .3 | square cap
tube | toiletry | .16 .16 .24 | cap
broom | tool | .3 .1 1.3 | brush
plunger | tool | .24 .24 .5 | cup
dustpan | tool | .3 .3 .8 | body
vacuum cleaner | tool | .35 .3 1.1 | body
piano | instrument | 1.5 .6 1.25 | top
keyboard piano | instrument | 1.3 .35 .8 | legs | floor
guitar | instrument | .38 .12 1 | band
ball | sports | .24 .24 .24
dumbbell | sports | .3 .16 .16 | band
bicycle | sports | 1.7 .5 1 | wheels
person | person | .45 .35 1.7 | head
"""

#: labels outside the 200 (label traps): the category whose look they borrow
_OTHER_LABELS = {
    "rug": "textile", "kitchen island": "counter", "doll": "textile", "otherfurniture": "cabinet",
    "otherprop": "box", "wall hanging": "picture", "clutter": "box", "misc item": "box",
}
_STRUCTURE_COLOR = {"wall": (200, 196, 186), "floor": (132, 110, 88)}


@dataclass(frozen=True)
class Appearance:
    """How the instances of one raw label look, before per-instance jitter."""

    name: str
    category: str
    family: str                        # one of FAMILIES
    placement: str                     # one of PLACEMENTS
    size: tuple[float, float, float]   # width (x), depth (y, out of the wall for wall objects), height (z), m
    color: tuple[int, int, int]        # base RGB (the shade of the category's colour family)
    accent: tuple[int, int, int]       # RGB of the parts (the category's accent)
    parts: tuple[str, ...] = ()        # parts of FAMILY_PARTS[family]
    elevation: float = 0.0             # bottom above the floor (placement "panel" only)
    shade: int = 0                     # k of the category's K shades


def demo_length(metres: float) -> float:
    """The demo world's scale: lengths up to KNEE are real, longer ones are compressed,
    ``KNEE + RATE (s - KNEE)`` (a 2 m bed is 1.04 m long, a 2.5 m high room 1.24 m), so rooms full
    of furniture stay within the demo's voxel budget (and a crop of a room holds many objects)
    while small props keep their size."""
    return metres if metres <= KNEE else KNEE + RATE * (metres - KNEE)


def _rgb(text: str) -> tuple[int, int, int]:
    r, g, b = (int(x) for x in text.split())
    return r, g, b


def _parse_categories(text: str) -> dict[str, Category]:
    out = {}
    for line in text.strip().splitlines():
        name, family, placement, nyu, mp, dark, light, accent, size = (f.strip() for f in line.split("|"))
        lo, hi = (float(x) for x in size.split())
        out[name] = Category(name, family, placement, nyu, mp, _rgb(dark), _rgb(light), _rgb(accent), (lo, hi))
    return out


CATEGORIES: dict[str, Category] = _parse_categories(_CATEGORY_TABLE)


def _parse_classes(text: str) -> dict[str, tuple[str, tuple[float, float, float], tuple[str, ...], str, float]]:
    """name -> (category, demo size, parts, placement, demo elevation): the table's real sizes
    through ``demo_length``, small objects grown to MIN_PROP in their two largest dimensions (and
    props to MIN_PROP_HEIGHT), round footprints kept round, flat wall objects MIN_RELIEF deep."""
    out = {}
    for line in text.strip().splitlines():
        fields = [f.strip() for f in line.split("|")] + ["", ""]
        name, category, size, parts, where = fields[:5]
        family = CATEGORIES[category].family
        placement, _, elevation = where.partition("@")
        placement = placement or CATEGORIES[category].placement
        w, d, h = (round(demo_length(float(x)), 4) for x in size.split())
        if max(w, d, h) < SMALL:  # a small object: its two largest dimensions at least MIN_PROP
            grown = [w, d, h]
            for i in sorted(range(3), key=lambda i: (grown[i], -i))[1:]:
                grown[i] = max(grown[i], MIN_PROP)
            w, d, h = grown
        if family == "cylinder" and "square" not in parts.split():
            d = w = max(w, d)  # a round footprint
        if placement == "panel" and family == "panel":
            d = max(d, MIN_RELIEF)  # stands out of the wall by a voxel
        if placement == "prop":
            h = max(h, MIN_PROP_HEIGHT)
        out[name] = (category, (w, d, h), tuple(parts.split()), placement if where else "",
                     round(demo_length(float(elevation or 0)), 4))
    return out


_CLASSES = _parse_classes(_CLASS_TABLE)


def class_category(name: str) -> str:
    """The category of a ScanNet200 class or of a label trap (KeyError for anything else)."""
    return _CLASSES[name][0] if name in _CLASSES else _OTHER_LABELS[name]


def shade_color(category: Category, k: int, n_shades: int) -> tuple[int, int, int]:
    """Shade k of n_shades, evenly spaced from the family's dark to its light colour."""
    t = 0.5 if n_shades == 1 else k / (n_shades - 1)
    dark, light = np.asarray(category.dark, float), np.asarray(category.light, float)
    return tuple(int(round(v)) for v in dark + t * (light - dark))


def _similar(a: tuple[tuple[float, ...], tuple[str, ...]], b: tuple[tuple[float, ...], tuple[str, ...]]) -> bool:
    """Same parts and every dimension within a factor SIMILAR_SIZE: only the shade tells them apart."""
    (size_a, parts_a), (size_b, parts_b) = a, b
    ratio = np.maximum(np.asarray(size_a) / np.asarray(size_b), np.asarray(size_b) / np.asarray(size_a))
    return set(parts_a) == set(parts_b) and bool((ratio < SIMILAR_SIZE).all())


@lru_cache(maxsize=1)
def _shades() -> dict[str, tuple[int, int]]:
    """class name -> (shade k, K of its category), by the greedy rule of the module docstring."""
    out: dict[str, tuple[int, int]] = {}
    by_category: dict[str, list[str]] = {}
    for name, (category, *_rest) in _CLASSES.items():
        by_category.setdefault(category, []).append(name)
    for category, names in by_category.items():
        n_shades = min(4, len(names))
        used = [0] * n_shades
        for i, name in enumerate(names):
            me = (_CLASSES[name][1], _CLASSES[name][2])
            taken = {out[o][0] for o in names[:i] if _similar(me, (_CLASSES[o][1], _CLASSES[o][2]))}
            free = [k for k in range(n_shades) if k not in taken] or list(range(n_shades))
            k = min(free, key=lambda s: (used[s], s))
            used[k] += 1
            out[name] = (k, n_shades)
    return out


def _hash01(name: str, salt: str) -> float:
    """A stable number in [0, 1) from a string (independent of PYTHONHASHSEED and of the seed)."""
    digest = hashlib.blake2b(f"{salt}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


@lru_cache(maxsize=None)
def label_appearance(name: str) -> Appearance:
    """The appearance of any raw label the generator writes (a ScanNet200 class or a label trap)."""
    if name in _CLASSES:
        category_name, size, parts, placement, elevation = _CLASSES[name]
        k, n_shades = _shades()[name]
    else:  # a label trap: the look of its category's first class, scaled and shaded from its name
        category_name = _OTHER_LABELS[name]
        first = next(n for n, c in _CLASSES.items() if c[0] == category_name)
        _, base, parts, placement, elevation = _CLASSES[first]
        scale = 0.8 + 0.4 * _hash01(name, "size")
        size = tuple(round(max(MIN_PROP / 2, s * scale), 3) for s in base)
        n_shades = _shades()[first][1]
        k = int(_hash01(name, "shade") * n_shades)
    category = CATEGORIES[category_name]
    color = _STRUCTURE_COLOR.get(name) or shade_color(category, k, n_shades)
    return Appearance(name, category_name, category.family, placement or category.placement,
                      tuple(float(s) for s in size), color, category.accent, parts, float(elevation), k)


def class_appearance(index: int) -> Appearance:
    """The fixed appearance of ScanNet200 class ``index`` (0..199), the same in every scene and seed."""
    return label_appearance(CLASS_NAMES[index])


def categories_of_classes() -> dict[str, list[str]]:
    """category -> its ScanNet200 classes, in table order (every class in exactly one)."""
    out: dict[str, list[str]] = {}
    for name in CLASS_NAMES:
        out.setdefault(class_category(name), []).append(name)
    return out


def table_names() -> tuple[str, ...]:
    """Every class name of ``_CLASS_TABLE`` (the tests check that these are exactly the 200)."""
    return tuple(_CLASSES)
