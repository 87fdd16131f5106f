"""insseg-evaluate: predict the val scenes' instances (clustering the shifted vertices), write the
instance benchmark's files and score them (AP, AP50, AP25; and the semantic head's mIoU)."""

from common import run

# set in dvc.yaml; ``gt``: the instance ground truth of evaluate.split (preprocess exports val)
PATHS = ("model", "processed", "gt", "predictions", "metrics", "per-class")


def main(params: dict, tracker, args) -> None:
    from lgseg.config import cluster_cfg
    from lgseg.engine.predict_instances import evaluate_instance_model  # torch: after the params check

    split = params["evaluate"]["split"]
    s = evaluate_instance_model(args.model, args.processed, args.gt, args.predictions, args.metrics, args.per_class,
                                cluster=cluster_cfg(params["insseg"]), split=split, device=params["train"]["device"],
                                backend=params["model"]["backend"])
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    a = s["all"]
    print(f"{split} instances: AP {fmt(a['ap'])}  AP50 {fmt(a['ap50'])}  AP25 {fmt(a['ap25'])}  head/common/tail AP50 "
          + " / ".join(fmt(s[k]["ap50"]) for k in ("head", "common", "tail"))
          + f"; semantic head mIoU {fmt(a['miou'])}, precision {fmt(a['precision'])}")


if __name__ == "__main__":
    run(main, paths=PATHS)
