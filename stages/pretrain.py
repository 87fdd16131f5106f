"""pretrain: the 3D backbone's pretraining, by pretrain.objective: towards the class text embeddings
(language, the paper's), SupCon, CSC, or towards the lifted 2D teacher features (distill)."""

from common import run, write_final_metrics

from lgseg.config import training_config

PATHS = ("processed", "text", "lifted", "checkpoint", "model", "curve", "val-curve", "metrics")  # set in dvc.yaml


def main(params: dict, tracker, args) -> None:
    from lgseg.engine.launch import TrainPaths, run_training  # torch: after the params check

    cfg = training_config(params, "pretrain")
    paths = TrainPaths(processed=args.processed, checkpoint=args.checkpoint, model=args.model, curve=args.curve,
                       val_curve=args.val_curve, embeddings=args.text, lifted=args.lifted)
    run_training("pretrain", cfg, paths, tracker=tracker,
                 write_outputs=lambda result: write_final_metrics(args.metrics, result, "pretrain"))


if __name__ == "__main__":
    run(main, paths=PATHS)
