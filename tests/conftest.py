"""Shared fixtures. tests/ is on sys.path (pytest's rootdir conftest), so helpers import by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scannet_files import tsv_text, write_scene


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: with 2 shared cores, extra torch/BLAS threads only wait on each other
    (modules that use it: ``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_raw(tmp_path) -> Path:
    """Three annotated scenes (2 train, 1 val) and one test scene, with a known labelling.

    scene0000_00 vertices (segments): 0,1 (seg 10) chair; 2 (seg 20) 'sofa' -> couch via alias;
    3 (seg 30) 'ceiling' (id 12, not one of the 200); 4 (seg 40) 'mystery' (not in tsv);
    5 (seg 50) in no group; 6,7 (seg 60) first 'chair' then overwritten by a later 'table' group.
    """
    root = tmp_path / "raw"
    root.mkdir()
    rows = [(1, "wall"), (2, "chair"), (3, "floor"), (4, "table"), (6, "couch"), (6, "sofa"),
            (12, "ceiling"), (4, "chair "), (2, "chair")]  # 'chair' repeated: the first row (id 2) wins
    (root / "scannetv2-labels.combined.tsv").write_text(tsv_text(rows))
    coord = np.arange(24, dtype=np.float32).reshape(8, 3)
    seg = [10, 10, 20, 30, 40, 50, 60, 60]
    groups = [(0, "chair", [10, 60]), (1, "sofa", [20]), (2, "ceiling", [30]), (3, "mystery", [40]),
              (4, "table", [60])]
    write_scene(root, "scene0000_00", coord, seg, groups)
    write_scene(root, "scene0001_00", coord[:4], [1, 1, 2, 2], [(0, "wall", [1]), (1, "floor", [2])])
    write_scene(root, "scene0002_00", coord[:4], [5, 5, 6, 6], [(0, "chair", [5]), (7, "table", [6])])
    write_scene(root, "scene0003_00", coord[:5], None, None, sub="scans_test")
    for split, scenes in {"train": ["scene0000_00", "scene0001_00"], "val": ["scene0002_00"],
                          "test": ["scene0003_00"]}.items():
        (root / f"scannetv2_{split}.txt").write_text("\n".join(scenes) + "\n")
    return root
