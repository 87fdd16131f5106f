"""lgseg.fetch.fetch_file, the one downloader: a file appears only complete and matching, every error is
one line naming the URL, and nothing is left behind on failure."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest
from file_server import closed_port_url, serve_folder

from lgseg.errors import LgsegError, one_line
from lgseg.fetch import fetch_file, file_sha256

PAYLOAD = bytes(range(256)) * 5000  # 1.28 MB: more than one read chunk
GOOD = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    (root / "w.pt").write_bytes(PAYLOAD)
    with serve_folder(root) as url:
        yield url


def test_a_file_is_fetched_hashed_and_put_in_place(server, tmp_path):
    target = tmp_path / "sub" / "w.pt"
    assert fetch_file(f"{server}/w.pt", target, "test weights", "fix", sha256=GOOD, size=len(PAYLOAD),
                      progress=False) == GOOD
    assert target.read_bytes() == PAYLOAD and file_sha256(target) == GOOD
    assert sorted(p.name for p in target.parent.iterdir()) == ["w.pt"]  # no temporary left


@pytest.mark.parametrize("sha256, size, words", [
    ("0" * 64, None, f"have SHA-256 {GOOD}, not the published {'0' * 64}"),
    (None, 999, f"{len(PAYLOAD):,} bytes downloaded, not the 999 published"),
])
def test_a_file_that_does_not_match_is_never_put_in_place(server, tmp_path, sha256, size, words):
    target = tmp_path / "w.pt"
    target.write_bytes(b"the previous version")
    with pytest.raises(LgsegError) as e:
        fetch_file(f"{server}/w.pt", target, "test weights", "fix", sha256=sha256, size=size, progress=False)
    msg = str(e.value)
    assert words in msg and f"nothing was written to {target}" in msg and "\n" not in msg
    assert target.read_bytes() == b"the previous version" and len(list(tmp_path.iterdir())) == 1


def test_offline_and_http_errors_are_one_line_with_the_fix(server, tmp_path):
    with pytest.raises(LgsegError, match=r"cannot download test weights from .*: no connection \(.*refused.*\); "
                                         r"is this machine offline\? copy it by hand$"):
        fetch_file(closed_port_url("w.pt"), tmp_path / "w.pt", "test weights", "copy it by hand", progress=False)
    with pytest.raises(LgsegError, match=r"the server answered HTTP 404 File not found\. copy it by hand$"):
        fetch_file(f"{server}/none.pt", tmp_path / "w.pt", "test weights", "copy it by hand", progress=False)
    assert list(tmp_path.iterdir()) == []


class _Short(http.server.BaseHTTPRequestHandler):
    """Announces 1000 bytes, sends 10 and closes: a download that breaks off."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"0123456789")

    def log_message(self, *args):
        pass


def test_a_download_that_breaks_off_leaves_nothing(tmp_path):
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Short)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(LgsegError, match=r"stopped after 10 of the 1,000 bytes the server announced; "
                                             r"nothing was written to .*w\.pt\. Run again$"):
            fetch_file(f"http://127.0.0.1:{httpd.server_address[1]}/w.pt", tmp_path / "w.pt", "test weights", "fix",
                       progress=False)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert list(tmp_path.iterdir()) == []


def test_one_line_names_an_exceptions_type_and_joins_its_lines():
    assert one_line(OSError("disk\n  full")) == "OSError: disk full"
    assert one_line("a\tb\n c") == "a b c"
