"""``lgseg <command>``: the package's entry points for use outside DVC."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lgseg.errors import LgsegError

DESCRIPTION = """\
lgseg: language-grounded 3D semantic segmentation on ScanNet200.

The pipeline (download, preprocess, text-embed, pretrain, finetune, evaluate) runs with `dvc repro`
in the repo root; these commands are its parts for use outside DVC and the tools to look at the
results. Default paths (data/processed, data/raw, models/...) are the pipeline's folders, read
relative to the current folder: run from the repo root or pass the paths."""
EPILOG = "`lgseg COMMAND -h` lists a command's options with their defaults."


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's default after its help, unless it has none (None, a flag's False) or the help
    says it already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text:
            return text
        return super()._get_help_string(action)


class _TopHelpFormatter(argparse.RawDescriptionHelpFormatter, _HelpFormatter):
    """``lgseg -h``: the description's paragraphs as written."""


def _missing(path: Path, what: str, fix: str, folder: bool = True) -> LgsegError:
    """The error for an input ``path`` that is not there: its absolute path, that it does not exist
    (or is not a folder / file) and ``fix``, what creates it or which option points elsewhere."""
    state = "does not exist" if not path.exists() else f"is not a {'folder' if folder else 'file'}"
    relative = "" if path.is_absolute() else f" (a relative path, read from the current folder {Path.cwd()})"
    return LgsegError(f"{path.absolute()}: {what} {state}{relative}. {fix}")


def _processed(path: Path, option: str = "--processed") -> Path:
    """The preprocessed folder, absolute (so that later messages say where they looked), if it exists."""
    if not path.is_dir():
        raise _missing(path, "the preprocessed-scene folder",
                       f"Create it with `dvc repro preprocess` in the repo root, or pass {option} DIR")
    return path.absolute()


def _input_file(path: Path, what: str, fix: str) -> Path:
    if not path.is_file():
        raise _missing(path, what, fix, folder=False)
    return path


class _Number:
    """argparse type of a numeric option: an int or a finite float within [lo, hi] (``above``: lo
    itself excluded). Every numeric option has one, so a value out of range is argparse's one-line
    usage error, never a traceback from deep inside (tests/test_cli.py walks the parser)."""

    def __init__(self, kind: type, lo: float | None = None, hi: float | None = None, above: bool = False):
        self.kind, self.lo, self.hi, self.above = kind, lo, hi, above
        noun = "an integer" if kind is int else "a number"
        low = "" if lo is None else f" {'>' if above else '>='} {lo:g}"
        self.expect = noun + low if hi is None else f"{noun} in {'(' if above else '['}{lo:g}, {hi:g}]"
        self.__name__ = self.expect  # argparse names the type by it

    def __call__(self, text: str):
        import math

        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {self.expect}, got {text!r}") from None
        if (isinstance(value, float) and not math.isfinite(value)) \
                or (self.lo is not None and (value < self.lo or (self.above and value == self.lo))) \
                or (self.hi is not None and value > self.hi):
            raise argparse.ArgumentTypeError(f"expected {self.expect}, got {text!r}")
        return value


COUNT, POSITIVE_INT, SEED = _Number(int, 0), _Number(int, 1), _Number(int, 0, 2**32 - 1)
WORKERS = _Number(int, 1, 256)
METRES = _Number(float, 0, 100, above=True)


def _voxel_size(text: str) -> float:
    """argparse type of --voxel-size: a finite size in metres a scan can be voxelized at."""
    from lgseg.data.voxelize import check_voxel_size  # numpy only

    try:
        return check_voxel_size(float(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{e} (e.g. 0.02 for the authors' checkpoints)") from None


def _triple(option: str, keys: tuple[str, str, str]):
    """argparse type: ``"62,32,24"`` -> ``{keys[0]: 62, ...}`` (integers >= 0)."""
    def parse(text: str) -> dict:
        parts = text.split(",")
        if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
            raise argparse.ArgumentTypeError(f"{option} takes three integers >= 0 for {','.join(keys)}, not {text!r}")
        return dict(zip(keys, map(int, parts), strict=True))
    return parse


def _synth(a: argparse.Namespace) -> None:
    from lgseg.fileio import claim_folder
    from lgseg.synthetic import RAW_SCANS, generate

    claim_folder(a.out, RAW_SCANS, looks_like=lambda d: (d / "scans").is_dir())

    summary = generate(a.out, num_scenes=a.scenes, seed=a.seed, workers=a.workers, objects=a.objects,
                       train_min=a.train_min, val_min=a.val_min, frames=a.frames)
    print(f"wrote {a.scenes} synthetic ScanNet-format scenes to {a.out}: {summary['scenes']}")


def _preprocess(a: argparse.Namespace) -> None:
    from lgseg.data.instances import resolve_classes
    from lgseg.prepare import prepare, prepare_processed

    try:
        classes = resolve_classes(a.bank_classes.split(",") if "," in a.bank_classes else a.bank_classes)
    except ValueError as e:
        raise LgsegError(f"--bank-classes: {e}") from None
    annotation = {"fraction": a.annotated, "rule": a.annotation_rule, "seed": a.seed}
    run, src = (prepare, a.raw) if a.raw is not None else (prepare_processed, a.from_processed)
    done = run(src, a.out, workers=a.workers, keep_going=a.keep_going, annotation=annotation,
               bank=a.bank, bank_classes=classes)
    print(f"preprocessed {len(done.report.done)} scene(s) into {a.out}")
    if done.bank is not None:
        meta = done.bank
        print(f"instance bank: {meta['instances']} instance(s) of {len(meta['per_class'])} class(es) in {a.bank}")


def _queue(a: argparse.Namespace) -> None:
    import subprocess

    from lgseg.report import EXPERIMENTS, queue

    for which in (EXPERIMENTS if a.which == "all" else [a.which]):
        names, present = queue(which, seeds=a.seeds)
        print(f"queued {which}: {', '.join(names) or 'nothing'}"
              + (f"; already run or queued: {', '.join(present)}" if present else ""))
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
    if a.task == "instance":
        from lgseg.evaluation.ground_truth import export_instance_ground_truth
        from lgseg.evaluation.instance_files import instance_gt_from_processed

        export = export_instance_ground_truth if a.raw is not None else instance_gt_from_processed
    else:
        from lgseg.evaluation.ground_truth import export_ground_truth as export
        from lgseg.prepare import ground_truth_from_processed

        export = export if a.raw is not None else ground_truth_from_processed
    n = export(a.raw if a.raw is not None else _processed(a.processed), a.out, split=a.split)
    print(f"wrote {a.task} ground truth of {n} {a.split} scene(s) to {a.out}")


def _is_metrics_json(path: Path) -> bool:
    import json

    try:
        return isinstance(d := json.loads(path.read_text()), dict) and "all" in d
    except (OSError, ValueError):
        return False


def _is_per_class_csv(path: Path) -> bool:
    try:
        with open(path) as f:
            return f.readline().startswith("id,name,split,")
    except (OSError, UnicodeDecodeError):
        return False


def _claim_metric_files(a: argparse.Namespace) -> None:
    """evaluate writes its two files over nothing it reads and over no file that is not its own."""
    from lgseg.fileio import claim_file

    claim_file(a.out, "metrics JSON", inputs=[a.pred, a.gt], ours=_is_metrics_json)
    if a.per_class is not None:
        claim_file(a.per_class, "per-class CSV", inputs=[a.pred, a.gt], ours=_is_per_class_csv, option="--per-class")


def _evaluate(a: argparse.Namespace) -> None:
    _claim_metric_files(a)
    if a.task == "instance":
        return _evaluate_instances(a)
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


def _evaluate_instances(a: argparse.Namespace) -> None:
    from lgseg.evaluation.instance_ap import evaluate_instance_dirs, write_instance_metrics

    result = evaluate_instance_dirs(a.pred, a.gt, min_region_size=a.min_region)
    write_instance_metrics(result, a.out, a.per_class)
    s = result.summary()
    fmt = lambda v: "  n/a" if v is None else f"{v:5.1f}"  # noqa: E731
    print(f"{'':8}{'AP':>6}{'AP50':>6}{'AP25':>6}   ({result.scenes} scenes, {s['classes']} classes with ground truth "
          "of the 198 evaluated)")
    for split in ("head", "common", "tail", "all"):
        r = s[split]
        print(f"{split:8}{fmt(r['ap']):>6}{fmt(r['ap50']):>6}{fmt(r['ap25']):>6}")


def _cluster_options(a: argparse.Namespace) -> dict:
    return {"radius": a.radius, "min_points": a.min_points, "propose_points": a.propose_points, "score": a.score,
            "score_threshold": a.score_threshold, "dual_set": a.dual_set, "dual_radius": a.dual_radius}


def _predict(a: argparse.Namespace) -> None:
    from lgseg.evaluation.folders import claim_predictions

    # everything the command reads and writes is checked before torch loads: the model takes seconds
    a.data = _processed(a.data, "--data")
    _input_file(a.checkpoint, "the model file (--checkpoint)",
                "`dvc repro finetune` in the repo root writes models/finetune.pt; or pass the path of a model "
                "file or of the authors' .ckpt")
    claim_predictions(a.out, a.data, a.split, a.task, a.force)
    if a.task == "instance":
        from lgseg.instances import ClusterConfig

        try:
            cluster = ClusterConfig(**_cluster_options(a))
        except ValueError as e:
            raise LgsegError(f"clustering options: {e}") from None
    from lgseg.engine.predict import load_classifier, predict_split, resolve_device

    device = resolve_device(a.device)
    net, meta = load_classifier(a.checkpoint, device, backend=a.backend, model=a.model, voxel_size=a.voxel_size)
    if a.task == "instance":
        from lgseg.engine.predict_instances import predict_instance_split

        scenes = predict_instance_split(net, a.data, a.split, meta["voxel_size"], a.out, cluster, device,
                                        force=a.force)
        what = "instance prediction"
    else:
        scenes = predict_split(net, a.data, a.split, meta["voxel_size"], a.out, device, force=a.force)
        what = "prediction"
    print(f"wrote {len(scenes)} {a.split} {what} file(s) to {a.out} ({net.arch}, {net.backend} on {device}, "
          f"{meta['voxel_size']} m voxels)")


def _labels_to_show(a: argparse.Namespace) -> tuple[dict, object]:
    """The scene's arrays and, with --pred, its predicted class per vertex (else None)."""
    from lgseg.scene_io import load_prediction, load_scene

    a.processed = _processed(a.processed)
    scene = load_scene(a.processed, a.scene)
    pred = load_prediction(a.pred, a.scene, len(scene["coord"])) if a.pred else None
    return scene, pred


def _instances_to_show(a: argparse.Namespace, num_vertices: int):
    """With --instances: each vertex's predicted instance (-1 none) from an instance prediction folder."""
    from lgseg.evaluation.instance_files import read_instance_prediction

    if a.instances is None:
        return None
    if not a.instances.is_dir():
        raise _missing(a.instances, "the instance prediction folder (--instances)",
                       "`dvc repro insseg-evaluate` writes predictions_instance/, or `lgseg predict --task instance`")
    return read_instance_prediction(a.instances, a.scene, num_vertices).vertex_instances()


def _render_frame(a: argparse.Namespace) -> None:
    from lgseg.render_frame import render_frame
    from lgseg.scene_io import load_scene, scene_dir
    from lgseg.text import load_embeddings

    a.processed = _processed(a.processed)
    folder = scene_dir(a.processed, a.scene)
    split = folder.parent.name
    frames_dir, lifted_dir = a.frames / split / a.scene, a.lifted / split / a.scene
    for path, what, fix in ((frames_dir, "the scene's frame folder", "`dvc repro frames` exports it (--frames DIR)"),
                            (lifted_dir, "the scene's lifted features", "`dvc repro lift` writes them (--lifted DIR)")):
        if not path.is_dir():
            raise _missing(path, what, fix)
    teacher = None
    if a.teacher.is_file():
        from lgseg.teachers import build_teacher

        teacher = build_teacher({"type": "lseg_demo"}, demo_weights=a.teacher)
    anchors, _ = load_embeddings(a.text)
    out = render_frame(frames_dir, a.frame, load_scene(a.processed, a.scene)["coord"], lifted_dir, anchors, a.out,
                       teacher=teacher, title=f"{a.scene}, frame {a.frame}")
    print(f"wrote {out}")


def _render(a: argparse.Namespace) -> None:
    from lgseg.render import render_instances, render_segmentation

    if a.frame is not None:
        return _render_frame(a)
    if a.instances is not None:
        import numpy as np

        from lgseg.scene_io import has_array, load_scene, read_array, scene_dir

        a.processed = _processed(a.processed)
        scene = load_scene(a.processed, a.scene)
        pred = _instances_to_show(a, len(scene["coord"]))
        folder = scene_dir(a.processed, a.scene)
        gt = read_array(folder, "instance", a.scene).astype(np.int64) if has_array(folder, "instance") else None
        if gt is not None and scene["gt"] is not None:  # the benchmark's instances: no wall, floor or ignored
            from lgseg.scannet.constants import IS_INSTANCE_CLASS

            gt[(scene["gt"] < 0) | ~IS_INSTANCE_CLASS[np.maximum(scene["gt"], 0)]] = -1
        print(f"wrote {render_instances(scene['coord'], gt, pred, a.out, title=a.scene)}")
        return
    scene, pred = _labels_to_show(a)
    if scene["gt"] is None and pred is None:
        raise LgsegError(f"{a.scene} is a test scene without ground truth: give --pred to render a prediction")
    out = render_segmentation(scene["coord"], scene["gt"], pred, a.out, title=a.scene)
    print(f"wrote {out}")


def _export_ply(a: argparse.Namespace) -> None:
    from lgseg.export import write_colored_ply
    from lgseg.render import label_colors

    scene, pred = _labels_to_show(a)
    instances = _instances_to_show(a, len(scene["coord"]))
    labels = pred if pred is not None else scene["gt"]
    if labels is None and instances is None:
        raise LgsegError(f"{a.scene} is a test scene without ground truth: give --pred (or --instances) to colour "
                         "a prediction")
    faces = None if a.points_only else _faces(a.raw, a.scene, len(scene["coord"]))
    from lgseg.render import instance_colors

    colors = instance_colors(instances) if instances is not None else label_colors(labels)
    out = write_colored_ply(a.out, scene["coord"], colors, faces)
    what = "predicted instance" if instances is not None else "prediction" if pred is not None else "ground truth"
    print(f"wrote {out} ({what} colours, {len(scene['coord'])} vertices, {0 if faces is None else len(faces)} faces)")


def _query(a: argparse.Namespace) -> None:
    import numpy as np

    from lgseg.scene_io import load_scene

    # everything the command reads is checked before torch is imported and the model runs
    if not a.text.strip():
        raise LgsegError("--text is empty: give the words to look for, e.g. --text \"fire extinguisher\"")
    a.processed = _processed(a.processed)
    scene = load_scene(a.processed, a.scene)
    faces = _faces(a.raw, a.scene, len(scene["coord"])) if a.ply and not a.points_only else None
    _input_file(a.checkpoint, "the language-grounded backbone (--checkpoint)",
                "Create it with `dvc repro pretrain` in the repo root, or pass --checkpoint FILE")

    from lgseg.export import write_colored_ply
    from lgseg.query import query_scores
    from lgseg.render import label_colors, legend_entries, render, score_colors

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
        write_colored_ply(a.ply, scene["coord"], heat, faces, quality=cos)
        print(f"wrote {a.ply} (colours: the heat map; vertex quality: the cosine similarity)")


def _check_params(a: argparse.Namespace) -> None:
    from lgseg.params_schema import check_file

    _input_file(a.file, "the params file", "Run in the repo root (it holds params.yaml; profiles/ holds others) "
                "or name the file: lgseg check-params FILE")
    problems = check_file(a.file)
    for problem in problems:
        print(f"{a.file}: {problem}")
    if problems:
        raise LgsegError(f"{a.file}: {len(problems)} problem{'s' if len(problems) > 1 else ''}")
    print(f"{a.file}: ok")


def _download_clip(a: argparse.Namespace) -> None:
    from lgseg.text.download import download_clip

    path, fetched = download_clip(a.model, a.dir, timeout=a.timeout)
    print(f"{'wrote' if fetched else 'already there:'} {path} (SHA-256 checked)")


def _download_weights(a: argparse.Namespace) -> None:
    from lgseg.teachers.weights import download_weights

    d = download_weights(a.name, a.dir, timeout=a.timeout, allow_unverified=a.no_checksum)
    checked = "SHA-256 checked" if d.verified else "not verified: no SHA-256 is published for it"
    print(f"{'wrote' if d.fetched else 'already there:'} {d.path} (SHA-256 {d.sha256}, {checked})")


def _faces(raw: Path, scene: str, num_vertices: int):
    """The triangles of ``scene``'s mesh in ``raw``; an error naming the folder and the fix when the
    mesh cannot be read (a PLY without its faces is not what export-ply promises)."""
    from lgseg.scannet.layout import find_scene_dir, scene_file
    from lgseg.scannet.raw import read_mesh

    without = "or give --points-only to write the vertices without faces"
    if not raw.is_dir():
        raise _missing(raw, "the raw ScanNet folder (--raw, for the mesh's faces)",
                       f"Create it with `dvc repro download` in the repo root, pass --raw DIR (the folder "
                       f"holding scans/), {without}")
    try:
        coord, _, faces = read_mesh(scene_file(find_scene_dir(raw.absolute(), scene), "mesh"), scene)
    except LgsegError as e:
        raise LgsegError(f"{e}; point --raw at the raw folder the scene was preprocessed from, {without}") from None
    if len(coord) != num_vertices:
        raise LgsegError(f"{raw.absolute()}: the mesh of {scene} has {len(coord)} vertices, the preprocessed "
                         f"scene {num_vertices}: not the raw data it was made from. Point --raw at that, "
                         "or give --points-only")
    return faces


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lgseg", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=_TopHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, description: str | None = None, **kw) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=description or help[0].upper() + help[1:] + ".",
                              formatter_class=_HelpFormatter, **kw)

    s = command("synth", "generate synthetic scenes in ScanNet v2's raw layout (the demo's data)")
    s.add_argument("--out", type=Path, required=True,
                   help="folder to write: scans/, scans_test/, the labels tsv and the split lists")
    s.add_argument("--scenes", type=_Number(int, 1, 10000), default=40, help="how many scenes (split 70/20/10 into train/val/test)")
    s.add_argument("--seed", type=SEED, default=0, help="random seed: the same seed writes the same scenes")
    s.add_argument("--workers", type=WORKERS, default=1, help="processes writing scenes in parallel")
    from lgseg.synthetic.size import FRAMES, OBJECTS, TRAIN_MIN, VAL_MIN  # no imports: every command builds this parser

    s.add_argument("--objects", type=_triple("--objects", ("train", "val", "test")), default=OBJECTS,
                   metavar="TRAIN,VAL,TEST", help="objects per room of each scene split (params.yaml's "
                   "data.synthetic.objects)")
    s.add_argument("--train-min", type=_triple("--train-min", ("head", "common", "tail")), default=TRAIN_MIN,
                   metavar="HEAD,COMMON,TAIL", help="guaranteed train instances of every class of each class "
                   "split (data.synthetic.train_min)")
    s.add_argument("--val-min", type=COUNT, default=VAL_MIN, help="guaranteed val instances of every class "
                   "(data.synthetic.val_min)")
    s.add_argument("--frames", type=_Number(int, 0, 1000), default=FRAMES,
                   help="RGB-D frames recorded per scene as <scene>.sens, with ScanNet's 2D label and instance "
                   "images for train and val scenes; 0: none (data.synthetic.frames)")
    s.set_defaults(func=_synth, reads=(), writes=("out",))

    s = command("preprocess", "raw ScanNet (scans/ + labels tsv), or a Pointcept-layout folder -> per-scene arrays")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--raw", type=Path, help="folder holding scans/ and the labels tsv")
    src.add_argument("--from-processed", type=Path, metavar="DIR",
                     help="a folder already in Pointcept's ScanNet200 layout (<split>/<scene>/*.npy): checked and "
                          "copied, with the stats.json lgseg needs")
    s.add_argument("--out", type=Path, required=True,
                   help="folder to write: <split>/<scene>/*.npy and stats.json (the pipeline's is data/processed)")
    s.add_argument("--workers", type=WORKERS, default=1, help="processes preprocessing scenes in parallel")
    s.add_argument("--keep-going", action="store_true", help="finish the other scenes when one fails")
    s.add_argument("--annotated", type=_Number(float, 0, 1, above=True), default=1.0, metavar="FRACTION",
                   help="keep the labels of this fraction of each train object's points (1: all)")
    s.add_argument("--annotation-rule", default="paper", choices=["paper", "reference"],
                   help="which points a limited annotation keeps: the paper's rule or the authors' code's")
    s.add_argument("--seed", type=SEED, default=0, help="seed of the limited annotations")
    s.add_argument("--bank", type=Path, help="also export the instance bank here (e.g. data/instances)")
    s.add_argument("--bank-classes", default="tail",
                   help="classes of the instance bank: head, common, tail, all or comma-separated names")
    s.set_defaults(func=_preprocess, reads=("raw", "from_processed"), writes=("out", "bank"))

    task = argparse.ArgumentParser(add_help=False)  # the benchmark's two tasks
    task.add_argument("--task", default="semantic", choices=["semantic", "instance"],
                      help="semantic (a raw id per vertex) or instance (the instance benchmark's files)")

    s = command("export-gt", "ground truth as official ScanNet200 benchmark files", parents=[task],
                description="Write the benchmark's ground truth, one <scene>.txt per scene with one integer per "
                "mesh vertex: semantic, the raw ScanNet id (0: none of the 200); instance, label id * 1000 + "
                "instance id (ids from 1; 0: none), as the official instance evaluation reads it.")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--raw", type=Path, help="folder holding scans/ and the labels tsv")
    src.add_argument("--processed", type=Path, metavar="DIR", help="or a preprocessed folder (<split>/<scene>/*.npy)")
    s.add_argument("--out", type=Path, required=True, help="folder to write <scene>.txt files to")
    s.add_argument("--split", default="val", choices=["train", "val"], help="which scenes")
    s.set_defaults(func=_export_gt, reads=("raw", "processed"), writes=("out",))

    s = command("evaluate", "score benchmark-format predictions against ground truth", parents=[task],
                description="Score benchmark files. semantic: mIoU, precision and recall over head, common, tail "
                "and all. instance: the official ScanNet instance evaluation on ScanNet200's 198 instance "
                "classes (the 200 without wall and floor): AP over IoU 0.50-0.90, AP50, AP25.")
    s.add_argument("--pred", type=Path, required=True, help="folder of <scene>.txt predictions")
    s.add_argument("--gt", type=Path, required=True, help="folder of <scene>.txt ground truth")
    s.add_argument("--out", type=Path, required=True, help="metrics JSON to write")
    s.add_argument("--per-class", type=Path, help="also write the per-class CSV here")
    s.add_argument("--min-region", type=COUNT, default=100, metavar="VERTICES",
                   help="instance: smallest ground-truth instance and prediction scored (the benchmark's 100)")
    s.set_defaults(func=_evaluate, reads=("pred", "gt"), writes=("out", "per_class"))

    s = command("predict", "benchmark files (<scene>.txt per scene) of a split from a model or checkpoint",
                parents=[task],
                description="Predict every mesh vertex of a split. The authors' Lightning checkpoints "
                "do not record their architecture or voxel size: give --model and --voxel-size "
                "(e.g. --model Res16UNet34C --voxel-size 0.02). --task instance (an instance model, "
                "models/insseg.pt) clusters the vertices shifted by their predicted offsets and writes the "
                "instance benchmark's files (<scene>.txt and pred_mask/); the clustering options' defaults "
                "are the authors' for mesh vertices. Score val with `lgseg evaluate [--task instance]`.")
    s.add_argument("--checkpoint", type=Path, required=True,
                   help="lgseg model file (models/finetune.pt) or the authors' .ckpt (needs --model, --voxel-size)")
    s.add_argument("--data", "--processed", dest="data", type=Path, default=Path("data/processed"), metavar="DIR",
                   help="preprocessed scenes (holding <split>/<scene>/)")
    s.add_argument("--split", default="val", choices=["val", "test"], help="which scenes")
    s.add_argument("--out", type=Path, required=True,
                   help="folder to write; it must be new, empty or hold only this split's predictions")
    s.add_argument("--backend", choices=["minkowski", "spconv"],
                   help="sparse-conv engine (default: the model file's; minkowski for other checkpoints)")
    s.add_argument("--model", help="architecture of a checkpoint that does not record it, e.g. Res16UNet34C")
    s.add_argument("--voxel-size", type=_voxel_size,
                   help="voxel size in metres of such a checkpoint (the authors': 0.02)")
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where the network runs (auto: the GPU if one is visible)")
    s.add_argument("--force", action="store_true",
                   help="replace <scene>.txt files in --out that lgseg did not mark as its predictions (by "
                        "default refused: they may be ground truth from other scripts)")
    c = s.add_argument_group("clustering (--task instance; params.yaml's insseg.cluster_* in the pipeline)")
    c.add_argument("--radius", type=METRES, default=0.02, metavar="M",
                   help="shifted vertices this close, of one predicted class, join one instance")
    c.add_argument("--min-points", type=POSITIVE_INT, default=50, help="smaller connected components are dropped")
    c.add_argument("--propose-points", type=COUNT, default=250, help="an instance needs more vertices than this")
    c.add_argument("--score", default="median", choices=["median", "mean"],
                   help="an instance's confidence: the median or mean of its class logit over its vertices")
    c.add_argument("--score-threshold", type=_Number(float), help="drop instances below this confidence (default: keep all)")
    c.add_argument("--dual-set", action="store_true",
                   help="PointGroup's dual set: also cluster the original vertices, then NMS")
    c.add_argument("--dual-radius", type=METRES, default=0.03, metavar="M", help="the original vertices' radius")
    s.set_defaults(func=_predict, reads=("checkpoint", "data"), writes=("out",))

    scene = argparse.ArgumentParser(add_help=False)  # what the commands that look at one scene share
    scene.add_argument("--scene", required=True, help="scene id, e.g. scene0011_00")
    scene.add_argument("--processed", type=Path, default=Path("data/processed"), metavar="DIR",
                       help="preprocessed scenes (holding <split>/<scene>/)")
    pred = argparse.ArgumentParser(add_help=False)
    pred.add_argument("--pred", type=Path, metavar="DIR", help="folder of <scene>.txt predictions (e.g. predictions/)")
    pred.add_argument("--instances", type=Path, metavar="DIR",
                      help="colour by predicted instance: a folder of instance predictions (e.g. predictions_instance/)")
    raw = argparse.ArgumentParser(add_help=False)
    raw.add_argument("--raw", type=Path, default=Path("data/raw"), metavar="DIR",
                     help="raw ScanNet folder holding scans/<scene>/ (for the mesh's faces)")
    raw.add_argument("--points-only", action="store_true",
                     help="write the PLY's vertices without faces (no raw folder needed)")

    s = command("render", "picture of a scene: ground truth, prediction and error (or instances), two views; "
                "or one of its RGB-D frames with what the image side made of it (--frame)", parents=[scene, pred])
    s.add_argument("--out", type=Path, required=True, metavar="PNG", help="picture to write")
    f = s.add_argument_group("a frame (--frame): its colour, 2D labels, the teacher's readout and the lifted features")
    f.add_argument("--frame", type=COUNT, metavar="INDEX", help="picture this frame of the scene instead")
    f.add_argument("--frames", type=Path, default=Path("data/frames"), metavar="DIR",
                   help="the frame folders (holding <split>/<scene>/)")
    f.add_argument("--lifted", type=Path, default=Path("data/lifted"), metavar="DIR",
                   help="the lifted features (holding <split>/<scene>/)")
    f.add_argument("--text", type=Path, default=Path("data/text"), metavar="DIR", help="the text anchors")
    f.add_argument("--teacher", type=Path, default=Path("models/teacher.pt"), metavar="FILE",
                   help="the demo teacher, for its per-pixel readout (left out when there is no such file)")
    s.set_defaults(func=_render, reads=("processed", "pred", "instances", "frames", "lifted", "text", "teacher"),
                   writes=("out",))

    s = command("export-ply", "the scene's mesh coloured by label (prediction, else ground truth) or by instance",
                parents=[scene, pred, raw])
    s.add_argument("--out", type=Path, required=True, metavar="PLY", help="mesh to write")
    s.set_defaults(func=_export_ply, reads=("processed", "pred", "instances", "raw"), writes=("out",))

    s = command("query", "score every vertex of a scene against a text (language-grounded backbone)",
                parents=[scene, raw])
    s.add_argument("--text", required=True, help='any words, e.g. "fire extinguisher"')
    s.add_argument("--checkpoint", type=Path, default=Path("models/pretrain.pt"), metavar="FILE",
                   help="the language-grounded backbone from pretraining")
    s.add_argument("--encoder", help="text encoder (default: the checkpoint's; another one is an error)")
    s.add_argument("--clip-weights", help="CLIP weights file (default: ~/.cache/clip/<model>.pt, see download-clip)")
    s.add_argument("--out", type=Path, required=True, metavar="PNG", help="heat map picture to write")
    s.add_argument("--ply", type=Path, metavar="PLY",
                   help="also write the mesh coloured by the heat map (score as quality)")
    s.set_defaults(func=_query, reads=("processed", "raw", "checkpoint", "clip_weights"), writes=("out", "ply"))

    s = command("download-clip", "download OpenAI's CLIP weights (needs internet) and check their SHA-256",
                description="Download a CLIP model's published weights from the URL that the openai-clip "
                "package lists, check the SHA-256 that the URL names and put the file in place only when it "
                "matches (as clip.load() would, without importing clip). text.encoder: clip and `lgseg query` "
                "read it from ~/.cache/clip/ (or text.clip_weights / --clip-weights). On a machine without "
                "internet, run this on one that has it and copy the file.")
    s.add_argument("model", nargs="?", default="ViT-B/32",
                   help="CLIP model: RN50, RN101, RN50x4, RN50x16, RN50x64, ViT-B/32, ViT-B/16, ViT-L/14 or "
                   "ViT-L/14@336px")
    s.add_argument("--dir", type=Path, default=Path("~/.cache/clip"), metavar="DIR",
                   help="folder to write the weights to")
    s.add_argument("--timeout", type=_Number(float, 0, 3600, above=True), default=30.0, metavar="SECONDS",
                   help="seconds to wait for the server to answer")
    s.set_defaults(func=_download_clip, reads=(), writes=("dir",))

    s = command("download-weights", "download a 2D teacher's published weights (SAM, DINO; needs internet)",
                description="Download a 2D teacher's weights from their publisher's URL into the folder the "
                "teachers read (teacher.*.weights overrides it), put in place only once complete. SAM's files are "
                "checked against their published SHA-256; DINO's have none published, so they are refused unless "
                "--no-checksum (the SHA-256 is printed either way). CLIP's weights: lgseg download-clip.")
    s.add_argument("name", help="which weights, e.g. sam_vit_h, sam_vit_b, dino_vitb8, dinov2_vitl14 (an unknown "
                   "name lists them all)")
    s.add_argument("--dir", type=Path, default=Path("~/.cache/lgseg/weights"), metavar="DIR",
                   help="folder to write the weights to")
    s.add_argument("--timeout", type=_Number(float, 0, 3600, above=True), default=30.0, metavar="SECONDS",
                   help="seconds to wait for the server to answer")
    s.add_argument("--no-checksum", action="store_true",
                   help="accept weights no SHA-256 is published for (DINO's), unverified")
    s.set_defaults(func=_download_weights, reads=(), writes=("dir",))

    s = command("queue", "queue the DVC experiments of the paper's Table 1, Table 2, Fig. 5 or Fig. 7",
                description="Queue the DVC experiments of a table (dvc exp run --queue -n NAME -S ...), leaving "
                "out those already run or queued. Every experiment runs the whole pipeline, so Table 2's rows "
                "are Table 1's experiments of the same methods (t1-scratch, t1-csc, t1-clip-only, t1-ours).")
    s.add_argument("which", choices=["table1", "table2", "fig5", "fig7", "zeroshot", "all"],
                   help="which experiments")
    s.add_argument("--start", action="store_true", help="also start the queue (dvc queue start)")
    s.add_argument("--seeds", type=_Number(int, 1, 100), default=None,
                   help="queue each row N times, pretrain.seed and finetune.seed = 42, 43, ... (named <row>-s<seed>); "
                        "default: once, with params.yaml's seeds")
    s.set_defaults(func=_queue, reads=(), writes=())

    s = command("report", "Table 1, Table 2, Fig. 5 and Fig. 7 (Markdown + PNG) from the DVC experiments",
                description="Write Table 1, Table 2, Fig. 5 and Fig. 7 (Markdown + PNG) from the DVC experiments "
                "(`dvc exp show`) and from the runs an earlier report kept in the folder (runs.json: the "
                "experiments themselves live in one clone's git refs and DVC cache).")
    s.add_argument("--out", type=Path, default=Path("reports"),
                   help="folder to write table1.*, table2.*, fig5.*, fig7.* and runs.json to")
    s.add_argument("--exp-json", type=Path, help="`dvc exp show --json` output to read instead of running it")
    s.set_defaults(func=_report, reads=("exp_json",), writes=("out",))

    s = command("check-params", "check a params file (every key, type, range, choice) and list "
                "every problem, one line each")
    s.add_argument("file", nargs="?", type=Path, default=Path("params.yaml"),
                   help="params.yaml or a profile such as profiles/paper.yaml")
    s.set_defaults(func=_check_params, reads=("file",), writes=())
    return p


def check_outputs(a: argparse.Namespace) -> None:
    """No output of a command lies in, is or holds one of its inputs (``a.reads``: every option that
    names something it reads), and no two of its outputs are one path (``a.writes``), before it
    runs. The commands' own checks (products, marks) come on top."""
    from lgseg.fileio import check_not_an_input, overlaps

    inputs = [getattr(a, k) for k in a.reads]
    outputs = [(k, getattr(a, k)) for k in a.writes if getattr(a, k) is not None]
    for key, out in outputs:
        check_not_an_input(out, inputs, option=_option(key))
    for i, (key, out) in enumerate(outputs):
        for other, path in outputs[i + 1:]:
            if overlaps(Path(out), Path(path)):
                raise LgsegError(f"{_option(key)} {out} and {_option(other)} {path} are one path (or one lies "
                                 "inside the other): the second write would replace the first. Give each its own")


def _option(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        check_outputs(args)
        args.func(args)
    except LgsegError as e:
        print(f"lgseg {args.command}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
