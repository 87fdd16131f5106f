"""The command line end to end: synth -> preprocess -> export-gt -> evaluate."""

import json
import subprocess
import sys

import numpy as np
import pytest

from lgseg.cli import main
from lgseg.evaluation.benchmark import read_benchmark_file, write_benchmark_file
from lgseg.scannet.constants import CLASS_NAMES, SPLIT_INDICES, VALID_CLASS_IDS


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    assert main(["synth", "--out", str(d / "raw"), "--scenes", "10", "--seed", "3"]) == 0
    assert main(["preprocess", "--raw", str(d / "raw"), "--out", str(d / "processed"), "--workers", "2"]) == 0
    assert main(["export-gt", "--raw", str(d / "raw"), "--out", str(d / "gt")]) == 0
    return d


def independent_scores(gt_dir, pred_dir):
    """Per-class IoU/precision/recall straight from the definitions, one class at a time."""
    gt = np.concatenate([read_benchmark_file(p) for p in sorted(gt_dir.glob("*.txt"))])
    pred = np.concatenate([read_benchmark_file(pred_dir / p.name) for p in sorted(gt_dir.glob("*.txt"))])
    valid = np.isin(gt, VALID_CLASS_IDS)
    gt, pred = gt[valid], pred[valid]
    iou, prec, rec = [], [], []
    for cid in VALID_CLASS_IDS:
        tp = int(np.sum((gt == cid) & (pred == cid)))
        fp = int(np.sum((gt != cid) & (pred == cid)))
        fn = int(np.sum((gt == cid) & (pred != cid)))
        iou.append(tp / (tp + fp + fn) if tp + fp + fn else np.nan)
        prec.append(tp / (tp + fp) if tp + fp else np.nan)
        rec.append(tp / (tp + fn) if tp + fn else np.nan)
    return np.array(iou), np.array(prec), np.array(rec), len(gt)


def gt_as_predictions(pipeline):
    """The ground truth's files copied as a prediction folder (a folder scored against itself is refused)."""
    import shutil

    pred = pipeline / "gt_as_pred"
    if not pred.exists():
        pred.mkdir()
        for p in (pipeline / "gt").glob("*.txt"):
            shutil.copy(p, pred / p.name)
    return pred


def test_ground_truth_scores_100(pipeline, capsys):
    out = pipeline / "gt_vs_gt.json"
    assert main(["evaluate", "--pred", str(gt_as_predictions(pipeline)), "--gt", str(pipeline / "gt"),
                 "--out", str(out), "--per-class", str(pipeline / "pc.csv")]) == 0
    m = json.loads(out.read_text())
    assert m["all"]["miou"] == 100.0 and m["all"]["precision"] == 100.0 and m["all"]["recall"] == 100.0
    assert m["head"]["miou"] == 100.0 and m["scenes"] >= 1 and m["points"] > 1000
    assert "mIoU" in capsys.readouterr().out


def test_random_prediction_matches_independent_computation(pipeline):
    rng = np.random.default_rng(0)
    pred_dir = pipeline / "random"
    for p in sorted((pipeline / "gt").glob("*.txt")):
        n = len(read_benchmark_file(p))
        # mostly valid ids, some 0 and some ids outside the 200 (both count as misses)
        ids = rng.choice(np.r_[VALID_CLASS_IDS[:30], 0, 12, 5000], n)
        write_benchmark_file(pred_dir / p.name, ids)
    out = pipeline / "random.json"
    assert main(["evaluate", "--pred", str(pred_dir), "--gt", str(pipeline / "gt"), "--out", str(out)]) == 0
    m = json.loads(out.read_text())
    iou, prec, rec, points = independent_scores(pipeline / "gt", pred_dir)
    assert m["points"] == points
    assert m["all"]["miou"] == pytest.approx(100 * np.nanmean(iou))
    assert m["all"]["miou_200"] == pytest.approx(100 * np.nan_to_num(iou).mean())
    assert m["all"]["precision"] == pytest.approx(100 * np.nanmean(prec))
    assert m["all"]["recall"] == pytest.approx(100 * np.nanmean(rec))
    head = SPLIT_INDICES["head"]
    assert m["head"]["miou"] == pytest.approx(100 * np.nanmean(iou[head]))
    assert 0 < m["all"]["miou"] < 20


def test_missing_prediction_is_a_clear_error(pipeline, capsys):
    gts = sorted((pipeline / "gt").glob("*.txt"))
    pred_dir = pipeline / "partial"
    write_benchmark_file(pred_dir / gts[0].name, read_benchmark_file(gts[0]))  # all but the first missing
    rc = main(["evaluate", "--pred", str(pred_dir), "--gt", str(pipeline / "gt"), "--out", str(pipeline / "x.json")])
    err = capsys.readouterr().err
    assert len(gts) >= 2
    assert rc == 1 and "prediction file missing" in err and gts[1].stem in err
    assert not (pipeline / "x.json").exists()


def test_preprocess_outputs_follow_mesh_order(pipeline):
    scene = sorted((pipeline / "gt").glob("*.txt"))[0].stem
    seg = np.load(pipeline / "processed" / "val" / scene / "segment200.npy")
    gt = read_benchmark_file(pipeline / "gt" / f"{scene}.txt")
    # the same vertex labelling reached by two paths: processed indices and exported raw ids
    assert len(seg) == len(gt)
    expected = np.where(seg >= 0, np.asarray(VALID_CLASS_IDS)[np.maximum(seg, 0)], 0)
    np.testing.assert_array_equal(expected, gt)


def test_bad_input_exit_code(tmp_path, capsys):
    rc = main(["preprocess", "--raw", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])
    assert rc == 1 and "scannetv2-labels.combined.tsv" in capsys.readouterr().err


def test_render_and_export_ply_of_a_prediction(pipeline, capsys):
    from plyfile import PlyData

    from lgseg.render import PALETTE
    from lgseg.scannet.constants import raw_to_index

    scene = sorted((pipeline / "gt").glob("*.txt"))[0].stem
    common = ["--scene", scene, "--processed", str(pipeline / "processed")]
    assert main(["render", *common, "--pred", str(pipeline / "gt"), "--out", str(pipeline / "r.png")]) == 0
    assert (pipeline / "r.png").stat().st_size > 50_000
    assert main(["export-ply", *common, "--pred", str(pipeline / "gt"), "--raw", str(pipeline / "raw"),
                 "--out", str(pipeline / "s.ply")]) == 0
    ply = PlyData.read(pipeline / "s.ply")
    labels = raw_to_index(read_benchmark_file(pipeline / "gt" / f"{scene}.txt"))
    v = ply["vertex"].data
    first = int(np.flatnonzero(labels >= 0)[0])
    assert len(v) == len(labels) and len(ply["face"].data) > 0
    assert [v["red"][first], v["green"][first], v["blue"][first]] == list(np.round(PALETTE[labels[first]] * 255))
    assert main(["render", "--scene", "scene9999_00", "--processed", str(pipeline / "processed"),
                 "--out", str(pipeline / "x.png")]) == 1
    assert "no preprocessed scene 'scene9999_00'" in capsys.readouterr().err
    short = pipeline / "short"
    write_benchmark_file(short / f"{scene}.txt", np.ones(5, int))
    assert main(["render", *common, "--pred", str(short), "--out", str(pipeline / "y.png")]) == 1
    assert "5 labels for a mesh of" in capsys.readouterr().err and not (pipeline / "y.png").exists()


def test_render_and_export_ply_by_predicted_instance(pipeline, capsys):
    """--instances colours each predicted instance (from an instance prediction folder) in one colour."""
    from plyfile import PlyData

    from lgseg.evaluation.instance_files import write_instance_prediction
    from lgseg.render import instance_colors
    from lgseg.scene_io import load_scene, read_array, scene_dir

    gt = pipeline / "gt_instance"
    assert main(["export-gt", "--task", "instance", "--raw", str(pipeline / "raw"), "--out", str(gt)]) == 0
    scene = sorted(gt.glob("*.txt"))[0].stem
    instance = read_array(scene_dir(pipeline / "processed", scene), "instance", scene)
    ids = [i for i in np.unique(instance) if i >= 0][:3]
    masks = np.stack([instance == i for i in ids])
    pred = pipeline / "pred_instance"
    pred.mkdir()
    (pred / "pred_mask").mkdir()
    write_instance_prediction(pred, scene, masks, np.full(len(ids), 2), np.array([0.9, 0.8, 0.7]))
    common = ["--scene", scene, "--processed", str(pipeline / "processed"), "--instances", str(pred)]
    assert main(["render", *common, "--out", str(pipeline / "inst.png")]) == 0
    assert (pipeline / "inst.png").stat().st_size > 50_000 and "inst.png" in capsys.readouterr().out
    assert main(["export-ply", *common, "--raw", str(pipeline / "raw"), "--out", str(pipeline / "inst.ply")]) == 0
    v = PlyData.read(pipeline / "inst.ply")["vertex"].data
    rgb = np.stack([v["red"], v["green"], v["blue"]], 1)
    expected = np.round(instance_colors(np.where(masks.any(0), np.argmax(masks, 0), -1)) * 255)
    assert len(v) == len(load_scene(pipeline / "processed", scene)["coord"]) and (rgb == expected).all()
    assert len({tuple(c) for c in rgb[masks.any(0)]}) == 3  # one colour per instance
    assert main(["render", *common[:4], "--instances", str(pipeline / "nowhere"), "--out", str(pipeline / "n.png")]) == 1
    assert "the instance prediction folder (--instances) does not exist" in capsys.readouterr().err


def test_predict_help_says_what_the_authors_checkpoints_need(capsys):
    with pytest.raises(SystemExit) as e:
        main(["predict", "-h"])
    out = " ".join(capsys.readouterr().out.split())
    assert e.value.code == 0
    assert "authors' Lightning checkpoints do not record their architecture or voxel size" in out
    assert "--model" in out and "--voxel-size" in out and "--backend {minkowski,spconv}" in out


@pytest.mark.parametrize("command", ["preprocess", "evaluate"])
def test_preprocess_and_evaluate_never_import_torch(command, pipeline, tiny_raw, tmp_path):
    """Without an instance bank or a model these commands need no torch (its import alone takes seconds)."""
    args = {"preprocess": ["preprocess", "--raw", str(tiny_raw), "--out", str(tmp_path / "processed")],
            "evaluate": ["evaluate", "--pred", str(gt_as_predictions(pipeline)), "--gt", str(pipeline / "gt"),
                         "--out", str(tmp_path / "metrics.json")]}[command]
    code = f"import sys; from lgseg.cli import main; rc = main({args!r}); print(rc, 'torch' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[-2:] == ["0", "False"], "torch was imported"



def test_building_the_parser_imports_no_command_code():
    # every command builds the whole parser first: what it imports, each command pays for
    # (synth's defaults once pulled in the whole generator: 78 ms of a 150 ms one-scene preprocess)
    code = ("import sys; from lgseg.cli import build_parser; build_parser(); "
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('lgseg', 'numpy', 'tqdm', 'torch'))))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["lgseg", "lgseg.cli", "lgseg.errors", "lgseg.synthetic", "lgseg.synthetic.size"]

# --- help texts ----------------------------------------------------------------------------------

def subcommands():
    import argparse

    from lgseg.cli import build_parser

    (choices,) = [a.choices for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return choices


def test_top_level_help_lists_every_command_in_plain_text(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    assert "``" not in out and "language-grounded 3D semantic segmentation" in out
    assert all(name in out for name in subcommands())


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_option_has_a_help_text_and_shows_its_default(command, capsys, monkeypatch):
    import argparse

    monkeypatch.setenv("COLUMNS", "400")  # one line per option: defaults are not wrapped apart
    parser = subcommands()[command]
    assert parser.description, f"lgseg {command} -h has no description"
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert "``" not in out
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help.strip(), f"lgseg {command} {name}: no help text"
        if action.default is not None and action.default is not False and "default" not in action.help:
            assert f"(default: {action.default})" in out, f"lgseg {command} {name}: default not shown"


def test_help_shows_the_pipeline_paths(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    shown = {}
    for command in ("render", "export-ply", "query", "predict"):
        with pytest.raises(SystemExit):
            main([command, "-h"])
        shown[command] = capsys.readouterr().out
    assert all("(default: data/processed)" in shown[c] for c in shown)
    assert "(default: data/raw)" in shown["export-ply"] and "(default: data/raw)" in shown["query"]
    assert "(default: models/pretrain.pt)" in shown["query"]


# --- missing inputs: where the command looked, that it is not there, what makes it ----------------

def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, f"not one line: {err!r}"
    return err


def test_export_ply_without_the_raw_folder_refuses_and_writes_nothing(pipeline, tmp_path, capsys):
    scene = sorted((pipeline / "gt").glob("*.txt"))[0].stem
    common = ["export-ply", "--scene", scene, "--processed", str(pipeline / "processed")]
    nowhere = tmp_path / "nonexistent"
    assert main([*common, "--raw", str(nowhere), "--out", str(tmp_path / "s.ply")]) == 1
    err = one_line_error(capsys)
    assert f"{nowhere}: the raw ScanNet folder" in err and "does not exist" in err
    assert "dvc repro download" in err and "--points-only" in err
    assert not (tmp_path / "s.ply").exists()
    # a raw folder without this scene: refused too
    assert main([*common, "--raw", str(pipeline / "raw" / "scans"), "--out", str(tmp_path / "s.ply")]) == 1
    assert "scene folder not found" in one_line_error(capsys) and not (tmp_path / "s.ply").exists()
    # the vertices alone, when asked for
    assert main([*common, "--raw", str(nowhere), "--points-only", "--out", str(tmp_path / "p.ply")]) == 0
    assert "0 faces" in capsys.readouterr().out and (tmp_path / "p.ply").is_file()


@pytest.mark.parametrize("command", [
    ["render", "--scene", "scene0011_00", "--out", "x.png"],
    ["export-ply", "--scene", "scene0011_00", "--out", "x.ply"],
    ["query", "--scene", "scene0011_00", "--text", "wall", "--out", "x.png"],
    ["predict", "--checkpoint", "models/finetune.pt", "--out", "pred"],
])
def test_outside_the_repo_root_the_error_says_where_it_looked(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(command) == 1
    err = one_line_error(capsys)
    assert f"{tmp_path / 'data' / 'processed'}: the preprocessed-scene folder does not exist" in err
    assert f"current folder {tmp_path}" in err and "dvc repro preprocess" in err
    assert "--data DIR" in err if command[0] == "predict" else "--processed DIR" in err
    assert list(tmp_path.iterdir()) == []


def test_a_missing_scene_names_the_absolute_folder(pipeline, monkeypatch, capsys):
    monkeypatch.chdir(pipeline)
    assert main(["render", "--scene", "scene9999_00", "--processed", "processed", "--out", "x.png"]) == 1
    assert f"{pipeline / 'processed'}: no preprocessed scene 'scene9999_00'" in capsys.readouterr().err


def test_check_params_outside_the_repo_root(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["check-params"]) == 1
    err = one_line_error(capsys)
    assert f"{tmp_path / 'params.yaml'}: the params file does not exist" in err and "repo root" in err


def test_query_checks_its_inputs_before_running_a_model(pipeline, tmp_path, monkeypatch, capsys):
    scene = sorted((pipeline / "gt").glob("*.txt"))[0].stem
    monkeypatch.chdir(tmp_path)
    common = ["query", "--scene", scene, "--processed", str(pipeline / "processed"), "--text", "wall",
              "--out", "q.png"]
    assert main([*common, "--ply", "q.ply", "--raw", "nowhere"]) == 1
    assert f"{tmp_path / 'nowhere'}: the raw ScanNet folder" in one_line_error(capsys)
    assert main(common) == 1
    err = one_line_error(capsys)
    assert f"{tmp_path / 'models' / 'pretrain.pt'}: the language-grounded backbone" in err
    assert "dvc repro pretrain" in err and list(tmp_path.iterdir()) == []


def test_synth_takes_the_demo_worlds_size_options(tmp_path, capsys):
    out = tmp_path / "raw"
    args = ["synth", "--out", str(out), "--scenes", "3", "--objects", "6,5,4", "--train-min", "0,0,0", "--val-min", "0"]
    assert main(args) == 0
    for scene in ("scene0000_00", "scene0001_00"):  # of 3 scenes, 2 train rooms and 1 test room
        groups = json.loads((out / "scans" / scene / f"{scene}.aggregation.json").read_text())["segGroups"]
        objects = [g["label"] for g in groups if g["label"] in CLASS_NAMES and g["label"] not in ("wall", "floor")]
        assert 4 <= len(objects) <= 6  # 6 objects a room (the default, 62), some of them label traps
    with pytest.raises(SystemExit):
        main(["synth", "--out", str(out), "--objects", "6,5"])
    assert "--objects takes three integers >= 0 for train,val,test, not '6,5'" in capsys.readouterr().err


@pytest.mark.parametrize("size", ["nan", "inf", "-inf", "0", "-1", "1e-9", "100"])
def test_predict_refuses_a_voxel_size_no_scan_can_have(size, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["predict", "--checkpoint", str(tmp_path / "m.ckpt"), "--out", str(tmp_path / "out"),
              "--model", "Res16UNet34C", f"--voxel-size={size}"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert e.value.code == 2
    assert err.endswith(f"argument --voxel-size: a voxel size must be a number of metres in [0.001, 10], not "
                        f"{float(size)!r} (e.g. 0.02 for the authors' checkpoints)")


@pytest.mark.parametrize("text", ["", "   ", "\t"])
def test_query_refuses_an_empty_text(text, pipeline, tmp_path, capsys):
    code = main(["query", "--scene", "scene0000_00", "--processed", str(pipeline / "processed"), "--text", text,
                 "--out", str(tmp_path / "q.png")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "--text is empty" in err
    assert not (tmp_path / "q.png").exists()


def test_predict_checks_its_out_before_it_imports_torch_or_loads_the_model(pipeline, tmp_path):
    garbage = tmp_path / "m.pt"
    garbage.write_bytes(b"not a model")
    code = ("import sys; from lgseg.cli import main; rc = main(['predict', '--checkpoint', %r, '--data', %r, "
            "'--out', %r]); print(rc, 'torch' in sys.modules)") % (str(garbage), str(pipeline / "processed"),
                                                                    str(pipeline / "gt"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.split() == ["1", "False"], r.stderr
    assert "holds semantic ground truth: writing predictions there would replace it" in r.stderr
