"""Instance predictions on whole scenes: each mesh vertex takes its voxel's logits and offset, the
shifted vertices are clustered into instances (``lgseg.instances``) and written as the instance
benchmark's files; and their evaluation."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from lgseg.data import ScanNetDataset
from lgseg.engine.checkpoint import place
from lgseg.engine.predict import load_classifier, resolve_device, voxel_outputs
from lgseg.errors import LgsegError
from lgseg.evaluation.folders import INSTANCE_PRED, claim_predictions
from lgseg.evaluation.instance_ap import evaluate_instance_dirs, write_instance_metrics
from lgseg.evaluation.instance_files import PRED_MASK_DIR, write_instance_prediction
from lgseg.evaluation.metrics import SegmentationMetrics
from lgseg.fileio import atomic_dir, mark_product
from lgseg.instances import ClusterConfig, cluster_instances
from lgseg.models.res16unet import InstanceSegmentationNet
from lgseg.scannet.constants import index_to_raw

log = logging.getLogger(__name__)


def predict_instance_split(net: torch.nn.Module, processed: str | Path, split: str, voxel_size: float,
                           out_dir: str | Path, cluster: ClusterConfig, device: torch.device | str = "cpu",
                           progress: bool = True, semantic: SegmentationMetrics | None = None,
                           force: bool = False) -> list[str]:
    """Write the instance benchmark's prediction files of every scene of ``split`` into ``out_dir``
    (``<scene>.txt`` listing ``pred_mask/<scene>_<k>.txt <raw id> <confidence>``): each mesh vertex takes
    its voxel's logits and offset, and the shifted vertices are clustered (``lgseg.instances``).
    ``out_dir`` ends up holding exactly these files (for test: the submission); it appears only once
    complete (``claim_predictions`` says which folders it may replace). With ``semantic``, the
    semantic head's vertex predictions are scored into it too. Returns the scenes, sorted."""
    if not isinstance(net, InstanceSegmentationNet):
        raise LgsegError(f"the {net.arch} model has no offset head: predict instances with an instance model "
                         "(models/insseg.pt, from the insseg-finetune stage)")
    warn_if_radius_splits_voxels(cluster.radius, voxel_size)
    claim_predictions(out_dir, processed, split, "instance", force)
    net = place(net, device)
    dataset = ScanNetDataset(processed, split, voxel_size=voxel_size, train=False)
    with atomic_dir(out_dir) as tmp:
        mark_product(tmp, INSTANCE_PRED)
        (tmp / PRED_MASK_DIR).mkdir()
        for scene, out, inverse in voxel_outputs(net, dataset, device, progress):
            logits, offsets = out["logits"].float().cpu().numpy(), out["offsets"].float().cpu().numpy()
            arrays = dataset.load_scene(scene)
            found = cluster_instances(np.asarray(arrays["coord"]), offsets[inverse], logits[inverse], cluster)
            write_instance_prediction(tmp, scene, found.dense(), index_to_raw(found.labels), found.scores)
            if semantic is not None:
                semantic.update(arrays["label"], logits.argmax(1)[inverse], scenes=1)
    return list(dataset.scenes)


def evaluate_instance_model(model_path: Path, processed: Path, gt_dir: Path, pred_dir: Path, metrics_json: Path,
                            per_class_csv: Path | None, cluster: dict, split: str = "val", device: str = "auto",
                            backend: str | None = None, progress: bool = True) -> dict:
    """Predict ``split``'s instances with an instance model (``cluster``: the clustering's options, as
    ``lgseg.config.cluster_cfg`` gives them), write the benchmark's files into ``pred_dir``, score
    them against ``gt_dir`` (AP, AP50, AP25 overall and per split; per class into ``per_class_csv``)
    and add the semantic head's mIoU, precision and recall per vertex to ``all``."""
    try:
        cluster = ClusterConfig(**cluster)
    except (TypeError, ValueError) as e:
        raise LgsegError(f"params.yaml: insseg.cluster_*: {e}") from None
    device = resolve_device(device)
    net, meta = load_classifier(model_path, device, backend=backend)
    semantic = SegmentationMetrics()
    scenes = predict_instance_split(net, processed, split, meta["voxel_size"], pred_dir, cluster, device, progress,
                                    semantic=semantic)
    result = evaluate_instance_dirs(pred_dir, gt_dir, scenes=scenes, progress=progress)
    head = semantic.summary()["all"]
    return write_instance_metrics(result, metrics_json, per_class_csv, counts=False,
                                  extra={"all": {k: head[k] for k in ("miou", "precision", "recall")}})


def warn_if_radius_splits_voxels(radius: float, voxel_size: float) -> None:
    """Every vertex of a voxel moves by that voxel's one offset, so the shifted vertices of one object
    lie about a voxel apart: a radius well below the voxel size breaks objects into fragments (on the
    demo's 8 cm voxels 0.02 m scored AP50 0.1 on the train scenes, 0.12 m 20.4). A warning, not an
    error: the radius is the user's to choose."""
    if radius < 0.5 * voxel_size:
        log.warning(f"clustering radius {radius:g} m is below half the model's {voxel_size:g} m voxels: instances "
                    f"will break into fragments; try --radius {1.5 * voxel_size:.2g} (1.5 voxels, as the demo's "
                    "insseg.cluster_radius)")
