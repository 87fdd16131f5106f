"""finetune: 200-class segmentation, from the pretrained backbone or from scratch."""

from common import run, write_final_metrics

from lgseg.config import training_config
from lgseg.errors import LgsegError


def main(params: dict, tracker) -> None:
    from lgseg.engine.hooks import TrackingHook  # torch: after the params check
    from lgseg.engine.launch import TrainPaths, run_training

    init, weights = params["finetune"]["init"], params["finetune"]["weights"]
    if init not in ("pretrained", "scratch"):
        raise LgsegError(f"params.yaml: finetune.init must be 'pretrained' or 'scratch', not {init!r}")
    if init == "scratch" and weights:
        raise LgsegError(f"params.yaml: finetune.weights is {weights!r} but finetune.init is 'scratch'; "
                         "set finetune.init: pretrained to start from those weights, or empty finetune.weights")
    paths = TrainPaths(processed="data/processed", checkpoint="checkpoints/finetune/state.pt",
                       model="models/finetune.pt", curve="metrics/finetune_curve.csv",
                       embeddings="data/text", stats="data/processed/stats.json", instances="data/instances",
                       init=(weights or "models/pretrain.pt") if init == "pretrained" else None)
    result = run_training("finetune", training_config(params, "finetune"), paths, [TrackingHook(tracker)])
    write_final_metrics("metrics/finetune.json", result)


if __name__ == "__main__":
    run(main)
