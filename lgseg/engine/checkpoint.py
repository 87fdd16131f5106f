"""Checkpoints are data, never code: written atomically, read with ``weights_only=True``."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from lgseg.errors import InputError


def save_checkpoint(path: str | Path, state: dict) -> None:
    """torch.save to a temporary sibling, then rename: a crash never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found", "run the stage that writes it first")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling problem means a bad file
        raise InputError(path, f"cannot load checkpoint ({type(e).__name__}: {e})",
                         "delete it to start over, or point to a checkpoint written by lgseg") from None


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


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild a network saved by :func:`save_model`; returns ``(net, meta)``."""
    from lgseg.models import build_model

    state = load_checkpoint(path, map_location=device)
    if "meta" not in state or "state_dict" not in state:
        raise InputError(path, "not a model file written by lgseg (no 'meta'/'state_dict')",
                         "pass the model file a pretrain or finetune stage wrote (models/*.pt)")
    meta = state["meta"]
    net = build_model(meta["model"], feature_dim=meta["feature_dim"], num_classes=meta["num_classes"])
    net.load_state_dict(state["state_dict"])
    return net.to(device), meta
