"""Build a loss from its params.yaml section, e.g. ``{"type": "cb_focal", "gamma": 2.0}``.

``Registry`` is generic (name -> builder, build from a cfg dict with a "type" key) so it can move
to a shared module later. Convention: a builder's ordinary parameters are the cfg keys it accepts;
its keyword-only parameters are run-time context passed to ``build`` (e.g. ``class_counts``),
never read from the cfg.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn

from lgseg.losses.contrastive import ContrastiveLanguageLoss
from lgseg.losses.focal import CrossEntropy, FocalLoss, class_balanced_alpha


class Registry:
    """Named builders; ``build(cfg)`` calls the one named by ``cfg["type"]`` with the other keys."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._builders: dict[str, Callable[..., Any]] = {}

    def register(self, key: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: ``@REG.register("focal")`` above a class or function."""
        def deco(builder: Callable[..., Any]) -> Callable[..., Any]:
            if key in self._builders:
                raise ValueError(f"{self.name} type {key!r} is already registered")
            self._builders[key] = builder
            return builder
        return deco

    def keys(self) -> tuple[str, ...]:
        """Registered names, in registration order."""
        return tuple(self._builders)

    def get(self, key: str) -> Callable[..., Any]:
        if key not in self._builders:
            raise ValueError(f"{self.name}.type must be one of {', '.join(self._builders)}, not {key!r}")
        return self._builders[key]

    def build(self, cfg: Mapping[str, Any], **context: Any) -> Any:
        """Build from ``cfg``; pass each ``context`` entry the builder declares keyword-only.

        Unknown keys and invalid values raise ValueError naming the key and what is allowed.
        """
        if not isinstance(cfg, Mapping):
            raise ValueError(f"{self.name} config must be a mapping with a 'type' key, not {cfg!r}")
        if "type" not in cfg:
            raise ValueError(f"{self.name}.type is missing; it must be one of {', '.join(self._builders)}")
        key = cfg["type"]
        builder = self.get(key)
        params = inspect.signature(builder).parameters.values()
        cfg_keys = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
        ctx_keys = {p.name for p in params if p.kind is p.KEYWORD_ONLY}
        kwargs = {k: v for k, v in cfg.items() if k != "type"}
        for k in kwargs:
            if k not in cfg_keys:
                allowed = ", ".join(["type", *cfg_keys])
                raise ValueError(
                    f"{self.name}.{k} is not a key of {self.name} type {key!r}; allowed keys: {allowed}"
                )
        kwargs.update({k: v for k, v in context.items() if k in ctx_keys})
        try:
            return builder(**kwargs)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{self.name} type {key!r}: {e}") from e


LOSSES = Registry("loss")


@LOSSES.register("ce")
def _build_ce() -> CrossEntropy:
    """Unweighted cross entropy (the authors' fine-tuning default)."""
    return CrossEntropy()


@LOSSES.register("focal")
def _build_focal(gamma: float = 2.0) -> FocalLoss:
    """Focal loss without class weights."""
    return FocalLoss(gamma=gamma)


@LOSSES.register("cb_focal")
def _build_cb_focal(gamma: float = 2.0, *, class_counts: Sequence[int] | None = None) -> FocalLoss:
    """Class-balanced focal loss: alpha from paper eq. 5 on the train point counts."""
    if class_counts is None:
        raise ValueError("needs class_counts (per-class train point counts, stats.json 'train_points')")
    return FocalLoss(gamma=gamma, alpha=class_balanced_alpha(class_counts))


@LOSSES.register("contrastive")
def _build_contrastive(t_pos: float = 0.0, t_neg: float = 0.6, neg_weight: float = 1.0,
                       num_negatives: int = 3, form: str = "reference") -> ContrastiveLanguageLoss:
    """Language-grounded pre-training loss (called with feats, anchors, labels)."""
    return ContrastiveLanguageLoss(t_pos=t_pos, t_neg=t_neg, neg_weight=neg_weight,
                                   num_negatives=num_negatives, form=form)


def build_loss(cfg: Mapping[str, Any], class_counts: Sequence[int] | None = None) -> nn.Module:
    """The loss described by ``cfg`` (params.yaml); ``class_counts`` is needed by "cb_focal"."""
    return LOSSES.build(cfg, class_counts=class_counts)
