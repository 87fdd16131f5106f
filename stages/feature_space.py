"""feature-space: how structured the pretrained backbone's val features are (the paper's Fig. 7)."""

from common import run

PATHS = ("model", "processed", "metrics", "counts", "tsne")  # set in dvc.yaml


def main(params: dict, tracker, args) -> None:
    from lgseg.engine.features import feature_space  # torch: after the params check
    from lgseg.engine.predict import resolve_device

    f = params["features"]
    s = feature_space(args.model, args.processed, args.metrics, args.tsne, args.counts, split="val",
                      per_group=f["per_group"], seed=f["seed"], k=f["knn"], perplexity=f["perplexity"],
                      device=resolve_device(params["train"]["device"]))
    acc = s["knn_accuracy"]
    print(f"val feature space of {args.model}: {s['samples']} voxels of {s['classes']} classes, {s['k']}-NN accuracy "
          f"{acc['all']:.1f} % (" + ", ".join(f"{g} {acc[g]:.1f}" for g in ("head", "common", "tail") if g in acc)
          + f"), silhouette {'n/a' if s['silhouette'] is None else format(s['silhouette'], '.3f')}")


if __name__ == "__main__":
    run(main, paths=PATHS)
