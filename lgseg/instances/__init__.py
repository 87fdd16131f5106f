"""3D instance segmentation: clustering of shifted points into instance proposals."""

from lgseg.instances.cluster import (
    DUAL_SET_NMS_IOU,
    ClusterConfig,
    Proposals,
    cluster_instances,
    mask_nms,
    radius_components,
)

__all__ = [
    "DUAL_SET_NMS_IOU",
    "ClusterConfig",
    "Proposals",
    "cluster_instances",
    "mask_nms",
    "radius_components",
]
