"""The demo's LSeg-style teacher: it learns the pixels' classes towards the text anchors from the train
frames' 2D labels only, is scored on the val frames, and reads out as the lift stage uses it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lgseg import synthetic
from lgseg.errors import InputError
from lgseg.frames.export import export_scenes
from lgseg.scannet.constants import NUM_CLASSES, VALID_CLASS_IDS
from lgseg.teachers import build_teacher
from lgseg.teachers.lseg_demo import (
    PixelTextNet,
    TrainConfig,
    confusion_2d,
    fit_demo_teacher,
    label_classes,
    load_teacher,
    save_no_teacher,
    split_frames,
    train_teacher,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    root = tmp_path_factory.mktemp("teacher")
    synthetic.generate(root / "raw", 4, seed=3, progress=False, frames=2)  # 2 train, 1 val, 1 test
    export_scenes(root / "raw", root / "frames", progress=False)
    return root / "frames"


def anchors(dim: int = 16, seed: int = 0) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(NUM_CLASSES, dim)).astype(np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_label_images_become_class_indices_at_the_feature_maps_size():
    label = np.zeros((8, 8), dtype=np.uint16)
    label[:4, :4] = VALID_CLASS_IDS[1]  # chair
    label[4:, 4:] = 12  # ceiling: a ScanNet label id outside the 200
    classes = label_classes(label, (2, 2))  # each output pixel takes the centre of its 4 x 4 block
    assert classes.tolist() == [[1, -1], [-1, -1]]


def test_a_tiny_teacher_learns_two_colours_as_two_classes():
    """Red pixels are chairs, blue ones tables: after training, the nearest anchor of each pixel's
    feature is its class (the cross entropy over the cosine logits of all 200 anchors works)."""
    rng = np.random.default_rng(0)
    images, labels = [], []
    for _ in range(8):
        img = np.zeros((32, 32, 3), dtype=np.uint8)
        lab = np.zeros((32, 32), dtype=np.uint16)
        split = rng.integers(8, 24)
        img[:, :split] = (220, 30, 30)
        img[:, split:] = (30, 30, 220)
        lab[:, :split], lab[:, split:] = VALID_CLASS_IDS[1], VALID_CLASS_IDS[3]  # chair, table
        images.append(img)
        labels.append(lab)
    net, history = train_teacher(images, labels, anchors(), TrainConfig(width=8, epochs=40, batch_size=4, lr=1e-2),
                                 progress=False)
    assert history[-1]["loss"] < history[0]["loss"] / 4
    conf = confusion_2d(net, images, labels, anchors())
    assert np.trace(conf) / conf.sum() > 0.95


def test_training_reads_the_train_frames_only(frames, tmp_path):
    """Val label images poisoned (every pixel a tail class): the trained teacher is the same, bit for bit."""
    images, labels, _ = split_frames(frames, "train")
    assert len(images) == 4 and labels[0].shape == images[0].shape[:2]
    cfg = TrainConfig(width=4, epochs=1, batch_size=2)
    a = anchors()
    paths = lambda d: (d / "t.pt", d / "m.json", d / "c.json", d / "curve.csv")  # noqa: E731
    fit_demo_teacher(frames, a, {"encoder": "random"}, cfg, *paths(tmp_path / "clean"), progress=False)
    poisoned = tmp_path / "poisoned"
    import shutil

    shutil.copytree(frames, poisoned)
    from PIL import Image

    for png in (poisoned / "val").rglob("label-filt/*.png"):
        Image.fromarray(np.full((240, 320), VALID_CLASS_IDS[-1], dtype=np.uint16)).save(png)
    fit_demo_teacher(poisoned, a, {"encoder": "random"}, cfg, *paths(tmp_path / "poisoned_out"), progress=False)
    clean, _ = load_teacher(tmp_path / "clean/t.pt")
    dirty, _ = load_teacher(tmp_path / "poisoned_out/t.pt")
    for (k, x), (_, y) in zip(clean.state_dict().items(), dirty.state_dict().items()):
        assert torch.equal(x, y), k
    # the val score did read them: the poisoned frames score (almost) nothing
    assert json.loads((tmp_path / "poisoned_out/m.json").read_text()) != json.loads((tmp_path / "clean/m.json").read_text())


def test_the_stage_writes_the_model_its_val_scores_counts_and_curve(frames, tmp_path):
    s = fit_demo_teacher(frames, anchors(), {"encoder": "random", "dim": 16}, TrainConfig(width=4, epochs=2),
                         tmp_path / "t.pt", tmp_path / "m.json", tmp_path / "c.json", tmp_path / "curve.csv",
                         progress=False)
    assert set(json.loads((tmp_path / "m.json").read_text())) == {"all", "head", "common", "tail"}
    assert s["all"]["miou"] is not None and 0 <= s["all"]["miou"] <= 100
    assert json.loads((tmp_path / "c.json").read_text()) == {"train_frames": 4, "train_scenes_without_labels": 0,
                                                            "val_frames": 2}
    assert (tmp_path / "curve.csv").read_text().splitlines()[0] == "epoch,loss,train_pixel_accuracy"
    teacher = build_teacher({"type": "lseg_demo"}, demo_weights=tmp_path / "t.pt")
    image = np.zeros((240, 320, 3), dtype=np.uint8)
    feats = teacher.features(image)
    assert feats.shape == (240 // 4, 320 // 4, 16) and teacher.stride == 4 and np.allclose(np.linalg.norm(feats, axis=2), 1, atol=1e-5)
    assert teacher.meta() == {"teacher": "lseg_demo", "dim": 16, "text": {"encoder": "random", "dim": 16}}


def test_no_train_frames_is_no_teacher_said_plainly(tmp_path):
    (tmp_path / "frames/train").mkdir(parents=True)
    assert fit_demo_teacher(tmp_path / "frames", anchors(), {}, TrainConfig(), tmp_path / "t.pt", tmp_path / "m.json",
                            tmp_path / "c.json", tmp_path / "curve.csv", progress=False) == {}
    with pytest.raises(InputError, match="holds no teacher: no train frames with 2D labels"):
        load_teacher(tmp_path / "t.pt")
    save_no_teacher(tmp_path / "n.pt", "a reason")
    with pytest.raises(InputError, match="a reason"):
        build_teacher({"type": "lseg_demo"}, demo_weights=tmp_path / "n.pt")


def test_a_file_of_another_network_is_refused(tmp_path):
    from lgseg.engine.checkpoint import save_model

    save_model(tmp_path / "m.pt", PixelTextNet(8, 4), {"kind": "teacher", "type": "lseg_demo", "dim": 8, "width": 8})
    with pytest.raises(InputError, match="do not fit a PixelTextNet of width 8"):
        load_teacher(tmp_path / "m.pt")
