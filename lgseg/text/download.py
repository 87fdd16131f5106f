"""Fetch OpenAI's published CLIP weights into ``~/.cache/clip/``, where ``load_clip_weights`` looks.

The URLs are the openai-clip package's own table (``_MODELS`` in ``clip/clip.py``). That module
cannot be imported here (``import clip`` needs ``pkg_resources`` and torchvision), so the table is
read from its source as data: parsed and evaluated as a literal, nothing of the module is run.
As in the package, the second-to-last component of each URL is the file's SHA-256. The file is
fetched by ``lgseg.fetch.fetch_file``: renamed into place only when the hash matches, so an
interrupted, failed or altered download leaves no file behind.
"""

from __future__ import annotations

import ast
import logging
import os
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from lgseg.errors import LgsegError
from lgseg.fetch import fetch_file, file_sha256
from lgseg.text.clip_text import CLIP_CACHE, clip_package_dir

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"[0-9a-f]{64}")


def clip_urls() -> dict[str, str]:
    """Model name -> download URL, as the installed openai-clip package lists them."""
    path = clip_package_dir() / "clip.py"
    try:
        tree = ast.parse(path.read_text(), str(path))
    except (OSError, SyntaxError) as e:
        raise LgsegError(f"{path}: cannot read the openai-clip package's URL table ({e}); reinstall the package") from e
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_MODELS" for t in node.targets):
            try:
                table = ast.literal_eval(node.value)
            except ValueError:
                break
            if isinstance(table, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in table.items()):
                return table
            break
    raise LgsegError(f"{path}: holds no _MODELS table of literal URLs; this openai-clip version is not one lgseg "
                     "knows (1.0.1 is)")


def expected_sha256(url: str) -> str:
    """The SHA-256 a CLIP URL names: its second-to-last path component, as ``clip._download`` reads it."""
    parts = urllib.parse.urlparse(url).path.split("/")
    digest = parts[-2] if len(parts) >= 2 else ""
    if not _SHA256.fullmatch(digest):
        raise LgsegError(f"{url}: the URL names no SHA-256 (expected 64 hex digits before the file name)")
    return digest


def download_clip(model: str = "ViT-B/32", directory: str | Path | None = None,
                  urls: Mapping[str, str] | None = None, timeout: float = 30.0,
                  progress: bool = True) -> tuple[Path, bool]:
    """Download CLIP ``model``'s weights into ``directory`` (default ``~/.cache/clip``) and check
    their SHA-256. Returns the file and whether it was fetched (False: a file with the right hash
    was there already). ``urls`` replaces the package's table (tests). Errors are one line."""
    urls = clip_urls() if urls is None else urls
    if model not in urls:
        raise LgsegError(f"unknown CLIP model {model!r}; known: {', '.join(urls)}")
    url = urls[model]
    digest = expected_sha256(url)
    folder = Path(os.path.expanduser(str(directory if directory is not None else CLIP_CACHE)))
    target = folder / os.path.basename(urllib.parse.urlparse(url).path)
    if target.exists() or target.is_symlink():
        if not target.is_file():
            raise LgsegError(f"{target}: exists and is not a regular file; move it away and run again")
        if file_sha256(target) == digest:
            return target, False
        log.warning("%s exists but its SHA-256 is not %s: downloading it again", target, digest)

    fix = (f"On a machine with internet run `lgseg download-clip {model}` and copy {target.name} from its "
           f"{CLIP_CACHE}/ into {folder}/ here, or set text.clip_weights to the file")
    fetch_file(url, target, f"CLIP {model} weights", fix, sha256=digest, sha256_from="URL's", timeout=timeout,
               progress=progress)
    return target, True

