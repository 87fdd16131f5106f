"""lgseg download-clip: the openai-clip package's URL table, the SHA-256 check, atomic writes, offline errors.

A small file served by http.server on 127.0.0.1 stands in for the weights; its URL names its
SHA-256 (or a wrong one) as OpenAI's URLs do.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
from file_server import closed_port_url, serve_folder

from lgseg.cli import main
from lgseg.errors import LgsegError
from lgseg.text import download
from lgseg.text.clip_text import CLIP_FILES
from lgseg.text.download import clip_urls, download_clip, expected_sha256

PAYLOAD = b"not really CLIP weights, but bytes with a known hash\n" * 1000
GOOD = hashlib.sha256(PAYLOAD).hexdigest()
WRONG = hashlib.sha256(b"something else").hexdigest()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Base URL of a server whose /<sha>/ViT-B-32.pt is PAYLOAD, for the right and a wrong sha."""
    root = tmp_path_factory.mktemp("www")
    for digest in (GOOD, WRONG):
        (root / digest).mkdir()
        (root / digest / "ViT-B-32.pt").write_bytes(PAYLOAD)
    with serve_folder(root) as url:
        yield url



def test_the_package_url_table_is_read_without_importing_clip():
    urls = clip_urls()
    assert {name: url.rsplit("/", 1)[1] for name, url in urls.items()} == CLIP_FILES
    assert all(url.startswith("https://openaipublic.azureedge.net/clip/models/") for url in urls.values())
    assert expected_sha256(urls["ViT-B/32"]) == "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"
    assert "clip.clip" not in sys.modules  # parsed, not run (it would need pkg_resources)
    with pytest.raises(LgsegError, match="names no SHA-256"):
        expected_sha256("https://example.org/models/ViT-B-32.pt")


def test_good_hash_puts_the_file_in_place(server, tmp_path):
    urls = {"ViT-B/32": f"{server}/{GOOD}/ViT-B-32.pt"}
    path, fetched = download_clip("ViT-B/32", tmp_path / "cache", urls=urls, progress=False)
    assert path == tmp_path / "cache" / "ViT-B-32.pt" and fetched
    assert path.read_bytes() == PAYLOAD
    assert [p.name for p in path.parent.iterdir()] == ["ViT-B-32.pt"]  # no temporary left
    assert download_clip("ViT-B/32", tmp_path / "cache", urls=urls, progress=False) == (path, False)


def test_a_file_with_the_wrong_hash_is_replaced(server, tmp_path):
    (tmp_path / "ViT-B-32.pt").write_bytes(PAYLOAD[:100])  # e.g. a half copy
    path, fetched = download_clip("ViT-B/32", tmp_path, urls={"ViT-B/32": f"{server}/{GOOD}/ViT-B-32.pt"},
                                  progress=False)
    assert fetched and path.read_bytes() == PAYLOAD


def test_bad_hash_is_an_error_and_leaves_no_file(server, tmp_path):
    url = f"{server}/{WRONG}/ViT-B-32.pt"
    with pytest.raises(LgsegError) as e:
        download_clip("ViT-B/32", tmp_path / "cache", urls={"ViT-B/32": url}, progress=False)
    msg = str(e.value)
    assert url in msg and f"SHA-256 {GOOD}" in msg and WRONG in msg and "nothing was written" in msg
    assert "\n" not in msg
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").iterdir()) == []


def test_an_existing_good_file_survives_a_bad_download(server, tmp_path):
    (tmp_path / "ViT-B-32.pt").write_bytes(b"old")
    with pytest.raises(LgsegError, match="SHA-256"):
        download_clip("ViT-B/32", tmp_path, urls={"ViT-B/32": f"{server}/{WRONG}/ViT-B-32.pt"}, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["ViT-B-32.pt"] and (tmp_path / "ViT-B-32.pt").read_bytes() == b"old"


def test_http_errors_and_unknown_models_are_named(server, tmp_path):
    url = f"{server}/{GOOD}/ViT-L-14.pt"  # not served: 404
    with pytest.raises(LgsegError, match=r"HTTP 404") as e:
        download_clip("ViT-L/14", tmp_path, urls={"ViT-L/14": url}, progress=False)
    assert url in str(e.value) and list(tmp_path.iterdir()) == []
    with pytest.raises(LgsegError, match=r"unknown CLIP model 'ViT-X'.*ViT-B/32"):
        download_clip("ViT-X", tmp_path)


def test_offline_the_error_is_one_line_naming_the_url_and_what_to_do(tmp_path):
    url = closed_port_url(f"{GOOD}/ViT-B-32.pt")
    with pytest.raises(LgsegError) as e:
        download_clip("ViT-B/32", tmp_path / "cache", urls={"ViT-B/32": url}, timeout=5, progress=False)
    msg = str(e.value)
    assert "\n" not in msg and url in msg and "no connection" in msg
    assert "lgseg download-clip ViT-B/32" in msg and "text.clip_weights" in msg
    assert not (tmp_path / "cache").exists()


def test_the_command_offline_and_online(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(download, "clip_urls", lambda: {"ViT-B/32": closed_port_url(f"{GOOD}/ViT-B-32.pt")})
    assert main(["download-clip", "ViT-B/32", "--dir", str(tmp_path), "--timeout", "5"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lgseg download-clip: error: cannot download CLIP ViT-B/32")
    monkeypatch.setattr(download, "clip_urls", lambda: {"ViT-B/32": f"{server}/{GOOD}/ViT-B-32.pt"})
    assert main(["download-clip", "--dir", str(tmp_path)]) == 0  # ViT-B/32 is the default
    assert capsys.readouterr().out == f"wrote {tmp_path / 'ViT-B-32.pt'} (SHA-256 checked)\n"
    assert Path(tmp_path / "ViT-B-32.pt").read_bytes() == PAYLOAD
