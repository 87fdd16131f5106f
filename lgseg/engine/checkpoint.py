"""Checkpoints are data, never code: written atomically, read with ``weights_only=True``."""

from __future__ import annotations

import logging
import pickle
import random
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from lgseg.data.voxelize import check_voxel_size
from lgseg.errors import InputError, LgsegError
from lgseg.fileio import atomic_file
from lgseg.models.weights import transfer_weights

log = logging.getLogger(__name__)


def save_checkpoint(path: str | Path, state: dict) -> None:
    """torch.save through :func:`lgseg.fileio.atomic_file`: a crash never leaves half a checkpoint, a
    full disk is a one-line :class:`lgseg.fileio.DiskFullError` and the previous checkpoint stays.
    Weights that are not finite are never written (the previous checkpoint stays)."""
    weights = state.get("state_dict", state.get("model"))
    bad = first_non_finite(weights) if isinstance(weights, Mapping) else None
    if bad is not None:
        raise NonFiniteWeightsError(f"{path}: not written: tensor {bad} of the network holds NaN or infinite "
                                    "values (the run diverged); its previous version, if any, is kept. Lower "
                                    "the learning rate and run again")
    with atomic_file(path, "wb") as f:
        torch.save(state, f)


class NonFiniteWeightsError(LgsegError):
    """The network's weights became NaN or inf: nothing is saved, the last good checkpoint stays."""


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """A training-state checkpoint of this package (resume)."""
    return load_data_only(path, map_location, fix="delete it to start over, or point to a checkpoint written by lgseg")


def load_data_only(path: str | Path, map_location: str | torch.device, fix: str):
    """``torch.load(weights_only=True)``: a file whose pickle names anything but data is refused, unrun.

    torch's own allow-list already covers every type a PyTorch Lightning 1.6 checkpoint holds
    (tensors, plain containers, ``collections.Counter`` of MultiStepLR's milestones), so nothing
    is added to it.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found", "run the stage that writes it first, or check the path")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        unsafe = _unsafe_globals(path) or _GLOBAL.findall(str(e))
        if unsafe:
            raise InputError(path, f"refused: its pickle names code ({', '.join(unsafe[:5])}), so it is not a "
                             "plain-data checkpoint; it will not be loaded and nothing it names was run",
                             fix) from None
        raise InputError(path, "cannot load checkpoint (not a torch.save file, or damaged)", fix) from None
    except Exception as e:  # noqa: BLE001 - any other reading problem means a bad file
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise InputError(path, f"cannot load checkpoint ({type(e).__name__}: {first_line})", fix) from None


# torch's refusal names the global also for its legacy (non-zip) format, which cannot be listed
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def _unsafe_globals(path: Path) -> list[str]:
    """The globals a checkpoint's pickle names beyond the allow-list (read, never called)."""
    try:
        return torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # noqa: BLE001 - not a zip checkpoint: nothing to list
        return []


def rng_state() -> dict:
    """Every RNG the training loop touches, in types that weights_only loading accepts."""
    np_state = np.random.get_state()
    state = {"python": list(random.getstate()[1]), "python_pos": random.getstate()[2],
             "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)), "numpy_pos": int(np_state[2]),
             "numpy_gauss": [int(np_state[3]), float(np_state[4])],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate((3, tuple(state["python"]), state["python_pos"]))
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"],
                        *state["numpy_gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save_model(path: str | Path, net: torch.nn.Module, meta: dict) -> None:
    """Final weights plus what rebuilds the network (``meta``: model cfg, widths, text encoder)."""
    save_checkpoint(path, {"state_dict": net.state_dict(), "meta": meta})


_WEIGHTS_FIX = "pass an lgseg model file (models/*.pt), a PyTorch Lightning .ckpt or a torch state dict"


def read_weights(path: str | Path) -> tuple[dict, dict | None]:
    """``(state_dict, meta)`` of an lgseg model file, or ``(state_dict, None)`` of a checkpoint that does
    not record how to rebuild its network: the authors' Lightning ``.ckpt`` or a plain state dict."""
    obj = load_data_only(path, "cpu", fix=_WEIGHTS_FIX)
    if not isinstance(obj, Mapping):
        raise InputError(path, f"holds a {type(obj).__name__}, not model weights", _WEIGHTS_FIX)
    if isinstance(obj.get("state_dict"), Mapping):  # lgseg (with meta) or PyTorch Lightning (without)
        meta = obj.get("meta")
        return _finite(path, dict(obj["state_dict"])), (dict(meta) if isinstance(meta, Mapping) else None)
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return _finite(path, dict(obj)), None
    if isinstance(obj.get("model"), Mapping) and "optimizer" in obj:
        raise InputError(path, "a training-state checkpoint (for resuming), not a model",
                         "pass the model file its stage wrote (models/pretrain.pt or models/finetune.pt)")
    raise InputError(path, "holds no model weights (no 'state_dict' and not a state dict)", _WEIGHTS_FIX)


def first_non_finite(state: Mapping) -> str | None:
    """The name of the first floating-point tensor of ``state`` holding NaN or inf, else None."""
    for name, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            return name
    return None


def _finite(path, state: dict) -> dict:
    """``state``, refused when a tensor is not finite: such weights (a diverged run's) predict one class
    everywhere, confidently."""
    bad = first_non_finite(state)
    if bad is not None:
        raise InputError(path, f"tensor {bad} holds NaN or infinite values (weights of a diverged run?); they "
                         "would predict nonsense", "retrain it (a lower learning rate), or pass another checkpoint")
    return state


def load_model(path: str | Path, device: str | torch.device = "cpu", backend: str | None = None,
               model: str | None = None, voxel_size: float | None = None):
    """Rebuild a network with all its weights from ``path``; returns ``(net, meta)``.

    An lgseg model file rebuilds itself from its meta (``backend`` overrides its engine; ``model``
    and ``voxel_size``, if given, must agree with it). A checkpoint without meta (the authors')
    needs ``model`` and ``voxel_size``; its class count comes from the classifier's kernel (none:
    a backbone), and every tensor of the network must be in it, since half-random weights would
    predict garbage silently.
    """
    state, meta = read_weights(path)
    if meta is not None:
        net, meta = _from_lgseg_file(path, state, meta, backend, model, voxel_size)
    else:
        net, meta = _from_bare_checkpoint(path, state, backend, model, voxel_size)
    return place(net, device), meta


def place(net: torch.nn.Module, device: str | torch.device) -> torch.nn.Module:
    """``net`` on ``device``, or a one-line error where its sparse-conv engine cannot run there."""
    net.backbone.backend.check_device(torch.device(device))
    return net.to(device)


def _from_lgseg_file(path, state: dict, meta: dict, backend, model, voxel_size):
    cfg = dict(meta["model"])
    if model is not None and model != cfg["name"]:
        raise InputError(path, f"a {cfg['name']} model, not {model}",
                         "leave --model out: lgseg model files record their architecture")
    try:
        check_voxel_size(meta.get("voxel_size"))
    except ValueError as e:
        raise InputError(path, f"records an unusable voxel size: {e}",
                         "the file is damaged or not lgseg's: run its stage again") from None
    if voxel_size is not None and float(voxel_size) != float(meta["voxel_size"]):
        raise InputError(path, f"trained at voxel size {meta['voxel_size']}, not {voxel_size}",
                         "leave --voxel-size out: lgseg model files record their voxel size")
    if backend is not None:
        cfg["backend"] = backend
    net = _build(path, cfg, meta["feature_dim"], meta["num_classes"], offsets=meta.get("task") == "instance")
    _transfer(path, net, state, fix="the file is damaged or from another lgseg version: run its stage again")
    return net, {**meta, "model": cfg}


def _from_bare_checkpoint(path, state: dict, backend, model, voxel_size):
    if model is None or voxel_size is None:
        raise InputError(path, "the checkpoint does not record its architecture and voxel size",
                         "pass --model NAME --voxel-size V (e.g. --model Res16UNet34C --voxel-size 0.02 "
                         "for the authors' checkpoints)")
    cfg = {"name": model, "backend": backend or "minkowski"}
    num_classes = _kernel_width(state, ("final.kernel", "classifier.kernel"))
    feature_dim = _kernel_width(state, ("projection.0.kernel",))
    net = _build(path, cfg, feature_dim, num_classes)
    _transfer(path, net, state, fix="pass the --model the checkpoint was trained as")
    meta = {"kind": "external", "model": cfg, "feature_dim": net.feature_dim, "num_classes": num_classes,
            "voxel_size": float(voxel_size), "text": None}
    return net, meta


def _build(path, cfg: dict, feature_dim: int | None, num_classes: int | None, offsets: bool = False):
    from lgseg.models import build_model

    try:
        return build_model(cfg, feature_dim=feature_dim, num_classes=num_classes, offsets=offsets)
    except ValueError as e:
        raise InputError(path, f"cannot build its network: {e}", "pass a --model/--backend named above") from None


def _kernel_width(state: Mapping, suffixes: tuple[str, ...]) -> int | None:
    """Output width of the 1x1 conv whose kernel key ends with one of ``suffixes`` (None: no such conv)."""
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and key.endswith(suffixes) and value.ndim >= 2:
            return int(value.shape[-1])  # canonical kernel layout: (Cin, Cout) or (k^3, Cin, Cout)
    return None


def _transfer(path, net: torch.nn.Module, state: Mapping, fix: str) -> None:
    """Load ``state`` into ``net``; every tensor that shapes the output must come from it (BN step
    counters aside, which only matter to training)."""
    try:
        report = transfer_weights(net, state, logger=log)
    except ValueError as e:
        raise InputError(path, str(e), fix) from None
    missing = [k for k in report["new"] if not k.endswith("num_batches_tracked")]
    if missing or report["mismatched"]:
        shown = ", ".join([*missing[:3], *(f"{k} {have}!={want}" for k, (have, want)
                                           in list(report["mismatched"].items())[:3])])
        raise InputError(path, f"does not hold all weights of a {net.arch}: {len(missing)} tensor(s) missing, "
                         f"{len(report['mismatched'])} of another shape ({shown})", fix)
