"""The teachers' weights catalogue and download_weights: SHA-256 checks, unverified files, atomic writes.

A small file served by http.server on 127.0.0.1 stands in for a checkpoint; a catalogue passed to
download_weights points at it. Nothing here reaches the internet.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from file_server import closed_port_url, serve_folder

from lgseg.errors import LgsegError
from lgseg.teachers import TEACHERS, WEIGHTS, Weight, download_weights, weights_path
from lgseg.teachers.weights import WEIGHTS_CACHE, catalogue_name

PAYLOAD = b"not really SAM weights, but bytes with a known hash\n" * 1000
GOOD = hashlib.sha256(PAYLOAD).hexdigest()
WRONG = hashlib.sha256(b"something else").hexdigest()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    (root / "ckpt.pth").write_bytes(PAYLOAD)
    with serve_folder(root) as url:
        yield url



def entry(url: str, sha256: str | None, size: int | None = None) -> dict[str, Weight]:
    return {"sam_vit_b": Weight(url, "sam_vit_b_01ec64.pth", sha256, size, {"type": "sam", "model": "vit_b"})}


def test_the_catalogue_lists_the_official_files():
    sam = {"sam_vit_b": ("sam_vit_b_01ec64.pth", "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912"),
           "sam_vit_l": ("sam_vit_l_0b3195.pth", "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622"),
           "sam_vit_h": ("sam_vit_h_4b8939.pth", "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e")}
    for name, (file, sha) in sam.items():
        w = WEIGHTS[name]
        assert (w.url, w.filename, w.sha256) == (f"https://dl.fbaipublicfiles.com/segment_anything/{file}", file, sha)
        assert w.teacher == {"type": "sam", "model": name[4:]} and w.size > 300_000_000
    dino = {"dino_vitb8": ("dino/dino_vitbase8_pretrain/dino_vitbase8_pretrain.pth", "vit_base_patch8_224.dino"),
            "dino_vitb16": ("dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth", "vit_base_patch16_224.dino"),
            "dinov2_vitb14": ("dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth", "vit_base_patch14_dinov2.lvd142m"),
            "dinov2_vitl14": ("dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth", "vit_large_patch14_dinov2.lvd142m")}
    for name, (tail, model) in dino.items():
        w = WEIGHTS[name]
        assert w.url == f"https://dl.fbaipublicfiles.com/{tail}" and w.filename == tail.rsplit("/", 1)[1]
        assert w.sha256 is None and w.teacher == {"type": "dino", "model": model}
        assert catalogue_name("dino", model) == name
    for name, w in WEIGHTS.items():  # every teacher cfg is one the registry accepts
        assert w.url.endswith("/" + w.filename)
        assert set(w.teacher) - {"type"} <= set(TEACHERS.cfg_keys(w.teacher["type"]))
        assert w.teacher_cfg("/x.pth") == {**w.teacher, "weights": "/x.pth"}
    assert weights_path("sam_vit_h") == Path(WEIGHTS_CACHE).expanduser() / "sam_vit_h_4b8939.pth"
    assert weights_path("dino_vitb8", "/data/w") == Path("/data/w/dino_vitbase8_pretrain.pth")
    with pytest.raises(LgsegError, match=r"unknown teacher weights 'sam_vit_x'; known: sam_vit_b, .*download-clip"):
        weights_path("sam_vit_x")


def test_a_good_hash_puts_the_file_in_place(server, tmp_path):
    cat = entry(f"{server}/ckpt.pth", GOOD, len(PAYLOAD))
    got = download_weights("sam_vit_b", tmp_path / "w", progress=False, catalogue=cat)
    assert got == (tmp_path / "w" / "sam_vit_b_01ec64.pth", True, GOOD, True)
    assert got.path.read_bytes() == PAYLOAD and [p.name for p in got.path.parent.iterdir()] == [got.path.name]
    assert download_weights("sam_vit_b", tmp_path / "w", progress=False, catalogue=cat) == (got.path, False, GOOD, True)
    got.path.write_bytes(PAYLOAD[:10])  # a damaged copy is replaced
    assert download_weights("sam_vit_b", tmp_path / "w", progress=False, catalogue=cat).fetched
    assert got.path.read_bytes() == PAYLOAD


def test_a_wrong_hash_is_an_error_and_leaves_no_file(server, tmp_path):
    (tmp_path / "sam_vit_b_01ec64.pth").write_bytes(b"old")
    with pytest.raises(LgsegError) as e:
        download_weights("sam_vit_b", tmp_path, progress=False, catalogue=entry(f"{server}/ckpt.pth", WRONG))
    msg = str(e.value)
    assert "\n" not in msg and f"SHA-256 {GOOD}, not the published {WRONG}" in msg and "nothing was written" in msg
    assert [p.name for p in tmp_path.iterdir()] == ["sam_vit_b_01ec64.pth"]
    assert (tmp_path / "sam_vit_b_01ec64.pth").read_bytes() == b"old"  # the old file, no temporary beside it


def test_no_published_hash_is_refused_unless_accepted(server, tmp_path):
    cat = entry(f"{server}/ckpt.pth", None)
    with pytest.raises(LgsegError) as e:
        download_weights("sam_vit_b", tmp_path, progress=False, catalogue=cat)
    msg = str(e.value)
    assert "\n" not in msg and "no SHA-256 is published" in msg and "--no-checksum" in msg
    assert "nothing was downloaded" in msg and list(tmp_path.iterdir()) == []
    got = download_weights("sam_vit_b", tmp_path, progress=False, catalogue=cat, allow_unverified=True)
    assert got == (tmp_path / "sam_vit_b_01ec64.pth", True, GOOD, False) and got.path.read_bytes() == PAYLOAD
    again = download_weights("sam_vit_b", tmp_path, progress=False, catalogue=cat, allow_unverified=True)
    assert again == (got.path, False, GOOD, False)  # kept as it is, its SHA-256 reported
    with pytest.raises(LgsegError, match="no SHA-256 is published for https:"):  # the real DINO entries
        download_weights("dino_vitb8", tmp_path, progress=False)


def test_http_errors_and_offline_are_one_line(server, tmp_path):
    with pytest.raises(LgsegError, match="HTTP 404") as e:
        download_weights("sam_vit_b", tmp_path, progress=False, catalogue=entry(f"{server}/none.pth", GOOD))
    assert "\n" not in str(e.value) and list(tmp_path.iterdir()) == []
    url = closed_port_url("ckpt.pth")
    with pytest.raises(LgsegError) as e:
        download_weights("sam_vit_b", tmp_path / "w", timeout=5, progress=False, catalogue=entry(url, GOOD))
    msg = str(e.value)
    assert "\n" not in msg and url in msg and "no connection" in msg and "lgseg download-weights sam_vit_b" in msg
    assert not (tmp_path / "w").exists()
    with pytest.raises(LgsegError, match="unknown teacher weights 'clip'"):
        download_weights("clip", tmp_path)
