"""frames: every scene's RGB-D stream (<scene>.sens) exported in ScanNet's frame layout, per split,
with the 2D label and instance projections where the download has them (lgseg.frames)."""

from common import run

PATHS = ("raw", "out", "summary")  # set in dvc.yaml


def main(params, tracker, args) -> None:
    from lgseg.fileio import write_json
    from lgseg.frames.export import export_scenes

    f = params["frames"]
    summary = export_scenes(args.raw, args.out, frame_step=f["step"], image_size=tuple(f["size"]) if f["size"] else None)
    write_json(args.summary, summary)
    for split, s in summary.items():
        print(f"{split}: {s['frames']} frames of {s['scenes']} scene(s) into {args.out}/{split}"
              + (f"; {s['without_frames']} scene(s) have no .sens" if s["without_frames"] else ""))


if __name__ == "__main__":
    run(main, paths=PATHS)
