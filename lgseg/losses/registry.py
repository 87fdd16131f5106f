"""The ``LOSSES`` registry, e.g. ``LOSSES.build({"type": "cb_focal", "gamma": 2.0}, class_counts=...)``.

Each loss type is registered next to its class (focal.py: ce, focal, cb_focal; contrastive.py;
supcon.py), its builder's arguments the type's params keys. The generic ``Registry`` lives in
``lgseg.registry``; params.yaml's section becomes a cfg in ``lgseg.config.loss_cfg``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lgseg.config import loss_cfg
from lgseg.registry import Registry

LOSSES = Registry("loss")


def build_loss(cfg: Mapping[str, Any], class_counts: Sequence[int] | None = None):
    """The loss of params.yaml's ``loss`` section (or a ``LOSSES`` cfg); ``class_counts`` is needed by
    "cb_focal". The section keeps the other types' options (``gamma`` when the type is ``ce``):
    ``lgseg.config.loss_cfg`` drops them; a key that no loss type takes is still an error.
    """
    return LOSSES.build(loss_cfg(cfg), class_counts=class_counts)
