"""preprocess: data/raw -> data/processed (per-scene arrays, stats.json) and val ground truth."""

import json

from common import run

from lgseg.evaluation.ground_truth import export_ground_truth
from lgseg.fileio import write_json
from lgseg.scannet.preprocess import preprocess

RAW, OUT, GT = "data/raw", "data/processed", "data/gt/val"


def main(params: dict, tracker) -> None:
    workers = params["data"]["workers"]
    preprocess(RAW, OUT, workers=workers)
    export_ground_truth(RAW, GT, split="val")
    stats = json.load(open(f"{OUT}/stats.json"))
    labelled = sum(stats["train_points"])
    write_json("metrics/preprocess.json", {
        "scenes": stats["scenes"],
        "vertices": stats["vertices"],
        "train_labelled_fraction": round(labelled / max(stats["vertices"]["train"], 1), 4),
        "train_classes_present": sum(p > 0 for p in stats["train_points"]),
    })


if __name__ == "__main__":
    run(main)
