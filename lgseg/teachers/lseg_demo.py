"""The demo's 2D teacher: a small LSeg-style network trained inside the pipeline.

No image model's weights can be had offline, so the demo makes its own open-vocabulary 2D teacher the
way LSeg (Li et al., ICLR 2022) is made: a dense image encoder whose per-pixel features are trained
to match the frozen text embeddings of their pixels' class names (the text-embed stage's anchors,
the 3D side's own), with a cross entropy over the cosine similarities to all 200 anchors at
temperature T::

    logits_c(pixel) = cos(f(pixel), t_c) / T          loss = CE(logits, class of the pixel's label)

It learns from the **train** scenes' 2D label images only (ScanNet's ``label-filt`` projections of
the 3D annotation, written by the synthetic world; ignored where a pixel has none of the 200). Val and
test label images are never read for training; the val frames score the trained teacher (2D mIoU per
pixel of its output, over head / common / tail). A real teacher (LSeg, OpenSeg) is trained on other 2D
data sets and sees no ScanNet label; this stand-in is trained on the projections of the demo's own
train annotation, so its features know the demo's classes as well as its train labels do (docs/method.md).

Network (``PixelTextNet``): three levels of 3x3 convolutions with BatchNorm and ReLU (``width``,
2·``width``, 4·``width`` channels at strides 1, 2, 4 of its input), one skip-connected decoder level
back to stride 2, and a 1x1 projection to the text width; features L2-normalised. The colour image is
made ``shrink`` times smaller before it goes in, so the feature map has stride 2·``shrink`` of the
colour image (the demo: shrink 4, its 320x240 frames give 40x30 features, a quarter of the 160x120
depth image, which lgseg.lifting samples by nearest pixel). On the demo, shrink 4 trained in a third
of shrink 2's time to the same val 2D mIoU (4.9 against 5.1, measured on 2026-12-08).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lgseg.errors import InputError
from lgseg.scannet.constants import IGNORE_INDEX, NUM_CLASSES, raw_to_index



def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PixelTextNet(nn.Module):
    """Colour image (B, 3, H, W) in [0, 255] -> unit features (B, dim, H/stride, W/stride), stride
    2 * shrink (module docstring)."""

    def __init__(self, dim: int, width: int = 16, shrink: int = 2) -> None:
        super().__init__()
        if dim < 1 or width < 1 or shrink < 1:
            raise ValueError(f"dim, width and shrink must be >= 1, got {dim}, {width} and {shrink}")
        self.dim, self.width, self.shrink = int(dim), int(width), int(shrink)
        self.stride = 2 * self.shrink
        self.enc1 = _block(3, width)
        self.enc2 = _block(width, 2 * width, stride=2)
        self.enc3 = _block(2 * width, 4 * width, stride=2)
        self.dec2 = _block(6 * width, 2 * width)
        self.head = nn.Conv2d(2 * width, dim, 1)

    def forward(self, image: Tensor) -> Tensor:
        x = F.avg_pool2d(image / 255.0 - 0.5, self.shrink)  # the demo's 320x240 colour at 1/shrink
        x2 = self.enc2(self.enc1(x))
        x3 = self.enc3(x2)
        up = F.interpolate(x3, size=x2.shape[-2:], mode="bilinear", align_corners=False)
        return F.normalize(self.head(self.dec2(torch.cat([up, x2], dim=1))), dim=1)


def label_classes(label_image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A ScanNet label image (label ids, 0 none) as class indices (-1 ignore) at ``size`` (w, h), by
    nearest pixel: output pixel (i, j) takes the label at the centre of the input block it covers."""
    h, w = label_image.shape
    rows = np.minimum(((np.arange(size[1]) + 0.5) * h / size[1]).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(size[0]) + 0.5) * w / size[0]).astype(np.int64), w - 1)
    return raw_to_index(label_image[np.ix_(rows, cols)].astype(np.int64)).astype(np.int64)


@dataclass
class TrainConfig:
    width: int = 16
    shrink: int = 2
    epochs: int = 8
    batch_size: int = 8
    lr: float = 1e-3
    temperature: float = 0.07
    seed: int = 0


def _batches(n: int, size: int, rng: np.random.Generator):
    order = rng.permutation(n)
    for s in range(0, n, size):
        yield order[s:s + size]


def train_teacher(images: Sequence[np.ndarray], labels: Sequence[np.ndarray], anchors: np.ndarray,
                  cfg: TrainConfig, progress: bool = True, log=None) -> tuple[PixelTextNet, list[dict]]:
    """Train a ``PixelTextNet`` on ``images`` (colour, (H, W, 3) uint8, all one size) and their label
    images (ScanNet label ids) towards the frozen ``anchors`` (200 x D text embeddings). Adam, a
    random horizontal flip per image; every draw from ``cfg.seed``. Returns the network (eval mode)
    and the per-epoch history (loss, pixel accuracy on the labelled train pixels)."""
    from tqdm import tqdm

    if len(images) != len(labels) or not images:
        raise ValueError(f"need as many label images as images, at least one; got {len(images)} and {len(labels)}")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = PixelTextNet(anchors.shape[1], cfg.width, cfg.shrink)
    text = F.normalize(torch.as_tensor(anchors, dtype=torch.float32), dim=1)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    out_size = (x.shape[3] // net.stride, x.shape[2] // net.stride)
    y = torch.from_numpy(np.stack([label_classes(lab, out_size) for lab in labels]))
    if not (y >= 0).any():
        raise ValueError("no pixel of the training label images is one of the 200 classes")
    optim = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    history = []
    for epoch in tqdm(range(1, cfg.epochs + 1), desc="teacher", unit="epoch", disable=not progress):
        net.train()
        total, right, seen, steps = 0.0, 0, 0, 0
        for idx in _batches(len(x), cfg.batch_size, rng):
            flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
            xb, yb = x[idx].clone(), y[idx].clone()
            xb[flip], yb[flip] = xb[flip].flip(-1), yb[flip].flip(-1)
            feats = net(xb)
            logits = torch.einsum("bdhw,cd->bchw", feats, text) / cfg.temperature
            loss = F.cross_entropy(logits, yb, ignore_index=IGNORE_INDEX)
            optim.zero_grad()
            loss.backward()
            optim.step()
            valid = yb != IGNORE_INDEX
            total += loss.item() if valid.any() else 0.0
            right += int((logits.argmax(1)[valid] == yb[valid]).sum())
            seen += int(valid.sum())
            steps += 1
        history.append({"epoch": epoch, "loss": total / steps, "train_pixel_accuracy": 100.0 * right / max(seen, 1)})
        if log is not None:
            log(history[-1])
    return net.eval(), history


@torch.no_grad()
def teacher_features(net: PixelTextNet, image: np.ndarray) -> np.ndarray:
    """One colour image (H, W, 3) uint8 -> its (H/stride, W/stride, D) float32 unit feature map."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    return net.eval()(x)[0].permute(1, 2, 0).numpy()


@torch.no_grad()
def confusion_2d(net: PixelTextNet, images: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                 anchors: np.ndarray) -> np.ndarray:
    """The (200, 201) confusion matrix of the teacher's per-pixel readout (nearest anchor) against the
    label images, at the feature map's resolution (labels by nearest pixel, ``label_classes``)."""
    from lgseg.evaluation.confusion import confusion_matrix

    text = F.normalize(torch.as_tensor(anchors, dtype=torch.float32), dim=1).numpy()
    conf = np.zeros((NUM_CLASSES, NUM_CLASSES + 1), dtype=np.int64)
    for image, label in zip(images, labels):
        feats = teacher_features(net, image)
        pred = (feats.reshape(-1, feats.shape[-1]) @ text.T).argmax(1)
        gt = label_classes(label, (feats.shape[1], feats.shape[0])).reshape(-1)
        conf += confusion_matrix(gt, pred)
    return conf


class DemoTeacher:
    """The trained demo teacher as the lift stage uses a teacher: ``features(image)`` and ``meta()``."""

    name = "lseg_demo"

    def __init__(self, net: PixelTextNet, meta: dict):
        self.net, self.file_meta = net.eval(), meta
        self.dim, self.stride = net.dim, net.stride

    def features(self, image: np.ndarray) -> np.ndarray:
        return teacher_features(self.net, image)

    def meta(self) -> dict:
        """Whose features the lifted ones are: in the text space of the anchors it was trained towards."""
        return {"teacher": self.name, "dim": self.dim, "text": self.file_meta.get("text")}


def save_teacher(path: str | Path, net: PixelTextNet, meta: dict) -> None:
    from lgseg.engine.checkpoint import save_model  # the model files' one writer (finite weights, atomic)

    save_model(path, net, {**meta, "kind": "teacher", "type": "lseg_demo", "dim": net.dim, "width": net.width,
                           "shrink": net.shrink})


def load_teacher(path: str | Path) -> tuple[PixelTextNet, dict]:
    """A teacher file the teacher stage wrote (models/teacher.pt)."""
    from lgseg.engine.checkpoint import read_weights

    state, meta = read_weights(path)
    if meta and meta.get("kind") == "teacher" and meta.get("type") == NO_TEACHER:
        raise InputError(path, f"holds no teacher: {meta.get('reason')}", "the download needs RGB-D frames "
                         "(<scene>.sens and its 2D label zips) for the demo teacher")
    if not meta or meta.get("kind") != "teacher" or meta.get("type") != "lseg_demo":
        raise InputError(path, "not a demo teacher file (the teacher stage's models/teacher.pt)",
                         "run `dvc repro teacher`, or point teacher.lseg_demo.weights at such a file")
    net = PixelTextNet(meta["dim"], meta["width"], meta.get("shrink", 2))
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise InputError(path, f"weights do not fit a PixelTextNet of width {meta['width']}: {str(e).splitlines()[0]}",
                         "run `dvc repro teacher` again") from None
    return net.eval(), meta


# ---- the teacher stage: train on the train frames, score on the val frames -----------------------

def split_frames(frames_root: str | Path, split: str) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """Colour and label images of every frame of ``frames_root/<split>``'s scenes that have ScanNet's 2D
    label projections, and how many scenes had none. Only that split's folder is read."""
    from lgseg.frames.layout import FrameFolder
    from lgseg.scannet.splits import scene_folders

    images, labels, unlabelled = [], [], 0
    base = Path(frames_root) / split
    for scene in scene_folders(base):
        folder = FrameFolder.from_dir(base / scene)
        if not folder.has_labels:
            unlabelled += 1
            continue
        for i in folder.ids:
            frame = folder.frame(i)
            images.append(frame.color)
            labels.append(frame.label)
    sizes = {im.shape for im in images}
    if len(sizes) > 1:
        raise InputError(base, f"colour images of {len(sizes)} sizes ({', '.join(map(str, sorted(sizes)))}): the "
                         "teacher trains on one size", "export the frames with frames.size set (params.yaml)")
    return images, labels, unlabelled


def fit_demo_teacher(frames_root: str | Path, anchors: np.ndarray, text_meta: dict, cfg: TrainConfig,
                     model_path: str | Path, metrics_json: str | Path, counts_json: str | Path,
                     curve_csv: str | Path, progress: bool = True) -> dict:
    """The teacher stage: train on ``frames_root/train``'s frames, score the teacher's per-pixel readout
    on ``frames_root/val``'s (``metrics_json``: mIoU, precision and recall as the benchmark's summary,
    per pixel of the feature map), write the model, the frame counts and the per-epoch curve. Where no
    train scene has labelled frames (a meshes-only download) the model file records that there is no
    teacher, and the metrics are empty: the stages that need lifted features then say so."""
    import csv

    from lgseg.evaluation.metrics import summarize
    from lgseg.fileio import atomic_file, write_json

    images, labels, unlabelled = split_frames(frames_root, "train")
    counts = {"train_frames": len(images), "train_scenes_without_labels": unlabelled}
    if not images:
        save_no_teacher(model_path, f"no train frames with 2D labels in {Path(frames_root) / 'train'}")
        write_json(metrics_json, {})
        write_json(counts_json, counts)
        with atomic_file(curve_csv) as f:
            f.write("epoch,loss,train_pixel_accuracy\n")
        return {}
    net, history = train_teacher(images, labels, anchors, cfg, progress)
    val_images, val_labels, _ = split_frames(frames_root, "val")
    summary = summarize(confusion_2d(net, val_images, val_labels, anchors)) if val_images else {}
    counts["val_frames"] = len(val_images)
    save_teacher(model_path, net, {"text": dict(text_meta), "config": vars(cfg), "stride": net.stride,
                                   "input_size": list(images[0].shape[1::-1])})
    write_json(metrics_json, {k: v for k, v in summary.items() if k in ("all", "head", "common", "tail")})
    write_json(counts_json, counts)
    with atomic_file(curve_csv) as f:
        writer = csv.DictWriter(f, ["epoch", "loss", "train_pixel_accuracy"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)
    return summary


NO_TEACHER = "none"  # the teacher file's type where no teacher could be trained


def save_no_teacher(path: str | Path, reason: str) -> None:
    """A teacher file that says there is no teacher, and why (so that DVC has its output and the lift
    stage knows to lift nothing)."""
    from lgseg.engine.checkpoint import save_checkpoint

    save_checkpoint(path, {"state_dict": {}, "meta": {"kind": "teacher", "type": NO_TEACHER, "reason": reason}})
