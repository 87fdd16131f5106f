"""Build a model from its config, e.g. ``{"name": "Res16UNet34C", "backend": "spconv",
"bn_momentum": 0.02, "block_bn_momentum": 0.1, "init": "minkowski"}`` (``name`` from the
stage's ``model`` key, the rest from params.yaml's ``model`` section).

``feature_dim`` (the text-embedding width D), ``num_classes`` (None in pre-training) and
``offsets`` (the instance variant's offset head) are run-time context, never cfg keys: they follow
from the text encoder and the stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lgseg.registry import Registry
from lgseg.models.res16unet import VARIANTS, InstanceSegmentationNet, Res16UNetBase, SegmentationNet

MODELS = Registry("model", type_key="name")


def _make_builder(cls: type[Res16UNetBase]):
    def builder(backend: str = "minkowski", in_channels: int = 3, conv1_kernel_size: int = 3,
                bn_momentum: float = 0.02, block_bn_momentum: float | None = None, init: str = "kaiming",
                final_relu: bool | None = None, *, feature_dim: int | None = None,
                num_classes: int | None = None, offsets: bool = False) -> SegmentationNet:
        backbone = cls(in_channels=in_channels, feature_dim=feature_dim, conv1_kernel_size=conv1_kernel_size,
                       bn_momentum=bn_momentum, block_bn_momentum=block_bn_momentum, final_relu=final_relu,
                       backend=backend, init=init)
        if offsets:
            return InstanceSegmentationNet(backbone, num_classes=num_classes, init=init, bn_momentum=bn_momentum)
        return SegmentationNet(backbone, num_classes=num_classes, init=init)
    builder.__doc__ = (f"{cls.__name__} ({cls.__doc__}) with its classifier when ``num_classes`` is given, "
                       "and with the offset head too when ``offsets``")
    return builder


for _cls in VARIANTS:
    MODELS.register(_cls.__name__)(_make_builder(_cls))


def build_model(cfg: Mapping[str, Any], feature_dim: int | None, num_classes: int | None,
                offsets: bool = False) -> SegmentationNet:
    """The ``SegmentationNet`` described by ``cfg`` (a ``name`` plus backbone options); with
    ``offsets``, its instance variant (``InstanceSegmentationNet``).

    Raises ValueError for an unknown name (listing the registered ones) or an unknown key.
    """
    return MODELS.build(cfg, feature_dim=feature_dim, num_classes=num_classes, offsets=offsets)
