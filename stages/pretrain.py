"""pretrain: language-grounded pretraining of the 3D backbone towards the class text embeddings."""

from common import run, write_final_metrics

from lgseg.config import training_config


def main(params: dict, tracker) -> None:
    from lgseg.engine.hooks import TrackingHook  # torch: after the params check
    from lgseg.engine.launch import TrainPaths, run_training

    cfg = training_config(params, "pretrain")
    paths = TrainPaths(processed="data/processed", checkpoint="checkpoints/pretrain/state.pt",
                       model="models/pretrain.pt", curve="metrics/pretrain_curve.csv", embeddings="data/text")
    write_final_metrics("metrics/pretrain.json", run_training("pretrain", cfg, paths, [TrackingHook(tracker)]))


if __name__ == "__main__":
    run(main)
