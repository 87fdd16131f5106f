"""teacher: the demo's 2D teacher, an LSeg-style network trained on the train scenes' 2D label images
towards the text anchors, then scored per pixel on the val frames (lgseg.teachers.lseg_demo)."""

from common import run

PATHS = ("frames", "text", "model", "metrics", "counts", "curve")  # set in dvc.yaml


def main(params, tracker, args) -> None:
    import torch  # after the params check

    from lgseg.teachers.lseg_demo import TrainConfig, fit_demo_teacher
    from lgseg.text.embed import load_embeddings

    if params["train"]["cpu_threads"]:
        torch.set_num_threads(params["train"]["cpu_threads"])
    anchors, meta = load_embeddings(args.text)
    s = fit_demo_teacher(args.frames, anchors, meta, TrainConfig(**params["teacher"]["lseg_demo"]), args.model,
                         args.metrics, args.counts, args.curve)
    if not s:
        print(f"no train frames with 2D labels in {args.frames}/train: {args.model} records that there is no teacher")
        return
    print("val frames, per pixel: 2D mIoU " + " / ".join(
        "n/a" if s[k]["miou"] is None else f"{s[k]['miou']:.1f}" for k in ("all", "head", "common", "tail"))
        + " (all / head / common / tail)")


if __name__ == "__main__":
    run(main, paths=PATHS)
