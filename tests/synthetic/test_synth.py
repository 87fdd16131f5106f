"""Synthetic ScanNet generator: exact raw formats, determinism, geometry, long tail and label traps."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from plyfile import PlyData, PlyElement, PlyListProperty

from lgseg import synthetic
from lgseg.errors import InputError
from lgseg.scannet.constants import CLASS_NAMES, CLASS_SPLIT, NAME_TO_INDEX, NUM_CLASSES, SPLIT_INDICES, VALID_CLASS_IDS
from lgseg.scannet.layout import LABELS_TSV
from lgseg.synthetic import appearance, layout, write
from lgseg.synthetic import labels as vocabulary

NUM_SCENES = 5  # -> 3 train, 1 val, 1 test


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("synth")
    return root, synthetic.generate(root, NUM_SCENES, seed=0, progress=False)


# ---------------------------------------------------------------- helpers (plain readers of the real format)


def _splits(root: Path) -> dict[str, list[str]]:
    return {s: (root / f"scannetv2_{s}.txt").read_text().split() for s in ("train", "val", "test")}


def _scene_dir(root: Path, scene: str) -> Path:
    return root / ("scans_test" if scene in _splits(root)["test"] else "scans") / scene


def _read_ply(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, PlyData]:
    ply = PlyData.read(str(path))
    v = ply["vertex"].data
    xyz = np.stack([v["x"], v["y"], v["z"]], 1).astype(np.float64)
    faces = np.stack(ply["face"].data["vertex_indices"])
    return xyz, v, faces, ply


def _meta(root: Path, scene: str) -> dict[str, str]:
    lines = (_scene_dir(root, scene) / f"{scene}.txt").read_text().splitlines()
    return dict(line.split(" = ", 1) for line in lines)


def _align(root: Path, scene: str) -> np.ndarray:
    return np.array([float(x) for x in _meta(root, scene)["axisAlignment"].split()]).reshape(4, 4)


def _annotations(root: Path, scene: str) -> tuple[np.ndarray, list[dict]]:
    d = _scene_dir(root, scene)
    seg = np.array(json.loads((d / f"{scene}_vh_clean_2.0.010000.segs.json").read_text())["segIndices"])
    groups = json.loads((d / f"{scene}.aggregation.json").read_text())["segGroups"]
    return seg, groups


def _tsv_rows(root: Path) -> list[list[str]]:
    raw = (root / LABELS_TSV).read_bytes().decode()
    return [line.split("\t") for line in raw.split("\r\r\n")[:-1]]


def _tsv_first_id(root: Path) -> dict[str, int]:
    """raw_category -> id, the first row winning (the benchmark's rule)."""
    out: dict[str, int] = {}
    for row in _tsv_rows(root)[1:]:
        out.setdefault(row[1], int(row[0]))
    return out


def _all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- layout and formats


def test_split_lists_partition_the_scenes(out):
    root, summary = out
    splits = _splits(root)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [3, 1, 1]
    everything = sorted(sum(splits.values(), []))
    assert everything == [f"scene{i:04d}_00" for i in range(NUM_SCENES)]  # disjoint and complete
    for s in ("train", "val", "test"):
        text = (root / f"scannetv2_{s}.txt").read_text()
        assert text.endswith("\n") and "\r" not in text
    assert sorted(p.name for p in (root / "scans").iterdir()) == sorted(splits["train"] + splits["val"])
    assert sorted(p.name for p in (root / "scans_test").iterdir()) == splits["test"]
    assert summary["scenes"] == {"train": 3, "val": 1, "test": 1}


@pytest.mark.parametrize("n, expected", [(40, (28, 8, 4)), (10, (7, 2, 1)), (3, (1, 1, 1)),
                                         (2, (1, 1, 0)), (1, (1, 0, 0))])
def test_split_counts(n, expected):
    assert write.split_counts(n) == expected


def test_ply_is_binary_mesh_with_scannet_properties(out):
    root, summary = out
    total = 0
    for scene in sum(_splits(root).values(), []):
        path = _scene_dir(root, scene) / f"{scene}_vh_clean_2.ply"
        assert path.read_bytes().startswith(b"ply\nformat binary_little_endian 1.0\n")
        xyz, v, faces, ply = _read_ply(path)
        assert [e.name for e in ply.elements] == ["vertex", "face"]
        assert [(n, v.dtype[n].str) for n in v.dtype.names] == [
            ("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "|u1"), ("green", "|u1"), ("blue", "|u1"),
            ("alpha", "|u1")]
        (prop,) = ply["face"].properties
        assert isinstance(prop, PlyListProperty) and prop.name == "vertex_indices"
        assert (prop.len_dtype, prop.val_dtype) == ("u1", "i4")
        assert (v["alpha"] == 255).all()
        n = len(v)
        assert 15_000 < n < 150_000
        assert faces.shape[1] == 3 and faces.min() >= 0 and faces.max() < n
        assert (np.bincount(faces.ravel(), minlength=n) > 0).all(), "every vertex belongs to a face"
        assert ((faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])).all()
        assert len(np.unique(np.stack([v["red"], v["green"], v["blue"]], 1), axis=0)) > 100  # coloured, noisy
        total += n
    assert summary["total_vertices"] == total


def test_ply_writer_is_byte_identical_to_plyfile(tmp_path):
    rng = np.random.default_rng(1)
    verts = rng.normal(size=(7, 3)).astype(np.float32)
    colors = rng.integers(0, 256, (7, 3)).astype(np.uint8)
    faces = rng.integers(0, 7, (5, 3)).astype(np.int32)
    write._write_ply(tmp_path / "fast.ply", verts, colors, faces)

    vertex = np.empty(7, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"),
                                ("blue", "u1"), ("alpha", "u1")])
    vertex["x"], vertex["y"], vertex["z"] = verts.T
    vertex["red"], vertex["green"], vertex["blue"] = colors.T
    vertex["alpha"] = 255
    face = np.empty(5, dtype=[("vertex_indices", "i4", (3,))])
    face["vertex_indices"] = faces
    PlyData([PlyElement.describe(vertex, "vertex"), PlyElement.describe(face, "face")], byte_order="<",
            comments=["VCGLIB generated"]).write(str(tmp_path / "ref.ply"))
    assert (tmp_path / "fast.ply").read_bytes() == (tmp_path / "ref.ply").read_bytes()


def test_segs_and_aggregation_files(out):
    root, _ = out
    splits = _splits(root)
    for scene in splits["train"] + splits["val"]:
        d = _scene_dir(root, scene)
        segs = json.loads((d / f"{scene}_vh_clean_2.0.010000.segs.json").read_text())
        assert list(segs) == ["params", "sceneId", "segIndices"]
        assert segs["params"] == write.SEGS_PARAMS and segs["params"]["kThresh"] == "0.0001"
        assert segs["sceneId"] == scene
        xyz, *_ = _read_ply(d / f"{scene}_vh_clean_2.ply")
        seg = np.array(segs["segIndices"])
        assert len(seg) == len(xyz) and seg.dtype.kind == "i" and seg.min() >= 0
        ids = np.unique(seg)
        assert seg.max() > 10 * len(ids), "ScanNet-like large sparse segment ids, not 0..K-1"

        agg = json.loads((d / f"{scene}.aggregation.json").read_text())
        assert agg["sceneId"] == f"scannet.{scene}" and agg["appId"] == "Aggregator.v2"
        assert agg["segmentsFile"] == f"scannet.{scene}_vh_clean_2.0.010000.segs.json"
        groups = agg["segGroups"]
        assert [g["id"] for g in groups] == list(range(len(groups)))
        assert all(g["objectId"] == g["id"] and isinstance(g["label"], str) and g["segments"] for g in groups)
        listed = [s for g in groups for s in g["segments"]]
        assert set(listed) <= set(ids.tolist()), "aggregation names only existing segments"
        assert len(listed) == len(set(listed)), "no segment belongs to two objects"
        labels = [g["label"] for g in groups]
        assert labels.count("wall") == 4 and labels.count("floor") == 1
        assert len(groups) >= 15
    for scene in splits["test"]:
        d = _scene_dir(root, scene)
        assert d.parent.name == "scans_test"
        assert not (d / f"{scene}.aggregation.json").exists()
        assert (d / f"{scene}_vh_clean_2.0.010000.segs.json").exists() and (d / f"{scene}.txt").exists()


def test_scene_txt_metadata(out):
    root, _ = out
    meta = _meta(root, "scene0000_00")
    assert list(meta)[0] == "axisAlignment" and len(meta["axisAlignment"].split()) == 16
    sizes = (meta["colorWidth"], meta["colorHeight"], meta["depthWidth"], meta["depthHeight"])
    assert sizes == ("1296", "968", "640", "480")
    assert float(meta["fx_color"]) > 1000 and meta["numColorFrames"] == meta["numDepthFrames"]
    assert int(meta["numIMUmeasurements"]) > int(meta["numColorFrames"])
    assert meta["sceneType"] in write.SCENE_TYPES


def test_labels_tsv_format(out):
    root, _ = out
    raw = (root / LABELS_TSV).read_bytes()
    assert raw.endswith(b"\r\r\n")
    stripped = raw.replace(b"\r\r\n", b"")
    assert b"\n" not in stripped and b"\r" not in stripped, "every line ends with \\r\\r\\n"
    rows = _tsv_rows(root)
    assert tuple(rows[0]) == vocabulary.TSV_COLUMNS and len(vocabulary.TSV_COLUMNS) == 17
    assert rows[0][:4] == ["id", "raw_category", "category", "count"] and rows[0][-1] == "mpcat40index"
    assert all(len(r) == 17 for r in rows)
    first = _tsv_first_id(root)
    assert all(first[name] == cid for cid, name in zip(VALID_CLASS_IDS, CLASS_NAMES))
    for alias, target in vocabulary.ALIASES.items():
        assert alias not in CLASS_NAMES and first[alias] == VALID_CLASS_IDS[NAME_TO_INDEX[target]]
    dup = vocabulary.DUPLICATE_ROW[0]
    dup_ids = [int(r[0]) for r in rows[1:] if r[1] == dup]
    assert len(dup_ids) == 2 and dup_ids[0] != dup_ids[1] and set(dup_ids) <= set(VALID_CLASS_IDS)
    assert first[dup] == VALID_CLASS_IDS[NAME_TO_INDEX["trash can"]]  # the first row wins
    assert any(r[1] == "wardrobe" and r[2] == "wardrobe " for r in rows)
    invalid = {first[raw] for raw in vocabulary.IGNORED_LABELS}
    assert invalid and not invalid & set(VALID_CLASS_IDS)
    assert not set(vocabulary.UNKNOWN_LABELS) & set(first)


# ---------------------------------------------------------------- geometry


def test_axis_alignment_puts_floor_at_zero_and_walls_on_axes(out):
    root, _ = out
    for scene in _splits(root)["train"]:
        a = _align(root, scene)
        rot = a[:3, :3]
        assert not np.allclose(a, np.eye(4), atol=1e-3)
        np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-5)
        np.testing.assert_allclose(a[2, :3], [0, 0, 1], atol=1e-6)  # rotation about z only
        assert abs(math.sin(2 * math.atan2(a[1, 0], a[0, 0]))) > 0.3  # far from a multiple of 90 degrees
        assert np.linalg.norm(a[:2, 3]) > 0.01

        d = _scene_dir(root, scene)
        scan, *_ = _read_ply(d / f"{scene}_vh_clean_2.ply")
        aligned = scan @ rot.T + a[:3, 3]
        seg, groups = _annotations(root, scene)
        members = {g["id"]: np.isin(seg, g["segments"]) for g in groups}
        (floor,) = [members[g["id"]] for g in groups if g["label"] == "floor"]
        assert abs(np.median(aligned[floor, 2])) < 0.002 and aligned[floor, 2].std() < 0.01
        assert aligned[:, 2].min() > -0.03
        for g in (g for g in groups if g["label"] == "wall"):
            spread_aligned = aligned[members[g["id"]], :2].std(0)
            spread_scan = scan[members[g["id"]], :2].std(0)
            assert spread_aligned.min() < 0.01 and spread_aligned.max() > 0.5  # parallel to an axis
            assert spread_scan.min() > 0.1  # but not in the scan frame
        lo, hi = aligned[:, :2].min(0), aligned[:, :2].max(0)
        assert ((hi - lo) > 2.4).all() and ((hi - lo) < 12).all()


def _footprint(o) -> tuple[float, float, float, float]:
    ex, ey = layout._half_extents(o.size[0], o.size[1], o.yaw)
    return o.center[0] - ex, o.center[1] - ey, o.center[0] + ex, o.center[1] + ey


def test_objects_are_placed_without_overlap_and_with_jittered_sizes():
    dealt = write.deal(10, 99, write.OBJECTS, write.TRAIN_MIN, write.VAL_MIN)
    for i in (0, 3, 8):
        room, objs = layout._draw_objects(np.random.default_rng([99, i]), dealt[i])
        assert len(objs) >= len(dealt[i])  # every dealt object placed (plus the label traps)
        floor, spans = [], [[] for _ in range(4)]
        for o in objs:
            ratio = o.size / np.asarray(o.appearance.size)
            ratio = ratio[:2] if o.appearance.category == "column" else ratio  # columns reach the wall tops
            assert (ratio[:2] > 1 - appearance.SIZE_JITTER - 1e-9).all() and (ratio < 1 + appearance.SIZE_JITTER + 1e-9).all()
            placement = o.appearance.placement
            top = o.center[2] + o.size[2]
            assert top <= room.height + 1e-9
            if placement == "panel":
                assert o.wall >= 0 and 0 <= o.center[2]
                assert layout._span_free(spans[o.wall], o.span)
                spans[o.wall].append(o.span)
            elif placement == "ceiling":
                assert top == pytest.approx(room.height)
            elif o.center[2] == 0:  # standing on the floor, inside the room, clear of the others
                r = _footprint(o)
                assert r[0] >= layout.WALL_MARGIN - 1e-9 and r[2] <= room.width - layout.WALL_MARGIN + 1e-9
                assert r[1] >= layout.WALL_MARGIN - 1e-9 and r[3] <= room.depth - layout.WALL_MARGIN + 1e-9
                assert layout._rect_free(floor, r)
                floor.append(r)
                if o.wall >= 0:  # against a wall: clear of what hangs on it at its heights
                    assert layout._span_free(spans[o.wall], o.span)
                    spans[o.wall].append(o.span)
            else:  # on top of a support
                assert placement == "prop" and 0.02 < o.center[2] < room.height - 0.3  # (a mat is a support too)
        assert len(floor) >= 10 and sum(map(len, spans)) >= 10


# ---------------------------------------------------------------- classes and labels


def test_long_tailed_class_frequencies():
    drawn = vocabulary.sample_classes(np.random.default_rng(0), 60_000)
    counts = np.bincount(drawn, minlength=NUM_CLASSES)
    assert counts[NAME_TO_INDEX["wall"]] == counts[NAME_TO_INDEX["floor"]] == 0
    per_split = {s: counts[ix] for s, ix in SPLIT_INDICES.items()}
    mean = {s: c.mean() for s, c in per_split.items()}
    total = {s: c.sum() for s, c in per_split.items()}
    assert mean["head"] > 2 * mean["common"] and mean["common"] > 1.3 * mean["tail"] > 0
    assert total["head"] > total["common"] > total["tail"]
    classes, p = vocabulary._class_probabilities()
    split = np.array([CLASS_SPLIT[c] for c in classes])
    assert len(classes) == NUM_CLASSES - 2 and (p > 0).all()
    assert p[split == "head"].min() > p[split == "common"].max()
    assert p[split == "common"].min() > p[split == "tail"].max()


def test_label_traps_present(out):
    root, _ = out
    first = _tsv_first_id(root)
    unlabelled = total = 0
    labels: list[str] = []
    for scene in _splits(root)["train"] + _splits(root)["val"]:
        seg, groups = _annotations(root, scene)
        grouped = np.isin(seg, [s for g in groups for s in g["segments"]])
        unlabelled += int((~grouped).sum())
        total += len(seg)
        labels += [g["label"] for g in groups]
    assert 0 < unlabelled < 0.3 * total, "some vertices belong to no segGroup"
    assert any(lab in first and first[lab] not in VALID_CLASS_IDS for lab in labels)
    assert any(lab not in first for lab in labels), "a label missing from the tsv"
    assert any(lab in vocabulary.ALIASES for lab in labels), "an alias label such as 'sofa'"
    assert sum(lab in CLASS_NAMES for lab in labels) > 0.7 * len(labels)


# ---------------------------------------------------------------- determinism and regeneration


def test_same_seed_same_bytes_regardless_of_workers(tmp_path):
    kw = dict(seed=3, progress=False, spacing=0.08)
    synthetic.generate(tmp_path / "a", 3, workers=1, **kw)
    synthetic.generate(tmp_path / "b", 3, workers=2, **kw)
    a, b = _all_files(tmp_path / "a"), _all_files(tmp_path / "b")
    # split lists, tsv, the product mark, 4 files per scene but the test scene's aggregation
    assert len(a) == 3 + 1 + 1 + 3 * 4 - 1
    assert a == b
    synthetic.generate(tmp_path / "c", 3, workers=1, **{**kw, "seed": 4})
    c = _all_files(tmp_path / "c")
    ply = "scans/scene0000_00/scene0000_00_vh_clean_2.ply"
    assert c[ply] != a[ply] and c[LABELS_TSV] == a[LABELS_TSV]


def test_regenerating_replaces_earlier_output(tmp_path):
    synthetic.generate(tmp_path, 4, seed=0, progress=False, spacing=0.1)
    assert (tmp_path / "scans_test" / "scene0003_00").is_dir()
    (tmp_path / "notes.txt").write_text("keep me")
    summary = synthetic.generate(tmp_path, 2, seed=1, progress=False, spacing=0.1)
    assert sorted(p.name for p in (tmp_path / "scans").iterdir()) == ["scene0000_00", "scene0001_00"]
    assert list((tmp_path / "scans_test").iterdir()) == []
    assert _splits(tmp_path) == {"train": ["scene0000_00"], "val": ["scene0001_00"], "test": []}
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert summary["scenes"] == {"train": 1, "val": 1, "test": 0}


def test_bad_arguments(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        synthetic.generate(tmp_path / "file", 1, progress=False)
    with pytest.raises(ValueError):
        synthetic.generate(tmp_path / "x", 0, progress=False)
