"""finetune: 200-class segmentation, from the pretrained backbone or from scratch."""

from common import run, start_weights, write_final_metrics

from lgseg.config import training_config

# set in dvc.yaml; ``pretrained``: the pretrain stage's model, the start unless finetune.weights names another
PATHS = ("processed", "text", "stats", "instances", "pretrained", "checkpoint", "model", "curve", "val-curve",
         "metrics")


def main(params: dict, tracker, args) -> None:
    from lgseg.engine.launch import TrainPaths, run_training  # torch: after the params check

    paths = TrainPaths(processed=args.processed, checkpoint=args.checkpoint, model=args.model, curve=args.curve,
                       val_curve=args.val_curve, embeddings=args.text, stats=args.stats, instances=args.instances,
                       init=start_weights(params, "finetune", args.pretrained))
    run_training("finetune", training_config(params, "finetune"), paths, tracker=tracker,
                 write_outputs=lambda result: write_final_metrics(args.metrics, result, "finetune"))


if __name__ == "__main__":
    run(main, paths=PATHS)
