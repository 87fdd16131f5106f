"""2D teachers: image-model features and masks that the 3D network is distilled from.

``build_teacher({"type": "clip" | "dino" | "sam", **options})`` -> a :class:`FeatureTeacher`
(``features(image)`` -> (h, w, dim) float32) or a :class:`MaskTeacher` (``masks(image)`` -> (H, W)
int32 ids). Weights are local files only: ``lgseg download-clip MODEL`` for CLIP,
``lgseg download-weights NAME`` (:mod:`lgseg.teachers.weights`) for SAM and DINO. timm and
segment-anything are imported only when such a teacher is built. The demo's own teacher,
``lseg_demo`` (:mod:`lgseg.teachers.lseg_demo`), is the file the teacher stage trains.
"""

from collections.abc import Mapping
from typing import Any

from lgseg.teachers import clip_image, dino, sam  # noqa: F401 - registers the teachers
from lgseg.teachers.clip_image import ClipImageTeacher
from lgseg.teachers.dino import DinoTeacher
from lgseg.teachers.registry import TEACHERS, FeatureTeacher, MaskTeacher, check_image
from lgseg.teachers.sam import SamTeacher, index_map
from lgseg.teachers.weights import WEIGHTS, Weight, download_weights, weights_path


def build_teacher(cfg: Mapping[str, Any], demo_weights=None):
    """The teacher ``cfg`` describes: a ``TEACHERS`` cfg, or params.yaml's ``teacher`` section (its
    ``type`` and that type's subsection of options). ``lseg_demo`` loads ``demo_weights`` (the teacher
    stage's models/teacher.pt; its subsection holds that stage's training options)."""
    kind = cfg.get("type")
    if kind == "lseg_demo":
        from lgseg.teachers.lseg_demo import DemoTeacher, load_teacher

        if demo_weights is None:
            raise ValueError("the lseg_demo teacher needs the teacher stage's model file (demo_weights)")
        return DemoTeacher(*load_teacher(demo_weights))
    if isinstance(cfg.get(kind), Mapping):  # params.yaml's teacher section
        cfg = {"type": kind, **{k: v for k, v in cfg[kind].items() if v != "" or k != "weights"}}
    return TEACHERS.build(cfg)


__all__ = [
    "TEACHERS", "WEIGHTS", "ClipImageTeacher", "DinoTeacher", "FeatureTeacher", "MaskTeacher", "SamTeacher",
    "Weight", "build_teacher", "check_image", "download_weights", "index_map", "weights_path",
]
