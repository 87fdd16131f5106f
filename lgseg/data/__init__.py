"""Data: voxelization, augmentations, the ScanNet200 dataset and batch collation.

The names below are imported on first use (PEP 562): importing one submodule, such as the instance
bank's for ``lgseg preprocess``, must not import torch (collate, dataset) or scipy (transforms).
"""

import importlib
import sys
import types

# full module names: tests/test_dvc_deps.py reads them as the imports they are
_WHERE = {
    "CollateFn": "lgseg.data.collate", "collate": "lgseg.data.collate", "ScanNetDataset": "lgseg.data.dataset",
    "VoxelResult": "lgseg.data.voxelize", "voxelize": "lgseg.data.voxelize", **{name: "lgseg.data.transforms" for name in (
        "TRANSFORMS", "ChromaticAutoContrast", "ChromaticJitter", "ChromaticTranslation", "Compose",
        "ElasticDistortion", "NormalizeColor", "RandomHorizontalFlip", "RandomRotation", "RandomScale",
        "build_transforms")},
}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)


class _Package(types.ModuleType):
    """``collate`` and ``voxelize`` name functions, as they did when imported eagerly: the import system
    binds each loaded submodule to its name in the package, which would put the modules there."""

    def __setattr__(self, name: str, value) -> None:
        if not (isinstance(value, types.ModuleType) and _WHERE.get(name) == f"{__name__}.{name}"):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


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
