"""Lenient weight transfer between stages: load every tensor whose name and shape match.

Pre-training saves a model without classifier; fine-tuning builds one with ``classifier.*`` and
loads the backbone from it. Checkpoints of the reference (PyTorch Lightning, keys prefixed
``model.``, DDP ``module.``, backbone at top level, head named ``final``) are mapped onto our
names (``backbone.*``, ``classifier.*``) automatically.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

DEFAULT_PREFIXES = ("module.", "model.")


def transfer_weights(model: nn.Module, state_dict: Mapping[str, Any], logger: logging.Logger | None = None,
                     strip_prefixes: Iterable[str] = DEFAULT_PREFIXES, checkpoint_arch: str | None = None) -> dict:
    """Copy into ``model`` every checkpoint tensor whose (prefix-stripped) name and shape match.

    ``state_dict`` may also be a whole checkpoint holding a ``"state_dict"`` entry (Lightning);
    its ``"arch"`` entry, if any, names the checkpoint's architecture for messages (as does
    ``checkpoint_arch``). Prefixes in ``strip_prefixes`` are removed from the start of the keys, in
    order, when present.

    Returns ``{"loaded": [names], "new": [model names not in the checkpoint],
    "mismatched": {name: (ckpt shape, model shape)}, "unused": [checkpoint names not in the model]}``.
    Logs one summary line at INFO and the names at DEBUG. Raises ValueError if no parameter matches.
    """
    logger = logger or logging.getLogger(__name__)
    if "state_dict" in state_dict and isinstance(state_dict["state_dict"], Mapping):
        checkpoint_arch = checkpoint_arch or state_dict.get("arch")
        state_dict = state_dict["state_dict"]
    ckpt = {_strip(k, tuple(strip_prefixes)): v for k, v in state_dict.items() if isinstance(v, torch.Tensor)}
    target = model.state_dict()
    ckpt = _to_lgseg_layout(ckpt, target)

    loaded, mismatched = [], {}
    for name, value in ckpt.items():
        if name not in target:
            continue
        if tuple(value.shape) == tuple(target[name].shape):
            loaded.append(name)
        else:
            mismatched[name] = (tuple(value.shape), tuple(target[name].shape))
    report = {
        "loaded": loaded,
        "new": [n for n in target if n not in ckpt],
        "mismatched": mismatched,
        "unused": [n for n in ckpt if n not in target],
    }
    model_arch = getattr(model, "arch", type(model).__name__)
    # BN's scalar num_batches_tracked always "fits": only learned parameters prove a fit
    params = {name for name, _ in model.named_parameters()}
    if not params.intersection(loaded):
        src = f" ({checkpoint_arch})" if checkpoint_arch else ""
        raise ValueError(
            f"checkpoint{src} does not fit the model ({model_arch}): no parameter matches by name and shape; "
            f"{len(mismatched)} names have other shapes, {len(report['unused'])} checkpoint keys are unknown "
            f"(e.g. {', '.join(list(ckpt)[:3]) or 'none'})")
    model.load_state_dict({name: ckpt[name] for name in loaded}, strict=False)

    logger.info("weights into %s: loaded %d/%d tensors; new in model: %d%s; shape mismatch: %d%s; "
                "unused checkpoint keys: %d%s", model_arch, len(loaded), len(target),
                len(report["new"]), _groups(report["new"]), len(mismatched), _groups(mismatched),
                len(report["unused"]), _groups(report["unused"]))
    logger.debug("loaded: %s", ", ".join(loaded))
    for name, (have, want) in mismatched.items():
        logger.debug("shape mismatch %s: checkpoint %s vs model %s", name, have, want)
    if report["new"]:
        logger.debug("new in model: %s", ", ".join(report["new"]))
    if report["unused"]:
        logger.debug("unused checkpoint keys: %s", ", ".join(report["unused"]))
    return report


def _strip(key: str, prefixes: tuple[str, ...]) -> str:
    for p in prefixes:
        if key.startswith(p):
            key = key[len(p):]
    return key


def _to_lgseg_layout(ckpt: dict[str, torch.Tensor], target: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Map reference names (backbone at top level, head ``final``) onto ``backbone.*``/``classifier.*``."""
    ours = any(k.startswith("backbone.") for k in target)
    if not ours or any(k.startswith("backbone.") for k in ckpt):
        return ckpt
    return {("classifier." + k[len("final."):]) if k.startswith("final.") else "backbone." + k: v
            for k, v in ckpt.items()}


def _groups(names: Iterable[str], limit: int = 3) -> str:
    """' (classifier.*, backbone.projection.*)': the distinct modules of ``names``, for one log line."""
    groups = list(dict.fromkeys(n.rsplit(".", 1)[0] + ".*" for n in names))
    if not groups:
        return ""
    more = f", +{len(groups) - limit} more" if len(groups) > limit else ""
    return f" ({', '.join(groups[:limit])}{more})"
