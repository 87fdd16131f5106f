import os

import pytest

from lgseg.errors import InputError
from lgseg.scannet.link import expected_files, link_scannet
from lgseg.scannet.layout import LABELS_TSV


@pytest.fixture
def fake_scannet(tmp_path):
    """A ScanNet v2 root with (empty) files for every official scene: 1201+312 annotated, 100 test."""
    root = tmp_path / "scannet"
    for files in expected_files(root).values():
        for f in files:
            f.parent.mkdir(parents=True, exist_ok=True)
            f.touch()
    (root / LABELS_TSV).write_text("id\traw_category\n")
    return root


def test_links_every_file_without_copying(fake_scannet, tmp_path):
    n = link_scannet(fake_scannet, tmp_path / "raw")
    assert n == 1 + (1201 + 312) * 4 + 100 * 2
    link = tmp_path / "raw/scans/scene0191_00/scene0191_00_vh_clean_2.ply"
    assert link.is_symlink() and os.readlink(link) == str(fake_scannet / "scans/scene0191_00/scene0191_00_vh_clean_2.ply")
    assert (tmp_path / "raw/scans_test/scene0707_00/scene0707_00.txt").is_symlink()
    assert len((tmp_path / "raw/scannetv2_val.txt").read_text().split()) == 312


def test_a_scenes_rgbd_stream_and_2d_projections_are_linked_where_the_download_has_them(fake_scannet, tmp_path):
    scene = fake_scannet / "scans/scene0191_00"
    for name in ("scene0191_00.sens", "scene0191_00_2d-label-filt.zip", "scene0191_00_2d-instance-filt.zip"):
        (scene / name).touch()
    (fake_scannet / "scans_test/scene0707_00/scene0707_00.sens").touch()
    assert link_scannet(fake_scannet, tmp_path / "raw") == 1 + (1201 + 312) * 4 + 100 * 2 + 4
    assert (tmp_path / "raw/scans/scene0191_00/scene0191_00.sens").is_symlink()
    assert (tmp_path / "raw/scans/scene0191_00/scene0191_00_2d-label-filt.zip").is_symlink()
    assert (tmp_path / "raw/scans_test/scene0707_00/scene0707_00.sens").is_symlink()
    assert not (tmp_path / "raw/scans/scene0011_00/scene0011_00.sens").exists()  # a scene without one has none


def test_missing_files_are_listed_and_nothing_written(fake_scannet, tmp_path):
    (fake_scannet / "scans/scene0568_00/scene0568_00.aggregation.json").unlink()
    (fake_scannet / "scans_test/scene0707_00/scene0707_00_vh_clean_2.ply").unlink()
    with pytest.raises(InputError) as e:
        link_scannet(fake_scannet, tmp_path / "raw")
    msg = str(e.value)
    assert "2 of 6253 required files are missing" in msg
    assert "scene0568_00.aggregation.json" in msg and "scene0707_00_vh_clean_2.ply" in msg
    assert not (tmp_path / "raw").exists()


def test_missing_root(tmp_path):
    with pytest.raises(InputError, match="ScanNet root does not exist.*data.scannet_root"):
        link_scannet(tmp_path / "nope", tmp_path / "raw")
