"""Writing the synthetic set in ScanNet v2's raw layout (``lgseg.scannet.layout`` names every
file): the scenes' PLY, segs, aggregation and metadata files, the labels tsv and the split lists."""

from __future__ import annotations

import json
import multiprocessing
import shutil
from collections import Counter
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from plyfile import PlyData, PlyElement, PlyListProperty
from tqdm import tqdm

from lgseg.errors import InputError
from lgseg.fileio import atomic_dir, atomic_file, mark_product
from lgseg.scannet.constants import CLASS_NAMES, SPLITS, is_scene_id
from lgseg.scannet.layout import LABELS_TSV, SPLIT_NAMES, scan_dir, scene_file_name, split_list_path
from lgseg.synthetic.labels import TSV_EOL, TSV_COLUMNS, allocate, tsv_rows
from lgseg.synthetic.scene import _build_scene
from lgseg.synthetic.size import OBJECTS, TRAIN_MIN, VAL_MIN

RAW_SCANS = "raw scans"  # the product mark of the folder generate writes (lgseg.fileio.claim_folder)

SEGS_PARAMS = {"kThresh": "0.0001", "segMinVerts": "20", "minPoints": "750", "maxPoints": "30000",
               "thinThresh": "0.05", "flatThresh": "0.001", "minLength": "0.02", "maxLength": "1"}
SCENE_TYPES = ("Apartment", "Bathroom", "Bedroom / Hotel", "Bookstore / Library", "Classroom",
               "Conference Room", "Copy/Mail Room", "Dining Room", "Kitchen", "Laundry Room",
               "Living room / Lounge", "Lobby", "Misc.", "Office", "Storage/Basement/Garage")


def _write_ply(path: Path, verts: np.ndarray, colors: np.ndarray, faces: np.ndarray) -> None:
    """Binary little-endian PLY, byte-identical to ``PlyData.write`` (plyfile's header), but with
    the face list packed by numpy: plyfile writes list properties one row at a time, too slowly."""
    vertex = np.empty(len(verts), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"),
                                         ("green", "u1"), ("blue", "u1"), ("alpha", "u1")])
    vertex["x"], vertex["y"], vertex["z"] = verts.T
    vertex["red"], vertex["green"], vertex["blue"] = colors.T
    vertex["alpha"] = 255
    face_el = PlyElement("face", [PlyListProperty("vertex_indices", "uint8", "int32")], len(faces))
    header = PlyData([PlyElement.describe(vertex, "vertex"), face_el], byte_order="<",
                     comments=["VCGLIB generated"]).header
    packed = np.empty(len(faces), dtype=[("n", "u1"), ("v", "<i4", (3,))])
    packed["n"], packed["v"] = 3, faces
    with open(path, "wb") as f:  # inside the scene's atomic_dir already
        f.write(header.encode("ascii") + b"\n")
        f.write(vertex.tobytes())
        f.write(packed.tobytes())


def _scene_info(rng: np.random.Generator, align: np.ndarray) -> str:
    """The <scene>.txt metadata: real ScanNet's keys, in its order."""
    frames = int(rng.integers(800, 5000))
    extrinsics = "1.000000 0.000000 0.000000 -0.051958 0.000000 1.000000 0.000000 0.000000 " \
                 "0.000000 0.000000 1.000000 0.000000 0.000000 0.000000 0.000000 1.000000"
    lines = [
        "axisAlignment = " + " ".join(f"{v:.6f}" for v in align.ravel()),
        "colorHeight = 968", f"colorToDepthExtrinsics = {extrinsics}", "colorWidth = 1296",
        "depthHeight = 480", "depthWidth = 640",
        "fx_color = 1170.187988", "fx_depth = 571.623718", "fy_color = 1170.187988", "fy_depth = 571.623718",
        "mx_color = 647.750000", "mx_depth = 319.500000", "my_color = 483.750000", "my_depth = 239.500000",
        f"numColorFrames = {frames}", f"numDepthFrames = {frames}",
        f"numIMUmeasurements = {int(frames * rng.uniform(2.0, 2.2))}",
        f"sceneType = {SCENE_TYPES[int(rng.integers(len(SCENE_TYPES)))]}",
    ]
    return "\n".join(lines) + "\n"


def _write_scene(out_dir: Path, scene: str, split: str, scene_rng: np.random.Generator,
                 spacing: float, noise_std: float, classes: Sequence[tuple[int, bool]], frames: int = 0,
                 camera_rng: np.random.Generator | None = None) -> dict:
    sc = _build_scene(scene_rng, spacing, noise_std, classes)
    info = _scene_info(scene_rng, sc.align)
    final = out_dir / scan_dir(split) / scene
    with atomic_dir(final) as d:  # d is a temporary name: files are named by the scene id, not d.name
        _write_ply(d / scene_file_name(scene, "mesh"), sc.verts, sc.colors, sc.faces)
        segs = {"params": SEGS_PARAMS, "sceneId": scene, "segIndices": sc.seg_ids.tolist()}
        (d / scene_file_name(scene, "segs")).write_text(json.dumps(segs))
        if split != "test":
            agg = {"sceneId": f"scannet.{scene}", "appId": "Aggregator.v2",
                   "segGroups": [{"id": k, "objectId": k, "segments": segs_, "label": label}
                                 for k, (label, segs_) in enumerate(sc.groups)],
                   "segmentsFile": f"scannet.{scene_file_name(scene, 'segs')}"}
            (d / scene_file_name(scene, "aggregation")).write_text(json.dumps(agg))
        (d / scene_file_name(scene, "meta")).write_text(info)
        if frames:
            _record_frames(d, scene, split, sc, frames, camera_rng)
    return {"scene": scene, "split": split, "vertices": len(sc.verts), "frames": frames,
            "classes": [o.class_index for o in sc.objects],
            "labelled": [o.class_index for o in sc.objects if o.labelled and o.class_index >= 0]}


def _record_frames(d: Path, scene: str, split: str, sc, frames: int, rng: np.random.Generator) -> None:
    """The room's RGB-D frames (``lgseg.synthetic.frames``); test scenes get no 2D projections, as in
    ScanNet. The camera keeps clear of the objects' boxes (walls and floor are the room's bounds)."""
    from lgseg.synthetic.camera import instance_boxes
    from lgseg.synthetic.frames import label_table, record, vertex_annotation

    labels, instances = vertex_annotation(sc.seg_ids, sc.groups, label_table(tsv_rows()))
    structure = np.array([label in ("wall", "floor") for label, _ in sc.groups] + [True])  # index -1: no group
    objects = instances - 1  # segGroup index, -1 none
    objects[structure[objects]] = -1
    room = sc.verts @ sc.align[:3, :3].T + sc.align[:3, 3]
    annotated = split != "test"
    record(d, scene, sc.verts, sc.faces, sc.colors, sc.align, labels if annotated else None,
           instances if annotated else None, frames, rng, obstacles=instance_boxes(room, objects))


def write_labels_tsv(path: str | Path) -> None:
    """Write ``scannetv2-labels.combined.tsv`` (17 official columns, ``\\r\\r\\n`` line endings)."""
    lines = ["\t".join(TSV_COLUMNS)] + ["\t".join(r) for r in tsv_rows()]
    with atomic_file(path, "wb") as f:
        f.write(b"".join(line.encode() + TSV_EOL for line in lines))


def split_counts(n: int, fractions: Sequence[float] = (0.7, 0.2, 0.1)) -> tuple[int, int, int]:
    """(train, val, test) scene counts: rounded fractions, with at least one val scene when
    n >= 2 and one test scene when n >= 3 (if their fraction is non-zero); train gets the rest."""
    f = np.asarray(fractions, float)
    if f.shape != (3,) or (f < 0).any() or f.sum() <= 0:
        raise ValueError(f"split fractions must be 3 non-negative numbers, got {fractions!r}")
    f = f / f.sum()
    n_test = round(n * f[2]) if n >= 3 or f[:2].sum() == 0 else 0
    n_test = max(n_test, 1) if n >= 3 and f[2] > 0 else n_test
    n_val = round(n * f[1]) if n >= 2 else 0
    n_val = max(n_val, 1) if n >= 2 and f[1] > 0 else n_val
    n_val, n_test = min(n_val, n - 1), min(n_test, max(n - 1 - n_val, 0))
    return n - n_val - n_test, n_val, n_test


def _scene_job(args: tuple) -> dict:
    out_dir, i, scene, split, seed, spacing, noise_std, classes, frames = args
    rng = np.random.default_rng([seed, i])  # depends on (seed, i) and the dealt classes only, not on the worker
    camera_rng = np.random.default_rng([seed, i, 2])  # the camera path's own: frames change no mesh byte
    return _write_scene(Path(out_dir), scene, split, rng, spacing, noise_std, classes, frames, camera_rng)


def _prune_stale(out_dir: Path, keep: dict[str, set[str]]) -> None:
    """Remove scene folders (and leftover temp folders) that the current run did not write."""
    for sub, names in keep.items():
        base = out_dir / sub
        if not base.is_dir():
            continue
        for d in base.iterdir():
            stale_scene = is_scene_id(d.name) and d.name not in names
            leftover_tmp = d.name.startswith(".scene") and ".tmp-" in d.name
            if d.is_dir() and (stale_scene or leftover_tmp):
                shutil.rmtree(d)


def deal(num_scenes: int, seed: int, objects: Mapping[str, int], train_min: Mapping[str, int], val_min: int,
         split_fractions: Sequence[float] = (0.7, 0.2, 0.1)) -> list[list[tuple[int, bool]]]:
    """The classes dealt to each scene, from the seed alone: ``objects[split]`` per room
    (``labels.allocate``), where train rooms guarantee ``train_min[s]`` instances of every class
    of the head/common/tail split s, val rooms ``val_min`` of every class, test rooms none."""
    n_train, n_val, n_test = split_counts(num_scenes, split_fractions)
    rng = np.random.default_rng([seed, 1 << 20, 1])  # never a scene's (seed, i)
    return (allocate(rng, n_train, objects["train"], train_min)
            + allocate(rng, n_val, objects["val"], {s: val_min for s in SPLITS})
            + allocate(rng, n_test, objects["test"], {s: 0 for s in SPLITS}))


def params_options(section: Mapping) -> dict:
    """``generate``'s keyword arguments from params.yaml's ``data.synthetic`` section."""
    return {"num_scenes": section["scenes"], "seed": section["seed"], "objects": dict(section["objects"]),
            "train_min": dict(section["train_min"]), "val_min": section["val_min"],
            "frames": section.get("frames", 0)}


def generate(out_dir: str | Path, num_scenes: int, seed: int = 0, workers: int = 1, progress: bool = True,
             *, objects: Mapping[str, int] | None = None, train_min: Mapping[str, int] | None = None,
             val_min: int = VAL_MIN, spacing: float = 0.04, noise_std: float = 0.004,
             split_fractions: Sequence[float] = (0.7, 0.2, 0.1), frames: int = 0) -> dict:
    """Write ``num_scenes`` synthetic rooms in ScanNet v2's raw layout under ``out_dir``.

    Scenes ``scene0000_00`` ... are split in order into train, val and test (``split_counts``).
    Each room gets ``objects[split]`` objects of the 200 classes (``deal``: the guaranteed
    instances ``train_min`` / ``val_min`` first, the rest long-tailed) plus label traps, in a room
    sized for them.  ``spacing`` is the object mesh grid step in metres (walls/floor use 1.5x),
    ``noise_std`` the Gaussian vertex noise.  ``frames``: RGB-D frames recorded per scene
    (``<scene>.sens`` and, for train and val scenes, the 2D label and instance projections; 0: none).
    Existing scene folders of an earlier run that this run does not write are removed.  Returns a summary: scenes per split, vertex counts, objects
    per class, labelled instances per class and split.
    """
    out_dir = Path(out_dir)
    train_min = dict(TRAIN_MIN if train_min is None else train_min)
    objects = dict(OBJECTS if objects is None else objects)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(out_dir, "exists and is not a directory", "Choose another output folder.")
    if num_scenes < 1 or num_scenes > 10000:
        raise ValueError(f"num_scenes must be in 1..10000, got {num_scenes}")
    if not spacing > 0.005 or noise_std < 0:
        raise ValueError(f"need spacing > 0.005 m and noise_std >= 0, got {spacing}, {noise_std}")
    if (set(objects) != set(SPLIT_NAMES) or min(objects.values()) < 1 or val_min < 0
            or set(train_min) != set(SPLITS) or min(train_min.values()) < 0):
        raise ValueError(f"need objects >= 1 for each of {', '.join(SPLIT_NAMES)}, val_min >= 0 and train_min "
                         f">= 0 for each of {', '.join(SPLITS)}; got {objects}, {val_min}, {train_min}")
    n_train, n_val, _ = split_counts(num_scenes, split_fractions)
    scenes = [f"scene{i:04d}_00" for i in range(num_scenes)]
    splits = ["train" if i < n_train else "val" if i < n_train + n_val else "test" for i in range(num_scenes)]
    dealt = deal(num_scenes, seed, objects, train_min, val_min, split_fractions)
    if not 0 <= frames <= 1000:
        raise ValueError(f"frames must be in 0..1000, got {frames}")
    jobs = [(str(out_dir), i, scenes[i], splits[i], seed, spacing, noise_std, dealt[i], frames)
            for i in range(num_scenes)]

    out_dir.mkdir(parents=True, exist_ok=True)
    workers = max(1, min(workers, num_scenes))
    bar = tqdm(total=num_scenes, desc="synth scenes", unit="scene", disable=not progress)
    if workers == 1:
        results = []
        for job in jobs:
            results.append(_scene_job(job))
            bar.update()
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:  # no inherited locks (see preprocess)
            results = []
            for r in pool.imap(_scene_job, jobs):
                results.append(r)
                bar.update()
    bar.close()

    write_labels_tsv(out_dir / LABELS_TSV)
    mark_product(out_dir, RAW_SCANS)
    by_split = {s: [sc for sc, sp in zip(scenes, splits) if sp == s] for s in SPLIT_NAMES}
    for split, names in by_split.items():
        with atomic_file(split_list_path(out_dir, split)) as f:
            f.write("".join(f"{n}\n" for n in names))
    _prune_stale(out_dir, {scan_dir("train"): set(by_split["train"] + by_split["val"]),
                           scan_dir("test"): set(by_split["test"])})

    per_class = Counter(CLASS_NAMES[c] for r in results for c in r["classes"] if c >= 0)
    instances = {s: Counter(CLASS_NAMES[c] for r in results if r["split"] == s for c in r["labelled"])
                 for s in ("train", "val")}
    vertices = [r["vertices"] for r in results]
    return {
        "out_dir": str(out_dir), "seed": seed,
        "scenes": {s: len(v) for s, v in by_split.items()},
        "total_vertices": int(sum(vertices)),
        "vertices_per_scene": {"min": min(vertices), "mean": int(np.mean(vertices)), "max": max(vertices)},
        "ignored_objects": sum(c < 0 for r in results for c in r["classes"]),
        "objects_per_class": dict(sorted(per_class.items(), key=lambda kv: (-kv[1], kv[0]))),
        "labelled_instances": {s: dict(sorted(c.items())) for s, c in instances.items()},
    }
