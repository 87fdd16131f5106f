"""``lgseg <command>``: the package's entry points for use outside DVC."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lgseg.errors import LgsegError


def _synth(a: argparse.Namespace) -> None:
    from lgseg.synthetic import generate

    summary = generate(a.out, num_scenes=a.scenes, seed=a.seed, workers=a.workers)
    print(f"wrote {a.scenes} synthetic ScanNet-format scenes to {a.out}: {summary['scenes']}")


def _preprocess(a: argparse.Namespace) -> None:
    from lgseg.data.instances import resolve_classes
    from lgseg.prepare import prepare

    try:
        classes = resolve_classes(a.bank_classes.split(",") if "," in a.bank_classes else a.bank_classes)
    except ValueError as e:
        raise LgsegError(f"--bank-classes: {e}") from None
    annotation = {"fraction": a.annotated, "rule": a.annotation_rule, "seed": a.seed}
    done = prepare(a.raw, a.out, workers=a.workers, keep_going=a.keep_going, annotation=annotation,
                   bank=a.bank, bank_classes=classes)
    print(f"preprocessed {len(done.report.done)} scene(s) into {a.out}")
    if done.bank is not None:
        meta = done.bank
        print(f"instance bank: {meta['instances']} instance(s) of {len(meta['per_class'])} class(es) in {a.bank}")


def _queue(a: argparse.Namespace) -> None:
    import subprocess

    from lgseg.report import EXPERIMENTS, queue

    for which in (EXPERIMENTS if a.which == "all" else [a.which]):
        names = queue(which)
        print(f"queued {which}: {', '.join(names)}")
    if a.start:
        subprocess.run([sys.executable, "-m", "dvc", "queue", "start"], check=True)
        print("running; follow with `dvc queue status`, then `lgseg report`")
    else:
        print("run them with `dvc queue start`, follow with `dvc queue status`, then `lgseg report`")


def _report(a: argparse.Namespace) -> None:
    import json

    from lgseg.report import exp_show_json, write_report

    exp_show = json.loads(a.exp_json.read_text()) if a.exp_json else exp_show_json()
    for path in write_report(a.out, exp_show).values():
        print(f"wrote {path}")


def _export_gt(a: argparse.Namespace) -> None:
    from lgseg.evaluation.ground_truth import export_ground_truth

    n = export_ground_truth(a.raw, a.out, split=a.split)
    print(f"wrote ground truth of {n} {a.split} scene(s) to {a.out}")


def _evaluate(a: argparse.Namespace) -> None:
    from lgseg.evaluation.benchmark import evaluate_dirs
    from lgseg.evaluation.metrics import summarize, write_metrics

    conf, scenes = evaluate_dirs(a.pred, a.gt)
    write_metrics(conf, a.out, a.per_class, scenes=scenes)
    s = summarize(conf, scenes=scenes)
    fmt = lambda v: "  n/a" if v is None else f"{v:5.1f}"  # noqa: E731
    print(f"{'':8}{'mIoU':>6}{'prec':>6}{'rec':>6}   ({scenes} scenes, {s['points']} points)")
    for split in ("head", "common", "tail", "all"):
        r = s[split]
        print(f"{split:8}{fmt(r['miou']):>6}{fmt(r['precision']):>6}{fmt(r['recall']):>6}")
    print(f"mIoU over all 200 classes, absent = 0 (reference code's convention): {fmt(s['all']['miou_200'])}")


def _predict(a: argparse.Namespace) -> None:
    from lgseg.engine.predict import load_classifier, predict_split, resolve_device

    device = resolve_device(a.device)
    net, meta = load_classifier(a.checkpoint, device, backend=a.backend, model=a.model, voxel_size=a.voxel_size)
    scenes = predict_split(net, a.data, a.split, meta["voxel_size"], a.out, device)
    print(f"wrote {len(scenes)} {a.split} prediction file(s) to {a.out} ({net.arch}, {net.backend} on {device}, "
          f"{meta['voxel_size']} m voxels)")


def _labels_to_show(a: argparse.Namespace) -> tuple[dict, object]:
    """The scene's arrays and, with --pred, its predicted class per vertex (else None)."""
    from lgseg.scene_io import load_prediction, load_scene

    scene = load_scene(a.processed, a.scene)
    pred = load_prediction(a.pred, a.scene, len(scene["coord"])) if a.pred else None
    return scene, pred


def _render(a: argparse.Namespace) -> None:
    from lgseg.render import render_segmentation

    scene, pred = _labels_to_show(a)
    if scene["gt"] is None and pred is None:
        raise LgsegError(f"{a.scene} is a test scene without ground truth: give --pred to render a prediction")
    out = render_segmentation(scene["coord"], scene["gt"], pred, a.out, title=a.scene)
    print(f"wrote {out}")


def _export_ply(a: argparse.Namespace) -> None:
    from lgseg.export import write_colored_ply
    from lgseg.render import label_colors

    scene, pred = _labels_to_show(a)
    labels = pred if pred is not None else scene["gt"]
    if labels is None:
        raise LgsegError(f"{a.scene} is a test scene without ground truth: give --pred to colour a prediction")
    faces = _faces(a.raw, a.scene)
    out = write_colored_ply(a.out, scene["coord"], label_colors(labels), faces)
    print(f"wrote {out} ({'prediction' if pred is not None else 'ground truth'} colours, "
          f"{len(scene['coord'])} vertices, {0 if faces is None else len(faces)} faces)")


def _query(a: argparse.Namespace) -> None:
    import numpy as np

    from lgseg.export import write_colored_ply
    from lgseg.query import query_scores
    from lgseg.render import label_colors, legend_entries, render, score_colors
    from lgseg.scene_io import load_scene

    scene = load_scene(a.processed, a.scene)
    cos = query_scores(a.checkpoint, a.processed, a.scene, a.text, encoder=a.encoder, clip_weights=a.clip_weights)
    lo, hi = (float(v) for v in np.percentile(cos, [2, 98]))  # spread the contrast over the scene's range
    heat = score_colors((cos - lo) / max(hi - lo, 1e-6))
    panels = [(f"cosine similarity to '{a.text}'\n(blue <= {lo:.2f}, red >= {hi:.2f}: the scene's 2nd and "
               "98th percentiles)", heat)]
    if scene["gt"] is not None:
        panels.append(("ground truth", label_colors(scene["gt"])))
    render(scene["coord"], panels, a.out, title=f"{a.scene}: '{a.text}'",
           legend=legend_entries(scene["gt"]) if scene["gt"] is not None else None)
    print(f"wrote {a.out}; cosine similarity {cos.min():.3f} .. {cos.max():.3f} (mean {cos.mean():.3f})")
    if a.ply:
        write_colored_ply(a.ply, scene["coord"], heat, _faces(a.raw, a.scene), quality=cos)
        print(f"wrote {a.ply} (colours: the heat map; vertex quality: the cosine similarity)")


def _check_params(a: argparse.Namespace) -> None:
    from lgseg.params_schema import check_file

    problems = check_file(a.file)
    for problem in problems:
        print(f"{a.file}: {problem}")
    if problems:
        raise LgsegError(f"{a.file}: {len(problems)} problem{'s' if len(problems) > 1 else ''}")
    print(f"{a.file}: ok")


def _faces(raw: Path, scene: str):
    from lgseg.scannet.layout import find_scene_dir, scene_file
    from lgseg.scannet.raw import read_mesh

    try:
        return read_mesh(scene_file(find_scene_dir(raw, scene), "mesh"), scene)[2]
    except LgsegError as e:
        print(f"no mesh faces ({e}); writing the vertices only", file=sys.stderr)
        return None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lgseg", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="generate synthetic scenes in ScanNet v2's raw layout")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--scenes", type=int, default=40)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=1)
    s.set_defaults(func=_synth)

    s = sub.add_parser("preprocess", help="raw ScanNet (scans/ + labels tsv) -> per-scene arrays")
    s.add_argument("--raw", type=Path, required=True, help="folder holding scans/ and the labels tsv")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--keep-going", action="store_true", help="finish the other scenes when one fails")
    s.add_argument("--annotated", type=float, default=1.0, metavar="FRACTION",
                   help="keep the labels of this fraction of each train object's points (default 1: all)")
    s.add_argument("--annotation-rule", default="paper", choices=["paper", "reference"])
    s.add_argument("--seed", type=int, default=0, help="seed of the limited annotations")
    s.add_argument("--bank", type=Path, help="also export the instance bank here")
    s.add_argument("--bank-classes", default="tail", help="head, common, tail, all or comma-separated names")
    s.set_defaults(func=_preprocess)

    s = sub.add_parser("export-gt", help="ground truth as official ScanNet200 benchmark files")
    s.add_argument("--raw", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--split", default="val", choices=["train", "val"])
    s.set_defaults(func=_export_gt)

    s = sub.add_parser("evaluate", help="score benchmark-format predictions against ground truth")
    s.add_argument("--pred", type=Path, required=True, help="folder of <scene>.txt predictions")
    s.add_argument("--gt", type=Path, required=True, help="folder of <scene>.txt ground truth")
    s.add_argument("--out", type=Path, required=True, help="metrics JSON to write")
    s.add_argument("--per-class", type=Path, help="per-class CSV to write")
    s.set_defaults(func=_evaluate)

    s = sub.add_parser("predict", help="benchmark files (<scene>.txt per scene) of a split from a model or checkpoint",
                       description="Predict every mesh vertex of a split. The authors' Lightning checkpoints "
                       "do not record their architecture or voxel size: give --model and --voxel-size "
                       "(e.g. --model Res16UNet34C --voxel-size 0.02). Score val with `lgseg evaluate`.")
    s.add_argument("--checkpoint", type=Path, required=True,
                   help="lgseg model file (models/finetune.pt) or the authors' .ckpt (needs --model, --voxel-size)")
    s.add_argument("--data", "--processed", dest="data", type=Path, default=Path("data/processed"),
                   help="preprocessed scenes (holding <split>/<scene>/)")
    s.add_argument("--split", default="val", choices=["val", "test"])
    s.add_argument("--out", type=Path, required=True,
                   help="folder to write; it must be new, empty or hold only this split's predictions")
    s.add_argument("--backend", choices=["minkowski", "spconv"],
                   help="sparse-conv engine (default: the model file's; minkowski for other checkpoints)")
    s.add_argument("--model", help="architecture of a checkpoint that does not record it, e.g. Res16UNet34C")
    s.add_argument("--voxel-size", type=float, help="voxel size in metres of such a checkpoint (the authors': 0.02)")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.set_defaults(func=_predict)

    scene = argparse.ArgumentParser(add_help=False)  # what the commands that look at one scene share
    scene.add_argument("--scene", required=True, help="scene id, e.g. scene0011_00")
    scene.add_argument("--processed", type=Path, default=Path("data/processed"))
    pred = argparse.ArgumentParser(add_help=False)
    pred.add_argument("--pred", type=Path, help="folder of <scene>.txt predictions (e.g. predictions/)")
    raw = argparse.ArgumentParser(add_help=False)
    raw.add_argument("--raw", type=Path, default=Path("data/raw"), help="raw scans (for the mesh's faces)")

    s = sub.add_parser("render", parents=[scene, pred],
                       help="picture of a scene: ground truth, prediction and error, two views")
    s.add_argument("--out", type=Path, required=True, help="PNG to write")
    s.set_defaults(func=_render)

    s = sub.add_parser("export-ply", parents=[scene, pred, raw],
                       help="the scene's mesh coloured by label (prediction, else ground truth)")
    s.add_argument("--out", type=Path, required=True, help="PLY to write")
    s.set_defaults(func=_export_ply)

    s = sub.add_parser("query", parents=[scene, raw],
                       help="score every vertex of a scene against a text (language-grounded backbone)")
    s.add_argument("--text", required=True, help='any words, e.g. "fire extinguisher"')
    s.add_argument("--checkpoint", type=Path, default=Path("models/pretrain.pt"))
    s.add_argument("--encoder", help="text encoder (default: the checkpoint's; another one is an error)")
    s.add_argument("--clip-weights", help="CLIP weights file (default ~/.cache/clip/<model>.pt)")
    s.add_argument("--out", type=Path, required=True, help="PNG heat map to write")
    s.add_argument("--ply", type=Path, help="also write the mesh coloured by the heat map (score as quality)")
    s.set_defaults(func=_query)

    s = sub.add_parser("queue", help="queue the DVC experiments of the paper's Table 1 or Fig. 5")
    s.add_argument("which", choices=["table1", "fig5", "all"])
    s.add_argument("--start", action="store_true", help="also start the queue (dvc queue start)")
    s.set_defaults(func=_queue)

    s = sub.add_parser("report", help="Table 1 and Fig. 5 (Markdown + PNG) from the DVC experiments")
    s.add_argument("--out", type=Path, default=Path("reports"))
    s.add_argument("--exp-json", type=Path, help="`dvc exp show --json` output to read instead of running it")
    s.set_defaults(func=_report)

    s = sub.add_parser("check-params", help="check a params file (every key, type, range, choice) and list "
                       "every problem, one line each")
    s.add_argument("file", nargs="?", type=Path, default=Path("params.yaml"),
                   help="params.yaml (default) or a profile such as profiles/paper.yaml")
    s.set_defaults(func=_check_params)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except LgsegError as e:
        print(f"lgseg {args.command}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
