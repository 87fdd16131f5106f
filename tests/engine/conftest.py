"""A tiny preprocessed synthetic set and a fast training config shared by the engine tests."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from lgseg.scannet.preprocess import preprocess
from lgseg.synthetic import generate
from lgseg.scannet.constants import NUM_CLASSES
from lgseg.text.embed import save_embeddings

TINY_CFG = {
    "model": {"name": "Res16UNet14S", "backend": "minkowski"}, "epochs": 3, "batch_size": 2, "max_points": 10**7, "val_every": 1, "seed": 0,
    "optimizer": {"type": "sgd", "lr": 0.02, "momentum": 0.9, "dampening": 0.1, "weight_decay": 1e-4},
    "scheduler": {"type": "multistep", "milestones": [2], "gamma": 0.5},
    "device": "cpu", "amp": False, "num_workers": 0, "cpu_threads": 1, "voxel_size": 0.1,
    "voxel_point": "random",
    "augment": {"elastic": True, "rotation": True, "scale": True, "flip": True, "auto_contrast": True,
                "color_translation": True, "color_jitter": True, "random_translation": 10},
    "loss": {"type": "ce"},
    "contrastive": {"t_pos": 0.0, "t_neg": 0.6, "neg_weight": 1.0, "num_negatives": 3, "form": "reference"},
}


@pytest.fixture
def tiny_cfg():
    return copy.deepcopy(TINY_CFG)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict:
    """6 synthetic scenes (4 train, 1 val, 1 test) preprocessed, plus random unit text anchors."""
    d = tmp_path_factory.mktemp("engine_data")
    # small rooms without the demo's per-class guarantees: a tiny set the engine tests can overfit
    generate(d / "raw", num_scenes=6, seed=5, progress=False, objects={"train": 16, "val": 16, "test": 8},
             train_min={"head": 0, "common": 0, "tail": 0}, val_min=0)
    preprocess(d / "raw", d / "processed", progress=False)
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(NUM_CLASSES, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    save_embeddings(d / "text", emb, {"encoder": "random", "model": "test", "prompt": "{}"})
    return {"processed": d / "processed", "text": d / "text", "stats": d / "processed" / "stats.json"}


def train_paths(tiny_data: dict, out: Path, **kw):
    from lgseg.engine.launch import TrainPaths

    return TrainPaths(processed=tiny_data["processed"], checkpoint=out / "ckpt" / "state.pt",
                      model=out / "model.pt", curve=out / "curve.csv", **kw)
