"""Predictions on whole scenes, mapped from voxels back to every mesh vertex."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from tqdm import tqdm

from lgseg.data import ScanNetDataset, collate
from lgseg.engine.checkpoint import load_model
from lgseg.evaluation.benchmark import evaluate_dirs, write_benchmark_file
from lgseg.evaluation.metrics import write_metrics
from lgseg.scannet.constants import index_to_raw


@torch.no_grad()
def predict_vertices(net: torch.nn.Module, dataset: ScanNetDataset, predict: Callable[[torch.Tensor], torch.Tensor],
                     device: torch.device | str = "cpu", progress: bool = True) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(scene, class index per mesh vertex)``; each vertex takes its voxel's prediction."""
    net.eval()
    for i in tqdm(range(len(dataset)), desc="predict", unit="scene", disable=not progress):
        batch = collate([dataset[i]])
        out = net(batch["coord"].to(device), batch["feat"].to(device))
        voxel_pred = predict(out).cpu().numpy()
        yield batch["scenes"][0], voxel_pred[batch["inverse"][0].numpy()]


def evaluate_model(model_path: Path, processed: Path, gt_dir: Path, pred_dir: Path, metrics_json: Path,
                   per_class_csv: Path, split: str = "val", device: str = "auto", progress: bool = True,
                   confusion_csv: Path | None = None) -> dict:
    """Predict ``split`` with a fine-tuned model, write benchmark files, score them against ``gt_dir``
    (and list the most confused class pairs in ``confusion_csv``)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    net, meta = load_model(model_path, device)
    if meta["num_classes"] is None:
        raise ValueError(f"{model_path} is a pretrained backbone without a classifier; evaluate a fine-tuned model")
    dataset = ScanNetDataset(processed, split, voxel_size=meta["voxel_size"], train=False)
    for scene, pred in predict_vertices(net, dataset, lambda out: out.argmax(1), device, progress):
        write_benchmark_file(Path(pred_dir) / f"{scene}.txt", index_to_raw(pred))
    conf, scenes = evaluate_dirs(pred_dir, gt_dir, scenes=[dataset.scenes[i] for i in range(len(dataset))],
                                 progress=progress)
    stats = Path(processed) / "stats.json"  # train frequencies, for the long-tail view
    counts = json.loads(stats.read_text())["train_points"] if stats.is_file() else None
    return write_metrics(conf, metrics_json, per_class_csv, scenes=scenes, train_points=counts,
                         confusion_csv=confusion_csv)
