"""insseg-finetune: the instance task (paper Table 2): semantic logits and offsets towards each object's
centre, from the pretrained backbone or from scratch."""

from common import run
from fine_tuning import PATHS, fine_tune


def main(params: dict, tracker, args) -> None:
    fine_tune(params, tracker, args, section="insseg", kind="insseg")


if __name__ == "__main__":
    run(main, paths=PATHS)
