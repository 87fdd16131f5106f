"""evaluate: predict the val scenes per mesh vertex, write benchmark files, score them, render a few."""

from common import run

# set in dvc.yaml; ``gt``: the ground truth of evaluate.split (the schema allows val, all preprocess exports)
PATHS = ("model", "processed", "gt", "predictions", "renders", "metrics", "counts", "per-class", "confusion")


def main(params: dict, tracker, args) -> None:
    from lgseg.engine.predict import evaluate_model  # torch: after the params check
    from lgseg.render import render_scenes

    split = params["evaluate"]["split"]
    s = evaluate_model(args.model, args.processed, args.gt, args.predictions, args.metrics, args.per_class,
                       split=split, device=params["train"]["device"], backend=params["model"]["backend"],
                       confusion_csv=args.confusion, counts_json=args.counts)
    a = s["all"]
    print(f"{split}: mIoU {a['miou']:.2f}  (200-class mean {a['miou_200']:.2f})  precision {a['precision']:.2f}  "
          f"recall {a['recall']:.2f}  head/common/tail mIoU "
          + " / ".join("n/a" if s[k]["miou"] is None else f"{s[k]['miou']:.2f}" for k in ("head", "common", "tail")))
    renders = render_scenes(args.processed, args.predictions, split, params["evaluate"]["render"], args.renders)
    tracker.log_artifacts(renders, "renders")
    print(f"rendered {len(renders)} {split} scene(s) into {args.renders}/")


if __name__ == "__main__":
    run(main, paths=PATHS)
