"""A folder served over HTTP on 127.0.0.1 (http.server), standing in for a weights host; and a URL on
127.0.0.1 where nothing listens, standing in for an offline machine. Nothing reaches the internet."""

from __future__ import annotations

import contextlib
import functools
import http.server
import socket
import threading
from pathlib import Path


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@contextlib.contextmanager
def serve_folder(root: Path):
    """Base URL (``http://127.0.0.1:PORT``) serving ``root``'s files while the block runs."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def closed_port_url(path: str) -> str:
    """``http://127.0.0.1:PORT/<path>`` on a port where nothing listens: the connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{path}"
