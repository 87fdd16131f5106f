"""Label-free (zero-shot) 3D segmentation, the one place every open-vocabulary readout goes through:
each val mesh vertex is given the class whose text anchor is most cosine-similar to its feature,
and scored per vertex as the benchmark scores predictions (mIoU over head / common / tail).

Three readouts, OpenScene's (Peng et al. CVPR 2023, run/evaluate.py):

- ``model``: the pretrained 3D network's feature of the vertex's voxel (the language-grounded
  readout of the paper's pretraining, or a distilled network's); none when the backbone's features
  are in no text space (SupCon, CSC, a teacher outside the anchors' space);
- ``fusion``: the 2D teacher's features fused onto the vertex (``lgseg.engine.lift``); a vertex no
  frame sees gets no class (a miss, as OpenScene's "unknown"); none without lifted features in the
  anchors' space;
- ``ensemble``: per vertex the one of the two (unit) features with the higher cosine to its nearest
  anchor; the 3D feature where no frame saw the vertex.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lgseg.data import ScanNetDataset
from lgseg.engine.checkpoint import load_model
from lgseg.engine.predict import voxel_outputs
from lgseg.evaluation.confusion import confusion_matrix
from lgseg.evaluation.metrics import summarize
from lgseg.scannet.constants import NUM_CLASSES
from lgseg.text import load_embeddings

READOUTS = ("model", "fusion", "ensemble")


def same_space(a: dict | None, b: dict | None) -> bool:
    """Whether two text spaces (encoder, model, width) are one: a feature of the one is read by the other's anchors."""
    return a is not None and b is not None and all(a.get(k) == b.get(k) for k in ("encoder", "model", "dim"))


def zeroshot(model_path: str | Path, processed: str | Path, lifted: str | Path | None, text: str | Path,
             split: str = "val", device: str = "cpu", progress: bool = True) -> dict:
    """``{readout: summary | None}`` (the benchmark's summary, percent) and ``seen_fraction``: the share
    of the split's vertices some frame saw."""
    from lgseg.engine.lift import lifted_meta
    from lgseg.lifting import load_fused

    anchors, text_meta = load_embeddings(text)
    t = F.normalize(torch.from_numpy(anchors), dim=1)
    net, meta = load_model(model_path, device)
    model_ok = same_space(meta.get("text"), text_meta) and net.feature_dim == anchors.shape[1]
    lifted_dir = Path(lifted) / split if lifted is not None else None
    fusion_ok = lifted_dir is not None and lifted_dir.is_dir() and \
        same_space(lifted_meta(lifted).get("text"), text_meta)
    conf = {k: np.zeros((NUM_CLASSES, NUM_CLASSES + 1), dtype=np.int64) for k in READOUTS}
    seen_total = vertices = 0
    dataset = ScanNetDataset(processed, split, voxel_size=meta["voxel_size"], train=False)
    for scene, out, inverse in voxel_outputs(net, dataset, device, progress):
        gt = np.asarray(dataset.load_scene(scene)["label"])
        vertices += len(gt)
        feat3d = F.normalize(out.float().cpu(), dim=1)[torch.from_numpy(inverse)]
        sim3d = feat3d @ t.T
        pred3d = sim3d.argmax(1).numpy()
        if model_ok:
            conf["model"] += confusion_matrix(gt, pred3d)
        if not fusion_ok:
            continue
        folder = lifted_dir / scene
        if folder.is_dir():
            feat2d, seen = load_fused(folder, num_points=len(gt), dense=True)
        else:
            feat2d, seen = np.zeros((len(gt), anchors.shape[1]), np.float16), np.zeros(len(gt), bool)
        seen_total += int(seen.sum())
        sim2d = F.normalize(torch.from_numpy(feat2d.astype(np.float32)), dim=1) @ t.T
        pred2d = np.where(seen, sim2d.argmax(1).numpy(), -1)  # unseen: no class, a miss
        conf["fusion"] += confusion_matrix(gt, pred2d)
        use2d = seen & (sim2d.max(1).values > sim3d.max(1).values).numpy()
        conf["ensemble"] += confusion_matrix(gt, np.where(use2d, pred2d, pred3d))
    ran = {"model": model_ok, "fusion": fusion_ok, "ensemble": model_ok and fusion_ok}
    result = {k: (_headline(summarize(conf[k])) if ran[k] else None) for k in READOUTS}
    result["seen_fraction"] = round(seen_total / vertices, 4) if fusion_ok and vertices else None
    return result


def _headline(summary: dict) -> dict:
    return {s: {"miou": summary[s]["miou"]} for s in ("all", "head", "common", "tail")}
