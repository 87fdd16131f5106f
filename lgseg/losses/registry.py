"""The ``LOSSES`` registry, e.g. ``LOSSES.build({"type": "cb_focal", "gamma": 2.0}, class_counts=...)``.

Each loss type is registered next to its class (focal.py: ce, focal, cb_focal; contrastive.py;
supcon.py; csc.py; offset.py), its builder's arguments the type's params keys. The generic
``Registry`` lives in ``lgseg.registry``; params.yaml's section becomes a cfg, and a loss, in
``lgseg.config`` (``loss_cfg``, ``build_loss``): the registry knows nothing of params.yaml.
"""

from __future__ import annotations

from lgseg.registry import Registry

LOSSES = Registry("loss")
