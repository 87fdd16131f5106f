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
from lgseg.engine.predict import load_classifier, refuse_product, resolve_device, voxel_outputs
from lgseg.errors import InputError, LgsegError
from lgseg.evaluation.instance_ap import evaluate_instance_dirs, write_instance_metrics
from lgseg.evaluation.instance_files import PRED_MASK_DIR, write_instance_prediction
from lgseg.evaluation.metrics import SegmentationMetrics
from lgseg.fileio import atomic_dir, check_not_an_input
from lgseg.instances import ClusterConfig, cluster_instances
from lgseg.models.res16unet import InstanceSegmentationNet
from lgseg.scannet.constants import index_to_raw

log = logging.getLogger(__name__)


def predict_instance_split(net: torch.nn.Module, processed: str | Path, split: str, voxel_size: float,
                           out_dir: str | Path, cluster: ClusterConfig, device: torch.device | str = "cpu",
                           progress: bool = True, semantic: SegmentationMetrics | None = None) -> list[str]:
    """Write the instance benchmark's prediction files of every scene of ``split`` into ``out_dir``
    (``<scene>.txt`` listing ``pred_mask/<scene>_<k>.txt <raw id> <confidence>``): each mesh vertex takes
    its voxel's logits and offset, and the shifted vertices are clustered (``lgseg.instances``).
    ``out_dir`` ends up holding exactly these files (for test: the submission); it appears only once
    complete. With ``semantic``, the semantic head's vertex predictions are scored into it too.
    Returns the scenes, sorted."""
    if not isinstance(net, InstanceSegmentationNet):
        raise LgsegError(f"the {net.arch} model has no offset head: predict instances with an instance model "
                         "(models/insseg.pt, from the insseg-finetune stage)")
    warn_if_radius_splits_voxels(cluster.radius, voxel_size)
    net = place(net, device)
    dataset = ScanNetDataset(processed, split, voxel_size=voxel_size, train=False)
    out_dir = Path(out_dir)
    check_not_an_input(out_dir, [processed])
    _check_instance_out_dir(out_dir, dataset.scenes, split)
    with atomic_dir(out_dir) as tmp:
        (tmp / PRED_MASK_DIR).mkdir()
        for scene, out, inverse in voxel_outputs(net, dataset, device, progress):
            logits, offsets = out["logits"].float().cpu().numpy(), out["offsets"].float().cpu().numpy()
            arrays = dataset.load_scene(scene)
            found = cluster_instances(np.asarray(arrays["coord"]), offsets[inverse], logits[inverse], cluster)
            write_instance_prediction(tmp, scene, found.dense(), index_to_raw(found.labels), found.scores)
            if semantic is not None:
                semantic.update(arrays["label"], logits.argmax(1)[inverse], scenes=1)
    return list(dataset.scenes)


def _check_instance_out_dir(out_dir: Path, scenes: list[str], split: str) -> None:
    """Refuse a folder holding anything but an earlier instance prediction of this split
    (``<scene>.txt`` files and the ``pred_mask/`` folder of their masks)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "not a folder", "pass a folder for the instance predictions")
    if not out_dir.is_dir():
        return
    refuse_product(out_dir)
    entries = {p.name: p for p in out_dir.iterdir()}
    ours = {f"{s}.txt" for s in scenes}
    others = sorted(n for n, p in entries.items() if not ((n in ours and p.is_file())
                                                         or (n == PRED_MASK_DIR and p.is_dir())))
    if entries and PRED_MASK_DIR not in entries:
        others = others or sorted(entries)[:3]
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise InputError(out_dir, f"holds entries other than the {split} split's instance predictions ({shown})",
                         "pass a new or empty folder: it must end up holding exactly the split's instance "
                         "predictions")


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
