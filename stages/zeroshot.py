"""zeroshot: label-free 3D segmentation of the val scenes through the text anchors, per mesh vertex:
the pretrained 3D features, the fused 2D teacher features and OpenScene's ensemble of both."""

from common import run

PATHS = ("model", "processed", "lifted", "text", "metrics", "counts")  # set in dvc.yaml


def main(params, tracker, args) -> None:
    from lgseg.engine.predict import resolve_device  # torch: after the params check
    from lgseg.engine.zeroshot import READOUTS, zeroshot
    from lgseg.fileio import write_json

    r = zeroshot(args.model, args.processed, args.lifted, args.text, device=resolve_device(params["train"]["device"]))
    write_json(args.metrics, {k: r[k] for k in READOUTS})
    write_json(args.counts, {"seen_fraction": r["seen_fraction"]})
    for k in READOUTS:
        s = r[k]
        print(f"{k:9} " + ("n/a (not in the text anchors' space)" if s is None else "mIoU all / head / common / tail "
              + " / ".join("n/a" if s[g]["miou"] is None else f"{s[g]['miou']:.2f}" for g in ("all", "head", "common", "tail"))))


if __name__ == "__main__":
    run(main, paths=PATHS)
