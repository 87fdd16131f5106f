"""preprocess: data/raw -> data/processed (per-scene arrays, stats.json), the instance bank and val ground
truth (semantic: data/gt/val, instance: data/gt/val_instance).

With data.source: processed, data/raw is already in the processed layout (the download stage linked
it): its scenes are checked and copied, and stats and ground truth come from their labels.
"""

from common import run

from lgseg.data.instances import resolve_classes
from lgseg.errors import LgsegError
from lgseg.evaluation.ground_truth import export_ground_truth, export_instance_ground_truth
from lgseg.evaluation.instance_files import instance_gt_from_processed
from lgseg.fileio import write_json
from lgseg.prepare import ground_truth_from_processed, prepare, prepare_processed, summary

RAW, OUT, GT, GT_INSTANCE, BANK = "data/raw", "data/processed", "data/gt/val", "data/gt/val_instance", "data/instances"


def main(params: dict, tracker) -> None:
    try:
        classes = resolve_classes(params["instance_sampling"]["classes"])
    except ValueError as e:
        raise LgsegError(f"params.yaml: instance_sampling.classes: {e}") from None
    options = {"workers": params["data"]["workers"], "annotation": params["annotation"], "bank": BANK,
               "bank_classes": classes}
    if params["data"]["source"] == "processed":
        done = prepare_processed(RAW, OUT, **options)
        ground_truth_from_processed(OUT, GT, split="val")
        instance_gt_from_processed(OUT, GT_INSTANCE, split="val")
    else:
        done = prepare(RAW, OUT, **options)
        export_ground_truth(RAW, GT, split="val")
        export_instance_ground_truth(RAW, GT_INSTANCE, split="val")
    write_json("metrics/preprocess.json", summary(OUT, done.bank))


if __name__ == "__main__":
    run(main)
