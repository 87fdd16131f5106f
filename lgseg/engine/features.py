"""A pretrained backbone's features on a class-balanced sample of val voxels (the paper's Fig. 7):
the sample is drawn from the voxel labels alone (``lgseg.evaluation.feature_space.balanced_sample``),
so every model of a comparison is read on the same voxels; the scores and the t-SNE come from
``lgseg.evaluation.feature_space``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from lgseg.data import ScanNetDataset, collate
from lgseg.engine.checkpoint import load_model
from lgseg.evaluation.feature_space import balanced_sample, structure_scores, tsne
from lgseg.fileio import atomic_file, write_json
from lgseg.scannet.constants import CLASS_NAMES, CLASS_SPLIT

TSNE_COLUMNS = ("x", "y", "class", "name", "split", "scene")


@torch.no_grad()
def sampled_features(net: torch.nn.Module, dataset: ScanNetDataset, picks: list[np.ndarray], device="cpu",
                     progress: bool = True) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The network's output features at ``picks[i]`` (voxel indices) of every scene i of ``dataset``:
    ``(feats (n, D) float32, labels (n,), scene of each row)``; scenes without picks are not run."""
    net.eval()
    feats, labels, scenes = [], [], []
    for i in tqdm([i for i, p in enumerate(picks) if len(p)], desc="features", unit="scene", disable=not progress):
        batch = collate([dataset[i]])
        out = net(batch["coord"].to(device), batch["feat"].to(device))
        index = torch.as_tensor(picks[i], dtype=torch.long)
        feats.append(out[index.to(out.device)].float().cpu().numpy())
        labels.append(batch["label"][index].numpy())
        scenes += [batch["scenes"][0]] * len(index)
    if not feats:
        raise ValueError("no labelled voxel to sample in the split")
    return np.concatenate(feats), np.concatenate(labels), scenes


def feature_space(model_path: str | Path, processed: str | Path, metrics_json: str | Path, tsne_csv: str | Path,
                  counts_json: str | Path, split: str = "val", per_group: int = 600, seed: int = 0, k: int = 10,
                  perplexity: float = 30.0, device: str = "cpu", progress: bool = True) -> dict:
    """Score the feature space of the pretrained model at ``model_path`` on ``per_group`` voxels per
    class group of ``split`` (at the model's voxel size) and write the scores (``metrics_json``: k-NN
    accuracy and silhouette), what they were computed on (``counts_json``: k, samples, classes,
    feature width) and the t-SNE points (``tsne_csv``: x, y, class index, name, class group, scene
    per sampled voxel). Returns scores and counts."""
    net, meta = load_model(model_path, device)
    dataset = ScanNetDataset(processed, split, voxel_size=meta["voxel_size"], train=False)
    labels = [dataset[i]["label"] for i in range(len(dataset))]  # voxelization alone: no network yet
    picks = balanced_sample(labels, per_group, seed)
    feats, classes, scenes = sampled_features(net, dataset, picks, device, progress)
    scores = structure_scores(feats, classes, k)
    xy = tsne(feats, perplexity, seed)
    headline = {key: scores[key] for key in ("knn_accuracy", "silhouette")}
    write_json(metrics_json, headline)
    write_json(counts_json, {**{k_: v for k_, v in scores.items() if k_ not in headline},
                             "feature_dim": int(feats.shape[1])})
    with atomic_file(tsne_csv) as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(TSNE_COLUMNS)
        for (x, y), c, scene in zip(xy.tolist(), classes.tolist(), scenes):
            writer.writerow([f"{x:.3f}", f"{y:.3f}", c, CLASS_NAMES[c], CLASS_SPLIT[c], scene])
    return scores
