"""A folder that Pointcept's ScanNet200 preprocessing wrote (int64 labels, normal.npy, segment20.npy)
as the pipeline's data: ``data.source: processed`` links it (download), checks and copies it with
the stats lgseg needs, the val ground truth and the instance bank (preprocess); lgseg.prepare's
functions and the real stage scripts."""

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from lgseg.errors import InputError, LgsegError
from lgseg.evaluation.benchmark import evaluate_dirs, read_benchmark_file
from lgseg.params_schema import params_problems
from lgseg.prepare import ground_truth_from_processed, prepare_processed, summary
from lgseg.scannet.constants import NAME_TO_INDEX, VALID_CLASS_IDS
from lgseg.scene_io import ARRAYS, link_processed, processed_scenes, read_scene_arrays

ROOT = Path(__file__).resolve().parents[1]
I = NAME_TO_INDEX
LAST = len(VALID_CLASS_IDS) - 1  # a tail class with a four-digit raw id


def _scene(folder: Path, segment, instance, seed: int, labels: bool = True) -> None:
    """One scene as Pointcept's preprocessing saves it: int64 labels, a segment20 beside segment200."""
    rng = np.random.default_rng(seed)
    n = len(segment)
    folder.mkdir(parents=True)
    normal = rng.normal(size=(n, 3))
    arrays = {"coord": rng.uniform(0, 4, (n, 3)).astype(np.float32),
              "color": rng.integers(0, 256, (n, 3)).astype(np.uint8),
              "normal": (normal / np.linalg.norm(normal, axis=1, keepdims=True)).astype(np.float32)}
    if labels:
        arrays |= {"segment20": np.zeros(n, np.int64), "segment200": np.asarray(segment, np.int64),
                   "instance": np.asarray(instance, np.int64)}
    for key, arr in arrays.items():
        np.save(folder / f"{key}.npy", arr)


@pytest.fixture
def pointcept(tmp_path) -> Path:
    """train: scene0000_00 (wall 10 pts / 1 object, chair 10 + 5 / 2 objects, 5 vertices of an object
    outside the 200: label -1, instance 3), scene0001_00 (floor 20 / 1); val: scene0002_00 (wall 6,
    the last class 3, ignore 3); test: scene0003_00 (geometry and normals only)."""
    root = tmp_path / "pointcept"
    _scene(root / "train/scene0000_00", [I["wall"]] * 10 + [I["chair"]] * 15 + [-1] * 5,
           [0] * 10 + [1] * 10 + [2] * 5 + [3] * 5, seed=0)
    _scene(root / "train/scene0001_00", [I["floor"]] * 20, [0] * 20, seed=1)
    _scene(root / "val/scene0002_00", [I["wall"]] * 6 + [LAST] * 3 + [-1] * 3, [0] * 6 + [1] * 3 + [-1] * 3, seed=2)
    _scene(root / "test/scene0003_00", [-1] * 7, None, seed=3, labels=False)
    return root


# ---- lgseg.scene_io: listing and linking a processed-layout folder -------------------------------

def test_lists_the_folders_own_splits(pointcept):
    assert processed_scenes(pointcept) == {"train": ["scene0000_00", "scene0001_00"], "val": ["scene0002_00"],
                                           "test": ["scene0003_00"]}


def test_links_only_the_layouts_names_into_real_folders(pointcept, tmp_path):
    (pointcept / "train/scene0000_00/notes.txt").write_text("stray")
    (pointcept / "stats.json").write_text("{}")
    os.symlink("/etc", pointcept / "train" / ".hidden")  # hidden entries are not scenes
    out = tmp_path / "raw"
    assert link_processed(pointcept, out) == {"train": 2, "val": 1, "test": 1}
    entries = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert "train/scene0000_00/segment20.npy" not in entries and "stats.json" not in entries
    for p in out.rglob("*"):
        if p.is_symlink():  # each link: <split>/<scene>/<array>.npy to the same file in the source
            assert p.name in {f"{k}.npy" for k in ARRAYS}
            assert p.resolve() == (pointcept / p.relative_to(out)).resolve()
        else:
            assert p.is_dir() and len(p.relative_to(out).parts) <= 2
    assert sorted(p.name for p in (out / "test/scene0003_00").iterdir()) == ["color.npy", "coord.npy", "normal.npy"]


@pytest.mark.parametrize("breakage, message", [
    (lambda r: (r / "train/scene0000_00").rename(r / "train/scene0000_00_copy"),
     r"scene0000_00_copy: 'scene0000_00_copy' is not a ScanNet scene id.*rename or remove it"),
    (lambda r: (r / "train/scene00_00").mkdir(), r"'scene00_00' is not a ScanNet scene id"),
    (lambda r: (r / "val/scene0000_00").mkdir(), r"scene scene0000_00 is in both train/ and val/"),
    (lambda r: (r / "val/scene0002_00/instance.npy").unlink(), r"scene0002_00/instance\.npy: instance array of a "
                                                               r"val scene is missing"),
    (lambda r: ((r / "train/scene0001_00/coord.npy").unlink(),
                os.symlink("/dev/zero", r / "train/scene0001_00/coord.npy")),
     r"coord\.npy: not a regular file \(a character device\)"),
    (lambda r: ((r / "val/scene0002_00/segment200.npy").unlink(),
                os.mkfifo(r / "val/scene0002_00/segment200.npy")), r"segment200\.npy: not a regular file \(a FIFO\)"),
    (lambda r: os.rename(r / "val/scene0002_00", r / "val/.scene0002_00.old"),
     r"val: no scene folders in it \(split 'val'\)"),
])
def test_a_bad_folder_is_one_error_and_nothing_is_written(pointcept, tmp_path, breakage, message):
    breakage(pointcept)
    with pytest.raises(InputError, match=message):
        link_processed(pointcept, tmp_path / "raw")
    assert not (tmp_path / "raw").exists() and not list(tmp_path.glob(".raw.tmp-*"))


def test_pointcepts_older_pth_layout_is_named(tmp_path):
    for split in ("train", "val"):
        (tmp_path / "old" / split).mkdir(parents=True)
        (tmp_path / "old" / split / "scene0000_00.pth").write_bytes(b"")
    with pytest.raises(InputError, match=r"no scene folders, but 1 \.pth files: Pointcept's older layout"):
        processed_scenes(tmp_path / "old")
    with pytest.raises(InputError, match="no such folder"):
        processed_scenes(tmp_path / "nowhere")


@pytest.mark.parametrize("key, value, message", [
    ("segment200", np.full(30, 255, np.int64), r"segment200\.npy: value 255 outside -1\.\.199"),
    ("segment200", np.zeros(30, np.float32), r"segment200\.npy: dtype float32, expected integers"),
    ("instance", np.zeros(29, np.int64), r"instance\.npy: shape \(29,\), expected \(30,\) \(coord has 30 points\)"),
    ("color", np.full((30, 3), 300, np.int64), r"color\.npy: values 300\.\.300, expected rgb in 0\.\.255"),
    ("coord", np.full((30, 3), np.nan, np.float32), r"coord\.npy: vertex 0 is at \(nan, nan, nan\): coordinates "
                                                    r"must be finite and within \+-1000 m \(a room's scale\)"),
    ("normal", np.zeros((30, 2), np.float32), r"normal\.npy: shape \(30, 2\), expected \(30, 3\)"),
])
def test_a_bad_array_is_named(pointcept, key, value, message):
    folder = pointcept / "train/scene0000_00"
    np.save(folder / f"{key}.npy", value)
    with pytest.raises(InputError, match=rf"scene scene0000_00, .*{message}"):
        read_scene_arrays(folder, "scene0000_00")


def _coord_with(value, row: int = 7, dtype=np.float32) -> np.ndarray:
    coord = np.arange(90, dtype=np.float64).reshape(30, 3) / 30
    coord[row, 2] = value
    return coord.astype(dtype)


@pytest.mark.parametrize("coord, shown", [
    (_coord_with(np.inf), "0.7, 0.733333, inf"),
    (_coord_with(-np.inf, 29), "2.9, 2.93333, -inf"),
    (_coord_with(1e4), "0.7, 0.733333, 10000"),  # millimetres, or a corrupt file: no room is 10 km across
    (_coord_with(-1000.25, 0, np.float64), "0, 0.0333333, -1000.25"),
    (_coord_with(2**62, 3, np.int64), "0, 0, 4.61169e+18"),  # integers: kept within the bound too
    (_coord_with(-2**63, 3, np.int64), "0, 0, -9.22337e+18"),  # abs() of this int64 is negative
])
def test_a_coordinate_no_room_has_is_named_with_its_vertex(pointcept, coord, shown):
    """The one rule that raw scans follow too (lgseg.scene_io.check_coordinates)."""
    folder = pointcept / "train/scene0000_00"
    np.save(folder / "coord.npy", coord)
    row = int(np.flatnonzero((np.abs(coord.astype(np.float64)) > 1000).any(axis=1))[0])
    with pytest.raises(InputError) as e:
        read_scene_arrays(folder, "scene0000_00")
    assert str(e.value).startswith(f"scene scene0000_00, {folder / 'coord.npy'}: vertex {row} is at ({shown}): "
                                   "coordinates must be finite and within +-1000 m (a room's scale). point "), e.value


def test_a_coordinate_at_the_bound_is_a_room(pointcept):
    folder = pointcept / "train/scene0000_00"
    np.save(folder / "coord.npy", _coord_with(1000.0))
    assert read_scene_arrays(folder, "scene0000_00")["coord"][7, 2] == 1000.0


def test_float_colours_in_0_1_are_scaled_with_one_notice(pointcept, caplog):
    """A common export (Open3D): rgb as floats in 0..1. Was cast to uint8: every scene black, rc 0."""
    folder = pointcept / "train/scene0000_00"
    rgb = np.random.default_rng(4).integers(0, 256, (30, 3))
    rgb[0] = [0, 255, 128]
    np.save(folder / "color.npy", (rgb / 255).astype(np.float32))
    with caplog.at_level("WARNING", logger="lgseg.scene_io"):
        color = read_scene_arrays(folder, "scene0000_00")["color"]
    assert color.dtype == np.uint8 and color.tolist() == rgb.tolist()
    assert [r.getMessage() for r in caplog.records] == [
        f"scene scene0000_00, {folder / 'color.npy'}: float colours in 0..1, scaled to rgb 0..255"]


def test_float_colours_in_0_255_are_rounded_without_a_word(pointcept, caplog):
    folder = pointcept / "train/scene0000_00"
    rgb = np.random.default_rng(5).uniform(0, 255, (30, 3))
    rgb[0] = [0.4, 254.6, 1.5]
    np.save(folder / "color.npy", rgb)
    with caplog.at_level("WARNING", logger="lgseg.scene_io"):
        color = read_scene_arrays(folder, "scene0000_00")["color"]
    assert color.tolist() == np.rint(rgb).astype(int).tolist() and color[0].tolist() == [0, 255, 2]
    assert not caplog.records


@pytest.mark.parametrize("value, message", [
    (np.full((30, 3), 255.5), r"float colours 255\.5\.\.255\.5, expected rgb in 0\.\.1 or 0\.\.255"),
    (np.full((30, 3), -0.25), r"float colours -0\.25\.\.-0\.25, expected rgb in 0\.\.1 or 0\.\.255"),
    (np.r_[np.full((29, 3), 0.5), [[0.5, np.nan, 0.5]]], r"holds NaN or infinite colour values"),
    (np.full((30, 3), np.inf, np.float16), r"holds NaN or infinite colour values"),
    (np.full((30, 3), -1, np.int16), r"values -1\.\.-1, expected rgb in 0\.\.255"),
    (np.full((30, 3), 256, np.uint16), r"values 256\.\.256, expected rgb in 0\.\.255"),
    (np.full((30, 3), True), r"dtype bool, expected numbers"),
])
def test_colours_out_of_range_are_refused_never_truncated(pointcept, value, message):
    folder = pointcept / "train/scene0000_00"
    np.save(folder / "color.npy", value)
    with pytest.raises(InputError, match=rf"^scene scene0000_00, .*color\.npy: {message}\. point "):
        read_scene_arrays(folder, "scene0000_00")


def test_reads_pointcepts_arrays_in_the_layouts_dtypes(pointcept):
    arrays = read_scene_arrays(pointcept / "train/scene0000_00", "scene0000_00")
    assert {k: str(a.dtype) for k, a in arrays.items()} == {
        "coord": "float32", "color": "uint8", "normal": "float32", "segment200": "int16", "instance": "int32"}
    assert arrays["segment200"].tolist() == np.load(pointcept / "train/scene0000_00/segment200.npy").tolist()


# ---- lgseg.prepare: stats, ground truth, limited annotations ------------------------------------

def test_prepare_processed_copies_and_counts(pointcept, tmp_path):
    out = tmp_path / "processed"
    done = prepare_processed(pointcept, out, progress=False)
    assert len(done.report.done) == 4 and done.bank is None
    d = out / "train/scene0000_00"
    assert sorted(p.name for p in d.iterdir()) == sorted(f"{k}.npy" for k in ARRAYS)  # segment20 left behind
    assert (np.load(d / "segment200.npy").dtype, np.load(d / "instance.npy").dtype) == (np.int16, np.int32)
    for key in ("coord", "color", "normal", "segment200", "instance"):
        source = np.load(pointcept / "train/scene0000_00" / f"{key}.npy")
        np.testing.assert_array_equal(np.load(d / f"{key}.npy"), source)
    stats = json.loads((out / "stats.json").read_text())
    points, instances = np.array(stats["train_points"]), np.array(stats["train_instances"])
    assert (points[I["wall"]], points[I["chair"]], points[I["floor"]], points.sum()) == (10, 15, 20, 45)
    assert (instances[I["wall"]], instances[I["chair"]], instances[I["floor"]], instances.sum()) == (1, 2, 1, 4)
    assert stats["scenes"] == {"train": 2, "val": 1, "test": 1}
    assert stats["vertices"] == {"train": 50, "val": 12, "test": 7}
    assert summary(out)["train_labelled_fraction"] == 0.9


def test_parallel_import_equals_serial(pointcept, tmp_path):
    prepare_processed(pointcept, tmp_path / "a", workers=1, progress=False)
    prepare_processed(pointcept, tmp_path / "b", workers=2, progress=False)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.npy"))
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.npy"))
    for f in files:
        np.testing.assert_array_equal(np.load(tmp_path / "a" / f), np.load(tmp_path / "b" / f))
    assert (tmp_path / "a/stats.json").read_text() == (tmp_path / "b/stats.json").read_text()


def test_ground_truth_is_raw_ids_of_the_200(pointcept, tmp_path):
    prepare_processed(pointcept, tmp_path / "processed", progress=False)
    assert ground_truth_from_processed(tmp_path / "processed", tmp_path / "gt", progress=False) == 1
    gt = read_benchmark_file(tmp_path / "gt/scene0002_00.txt")
    assert gt.tolist() == [1] * 6 + [VALID_CLASS_IDS[LAST]] * 3 + [0] * 3  # wall is raw id 1; ignore is 0
    shutil.copytree(tmp_path / "gt", tmp_path / "pred")  # evaluate refuses the ground-truth folder itself
    (tmp_path / "pred" / ".lgseg-product").unlink()  # and a folder marked as ground truth
    conf, scenes = evaluate_dirs(tmp_path / "pred", tmp_path / "gt", progress=False)
    assert scenes == 1 and conf.sum() == 9 and np.trace(conf) == 9  # the 9 labelled vertices, all on the diagonal


def test_limited_annotations_apply_to_train_scenes_only(pointcept, tmp_path):
    annotation = {"fraction": 0.1, "rule": "paper", "seed": 0}
    prepare_processed(pointcept, tmp_path / "p", annotation=annotation, progress=False)
    train = np.load(tmp_path / "p/train/scene0000_00/segment200.npy")
    assert 0 < (train >= 0).sum() < 25
    np.testing.assert_array_equal(np.load(tmp_path / "p/val/scene0002_00/segment200.npy"),
                                  np.load(pointcept / "val/scene0002_00/segment200.npy"))
    assert json.loads((tmp_path / "p/stats.json").read_text())["annotation"] == annotation


def test_a_bad_scene_fails_naming_it(pointcept, tmp_path):
    np.save(pointcept / "val/scene0002_00/segment200.npy", np.full(12, 200, np.int64))
    with pytest.raises(LgsegError, match=r"scene scene0002_00, .*segment200\.npy: value 200 outside -1\.\.199"):
        prepare_processed(pointcept, tmp_path / "p", progress=False)
    assert not (tmp_path / "p/val/scene0002_00").exists()


# ---- params: data.source processed needs data.processed_root ------------------------------------

def test_params_name_the_empty_processed_root():
    import yaml

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["source"] = "processed"
    assert params_problems(params) == [
        "data.processed_root: empty, but data.source is 'processed'; expected the folder Pointcept's "
        "ScanNet200 preprocessing wrote (train/, val/ of <scene>/coord.npy, ...)"]
    params["data"]["processed_root"] = "/data/scannet200_pointcept"
    assert params_problems(params) == []
    params["data"]["source"] = "pointcept"
    assert params_problems(params) == [
        "data.source: expected one of synthetic, scannet, processed, got 'pointcept'"]


# ---- the real stage scripts --------------------------------------------------------------------

def _stage(name: str):
    """stages/<name>.py as a module (its `common` import resolves in stages/)."""
    sys.path.insert(0, str(ROOT / "stages"))
    try:
        spec = importlib.util.spec_from_file_location(f"{name}_stage", ROOT / "stages" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "stages"))
    return module


def test_the_download_and_preprocess_stages_take_a_pointcept_folder(pointcept, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = {"data": {"source": "processed", "scannet_root": "", "processed_root": str(pointcept),
                       "synthetic": {"scenes": 2, "seed": 0}, "workers": 1},
              "annotation": {"fraction": 1.0, "rule": "paper", "seed": 0},
              "instance_sampling": {"classes": ["chair"]}}
    _stage("download").main(params, None)
    assert (tmp_path / "data/raw/train/scene0000_00/coord.npy").is_symlink()
    _stage("preprocess").main(params, None)
    assert json.loads(Path("data/processed/stats.json").read_text())["train_points"][I["chair"]] == 15
    assert read_benchmark_file("data/gt/val/scene0002_00.txt")[:6].tolist() == [1] * 6
    metrics = json.loads(Path("metrics/preprocess.json").read_text())
    assert metrics["scenes"] == {"train": 2, "val": 1, "test": 1} and metrics["bank_instances"] == 1  # chair 10 pts
    assert not any(p.is_symlink() for p in Path("data/processed").rglob("*"))  # copies, not links into the source

    from lgseg.data.dataset import ScanNetDataset

    item = ScanNetDataset("data/processed", "val", voxel_size=0.1)[0]
    assert item["num_points"] == 12 and item["label"].max() == LAST

    with pytest.raises(LgsegError, match="data.processed_root is empty"):
        _stage("download").main({"data": {**params["data"], "processed_root": ""}}, None)
    for own in ("data/processed", "data/raw/train"):  # pipeline outputs are no source
        with pytest.raises(LgsegError, match=rf"data.processed_root \(.*{own}\) is in data/\w+, a pipeline output"):
            _stage("download").main({"data": {**params["data"], "processed_root": own}}, None)
    assert (tmp_path / "data/raw/train/scene0000_00/coord.npy").is_symlink()  # data/raw kept


def test_lgseg_preprocess_from_a_pointcept_folder(pointcept, tmp_path):
    from lgseg.cli import main
    out = tmp_path / "processed"
    assert main(["preprocess", "--from-processed", str(pointcept), "--out", str(out)]) == 0
    assert processed_scenes(out) == processed_scenes(pointcept)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["train_points"][I["chair"]] == 15 and stats["train_points"][I["floor"]] == 20
    assert sorted(p.name for p in (out / "val/scene0002_00").iterdir()) == sorted(f"{k}.npy" for k in ARRAYS)


def test_a_failed_preprocess_leaves_a_folder_its_rerun_accepts(tiny_raw, tmp_path, capsys):
    """A run that fails midway (a broken scene) used to leave an unmarked, half-filled --out that the rerun
    refused as "files lgseg did not write"; it is marked from the start, so the rerun goes on."""
    from lgseg.cli import main

    mesh = tiny_raw / "scans" / "scene0001_00" / "scene0001_00_vh_clean_2.ply"
    good = mesh.read_bytes()
    mesh.write_bytes(b"ply\nformat garbage\n")
    out = tmp_path / "processed"
    argv = ["preprocess", "--raw", str(tiny_raw), "--out", str(out)]
    assert main(argv) == 1  # the scenes before it are written, this one and stats.json are not
    assert (out / "train" / "scene0000_00").is_dir() and not (out / "stats.json").exists()
    mesh.write_bytes(good)
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err
    assert (out / "stats.json").is_file() and (out / "train" / "scene0001_00").is_dir()
