"""finetune: 200-class segmentation, from the pretrained backbone or from scratch."""

from common import run, write_final_metrics

from lgseg.config import training_config
from lgseg.engine.hooks import TrackingHook
from lgseg.engine.launch import TrainPaths, run_training
from lgseg.errors import LgsegError


def main(params: dict, tracker) -> None:
    init = params["finetune"]["init"]
    if init not in ("pretrained", "scratch"):
        raise LgsegError(f"params.yaml: finetune.init must be 'pretrained' or 'scratch', not {init!r}")
    paths = TrainPaths(processed="data/processed", checkpoint="checkpoints/finetune/state.pt",
                       model="models/finetune.pt", curve="metrics/finetune_curve.csv",
                       embeddings="data/text", stats="data/processed/stats.json", instances="data/instances",
                       init="models/pretrain.pt" if init == "pretrained" else None)
    result = run_training("finetune", training_config(params, "finetune"), paths, [TrackingHook(tracker)])
    write_final_metrics("metrics/finetune.json", result)


if __name__ == "__main__":
    run(main)
