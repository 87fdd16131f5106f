"""finetune: 200-class segmentation, from the pretrained backbone or from scratch."""

from common import run, write_final_metrics

from lgseg.config import training_config
from lgseg.errors import LgsegError

# set in dvc.yaml; ``pretrained``: the pretrain stage's model, the start unless finetune.weights names another
PATHS = ("processed", "text", "stats", "instances", "pretrained", "checkpoint", "model", "curve", "val-curve",
         "metrics")


def main(params: dict, tracker, args) -> None:
    from lgseg.engine.launch import TrainPaths, run_training  # torch: after the params check

    init, weights = params["finetune"]["init"], params["finetune"]["weights"]
    if init not in ("pretrained", "scratch"):
        raise LgsegError(f"params.yaml: finetune.init must be 'pretrained' or 'scratch', not {init!r}")
    if init == "scratch" and weights:
        raise LgsegError(f"params.yaml: finetune.weights is {weights!r} but finetune.init is 'scratch'; "
                         "set finetune.init: pretrained to start from those weights, or empty finetune.weights")
    paths = TrainPaths(processed=args.processed, checkpoint=args.checkpoint, model=args.model, curve=args.curve,
                       val_curve=args.val_curve, embeddings=args.text, stats=args.stats, instances=args.instances,
                       init=(weights or args.pretrained) if init == "pretrained" else None)
    result = run_training("finetune", training_config(params, "finetune"), paths, tracker=tracker)
    write_final_metrics(args.metrics, result, "finetune")


if __name__ == "__main__":
    run(main, paths=PATHS)
