"""preprocess: data/raw -> data/processed (per-scene arrays, stats.json), the instance bank and val ground truth."""

from common import run

from lgseg.data.instances import resolve_classes
from lgseg.errors import LgsegError
from lgseg.evaluation.ground_truth import export_ground_truth
from lgseg.fileio import write_json
from lgseg.prepare import prepare, summary

RAW, OUT, GT, BANK = "data/raw", "data/processed", "data/gt/val", "data/instances"


def main(params: dict, tracker) -> None:
    try:
        classes = resolve_classes(params["instance_sampling"]["classes"])
    except ValueError as e:
        raise LgsegError(f"params.yaml: instance_sampling.classes: {e}") from None
    done = prepare(RAW, OUT, workers=params["data"]["workers"], annotation=params["annotation"],
                   bank=BANK, bank_classes=classes)
    export_ground_truth(RAW, GT, split="val")
    write_json("metrics/preprocess.json", summary(OUT, done.bank))


if __name__ == "__main__":
    run(main)
