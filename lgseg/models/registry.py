"""Build a model from its config, e.g. ``{"name": "Res16UNet34C", "backend": "spconv",
"bn_momentum": 0.02, "block_bn_momentum": 0.1, "init": "minkowski"}`` (``name`` from the
stage's ``model`` key, the rest from params.yaml's ``model`` section).

``feature_dim`` (the text-embedding width D) and ``num_classes`` (None in pre-training) are
run-time context, never cfg keys: they follow from the text encoder and the stage.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from lgseg.registry import Registry
from lgseg.models.res16unet import VARIANTS, Res16UNetBase, SegmentationNet

MODELS = Registry("model")


def _make_builder(cls: type[Res16UNetBase]):
    def builder(backend: str = "minkowski", in_channels: int = 3, conv1_kernel_size: int = 3,
                bn_momentum: float = 0.02, block_bn_momentum: float | None = None, init: str = "kaiming",
                final_relu: bool | None = None, *, feature_dim: int | None = None) -> Res16UNetBase:
        return cls(in_channels=in_channels, feature_dim=feature_dim, conv1_kernel_size=conv1_kernel_size,
                   bn_momentum=bn_momentum, block_bn_momentum=block_bn_momentum, final_relu=final_relu,
                   backend=backend, init=init)
    builder.__doc__ = f"{cls.__name__} backbone ({cls.__doc__})"
    return builder


for _cls in VARIANTS:
    MODELS.register(_cls.__name__)(_make_builder(_cls))


def build_model(cfg: Mapping[str, Any], feature_dim: int | None, num_classes: int | None) -> SegmentationNet:
    """The ``SegmentationNet`` described by ``cfg`` (a ``name`` plus backbone options).

    Raises ValueError for an unknown name (listing the registered ones) or an unknown key.
    """
    if not isinstance(cfg, Mapping) or "name" not in cfg:
        raise ValueError(f"model config must be a mapping with a 'name' key "
                         f"(one of {', '.join(MODELS.keys())}), not {cfg!r}")
    name = cfg["name"]
    if name not in MODELS.keys():
        raise ValueError(f"model.name must be one of {', '.join(MODELS.keys())}, not {name!r}")
    # checked here rather than by Registry.build so the message speaks of 'name', not 'type'
    params = inspect.signature(MODELS.get(name)).parameters.values()
    allowed = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    for key in cfg:
        if key != "name" and key not in allowed:
            raise ValueError(f"model.{key} is not a key of model {name!r}; allowed keys: "
                             f"{', '.join(['name', *allowed])}")
    backbone = MODELS.build({"type": name, **{k: v for k, v in cfg.items() if k != "name"}},
                            feature_dim=feature_dim)
    return SegmentationNet(backbone, num_classes=num_classes, init=cfg.get("init", "kaiming"))
