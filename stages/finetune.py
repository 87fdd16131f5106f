"""finetune: 200-class segmentation, from the pretrained backbone or from scratch."""

from common import run
from fine_tuning import PATHS, fine_tune


def main(params: dict, tracker, args) -> None:
    fine_tune(params, tracker, args, section="finetune", kind="finetune")


if __name__ == "__main__":
    run(main, paths=PATHS)
