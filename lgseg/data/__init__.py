"""Data: voxelization, augmentations, the ScanNet200 dataset and batch collation."""

from lgseg.data.collate import CollateFn, collate
from lgseg.data.dataset import ScanNetDataset
from lgseg.data.transforms import (
    TRANSFORMS,
    ChromaticAutoContrast,
    ChromaticJitter,
    ChromaticTranslation,
    Compose,
    ElasticDistortion,
    NormalizeColor,
    RandomHorizontalFlip,
    RandomRotation,
    RandomScale,
    build_transforms,
)
from lgseg.data.voxelize import VoxelResult, voxelize

__all__ = [
    "TRANSFORMS",
    "ChromaticAutoContrast",
    "ChromaticJitter",
    "ChromaticTranslation",
    "CollateFn",
    "Compose",
    "ElasticDistortion",
    "NormalizeColor",
    "RandomHorizontalFlip",
    "RandomRotation",
    "RandomScale",
    "ScanNetDataset",
    "VoxelResult",
    "build_transforms",
    "collate",
    "voxelize",
]
