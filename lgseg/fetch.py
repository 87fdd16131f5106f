"""Stream a URL into a file, hashed on the way: the one downloader behind ``lgseg download-clip`` and
``lgseg download-weights``.

The bytes go to a temporary beside the target (``atomic_file``) and are renamed into place only when
the download is complete and matches what is published (SHA-256, size), so an interrupted, failed or
altered download leaves no file behind. Every error is one line naming the URL and the fix.
"""

from __future__ import annotations

import hashlib
import http.client
import urllib.error
import urllib.request
from pathlib import Path

from lgseg.errors import LgsegError, one_line
from lgseg.fileio import atomic_file

CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def fetch_file(url: str, target: Path, what: str, fix: str, sha256: str | None = None,
               sha256_from: str = "published", size: int | None = None, timeout: float = 30.0,
               progress: bool = True) -> str:
    """Download ``url`` to ``target``; returns the SHA-256 of the bytes written. ``what`` names the file
    in errors ("CLIP ViT-B/32 weights"), ``fix`` says how to get it another way; ``sha256`` and
    ``size``, where known, must match (``sha256_from`` says whose the hash is: "published", "the
    URL's")."""
    try:
        source = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise LgsegError(f"cannot download {what} from {url}: the server answered HTTP {e.code} "
                         f"{one_line(e.reason)}. {fix}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = e.reason if isinstance(e, urllib.error.URLError) else e
        raise LgsegError(f"cannot download {what} from {url}: no connection ({one_line(reason)}); "
                         f"is this machine offline? {fix}") from None
    nothing = f"nothing was written to {target}"
    with source:
        length = source.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        got = 0
        try:
            with atomic_file(target, "wb") as out:
                h = hashlib.sha256()
                with _bar(progress, length or size, target.name) as bar:
                    while chunk := source.read(CHUNK):
                        h.update(chunk)
                        out.write(chunk)
                        got += len(chunk)
                        bar.update(len(chunk))
                digest = h.hexdigest()
                if length is not None and got != length:
                    raise LgsegError(f"{url}: the download stopped after {got:,} of the {length:,} bytes the "
                                     f"server announced; {nothing}. Run again")
                if sha256 is not None and digest != sha256:
                    raise LgsegError(f"{url}: the {got:,} bytes downloaded have SHA-256 {digest}, not the "
                                     f"{sha256_from} {sha256}; {nothing}. Run again; if it persists, something "
                                     "between here and the server alters the file")
                if size is not None and got != size:
                    raise LgsegError(f"{url}: {got:,} bytes downloaded, not the {size:,} published; {nothing}. "
                                     "Run again")
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as e:
            raise LgsegError(f"{url}: the download broke off after {got:,} bytes ({one_line(e)}); {nothing}. "
                             "Run again") from None
    return digest


def _bar(progress: bool, total: int | None, name: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024, disable=not progress)
