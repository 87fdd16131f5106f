"""From params.yaml's sections to the ``{"type": ..., **options}`` dicts that the registries build.

The one place that knows how params.yaml spells a configurable thing, so ``dvc exp run -S`` keys
stay as they are while every kind is built the same way (``lgseg.registry.Registry.build``):

- one section may serve several types: the options of the other types stay in params.yaml
  (``-S loss.type=ce`` keeps ``loss.gamma``) and are dropped here; a key that no type takes is
  kept, so that the registry names it as an error;
- params.yaml names some options after their family (``text.clip_model``): renamed here;
- augmentations are on/off switches plus prefixed options (``augment.flip_p``): one dict each here.

No file locations and no torch at import (stages import this before the params check); the
registries are imported where a function needs their types' keys. The arrows run one way:
config -> registries -> classes; no registry imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

STAGES = ("pretrain", "finetune", "insseg")
# insseg keys that are not training's: where it starts from (the stage's paths), how its offsets are
# weighed (the offset loss's cfg) and the test-time clustering (the evaluation stage's)
_NOT_TRAINING = ("init", "weights", "offset_weight", "direction_weight")
CLUSTER_PREFIX = "cluster_"


def training_config(params: dict, stage: str) -> dict:
    """Flatten the sections a training stage reads into one config dict for ``run_training``."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
    cfg = {k: v for k, v in params[stage].items() if k not in _NOT_TRAINING and not k.startswith(CLUSTER_PREFIX)}
    cfg.update(params["train"])
    cfg["model"] = model_cfg(params, stage)
    cfg["voxel_size"] = params["data"]["voxel_size"]
    cfg["voxel_point"] = params["data"]["train_voxel_point"]
    cfg["augment"] = params["augment"]
    if stage == "pretrain":  # each objective may train at its own learning rate (pretrain.<section>.lr)
        lr = objective_section(cfg).get("lr")
        if lr is not None:
            cfg["optimizer"] = {**cfg["optimizer"], "lr": lr}
    if stage in ("finetune", "insseg"):  # the instance task's semantic term is fine-tuning's loss
        cfg["loss"] = loss_cfg(params["loss"])
        cfg["instance_sampling"] = params.get("instance_sampling") or {"enabled": False}
    if stage == "insseg":
        section = params["insseg"]
        cfg["offset_loss"] = {"type": "offset", "norm_weight": section["offset_weight"],
                              "direction_weight": section["direction_weight"]}
    return cfg


def cluster_cfg(section: Mapping[str, Any]) -> dict:
    """params.yaml's ``insseg.cluster_*`` keys as the clustering's options (``cluster_radius`` ->
    ``radius``): what the instance evaluation reads, so that changing them reruns only it."""
    return {k[len(CLUSTER_PREFIX):]: v for k, v in section.items() if k.startswith(CLUSTER_PREFIX)}


def model_cfg(params: dict, stage: str) -> dict:
    """``{"name": <the stage's model>, **model section}``; models keep ``name`` (not ``type``): it is
    what every saved model's meta records, and ``lgseg.models.build_model`` reads it."""
    return {"name": params[stage]["model"], **params["model"]}


def options_for(registry, section: Mapping[str, Any], kind: str, renames: Mapping[str, str] | None = None) -> dict:
    """``{"type": kind, ...}`` from a section shared by all of ``registry``'s types: keys renamed by
    ``renames`` (params key -> builder argument), the keys only other types take dropped."""
    renames = renames or {}
    opts = {renames.get(k, k): v for k, v in section.items() if k != "type"}
    if kind not in registry.keys():
        return {"type": kind, **opts}  # the registry says which types there are
    others = {k for t in registry.keys() for k in registry.cfg_keys(t)} - set(registry.cfg_keys(kind))
    return {"type": kind, **{k: v for k, v in opts.items() if k not in others}}


def loss_cfg(section: Mapping[str, Any]) -> dict:
    """params.yaml's ``loss`` section as the ``LOSSES`` cfg of its ``type``."""
    from lgseg.losses import LOSSES

    if not isinstance(section, Mapping) or "type" not in section:
        return dict(section) if isinstance(section, Mapping) else section  # LOSSES.build names the problem
    return options_for(LOSSES, section, section["type"])


def build_loss(section: Mapping[str, Any], class_counts=None):
    """The loss of params.yaml's ``loss`` section (or a ``LOSSES`` cfg); ``class_counts`` is needed by
    "cb_focal". The section keeps the other types' options (``gamma`` when the type is ``ce``):
    ``loss_cfg`` drops them; a key that no loss type takes is still an error."""
    from lgseg.losses import LOSSES

    return LOSSES.build(loss_cfg(section), class_counts=class_counts)


def contrastive_cfg(section: Mapping[str, Any]) -> dict:
    """``pretrain.contrastive`` (the language-grounded loss's options) as a ``LOSSES`` cfg."""
    return {**section, "type": "contrastive"}


# pretrain.objective -> (its options' section in pretrain, the LOSSES type)
PRETRAIN_OBJECTIVES: dict[str, tuple[str, str]] = {
    "language": ("contrastive", "contrastive"),  # the paper's method: features towards text anchors
    "supcon": ("supcon", "supcon"),  # Table 1's SupCon baseline: same voxels, no text
    "csc": ("csc", "csc"),  # the paper's principal baseline, CSC: two views of a scene, no labels, no text
    "distill": ("distill", "distill"),  # OpenScene's: towards the 2D teacher's lifted features, no 3D labels
}


def pretrain_loss_cfg(cfg: Mapping[str, Any]) -> dict:
    """The pretraining loss as a ``LOSSES`` cfg: ``pretrain.objective`` (default ``language``) picks
    the section (``pretrain.contrastive``, ``pretrain.supcon``, ``pretrain.csc`` or ``pretrain.distill``);
    the others are not read."""
    options = {k: v for k, v in objective_section(cfg).items() if k != "lr"}  # lr: the optimizer's
    return {**options, "type": PRETRAIN_OBJECTIVES[cfg.get("objective", "language")][1]}


def objective_section(cfg: Mapping[str, Any]) -> Mapping[str, Any]:
    """The options of ``pretrain.objective`` (default ``language``): ``pretrain.contrastive``,
    ``pretrain.supcon`` or ``pretrain.csc``; its ``lr`` (when not null) replaces ``pretrain.optimizer.lr``."""
    objective = cfg.get("objective", "language")
    if objective not in PRETRAIN_OBJECTIVES:
        raise ValueError(f"pretrain.objective must be one of {', '.join(PRETRAIN_OBJECTIVES)}, not {objective!r}")
    section = PRETRAIN_OBJECTIVES[objective][0]
    if section not in cfg:
        raise ValueError(f"pretrain.objective is {objective} but pretrain.{section} is missing")
    return cfg[section]


# params.yaml ``text`` keys -> encoder argument, per encoder; the other encoders' keys are ignored so
# that one section holds them all (``dvc exp run -S`` only sets existing keys)
TEXT_KEYS: dict[str, dict[str, str]] = {
    "clip": {"clip_model": "model", "clip_weights": "weights", "device": "device", "batch_size": "batch_size"},
    "sentence": {"device": "device", "batch_size": "batch_size"},
}
_TEXT_OTHER_KEYS = {"encoder", "prompt"}  # prompt is read by lgseg.text.embed.class_embeddings


def text_encoder_cfg(section: Mapping[str, Any]) -> dict:
    """params.yaml's ``text`` section (``{"encoder": "clip", "clip_model": ...}``) as a ``TEXT_ENCODERS`` cfg."""
    from lgseg.text.encoders import TEXT_ENCODERS

    encoder = section.get("encoder")
    if encoder not in TEXT_ENCODERS.keys():
        raise ValueError(f"text.encoder must be one of {', '.join(TEXT_ENCODERS.keys())}, not {encoder!r}")
    known = _TEXT_OTHER_KEYS.union(*TEXT_KEYS.values())
    for key in section:
        if key not in known:
            raise ValueError(f"text.{key} is not a text encoder key; allowed: {', '.join(sorted(known))}")
    return {"type": encoder, **{arg: section[key] for key, arg in TEXT_KEYS[encoder].items() if key in section}}


def build_text_encoder(section: Mapping[str, Any]):
    """The text encoder of params.yaml's ``text`` section, e.g. ``{"encoder": "clip", "clip_model":
    "ViT-B/32"}``; unknown encoder names and keys raise ValueError naming what is allowed."""
    from lgseg.text.encoders import TEXT_ENCODERS

    return TEXT_ENCODERS.build(text_encoder_cfg(section))


# augment switch -> (transform type, {option key: constructor argument}), in the order the
# augmentations are applied: geometry first, then colour. A missing switch means on (the reference).
AUGMENTATIONS: dict[str, tuple[str, dict[str, str]]] = {
    "elastic": ("elastic", {"elastic_params": "params", "elastic_p": "p"}),
    "rotation": ("rotation", {"rotation_x": "x", "rotation_y": "y", "rotation_z": "z"}),
    "scale": ("scale", {"scale_range": "scale_range"}),
    "flip": ("flip", {"flip_p": "p"}),
    "auto_contrast": ("auto_contrast", {"auto_contrast_p": "p", "auto_contrast_blend": "blend_factor"}),
    "color_translation": ("color_translation", {"color_translation_ratio": "ratio",
                                                "color_translation_p": "p"}),
    "color_jitter": ("color_jitter", {"color_jitter_std": "std", "color_jitter_p": "p"}),
}
CROP = ("crop_points", "crop", "points")  # off unless asked for (the reference did not crop); first


def augment_cfgs(section: Mapping[str, Any] | None) -> list[tuple[dict, list[str]]]:
    """params.yaml's ``augment`` section (without ``random_translation``, a dataset option) as
    ``TRANSFORMS`` cfgs in order, each with the params keys it came from (for error messages)."""
    section = dict(section or {})
    allowed = {CROP[0], *AUGMENTATIONS, *(o for _, ov in AUGMENTATIONS.values() for o in ov)}
    for key in section:
        if key not in allowed:
            raise ValueError(f"augment.{key} is not a known key; allowed keys: {', '.join(sorted(allowed))}")
    for switch in AUGMENTATIONS:
        if not isinstance(section.get(switch, True), bool):
            raise ValueError(f"augment.{switch} must be true or false, not {section[switch]!r}")
    out = []
    if section.get(CROP[0]):
        out.append(({"type": CROP[1], CROP[2]: section[CROP[0]]}, [f"augment.{CROP[0]}"]))
    for switch, (kind, overrides) in AUGMENTATIONS.items():
        if section.get(switch, True):
            out.append(({"type": kind, **{arg: section[key] for key, arg in overrides.items() if key in section}},
                        [f"augment.{k}" for k in overrides if k in section]))
    return out
