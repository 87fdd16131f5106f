"""From the params.yaml dict to what one training stage needs (no file locations here)."""

from __future__ import annotations

STAGES = ("pretrain", "finetune")


def training_config(params: dict, stage: str) -> dict:
    """Flatten the sections a training stage reads into one config dict for ``run_training``."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
    cfg = {k: v for k, v in params[stage].items() if k not in ("init", "weights")}
    cfg.update(params["train"])
    cfg["model"] = {"name": params[stage]["model"], **params["model"]}
    cfg["voxel_size"] = params["data"]["voxel_size"]
    cfg["voxel_point"] = params["data"]["train_voxel_point"]
    cfg["augment"] = params["augment"]
    if stage == "finetune":
        cfg["loss"] = params["loss"]
        cfg["instance_sampling"] = params.get("instance_sampling") or {"enabled": False}
    return cfg
