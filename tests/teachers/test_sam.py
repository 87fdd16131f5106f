"""SAM teacher: a random ViT-B SAM (segment-anything's real architecture) saved as the official files are
(``torch.save(state_dict)``), loaded strictly through the teacher, masks turned into an id map.

The generator resizes every image to 1024 on its long side, so one ViT-B encoder pass costs ~18 s
on two CPU cores: the test image is tiny, crop_n_layers=0 (one pass) and the determinism check
reuses that pass's embedding (everything after the encoder runs again).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from segment_anything import sam_model_registry

from lgseg.errors import InputError, LgsegError
from lgseg.teachers import TEACHERS, SamTeacher, index_map

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = {"points_per_side": 3, "crop_n_layers": 0, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0,
        "box_nms_thresh": 1.0, "min_mask_region_area": 20}  # random weights: keep every mask


@pytest.fixture(scope="module")
def sam_file(tmp_path_factory) -> tuple[dict[str, torch.Tensor], Path]:
    torch.manual_seed(0)
    state_dict = sam_model_registry["vit_b"](checkpoint=None).state_dict()
    path = tmp_path_factory.mktemp("sam") / "sam_vit_b_01ec64.pth"
    torch.save(state_dict, path)
    return state_dict, path


def test_defaults_are_bridge3ds_settings(sam_file):
    defaults = {k: p.default for k, p in inspect.signature(SamTeacher).parameters.items()}
    assert {k: defaults[k] for k in ("model", "points_per_side", "pred_iou_thresh", "stability_score_thresh",
                                     "crop_n_layers", "crop_n_points_downscale_factor", "min_mask_region_area")} == {
        "model": "vit_h", "points_per_side": 32, "pred_iou_thresh": 0.86, "stability_score_thresh": 0.92,
        "crop_n_layers": 1, "crop_n_points_downscale_factor": 2, "min_mask_region_area": 100}
    t = TEACHERS.build({"type": "sam", "model": "vit_b", "weights": str(sam_file[1])})
    g = t.generator  # what segment-anything made of them: 32x32 points, then 16x16 in the 4 crops
    assert [grid.shape for grid in g.point_grids] == [(1024, 2), (256, 2)]
    settings = (g.pred_iou_thresh, g.stability_score_thresh, g.crop_n_layers, g.min_mask_region_area)
    assert settings == (0.86, 0.92, 1, 100)


def test_loads_every_tensor_and_makes_an_id_map(sam_file):
    saved, path = sam_file
    t = TEACHERS.build({"type": "sam", "model": "vit_b", "weights": str(path), **FAST})
    assert (t.name, t.model) == ("sam", "vit_b")
    loaded = t.network.state_dict()
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)

    encoder = t.network.image_encoder
    cache = {}
    real_forward = encoder.forward

    def forward_once(x):  # one encoder pass for both runs below
        if "out" not in cache:
            cache["out"] = real_forward(x)
            cache["in"] = x.clone()
        assert torch.equal(x, cache["in"])
        return cache["out"]

    encoder.forward = forward_once
    img = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    records = t.records(img)
    ids = t.masks(img)  # a second run: decoding, filtering, small-region removal, painting
    assert ids.shape == (48, 64) and ids.dtype == np.int32
    expected, kept = index_map(records, (48, 64), "area")
    assert np.array_equal(ids, expected)  # deterministic
    k = len(kept)
    assert 1 <= k <= len(records) and np.array_equal(np.unique(ids), np.arange(ids.min(), k + 1))
    for region, i in enumerate(kept, start=1):  # each id shows part of the mask it stands for
        assert np.all(records[i]["segmentation"][ids == region])


def _record(mask: np.ndarray, iou: float) -> dict:
    return {"segmentation": mask, "area": int(mask.sum()), "predicted_iou": iou}


def test_index_map_paints_small_over_large_or_by_confidence():
    big = np.zeros((4, 6), bool)
    big[:, :4] = True  # area 16
    left, right = np.zeros_like(big), np.zeros_like(big)
    left[:, :2], right[:, 2:4] = True, True  # together they cover big
    corner = np.zeros_like(big)
    corner[0, 5] = True
    records = [_record(big, 0.99), _record(left, 0.5), _record(right, 0.6), _record(corner, 0.1)]

    ids, kept = index_map(records, (4, 6), "area")  # big is painted first and wholly covered: gone
    assert kept == [1, 2, 3] and ids.dtype == np.int32
    assert np.array_equal(ids[:, :2], np.full((4, 2), 1)) and np.array_equal(ids[:, 2:4], np.full((4, 2), 2))
    assert ids[0, 5] == 3 and (ids[1:, 4:] == 0).all() and ids[0, 4] == 0

    ids, kept = index_map(records, (4, 6), "iou")  # the most confident mask wins its pixels
    assert kept == [3, 0] and np.array_equal(ids[:, :4], np.full((4, 4), 2)) and ids[0, 5] == 1
    assert index_map([], (2, 3))[0].tolist() == [[0, 0, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="order must be one of area, iou"):
        index_map(records, (4, 6), "score")


def test_wrong_files_are_refused_in_one_line(sam_file, tmp_path):
    bad = dict(sam_file[0])
    del bad["mask_decoder.iou_prediction_head.layers.2.bias"]
    bad["mask_decoder.extra.weight"] = torch.zeros(3)
    bad["prompt_encoder.no_mask_embed.weight"] = torch.zeros(1, 128)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(InputError) as e:
        SamTeacher("vit_b", weights=tmp_path / "bad.pth")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{tmp_path / 'bad.pth'}: not SAM vit_b weights: ")
    assert "1 tensor missing (mask_decoder.iou_prediction_head.layers.2.bias)" in msg
    assert "1 unexpected (mask_decoder.extra.weight)" in msg
    assert "prompt_encoder.no_mask_embed.weight: [1, 128] in the file, [1, 256] in the model" in msg
    with pytest.raises(InputError, match=r"not SAM vit_l weights: .*tensors missing"):
        SamTeacher("vit_l", weights=sam_file[1])  # a ViT-B file is no ViT-L


def test_a_missing_file_names_the_download_command(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(LgsegError) as e:
        TEACHERS.build({"type": "sam"})
    msg = str(e.value)
    assert "\n" not in msg and "lgseg download-weights sam_vit_h" in msg
    assert msg.startswith(f"{tmp_path / '.cache/lgseg/weights/sam_vit_h_4b8939.pth'}: SAM vit_h weights not found")
    with pytest.raises(LgsegError, match=r"gone\.pth: SAM vit_b weights not found.*download-weights sam_vit_b"):
        SamTeacher("vit_b", weights=tmp_path / "gone.pth")


def test_options_are_checked():
    with pytest.raises(ValueError, match="model must be one of vit_b, vit_l, vit_h"):
        TEACHERS.build({"type": "sam", "model": "vit_t"})
    with pytest.raises(ValueError, match="points_per_side must be an integer >= 1"):
        TEACHERS.build({"type": "sam", "points_per_side": 0})
    with pytest.raises(ValueError, match="teacher.box_threshold is not a key"):
        TEACHERS.build({"type": "sam", "box_threshold": 0.3})
