"""Hostile inputs (issue 11, items 1, 2, 6 and 12): scene ids that leave their folder, special files
in place of inputs, what a killed preprocessing run leaves behind, and a failed download that must
keep data/raw."""

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from lgseg.cli import main as cli_main
from lgseg.data.dataset import ScanNetDataset
from lgseg.errors import InputError, LgsegError
from lgseg.render import render_scenes
from lgseg.scannet.constants import check_scene_id
from lgseg.scannet.preprocess import preprocess
from lgseg.scannet.splits import scene_splits
from lgseg.scene_io import load_scene
from scannet_files import write_scene

ROOT = Path(__file__).resolve().parents[2]


def _project_helpers():
    """tests/stages/conftest.py (make_project, sh), by path: `conftest` names another module here."""
    spec = importlib.util.spec_from_file_location("stages_conftest", ROOT / "tests" / "stages" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail instead of hanging: the alarm interrupts a blocking open() or read()."""
    def expire(signum, frame):
        raise TimeoutError(f"still blocked after {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def processed(tiny_raw, tmp_path) -> Path:
    out = tmp_path / "processed"
    preprocess(tiny_raw, out, progress=False)
    return out


# -- 1. scene ids that leave their folder ----------------------------------------------------------

@pytest.mark.parametrize("scene", ["", "/etc", "..", "../train/scene0000_00", "scene0000_00/..",
                                   "scene0000_00/../scene0001_00", "scene0000_0", "scene00000_00", "Scene0000_00"])
def test_only_scannet_scene_ids_pass(scene):
    with pytest.raises(InputError, match="not a ScanNet scene id"):
        check_scene_id(scene)


def test_split_list_id_leaving_the_raw_folder_is_refused_before_anything_is_written(tiny_raw, tmp_path):
    # raw/scans/../../elsewhere/<id> is tmp/elsewhere/<id>, and so is out/train/../../elsewhere/<id>
    outside = write_scene(tmp_path, "scene0002_00", np.zeros((3, 3)), [1, 1, 1], [(0, "chair", [1])], sub="elsewhere")
    before = sorted(p.name for p in outside.iterdir())
    (tiny_raw / "scannetv2_train.txt").write_text("scene0000_00\n../../elsewhere/scene0002_00\n")
    out = tmp_path / "out"
    with pytest.raises(InputError, match=r"scannetv2_train\.txt: line 2: .* not a ScanNet scene id"):
        preprocess(tiny_raw, out, progress=False)
    assert sorted(p.name for p in outside.iterdir()) == before
    assert not out.exists()


def test_preprocess_never_writes_through_a_symlinked_scene_folder(tiny_raw, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    (tmp_path / "out" / "train").mkdir(parents=True)
    (tmp_path / "out" / "train" / "scene0000_00").symlink_to(outside)
    with pytest.raises(LgsegError, match="scene0000_00: leads outside"):
        preprocess(tiny_raw, tmp_path / "out", progress=False)
    assert [p.name for p in outside.iterdir()] == ["keep"]


@pytest.mark.parametrize("command", ["render", "export-ply", "query"])
@pytest.mark.parametrize("scene", ["/etc", "", "../train/scene0000_00"])
def test_scene_argument_must_be_a_scene_id(processed, tmp_path, capsys, command, scene):
    out = tmp_path / "shown.png"
    args = [command, "--scene", scene, "--processed", str(processed), "--out", str(out)]
    if command == "query":
        args += ["--text", "chair", "--checkpoint", str(tmp_path / "absent.pt")]
    assert cli_main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a ScanNet scene id" in err, err
    assert not out.exists()


def test_render_refuses_a_scene_id_from_params_that_leaves_the_split(processed, tmp_path):
    with pytest.raises(InputError, match="not a ScanNet scene id"):
        render_scenes(processed, tmp_path, "val", ["../train/scene0000_00"], tmp_path / "renders")
    assert not (tmp_path / "renders").exists()


# -- 2. special files in place of inputs -----------------------------------------------------------

RAW_FILES = {
    "meta": "scans/scene0000_00/scene0000_00.txt",
    "mesh": "scans/scene0000_00/scene0000_00_vh_clean_2.ply",
    "segs": "scans/scene0000_00/scene0000_00_vh_clean_2.0.010000.segs.json",
    "aggregation": "scans/scene0000_00/scene0000_00.aggregation.json",
    "labels": "scannetv2-labels.combined.tsv",
    "split list": "scannetv2_val.txt",
}


def _replace(path: Path, kind: str) -> None:
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
@pytest.mark.parametrize("which", RAW_FILES)
def test_special_file_in_place_of_a_raw_input_fails_naming_it(tiny_raw, tmp_path, which, kind):
    path = tiny_raw / RAW_FILES[which]
    _replace(path, kind)
    with deadline(10), pytest.raises(LgsegError, match=rf"{path.name}: not a regular file"):
        preprocess(tiny_raw, tmp_path / "out", progress=False)


@pytest.mark.parametrize("which, size", [("meta", 2 << 20), ("segs", 64 << 20), ("split list", 2 << 20)])
def test_raw_input_larger_than_its_natural_bound_fails_naming_it(tiny_raw, tmp_path, which, size):
    path = tiny_raw / RAW_FILES[which]
    with open(path, "r+b") as f:
        f.truncate(size)  # sparse: costs no disk
    with pytest.raises(LgsegError, match=rf"{path.name}: {size} bytes, more than"):
        preprocess(tiny_raw, tmp_path / "out", progress=False)


def test_fifo_split_list_is_not_taken_for_a_missing_one(tiny_raw):
    _replace(tiny_raw / "scannetv2_test.txt", "fifo")
    with deadline(10), pytest.raises(InputError, match=r"scannetv2_test\.txt: not a regular file"):
        scene_splits(tiny_raw)


@pytest.mark.parametrize("name", ["coord.npy", "segment200.npy"])
def test_fifo_in_a_processed_scene_fails_naming_it(processed, name):
    path = processed / "val" / "scene0002_00" / name
    _replace(path, "fifo")
    with deadline(10), pytest.raises(InputError, match=rf"{name}: not a regular file"):
        load_scene(processed, "scene0002_00")
    with deadline(10), pytest.raises(InputError, match=rf"{name}: not a regular file"):
        ScanNetDataset(processed, "val").load_scene("scene0002_00")


# -- 6. what a killed preprocessing run leaves -----------------------------------------------------

def test_preprocess_removes_its_own_stale_temporaries_and_nothing_else(tiny_raw, tmp_path):
    out = tmp_path / "out"
    stale = out / "train" / ".scene0000_00.tmp-k1ll3d_x"
    stale.mkdir(parents=True)
    (stale / "coord.npy").write_bytes(b"half")
    stale_stats = out / ".stats.json.tmp-abc_1234"
    stale_stats.write_text("{")
    foreign = [out / "train" / ".notes.tmp-keep", out / "train" / "notes", out / ".scene0000_00.tmp-elsewhere"]
    for d in foreign:
        d.mkdir()
    preprocess(tiny_raw, out, progress=False)
    assert not stale.exists() and not stale_stats.exists()
    assert all(d.exists() for d in foreign)


def test_dataset_and_render_list_only_scene_folders(processed, tmp_path):
    (processed / "val" / ".scene0002_00.tmp-abcd1234").mkdir()  # a killed run's leftover
    (processed / "val" / ".scene0002_00.tmp-abcd1234" / "coord.npy").write_bytes(b"")
    (processed / "val" / "notes").mkdir()
    assert ScanNetDataset(processed, "val").scenes == ["scene0002_00"]
    pred = tmp_path / "pred"
    pred.mkdir()
    np.savetxt(pred / "scene0002_00.txt", np.full(4, 5), fmt="%d")
    assert [p.name for p in render_scenes(processed, pred, "val", 5, tmp_path / "renders")] == ["scene0002_00.png"]



@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_special_file_as_the_label_table_of_export_gt_or_as_a_prediction_fails_naming_it(tiny_raw, tmp_path, kind):
    from lgseg.evaluation.benchmark import read_benchmark_file
    from lgseg.evaluation.ground_truth import export_ground_truth

    pred = tmp_path / "scene0002_00.txt"
    pred.write_text("1\n")
    _replace(pred, kind)
    _replace(tiny_raw / RAW_FILES["labels"], kind)
    with deadline(10):
        with pytest.raises(InputError, match=r"scene0002_00.txt: not a regular file"):
            read_benchmark_file(pred)
        with pytest.raises(InputError, match=r"scannetv2-labels.combined.tsv: not a regular file"):
            export_ground_truth(tiny_raw, tmp_path / "gt", split="val")


def test_instance_bank_lists_only_scene_folders(processed, tmp_path):
    from lgseg.data.instances import export_instance_bank

    train = processed / "train"
    real = export_instance_bank(processed, tmp_path / "bank1", range(200), progress=False)
    leftover = train / f".{sorted(p.name for p in train.iterdir())[0]}.tmp-abcd1234"
    leftover.mkdir()
    for f in (train / leftover.name[1:13]).iterdir():  # a killed run's complete-looking copy
        (leftover / f.name).write_bytes(f.read_bytes())
    assert export_instance_bank(processed, tmp_path / "bank2", range(200), progress=False) == real

KILLED_RUN = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    import lgseg.scannet.preprocess as P

    def slow(raw_dir, out_dir, scene, split, table, annotation=None):
        Path(sys.argv[3], scene).touch()  # tells the test that a worker is busy
        time.sleep(3)
        return P.SceneResult(scene, split)

    P.process_scene = slow  # top level: the spawned workers import this file as __mp_main__ and get it too

    if __name__ == "__main__":
        P.preprocess(sys.argv[1], sys.argv[2], workers=2, progress=False)
''')


def test_sigkill_of_parallel_preprocess_leaves_no_worker_tracebacks(tiny_raw, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    script = tmp_path / "killed_run.py"  # a file, not -c: spawned workers re-import it
    script.write_text(KILLED_RUN)
    proc = subprocess.Popen([sys.executable, str(script), str(tiny_raw), str(tmp_path / "out"), str(busy)],
                            stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while len(list(busy.iterdir())) < 2 and proc.poll() is None and time.monotonic() - t0 < 60:
        time.sleep(0.05)
    assert len(list(busy.iterdir())) == 2, "the workers never started"
    proc.kill()
    _, err = proc.communicate(timeout=30)  # returns once every worker has closed stderr
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


# -- 12. a failed download keeps data/raw ----------------------------------------------------------

def _listing(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def _set_params(project: Path, **data) -> None:
    p = yaml.safe_load((project / "params.yaml").read_text())
    p["data"].update(data)
    (project / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))


def _download_stage():
    """stages/download.py as a module (its `common` import resolves in stages/)."""
    sys.path.insert(0, str(ROOT / "stages"))
    try:
        spec = importlib.util.spec_from_file_location("download_stage", ROOT / "stages" / "download.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "stages"))
    return module


def test_download_replaces_data_raw_only_when_complete(tmp_path, monkeypatch):
    download = _download_stage()
    monkeypatch.chdir(tmp_path)
    synthetic = {**yaml.safe_load((ROOT / "params.yaml").read_text())["data"]["synthetic"], "scenes": 2}
    data = {"source": "synthetic", "scannet_root": "", "synthetic": synthetic, "workers": 1}
    download.main({"data": data}, None)
    raw = tmp_path / "data" / "raw"
    before = _listing(raw)
    with pytest.raises(InputError, match="ScanNet root does not exist"):
        download.main({"data": {**data, "source": "scannet", "scannet_root": str(tmp_path / "nope")}}, None)
    assert _listing(raw) == before
    (raw / "scans" / "scene0099_00").mkdir()  # nothing of an earlier data/raw survives a new one
    (raw / "stray.txt").write_text("old")
    (tmp_path / "data" / ".raw.tmp-k1ll3d_x").mkdir()  # a killed download's leftover
    (tmp_path / "data" / ".raw.tmp-keep.me").mkdir()  # not a name atomic_dir gives
    download.main({"data": data}, None)
    assert _listing(raw) == before
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [".raw.tmp-keep.me", "raw"]


@pytest.mark.slow
def test_failed_scannet_download_keeps_data_raw_under_dvc(tmp_path):
    """DVC deletes a stage's outputs before running it unless they are persist: the real `dvc repro`."""
    helpers = _project_helpers()
    (tmp_path / "proj").mkdir()
    project = helpers.make_project(tmp_path / "proj", scenes=2)
    helpers.sh(["dvc", "repro", "download"], project)
    raw = project / "data" / "raw"
    before = _listing(raw)
    assert "scannetv2_train.txt" in before
    _set_params(project, source="scannet", scannet_root=str(tmp_path / "no-such-root"))
    r = helpers.sh(["dvc", "repro", "download"], project, check=False)
    assert r.returncode != 0 and "ScanNet root does not exist" in r.stderr + r.stdout
    assert _listing(raw) == before


# -- input-handling review, items 1, 2 and 9: what the CLI says -----------------------------------

def test_preprocess_raw_with_a_nan_vertex_fails_naming_it_not_writing_it(tiny_raw, tmp_path, capsys):
    from scannet_files import write_ply

    coord = np.arange(12, dtype=np.float32).reshape(4, 3)
    coord[2] = [np.nan, 0, np.inf]
    write_ply(tiny_raw / "scans/scene0001_00/scene0001_00_vh_clean_2.ply", coord, np.zeros((4, 3), np.uint8),
              np.array([[0, 1, 2], [1, 2, 3]]))
    out = tmp_path / "processed"
    assert cli_main(["preprocess", "--raw", str(tiny_raw), "--out", str(out), "--keep-going"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "RuntimeWarning" not in err, err
    assert (f"  scene scene0001_00, {tiny_raw}/scans/scene0001_00/scene0001_00_vh_clean_2.ply: vertex 2 is at "
            "(nan, 0, inf): coordinates must be finite and within +-1000 m (a room's scale)") in err, err
    assert not (out / "train/scene0001_00").exists() and (out / "train/scene0000_00/coord.npy").is_file()


def test_preprocess_from_processed_scales_float_colours_with_one_line(processed, tmp_path, caplog):
    """Float rgb in 0..1 (a common export) was truncated to {0, 1}: every scene black, rc 0."""
    folder = processed / "val/scene0002_00"
    rgb = np.load(folder / "color.npy")
    np.save(folder / "color.npy", rgb.astype(np.float64) / 255)
    out = tmp_path / "again"
    with caplog.at_level("WARNING"):
        assert cli_main(["preprocess", "--from-processed", str(processed), "--out", str(out)]) == 0
    assert [r.getMessage() for r in caplog.records if "color.npy" in r.getMessage()] == [
        f"scene scene0002_00, {folder / 'color.npy'}: float colours in 0..1, scaled to rgb 0..255"]
    np.testing.assert_array_equal(np.load(out / "val/scene0002_00/color.npy"), rgb)


def test_evaluate_with_the_ground_truth_as_prediction_is_one_line(tmp_path, capsys):
    from lgseg.evaluation.benchmark import write_benchmark_file

    gt = tmp_path / "gt"
    write_benchmark_file(gt / "scene0002_00.txt", np.array([1, 2, 3]))
    assert cli_main(["evaluate", "--pred", str(gt), "--gt", str(gt), "--out", str(tmp_path / "m.json")]) == 1
    err = capsys.readouterr().err
    assert err == (f"lgseg evaluate: error: {gt}: the prediction folder is the ground-truth folder. pass the folder "
                   "the predictions were written to (lgseg predict --out)\n")
    assert not (tmp_path / "m.json").exists()
