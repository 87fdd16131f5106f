"""Segment Anything (SAM) as a mask teacher: automatic masks as one region-id map per image.

The network is segment-anything's ``sam_model_registry[model]`` (``vit_b`` / ``vit_l`` / ``vit_h``),
loaded the way its ``build_sam`` loads ``checkpoint=path`` (``torch.load`` of a plain state dict,
``load_state_dict`` strict), except that the file is read with ``weights_only=True`` and compared
tensor by tensor with the architecture first, so that a wrong file is a one-line error. The
weights are Meta's official checkpoints (``lgseg download-weights sam_vit_h`` etc.).

Masks come from ``SamAutomaticMaskGenerator`` with Bridge3D's settings as defaults
(``Preprocess/sam_mask.py``: points_per_side=32, pred_iou_thresh=0.86, stability_score_thresh=0.92,
crop_n_layers=1, crop_n_points_downscale_factor=2, min_mask_region_area=100 (needs OpenCV); the
other options at segment-anything's defaults), every one overridable. The generator resizes the
image's long side to 1024 (the ViT's input) and, with crop_n_layers=1, encodes it 5 times (the
whole image and 4 crops). Unlike Bridge3D, which passes ``cv2.imread``'s BGR image and writes the
ids into a uint8 array (wrapping past 255 masks), the image is RGB as SAM expects and ids are int32.

Overlaps (:func:`index_map`): ``order="area"`` (default) paints the masks from the largest to the
smallest, so a smaller mask shows over the larger ones it lies in (object parts over objects);
``order="iou"`` paints by increasing predicted IoU, so the most confident mask wins. Ties keep the
generator's order. A mask entirely hidden by others disappears; the visible ones are renumbered
1..K in painting order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lgseg.errors import LgsegError
from lgseg.teachers.registry import TEACHERS, MaskTeacher, check_image
from lgseg.teachers.weights import check_state_dict, read_state_dict, resolve_weights

SAM_MODELS = ("vit_b", "vit_l", "vit_h")
ORDERS = ("area", "iou")


def index_map(records: Sequence[Mapping[str, Any]], shape: tuple[int, int],
              order: str = "area") -> tuple[np.ndarray, list[int]]:
    """SAM's mask records -> ((H, W) int32 ids 0..K, the index in ``records`` of each id 1..K).

    ``records``: SamAutomaticMaskGenerator's output (``segmentation`` a bool (H, W) array, ``area``,
    ``predicted_iou``); see the module docstring for ``order``.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
    if order == "area":
        painting = sorted(range(len(records)), key=lambda i: -int(records[i]["area"]))
    else:
        painting = sorted(range(len(records)), key=lambda i: float(records[i]["predicted_iou"]))
    painted = np.zeros(shape, dtype=np.int32)
    for rank, i in enumerate(painting, start=1):
        seg = np.asarray(records[i]["segmentation"], dtype=bool)
        if seg.shape != tuple(shape):
            raise ValueError(f"mask {i} is {seg.shape}, not the image's {tuple(shape)}")
        painted[seg] = rank
    visible = np.unique(painted[painted > 0])  # painting ranks still showing, ascending
    relabel = np.zeros(len(records) + 1, dtype=np.int32)
    relabel[visible] = np.arange(1, len(visible) + 1, dtype=np.int32)
    return relabel[painted], [painting[r - 1] for r in visible.tolist()]


@TEACHERS.register("sam")
class SamTeacher(MaskTeacher):
    """SAM automatic masks -> (H, W) int32 region ids (0 = no mask), see the module docstring.

    ``weights``: the official checkpoint; None or "" means ``~/.cache/lgseg/weights/<file>``
    (``lgseg download-weights sam_<model>``).
    """

    name = "sam"

    def __init__(self, model: str = "vit_h", weights: str | Path | None = None, points_per_side: int = 32,
                 points_per_batch: int = 64, pred_iou_thresh: float = 0.86, stability_score_thresh: float = 0.92,
                 stability_score_offset: float = 1.0, box_nms_thresh: float = 0.7, crop_n_layers: int = 1,
                 crop_nms_thresh: float = 0.7, crop_overlap_ratio: float = 512 / 1500,
                 crop_n_points_downscale_factor: int = 2, min_mask_region_area: int = 100, order: str = "area",
                 device: str = "cpu") -> None:
        if model not in SAM_MODELS:
            raise ValueError(f"model must be one of {', '.join(SAM_MODELS)}, not {model!r}")
        if order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
        for key, value, low in (("points_per_side", points_per_side, 1), ("points_per_batch", points_per_batch, 1),
                                ("crop_n_layers", crop_n_layers, 0),
                                ("crop_n_points_downscale_factor", crop_n_points_downscale_factor, 1),
                                ("min_mask_region_area", min_mask_region_area, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{key} must be an integer >= {low}, not {value!r}")
        from segment_anything import SamAutomaticMaskGenerator, sam_model_registry

        self.model, self.order = model, order
        self.device = torch.device(device)
        what = f"SAM {model}"
        self.weights_file = resolve_weights(weights, f"sam_{model}", what)
        network = sam_model_registry[model](checkpoint=None)
        state_dict = read_state_dict(self.weights_file, what)
        check_state_dict(self.weights_file, state_dict, network.state_dict(), what)
        network.load_state_dict(state_dict, strict=True)
        self.network = network.eval().to(self.device)
        self.network.requires_grad_(False)
        try:
            self.generator = SamAutomaticMaskGenerator(
                self.network, points_per_side=int(points_per_side), points_per_batch=int(points_per_batch),
                pred_iou_thresh=float(pred_iou_thresh), stability_score_thresh=float(stability_score_thresh),
                stability_score_offset=float(stability_score_offset), box_nms_thresh=float(box_nms_thresh),
                crop_n_layers=int(crop_n_layers), crop_nms_thresh=float(crop_nms_thresh),
                crop_overlap_ratio=float(crop_overlap_ratio),
                crop_n_points_downscale_factor=int(crop_n_points_downscale_factor),
                min_mask_region_area=int(min_mask_region_area))
        except ImportError as e:
            raise LgsegError(f"SAM's min_mask_region_area > 0 needs OpenCV ({e.name!r}): pip install "
                             "opencv-python-headless, or set min_mask_region_area: 0") from e

    def records(self, image: np.ndarray) -> list[dict[str, Any]]:
        """SamAutomaticMaskGenerator's mask records for ``image`` (H, W, 3) uint8 RGB."""
        return self.generator.generate(check_image(image))

    def masks(self, image: np.ndarray) -> np.ndarray:
        """(H, W) int32: 0 where no mask is, else the id 1..K of the mask showing there."""
        image = check_image(image)
        return index_map(self.records(image), image.shape[:2], self.order)[0]
