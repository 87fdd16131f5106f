"""lgseg.query: per-vertex cosine similarity to a text, and the errors for mismatched models."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lgseg.data import ScanNetDataset, collate
from lgseg.engine.checkpoint import save_model
from lgseg.errors import LgsegError
from lgseg.models import build_model
from lgseg.query import query_scores
from lgseg.scannet.preprocess import preprocess
from lgseg.synthetic import generate
from lgseg.config import build_text_encoder
from lgseg.text.embed import embedding_meta

VOXEL = 0.1


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Preprocessed synthetic scenes and an (untrained) pretrain-kind model in the sentence encoder's space."""
    d = tmp_path_factory.mktemp("query")
    generate(d / "raw", num_scenes=3, seed=2, progress=False)
    preprocess(d / "raw", d / "processed", progress=False)
    encoder = build_text_encoder({"encoder": "sentence"})
    torch.manual_seed(0)
    net = build_model({"name": "Res16UNet14S"}, feature_dim=encoder.dim, num_classes=None).eval()
    meta = {"kind": "pretrain", "model": {"name": "Res16UNet14S"}, "feature_dim": encoder.dim, "num_classes": None,
            "text": embedding_meta(encoder), "voxel_size": VOXEL, "epochs": 0, "steps": 0}
    save_model(d / "pretrain.pt", net, meta)
    finetuned = build_model({"name": "Res16UNet14S"}, feature_dim=None, num_classes=200)
    save_model(d / "finetune.pt", finetuned, {**meta, "kind": "finetune", "feature_dim": None, "num_classes": 200})
    save_model(d / "narrow.pt", build_model({"name": "Res16UNet14S"}, feature_dim=16, num_classes=None),
               {**meta, "feature_dim": 16})
    scene = sorted(p.name for p in (d / "processed/val").iterdir())[0]
    return {"dir": d, "net": net, "encoder": encoder, "scene": scene}


def test_scores_are_the_cosine_of_each_vertex_feature_and_the_text(setup):
    d, scene = setup["dir"], setup["scene"]
    scores = query_scores(d / "pretrain.pt", d / "processed", scene, "fire extinguisher")
    item = ScanNetDataset(d / "processed", "val", voxel_size=VOXEL, scenes=[scene])[0]
    batch = collate([item])
    with torch.no_grad():
        feats = F.normalize(setup["net"](batch["coord"], batch["feat"]), dim=1)
    text = F.normalize(torch.from_numpy(setup["encoder"].encode(["fire extinguisher"])), dim=1)[0]
    expected = (feats @ text).numpy()[item["inverse"]]
    assert scores.shape == (item["num_points"],) and np.allclose(scores, expected, atol=1e-5)
    assert -1 <= scores.min() <= scores.max() <= 1


def test_words_outside_the_200_classes_work(setup):
    d, scene = setup["dir"], setup["scene"]
    a = query_scores(d / "pretrain.pt", d / "processed", scene, "a cup of espresso")
    b = query_scores(d / "pretrain.pt", d / "processed", scene, "chair")
    assert np.isfinite(a).all() and not np.allclose(a, b)


def test_mismatched_models_and_encoders_are_clear_errors(setup):
    d, scene = setup["dir"], setup["scene"]
    with pytest.raises(LgsegError, match="a finetune model; text queries need the language-grounded backbone"):
        query_scores(d / "finetune.pt", d / "processed", scene, "chair")
    with pytest.raises(LgsegError, match=r"trained towards the 'sentence' text encoder .* 384-d.*'clip'"):
        query_scores(d / "pretrain.pt", d / "processed", scene, "chair", encoder="clip")
    with pytest.raises(LgsegError, match="features are 16-d but the text embedding is 384-d"):
        query_scores(d / "narrow.pt", d / "processed", scene, "chair")
    with pytest.raises(LgsegError, match="no preprocessed scene 'scene9999_00'"):
        query_scores(d / "pretrain.pt", d / "processed", "scene9999_00", "chair")
