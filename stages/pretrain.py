"""pretrain: language-grounded pretraining of the 3D backbone towards the class text embeddings."""

from common import run, write_final_metrics

from lgseg.config import training_config

PATHS = ("processed", "text", "checkpoint", "model", "curve", "val-curve", "metrics")  # set in dvc.yaml


def main(params: dict, tracker, args) -> None:
    from lgseg.engine.launch import TrainPaths, run_training  # torch: after the params check

    cfg = training_config(params, "pretrain")
    paths = TrainPaths(processed=args.processed, checkpoint=args.checkpoint, model=args.model, curve=args.curve,
                       val_curve=args.val_curve, embeddings=args.text)
    run_training("pretrain", cfg, paths, tracker=tracker,
                 write_outputs=lambda result: write_final_metrics(args.metrics, result, "pretrain"))


if __name__ == "__main__":
    run(main, paths=PATHS)
