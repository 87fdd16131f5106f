"""preprocess: data/raw -> data/processed (per-scene arrays, stats.json) and val ground truth."""

import json

from common import run

from lgseg.data.instances import export_instance_bank, resolve_classes
from lgseg.errors import LgsegError
from lgseg.evaluation.ground_truth import export_ground_truth
from lgseg.fileio import write_json
from lgseg.scannet.preprocess import preprocess

RAW, OUT, GT, BANK = "data/raw", "data/processed", "data/gt/val", "data/instances"


def main(params: dict, tracker) -> None:
    try:
        classes = resolve_classes(params["instance_sampling"]["classes"])
    except ValueError as e:
        raise LgsegError(f"params.yaml: instance_sampling.classes: {e}") from None
    preprocess(RAW, OUT, workers=params["data"]["workers"], annotation=params["annotation"])
    export_ground_truth(RAW, GT, split="val")
    bank = export_instance_bank(OUT, BANK, classes)
    stats = json.load(open(f"{OUT}/stats.json"))
    labelled = sum(stats["train_points"])
    write_json("metrics/preprocess.json", {
        "scenes": stats["scenes"],
        "vertices": stats["vertices"],
        "train_labelled_fraction": round(labelled / max(stats["vertices"]["train"], 1), 4),
        "train_classes_present": sum(p > 0 for p in stats["train_points"]),
        "bank_instances": bank["instances"],
        "bank_classes": len(bank["per_class"]),
    })


if __name__ == "__main__":
    run(main)
