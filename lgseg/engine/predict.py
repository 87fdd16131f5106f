"""Predictions on whole scenes, mapped from voxels back to every mesh vertex."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from lgseg.data import ScanNetDataset, collate
from lgseg.engine.checkpoint import load_model, place
from lgseg.errors import InputError, LgsegError
from lgseg.evaluation.benchmark import evaluate_dirs, write_benchmark_file
from lgseg.evaluation.folders import SEMANTIC_PRED, claim_predictions
from lgseg.evaluation.metrics import write_metrics
from lgseg.models.res16unet import semantic_logits
from lgseg.fileio import atomic_dir, mark_product
from lgseg.scannet.constants import index_to_raw
from lgseg.scene_io import read_stats, stats_path


def resolve_device(device: str) -> str:
    """``auto``: the GPU when one is visible, else the CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LgsegError(f"device {device!r} requested but no GPU is visible: use --device cpu or auto")
    return device


def load_classifier(path: str | Path, device: str = "cpu", **kwargs) -> tuple[torch.nn.Module, dict]:
    """:func:`load_model` of a network that predicts classes (``kwargs``: backend, model, voxel_size)."""
    net, meta = load_model(path, device, **kwargs)
    if meta["num_classes"] is None:
        raise InputError(path, "a backbone without classifier (pretrained): it predicts no classes",
                         "predict with a fine-tuned model (models/finetune.pt)")
    return net, meta


@torch.no_grad()
def predict_vertices(net: torch.nn.Module, dataset: ScanNetDataset, predict: Callable[[torch.Tensor], torch.Tensor],
                     device: torch.device | str = "cpu", progress: bool = True) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(scene, class index per mesh vertex)``; each vertex takes its voxel's prediction."""
    for scene, out, inverse in voxel_outputs(net, dataset, device, progress):
        yield scene, predict(out).cpu().numpy()[inverse]


def voxel_outputs(net: torch.nn.Module, dataset: ScanNetDataset, device, progress: bool):
    """``(scene, the network's output per voxel, voxel of each mesh vertex)`` for every scene."""
    net.eval()
    for i in tqdm(range(len(dataset)), desc="predict", unit="scene", disable=not progress):
        batch = collate([dataset[i]])
        with torch.no_grad():
            out = net(batch["coord"].to(device), batch["feat"].to(device))
        yield batch["scenes"][0], out, batch["inverse"][0].numpy()


def predict_split(net: torch.nn.Module, processed: str | Path, split: str, voxel_size: float, out_dir: str | Path,
                  device: torch.device | str = "cpu", progress: bool = True, force: bool = False) -> list[str]:
    """Write one benchmark file ``<scene>.txt`` (raw ScanNet id per mesh vertex) per scene of ``split``.

    ``out_dir`` ends up holding exactly these files and the mark that says lgseg wrote them (for the
    test split: the submission, its ``.txt`` files), so a folder holding anything else is refused
    rather than emptied (``claim_predictions``); it appears only once complete. Returns the scenes,
    sorted.
    """
    if getattr(net, "num_classes", None) is None:
        raise LgsegError(f"the {net.arch} has no classifier (a pretrained backbone): predict with a fine-tuned model")
    claim_predictions(out_dir, processed, split, "semantic", force)
    net = place(net, device)
    dataset = ScanNetDataset(processed, split, voxel_size=voxel_size, train=False)
    with atomic_dir(out_dir) as tmp:
        mark_product(tmp, SEMANTIC_PRED)
        for scene, pred in predict_vertices(net, dataset, lambda out: semantic_logits(out).argmax(1), device, progress):
            write_benchmark_file(tmp / f"{scene}.txt", index_to_raw(pred))
    return list(dataset.scenes)


def evaluate_model(model_path: Path, processed: Path, gt_dir: Path, pred_dir: Path, metrics_json: Path,
                   per_class_csv: Path, split: str = "val", device: str = "auto", progress: bool = True,
                   confusion_csv: Path | None = None, backend: str | None = None,
                   counts_json: Path | None = None) -> dict:
    """Predict ``split`` with a fine-tuned model (on ``backend``, default: the one it was trained with),
    write benchmark files, score them against ``gt_dir`` (and list the most confused class pairs in
    ``confusion_csv``; with ``counts_json``, the scenes and points scored go there, not into
    ``metrics_json``)."""
    device = resolve_device(device)
    net, meta = load_classifier(model_path, device, backend=backend)
    scenes = predict_split(net, processed, split, meta["voxel_size"], pred_dir, device, progress)
    conf, n_scenes = evaluate_dirs(pred_dir, gt_dir, scenes=scenes, progress=progress)
    # train frequencies, for the long-tail view
    counts = read_stats(processed)["train_points"] if stats_path(processed).is_file() else None
    return write_metrics(conf, metrics_json, per_class_csv, scenes=n_scenes, train_points=counts,
                         confusion_csv=confusion_csv, counts_json=counts_json)
