"""The 2D teachers' published weights: a catalogue, a checked downloader and the file loaders share.

``WEIGHTS`` names each official checkpoint (URL, file name, SHA-256 where one is published, size,
and the teacher cfg that reads it). ``download_weights(name)`` fetches one into
``~/.cache/lgseg/weights/`` through ``lgseg.fetch.fetch_file``, as ``download-clip`` fetches CLIP's:
renamed into place only when complete and, where a SHA-256 is known, matching; an interrupted or
failed download leaves no file behind. Meta
publishes no SHA-256 for the DINO / DINOv2 files: those are refused unless the caller accepts an
unverified file (``allow_unverified``; the CLI's ``--no-checksum``), and the SHA-256 computed is
always returned so that it can be recorded.

Teachers never download: a missing file is a one-line error naming ``lgseg download-weights
NAME``. Checkpoints are data, never code: they are read with ``torch.load(weights_only=True)``
(:func:`read_state_dict`) and compared tensor by tensor with the architecture they are loaded into
(:func:`check_state_dict`) before ``load_state_dict(strict=True)``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch

from lgseg.errors import InputError, LgsegError
from lgseg.fetch import fetch_file, file_sha256

log = logging.getLogger(__name__)

WEIGHTS_CACHE = "~/.cache/lgseg/weights"  # default folder of download_weights and the teachers


@dataclass(frozen=True)
class Weight:
    """One published checkpoint: where it is, what it hashes to, which teacher reads it.

    ``sha256`` is None where the publisher gives none; ``size`` is the file's length in bytes
    where known (None: unknown); ``teacher`` is the teacher cfg (without ``weights``) that loads it.
    """

    url: str
    filename: str
    sha256: str | None
    size: int | None
    teacher: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def teacher_cfg(self, path: str | Path) -> dict[str, Any]:
        """The cfg of the teacher that reads this checkpoint from ``path``."""
        return {**self.teacher, "weights": str(path)}


_SAM = "https://dl.fbaipublicfiles.com/segment_anything/"
_DINO = "https://dl.fbaipublicfiles.com/dino/"
_DINOV2 = "https://dl.fbaipublicfiles.com/dinov2/"

WEIGHTS: dict[str, Weight] = {
    # Segment Anything (Kirillov et al. 2023); SHA-256 and sizes as published with the files
    "sam_vit_b": Weight(_SAM + "sam_vit_b_01ec64.pth", "sam_vit_b_01ec64.pth",
                        "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", 375_042_383,
                        {"type": "sam", "model": "vit_b"}, "SAM ViT-B"),
    "sam_vit_l": Weight(_SAM + "sam_vit_l_0b3195.pth", "sam_vit_l_0b3195.pth",
                        "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622", 1_249_524_607,
                        {"type": "sam", "model": "vit_l"}, "SAM ViT-L"),
    "sam_vit_h": Weight(_SAM + "sam_vit_h_4b8939.pth", "sam_vit_h_4b8939.pth",
                        "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", 2_564_550_879,
                        {"type": "sam", "model": "vit_h"}, "SAM ViT-H (Bridge3D's masks)"),
    # DINO v1 (Caron et al. 2021), backbone-only files; no SHA-256 or size is published
    "dino_vits16": Weight(_DINO + "dino_deitsmall16_pretrain/dino_deitsmall16_pretrain.pth",
                          "dino_deitsmall16_pretrain.pth", None, None,
                          {"type": "dino", "model": "vit_small_patch16_224.dino"}, "DINO ViT-S/16"),
    "dino_vits8": Weight(_DINO + "dino_deitsmall8_pretrain/dino_deitsmall8_pretrain.pth",
                         "dino_deitsmall8_pretrain.pth", None, None,
                         {"type": "dino", "model": "vit_small_patch8_224.dino"}, "DINO ViT-S/8"),
    "dino_vitb16": Weight(_DINO + "dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth",
                          "dino_vitbase16_pretrain.pth", None, None,
                          {"type": "dino", "model": "vit_base_patch16_224.dino"}, "DINO ViT-B/16"),
    "dino_vitb8": Weight(_DINO + "dino_vitbase8_pretrain/dino_vitbase8_pretrain.pth",
                         "dino_vitbase8_pretrain.pth", None, None,
                         {"type": "dino", "model": "vit_base_patch8_224.dino"}, "DINO ViT-B/8 (3D-OVS's FDA)"),
    # DINOv2 (Oquab et al. 2023), backbone-only files; no SHA-256 or size is published
    "dinov2_vits14": Weight(_DINOV2 + "dinov2_vits14/dinov2_vits14_pretrain.pth", "dinov2_vits14_pretrain.pth",
                            None, None, {"type": "dino", "model": "vit_small_patch14_dinov2.lvd142m"},
                            "DINOv2 ViT-S/14"),
    "dinov2_vitb14": Weight(_DINOV2 + "dinov2_vitb14/dinov2_vitb14_pretrain.pth", "dinov2_vitb14_pretrain.pth",
                            None, None, {"type": "dino", "model": "vit_base_patch14_dinov2.lvd142m"},
                            "DINOv2 ViT-B/14"),
    "dinov2_vitl14": Weight(_DINOV2 + "dinov2_vitl14/dinov2_vitl14_pretrain.pth", "dinov2_vitl14_pretrain.pth",
                            None, None, {"type": "dino", "model": "vit_large_patch14_dinov2.lvd142m"},
                            "DINOv2 ViT-L/14 (Bridge3D's image features)"),
}


def _entry(name: str, catalogue: Mapping[str, Weight] | None = None) -> Weight:
    catalogue = WEIGHTS if catalogue is None else catalogue
    if name not in catalogue:
        raise LgsegError(f"unknown teacher weights {name!r}; known: {', '.join(catalogue)} "
                         "(CLIP's are fetched by `lgseg download-clip MODEL`)")
    return catalogue[name]


def weights_path(name: str, directory: str | Path | None = None) -> Path:
    """Where checkpoint ``name`` lives: ``directory`` (default ``~/.cache/lgseg/weights``)/<file>."""
    folder = Path(os.path.expanduser(str(directory if directory is not None else WEIGHTS_CACHE)))
    return folder / _entry(name).filename


def catalogue_name(teacher_type: str, model: str) -> str | None:
    """The catalogue entry whose teacher is ``{"type": teacher_type, "model": model}``, if any."""
    for name, w in WEIGHTS.items():
        if w.teacher.get("type") == teacher_type and w.teacher.get("model") == model:
            return name
    return None


def how_to_get(name: str | None, option: str = "weights") -> str:
    """The fix of a missing-weights error: the download command, or where a file goes."""
    if name is None:
        return f"Set the teacher's {option} option to a local copy of the official checkpoint"
    w = WEIGHTS[name]
    return (f"Run `lgseg download-weights {name}` on a machine with internet: it writes {WEIGHTS_CACHE}/"
            f"{w.filename} ({w.url}); on one without, copy that file from one into {WEIGHTS_CACHE}/ here, or set "
            f"the teacher's {option} option to its path")


def resolve_weights(weights: str | Path | None, name: str | None, what: str) -> Path:
    """The checkpoint a teacher reads: ``weights`` if given, else catalogue entry ``name``'s default
    file. A missing file is a one-line LgsegError naming the file and ``lgseg download-weights NAME``."""
    if weights is None or str(weights) == "":
        if name is None:
            raise LgsegError(f"{what}: no weights file given and none in lgseg's catalogue for this model; "
                             "set the teacher's weights option to a local copy of the official checkpoint")
        path = weights_path(name)
    else:
        path = Path(os.path.expanduser(str(weights)))
    if not path.is_file():
        where = "is not a file" if path.exists() else "not found"
        raise LgsegError(f"{path}: {what} weights {where}; teachers never download them. {how_to_get(name)}")
    return path


# ---- reading checkpoints: data only, compared with the architecture before loading -----------

def read_state_dict(path: str | Path, what: str, fix: str = "") -> dict[str, Any]:
    """The top-level mapping of a ``torch.save`` checkpoint, read with ``weights_only=True``: a file
    whose pickle names code is refused unrun (see :mod:`lgseg.engine.checkpoint`)."""
    from lgseg.engine.checkpoint import load_data_only

    path = Path(path)
    obj = load_data_only(path, "cpu", fix or f"replace it with the official {what} checkpoint")
    if not isinstance(obj, Mapping):
        raise InputError(path, f"holds a {type(obj).__name__}, not a state dict of {what} weights",
                         fix or f"replace it with the official {what} checkpoint")
    return dict(obj)


def _names(keys: list[str], limit: int = 3) -> str:
    return ", ".join(keys[:limit]) + (", ..." if len(keys) > limit else "")


def _shape(t: Any) -> str:
    return str(list(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__


def check_state_dict(path: str | Path, state_dict: Mapping[str, Any], expected: Mapping[str, torch.Tensor],
                     what: str, fix: str = "") -> None:
    """Refuse ``state_dict`` unless it has exactly ``expected``'s tensors with ``expected``'s shapes:
    a one-line InputError naming the file and what did not match (missing, unexpected, shapes)."""
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong = [k for k in expected if k in state_dict
             and (not isinstance(state_dict[k], torch.Tensor) or state_dict[k].shape != expected[k].shape)]
    problems = []
    if missing:
        problems.append(f"{len(missing)} tensor{'s' * (len(missing) > 1)} missing ({_names(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected ({_names(unexpected)})")
    if wrong:
        shown = ", ".join(f"{k}: {_shape(state_dict[k])} in the file, {_shape(expected[k])} in the model"
                          for k in wrong[:3])
        problems.append(f"{len(wrong)} of another shape ({shown}{', ...' if len(wrong) > 3 else ''})")
    if problems:
        raise InputError(path, f"not {what} weights: {'; '.join(problems)}",
                         fix or "check that the file and the teacher's model option belong together")


# ---- downloading ------------------------------------------------------------------------------

class Downloaded(NamedTuple):
    path: Path  # the checkpoint, in place
    fetched: bool  # False: the file was there already (and matched the SHA-256, where one is known)
    sha256: str  # the SHA-256 computed from the file's bytes
    verified: bool  # whether it was checked against a published SHA-256


def download_weights(name: str, directory: str | Path | None = None, timeout: float = 30.0,
                     allow_unverified: bool = False, progress: bool = True,
                     catalogue: Mapping[str, Weight] | None = None) -> Downloaded:
    """Download checkpoint ``name`` into ``directory`` (default ``~/.cache/lgseg/weights``).

    A published SHA-256 is checked and a file with another one is never put in place; without a
    published SHA-256 this refuses unless ``allow_unverified``. A file already there is kept when it
    matches (or, unverified, as it is). Returns the file, whether it was fetched, its computed
    SHA-256 and whether that was verified. ``catalogue`` replaces ``WEIGHTS`` (tests). Errors are
    one line.
    """
    entry = _entry(name, catalogue)
    folder = Path(os.path.expanduser(str(directory if directory is not None else WEIGHTS_CACHE)))
    target = folder / entry.filename
    if entry.sha256 is None and not allow_unverified:
        raise LgsegError(f"{name}: no SHA-256 is published for {entry.url}, so its download cannot be verified; "
                         f"nothing was downloaded. Run `lgseg download-weights {name} --no-checksum` to accept it "
                         "unverified (the SHA-256 it computes is printed: compare it with a trusted copy's)")
    if target.exists() or target.is_symlink():
        if not target.is_file():
            raise LgsegError(f"{target}: exists and is not a regular file; move it away and run again")
        digest = file_sha256(target)
        if entry.sha256 is None:
            return Downloaded(target, False, digest, False)
        if digest == entry.sha256:
            return Downloaded(target, False, digest, True)
        log.warning("%s exists but its SHA-256 is %s, not %s: downloading it again", target, digest, entry.sha256)

    fix = (f"On a machine with internet run `lgseg download-weights {name}` and copy {entry.filename} from its "
           f"{WEIGHTS_CACHE}/ into {folder}/ here, or set the teacher's weights option to the file")
    digest = fetch_file(entry.url, target, f"{name} weights", fix, sha256=entry.sha256, size=entry.size,
                        timeout=timeout, progress=progress)
    if entry.sha256 is None:
        log.warning("%s: no published SHA-256 to check; the file's SHA-256 is %s", target, digest)
    return Downloaded(target, True, digest, entry.sha256 is not None)
