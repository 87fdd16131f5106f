"""`lgseg render --frame`: one RGB-D frame beside the teacher's readout and the lifted features of the
points it sees, from the pipeline's folders."""

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch

from lgseg import synthetic
from lgseg.cli import main
from lgseg.engine.lift import lift_all
from lgseg.frames.export import export_scenes
from lgseg.scannet.constants import NUM_CLASSES
from lgseg.scannet.preprocess import preprocess
from lgseg.teachers import build_teacher
from lgseg.teachers.lseg_demo import PixelTextNet, save_teacher
from lgseg.text.embed import save_embeddings


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("frame")
    synthetic.generate(d / "raw", 4, seed=2, progress=False, frames=2, objects={"train": 10, "val": 10, "test": 6},
                       train_min={"head": 0, "common": 0, "tail": 0}, val_min=0)
    preprocess(d / "raw", d / "processed", progress=False)
    export_scenes(d / "raw", d / "frames", progress=False)
    emb = np.random.default_rng(0).normal(size=(NUM_CLASSES, 8)).astype(np.float32)
    save_embeddings(d / "text", emb / np.linalg.norm(emb, axis=1, keepdims=True),
                    {"encoder": "random", "model": "t", "prompt": "{}"})
    torch.manual_seed(0)
    save_teacher(d / "teacher.pt", PixelTextNet(8, 4), {"text": {"encoder": "random", "model": "t", "dim": 8}})
    lift_all(lambda: build_teacher({"type": "lseg_demo"}, demo_weights=d / "teacher.pt"), d / "frames",
             d / "processed", d / "lifted", {"rule": "mean", "border": 2, "occlusion": 0.25,
                                             "occlusion_mode": "relative"}, progress=False)
    return d


def argv(d, *extra):
    return ["render", "--scene", "scene0002_00", "--processed", str(d / "processed"), "--frames", str(d / "frames"),
            "--lifted", str(d / "lifted"), "--text", str(d / "text"), "--teacher", str(d / "teacher.pt"), *extra]


def test_a_frame_is_drawn_with_its_labels_the_teachers_readout_and_the_lifted_points(world, tmp_path, capsys):
    assert main(argv(world, "--frame", "1", "--out", str(tmp_path / "f.png"))) == 0
    image = mpimg.imread(tmp_path / "f.png")
    assert image.shape[1] > 3 * image.shape[0] and image.std() > 0  # four panels side by side
    assert f"wrote {tmp_path / 'f.png'}" in capsys.readouterr().out


def test_a_missing_frame_folder_or_frame_is_one_line(world, tmp_path, capsys):
    args = argv(world, "--frame", "0", "--out", str(tmp_path / "f.png"))
    args[args.index("--frames") + 1] = str(tmp_path / "none")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "the scene's frame folder does not exist" in err and "dvc repro frames" in err
    with pytest.raises(ValueError, match="has no frame 7"):
        main(argv(world, "--frame", "7", "--out", str(tmp_path / "f.png")))
