"""The demo world's guarantees: a taxonomy total over the 200 classes, appearance that follows the
category (shared family, size range and colour family, distinct classes), props that span several
voxels, and per-split instance counts that meet the minimums at the demo size for any seed."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from plyfile import PlyData

from lgseg import synthetic
from lgseg.data.voxelize import voxelize
from lgseg.scannet.constants import CLASS_NAMES, CLASS_SPLIT, NAME_TO_INDEX, SPLITS
from lgseg.scannet.layout import LABELS_TSV
from lgseg.synthetic import appearance, labels, layout, write

ROOT = Path(__file__).resolve().parents[2]
DEMO = yaml.safe_load((ROOT / "params.yaml").read_text())
VOXEL = 0.08  # the demo's voxel size (params.yaml data.voxel_size): the world is built for it


def _app(name: str) -> appearance.Appearance:
    return appearance.label_appearance(name)


# ---------------------------------------------------------------- taxonomy


def test_taxonomy_is_total_over_the_200_classes():
    assert sorted(appearance.table_names()) == sorted(CLASS_NAMES)  # each class listed exactly once
    assert len(appearance.table_names()) == len(set(appearance.table_names())) == 200
    members = appearance.categories_of_classes()
    assert sorted(c for names in members.values() for c in names) == sorted(CLASS_NAMES)
    assert set(members) == set(appearance.CATEGORIES), "every category holds a class"
    for name in CLASS_NAMES:
        a = _app(name)
        assert a.category == appearance.class_category(name) and a.family in appearance.FAMILIES
        assert a.placement in appearance.PLACEMENTS and set(a.parts) <= appearance.FAMILY_PARTS[a.family]
        nyu, mp = labels.tsv_columns_of(name)
        assert nyu in labels.NYU40 and mp in labels.MPCAT40
    for trap in [*labels.IGNORED_LABELS, *labels.UNKNOWN_LABELS]:  # the label traps look like something too
        assert _app(trap).category in appearance.CATEGORIES


def test_tsv_writes_the_taxonomy_columns(tmp_path):
    write.write_labels_tsv(tmp_path / LABELS_TSV)
    lines = (tmp_path / LABELS_TSV).read_bytes().decode().split("\r\r\n")[:-1]
    header, rows = lines[0].split("\t"), [line.split("\t") for line in lines[1:201]]
    col = {k: header.index(k) for k in ("category", "nyu40id", "nyu40class", "mpcat40", "mpcat40index")}
    for row in rows:
        name = row[col["category"]].strip()
        nyu, mp = labels.tsv_columns_of(name)
        assert row[col["nyu40class"]] == nyu and int(row[col["nyu40id"]]) == labels.NYU40.index(nyu) + 1
        assert row[col["mpcat40"]] == mp and int(row[col["mpcat40index"]]) == labels.MPCAT40.index(mp)
    assert labels.tsv_columns_of("office chair") == labels.tsv_columns_of("chair") == ("chair", "chair")
    assert labels.tsv_columns_of("kitchen cabinet") == ("cabinet", "cabinet")


# ---------------------------------------------------------------- appearance follows the category


def test_classes_of_a_category_share_family_size_range_and_colour_family():
    for category, names in appearance.categories_of_classes().items():
        if category == "structure":
            continue
        cat = appearance.CATEGORIES[category]
        dark, light = np.asarray(cat.dark, float), np.asarray(cat.light, float)
        lo, hi = (appearance.demo_length(x) for x in cat.size_range)
        for name in names:
            a = _app(name)
            assert a.family == cat.family and a.accent == cat.accent
            assert lo - 1e-6 <= max(a.size) <= hi + 1e-6, (name, a.size, cat.size_range)
            # the colour is a point of the family's dark -> light segment
            t = np.dot(np.asarray(a.color) - dark, light - dark) / np.dot(light - dark, light - dark)
            assert -1e-9 <= t <= 1 + 1e-9
            assert np.linalg.norm(dark + t * (light - dark) - np.asarray(a.color)) < 1.0, name
    # semantically close names look alike: same category
    for a, b in [("office chair", "chair"), ("kitchen cabinet", "cabinet"), ("trash can", "recycling bin"),
                 ("coffee table", "table"), ("bookshelf", "shelf"), ("water bottle", "bottle")]:
        assert _app(a).category == _app(b).category


def test_classes_of_a_category_differ_by_shade_parts_or_proportions():
    for category, names in appearance.categories_of_classes().items():
        cat = appearance.CATEGORIES[category]
        step = np.linalg.norm(np.subtract(cat.light, cat.dark)) / max(1, min(4, len(names)) - 1)
        if len(names) > 1 and category != "structure":
            assert step >= 55, f"{category}: shades only {step:.0f} RGB units apart"
        for a, b in itertools.combinations(names, 2):
            pa, pb = _app(a), _app(b)
            if pa.color != pb.color:
                assert np.linalg.norm(np.subtract(pa.color, pb.color)) >= 55, (a, b)
            else:  # same shade: then parts or proportions tell them apart
                assert not appearance._similar((pa.size, pa.parts), (pb.size, pb.parts)), (a, b)


def test_no_two_classes_look_alike():
    """Across categories too: two classes with the same family and placement, similar parts and
    proportions have clearly different colours."""
    apps = [_app(n) for n in CLASS_NAMES if n not in ("wall", "floor")]
    for pa, pb in itertools.combinations(apps, 2):
        if (pa.family, pa.placement) == (pb.family, pb.placement) and appearance._similar(
                (pa.size, pa.parts), (pb.size, pb.parts)):
            assert np.linalg.norm(np.subtract(pa.color, pb.color)) >= 40, (pa.name, pb.name)


def test_every_class_spans_several_demo_voxels():
    for name in CLASS_NAMES:
        small, middle, large = sorted(_app(name).size)
        # two largest dims >= 2 voxels, or a bar: >= 4 voxels long and a voxel thick (rails, rods, ledges)
        assert middle >= appearance.MIN_PROP - 1e-9 or (large >= 4 * VOXEL and small >= VOXEL - 1e-9), name
    assert appearance.MIN_PROP >= 2 * VOXEL
    assert DEMO["data"]["voxel_size"] <= VOXEL


# ---------------------------------------------------------------- generated scenes: measured appearance


def _objects(root: Path, splits: tuple[str, ...] = ("train", "val")) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(class name, xyz, rgb, the scene's light) of every labelled object of the 200 classes, read
    from the written files; the light (per channel) is the walls' median colour over the walls' shade."""
    tsv = {}
    for line in (root / LABELS_TSV).read_bytes().decode().split("\r\r\n")[1:-1]:
        row = line.split("\t")
        tsv.setdefault(row[1], row[2].strip())
    out = []
    for split in splits:
        for scene in (root / f"scannetv2_{split}.txt").read_text().split():
            d = root / "scans" / scene
            v = PlyData.read(str(d / f"{scene}_vh_clean_2.ply"))["vertex"].data
            xyz = np.stack([v["x"], v["y"], v["z"]], 1)
            rgb = np.stack([v["red"], v["green"], v["blue"]], 1).astype(float)
            seg = np.array(json.loads((d / f"{scene}_vh_clean_2.0.010000.segs.json").read_text())["segIndices"])
            groups = json.loads((d / f"{scene}.aggregation.json").read_text())["segGroups"]
            walls = np.isin(seg, [s for g in groups if g["label"] == "wall" for s in g["segments"]])
            light = np.median(rgb[walls], 0) / (0.94 * np.asarray(_app("wall").color))  # walls face sideways
            for g in groups:
                name = tsv.get(g["label"])
                if name in NAME_TO_INDEX and name not in ("wall", "floor"):
                    m = np.isin(seg, g["segments"])
                    out.append((name, xyz[m], rgb[m], light))
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("world")
    return root, synthetic.generate(root, 6, seed=11, progress=False)


def test_generated_colours_follow_the_category(world):
    """Measured on the written meshes: each class's colour is its shade (up to the scene's light,
    read off its walls, and shading); colours are closer within a category than across; classes
    of one category that share parts and proportions differ in colour by a learnable margin."""
    root, _ = world
    colours: dict[str, list[np.ndarray]] = {}
    for name, _, rgb, light in _objects(root):
        a = _app(name)
        main = rgb[np.linalg.norm(rgb - np.asarray(a.color), axis=1) < np.linalg.norm(rgb - np.asarray(a.accent), axis=1)]
        if len(main) >= 5:
            c = np.median(main, 0) / light
            shade = np.asarray(a.color, float)
            gain = np.clip(shade @ c / (shade @ shade), 0.85, 1.06)  # side shading 0.94, instance ±3 %
            assert np.linalg.norm(c - gain * shade) < 20, (name, c, shade)
            colours.setdefault(name, []).append(c)
    median = {n: np.median(c, 0) for n, c in colours.items()}
    assert len(median) > 100
    within, across = [], []  # chromaticity (rgb / (r + g + b)): a family is one hue from dark to light
    for a, b in itertools.combinations(median, 2):
        d = np.linalg.norm(median[a] - median[b])
        chroma = np.linalg.norm(median[a] / median[a].sum() - median[b] / median[b].sum())
        (within if _app(a).category == _app(b).category else across).append(chroma)
        if _app(a).category == _app(b).category and appearance._similar(
                (_app(a).size, _app(a).parts), (_app(b).size, _app(b).parts)):
            assert d >= 40, (a, b)
    assert np.mean(within) < 0.6 * np.mean(across)


def test_generated_shapes_follow_the_class(world):
    """Measured bounding boxes: an instance's height is its class's (±10 % jitter, clipped below
    the walls' top), so proportions tell the classes of one family apart; every instance spans
    several voxels of the demo size."""
    root, _ = world
    for name, xyz, _, _ in _objects(root):
        a = _app(name)
        extent = np.ptp(xyz, axis=0)
        if a.family not in ("rod",) and a.category != "column":
            assert extent[2] <= a.size[2] * (1 + appearance.SIZE_JITTER) + 0.5 + 0.02, name  # headboard/tank/handle parts
        n_voxels = len(voxelize(xyz, VOXEL).index)
        assert n_voxels >= 4, (name, n_voxels)


# ---------------------------------------------------------------- instance counts per split


def _placed_counts(options: dict) -> dict[str, Counter]:
    """Labelled instances per class of the train and val rooms that ``generate`` would write with
    ``options`` (dealing and placement only, no meshes: the same random streams as generate)."""
    n = options["num_scenes"]
    dealt = write.deal(n, options["seed"], options["objects"], options["train_min"], options["val_min"])
    n_train, n_val, _ = write.split_counts(n)
    counts = {"train": Counter(), "val": Counter()}
    for i in range(n_train + n_val):
        _, placed = layout._draw_objects(np.random.default_rng([options["seed"], i]), dealt[i])
        assert len([o for o in placed if o.class_index >= 0]) == len(dealt[i]), "every dealt object placed"
        split = "train" if i < n_train else "val"
        counts[split].update(CLASS_NAMES[o.class_index] for o in placed if o.labelled and o.class_index >= 0)
    return counts


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_demo_size_meets_the_minimum_instances_per_split_for_any_seed(seed):
    options = {**synthetic.params_options(DEMO["data"]["synthetic"]), "seed": seed}
    counts = _placed_counts(options)
    minimum = options["train_min"]
    drawable = [n for n in CLASS_NAMES if n not in labels.STRUCTURE_CLASSES]
    per_split = {s: [counts["train"][n] for n in drawable if CLASS_SPLIT[NAME_TO_INDEX[n]] == s] for s in SPLITS}
    for s in SPLITS:
        assert min(per_split[s]) >= minimum[s], (s, min(per_split[s]))
    assert minimum["common"] >= 10 and minimum["tail"] >= 3
    assert min(counts["val"][n] for n in drawable) >= options["val_min"] >= 1
    # A long tail, in instances and (ScanNet200's definition of the splits) in labelled surface:
    # a class's instances times its surface area.
    mean = {s: np.mean(v) for s, v in per_split.items()}
    assert mean["head"] > mean["common"] > 1.8 * mean["tail"], mean

    def area(name: str) -> float:
        w, d, h = _app(name).size
        return w * h if _app(name).placement == "panel" else w * d + 2 * h * (w + d)

    surface = {s: np.mean([counts["train"][n] * area(n) for n in drawable if CLASS_SPLIT[NAME_TO_INDEX[n]] == s])
               for s in SPLITS}
    assert surface["head"] > 1.2 * surface["common"] > 1.2 * 3 * surface["tail"], surface


def test_counts_read_from_the_files_match_the_layout(world):
    root, summary = world
    written = {"train": Counter(), "val": Counter()}
    for split in written:
        tsv = {}
        for line in (root / LABELS_TSV).read_bytes().decode().split("\r\r\n")[1:-1]:
            row = line.split("\t")
            tsv.setdefault(row[1], row[2].strip())
        for scene in (root / f"scannetv2_{split}.txt").read_text().split():
            groups = json.loads((root / "scans" / scene / f"{scene}.aggregation.json").read_text())["segGroups"]
            written[split].update(tsv[g["label"]] for g in groups if tsv.get(g["label"]) in NAME_TO_INDEX
                                  and tsv[g["label"]] not in ("wall", "floor"))
    assert {s: dict(c) for s, c in written.items()} == summary["labelled_instances"]
    options = {"num_scenes": 6, "seed": 11, "objects": write.OBJECTS, "train_min": write.TRAIN_MIN,
               "val_min": write.VAL_MIN}
    assert {s: dict(c) for s, c in _placed_counts(options).items()} == summary["labelled_instances"]


def test_guaranteed_instances_spread_over_classes_when_few_rooms():
    rng = np.random.default_rng(0)
    few = labels.guaranteed_classes(rng, {"head": 6, "common": 10, "tail": 3}, budget=150)
    assert len(few) == 150 and len(set(few.tolist())) == 150  # one round: 150 different classes
    rooms = labels.allocate(np.random.default_rng(0), 3, 20, {"head": 1, "common": 1, "tail": 1})
    assert sum(map(len, rooms)) == 60 and all(15 <= len(r) <= 25 for r in rooms)
    assert all(sure for r in rooms for _, sure in r)  # 60 < the 198 guaranteed: all of them are


def test_demo_defaults_are_params_yaml():
    syn = DEMO["data"]["synthetic"]
    assert syn["objects"] == write.OBJECTS and syn["train_min"] == write.TRAIN_MIN and syn["val_min"] == write.VAL_MIN
