"""What the two fine-tuning stages share (finetune, insseg-finetune): where they start from, their
paths and their run. The other stages do not import it, so its training imports are theirs alone."""

from __future__ import annotations

from common import write_final_metrics

# set in dvc.yaml; ``pretrained``: the pretrain stage's model, the start unless <section>.weights names another
PATHS = ("processed", "text", "stats", "instances", "pretrained", "checkpoint", "model", "curve", "val-curve",
         "metrics")


def start_weights(params: dict, section: str, pretrained: str) -> str | None:
    """The weights a fine-tuning stage (``section``: finetune or insseg) starts from: ``<section>.weights``
    or the pretrain stage's model (``pretrained``), or None from scratch (``<section>.init``)."""
    from lgseg.errors import LgsegError

    init, weights = params[section]["init"], params[section]["weights"]
    if init not in ("pretrained", "scratch"):
        raise LgsegError(f"params.yaml: {section}.init must be 'pretrained' or 'scratch', not {init!r}")
    if init == "scratch" and weights:
        raise LgsegError(f"params.yaml: {section}.weights is {weights!r} but {section}.init is 'scratch'; "
                         f"set {section}.init: pretrained to start from those weights, or empty {section}.weights")
    return (weights or pretrained) if init == "pretrained" else None


def fine_tune(params: dict, tracker, args, section: str, kind: str) -> None:
    """A fine-tuning stage: ``run_training(kind)`` from ``params[section]``, started from
    ``start_weights``, its headline numbers written before the run is marked complete."""
    from lgseg.config import training_config
    from lgseg.engine.launch import TrainPaths, run_training  # torch: after the params check

    paths = TrainPaths(processed=args.processed, checkpoint=args.checkpoint, model=args.model, curve=args.curve,
                       val_curve=args.val_curve, embeddings=args.text, stats=args.stats, instances=args.instances,
                       init=start_weights(params, section, args.pretrained))
    run_training(kind, training_config(params, section), paths, tracker=tracker,
                 write_outputs=lambda result: write_final_metrics(args.metrics, result, kind))
