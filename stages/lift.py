"""lift: the 2D teacher run on every frame, its per-pixel features fused onto each scene's points
(lgseg.lifting: OpenScene's projection, border, occlusion and fusion rules), fp16, per split."""

from common import run

PATHS = ("frames", "processed", "teacher", "out", "summary")  # set in dvc.yaml


def main(params, tracker, args) -> None:
    import torch  # after the params check

    from lgseg.engine.lift import lift_all
    from lgseg.fileio import write_json
    from lgseg.teachers import build_teacher

    if params["train"]["cpu_threads"]:
        torch.set_num_threads(params["train"]["cpu_threads"])
    summary = lift_all(lambda: build_teacher(params["teacher"], demo_weights=args.teacher), args.frames,
                       args.processed, args.out, params["lift"])
    write_json(args.summary, summary)
    for split, s in summary.items():
        seen = "" if s["seen_fraction"] is None else f", {100 * s['seen_fraction']:.1f} % of their points seen"
        print(f"{split}: {s['scenes']} scene(s) lifted{seen}, {s['bytes'] / 2**20:.1f} MiB"
              + (f"; {s['without_frames']} without frames" if s["without_frames"] else ""))


if __name__ == "__main__":
    run(main, paths=PATHS)
