"""Raw ScanNet scenes -> per-scene arrays in the Pointcept layout (``lgseg.scene_io``), plus train
statistics (``stats.json``: per-class train point and instance counts). ``import_processed`` does
the same from a folder already in that layout (Pointcept's own preprocessing): it checks and copies
the scenes and counts what lgseg needs.

Each scene directory appears atomically, so a failure leaves nothing half-written;
the temporaries of a killed run are removed by the next one.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing as mp
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lgseg.errors import InputError, LgsegError
from lgseg.fileio import atomic_dir, remove_stale_temporaries, write_json
from lgseg.scannet.annotation import RULES as ANNOTATION_RULES
from lgseg.scannet.annotation import limit_annotations
from lgseg.scannet.constants import CLASS_NAMES, NUM_CLASSES, VALID_CLASS_IDS, check_scene_id
from lgseg.scannet.labels import LabelTable, vertex_segment200
from lgseg.scannet.layout import LABELS_TSV
from lgseg.scannet.raw import read_scene
from lgseg.scannet.splits import SPLIT_NAMES, scene_path, scene_splits
from lgseg.scene_io import processed_scenes, read_scene_arrays, split_dir, stats_path, write_scene

log = logging.getLogger(__name__)


@dataclass
class SceneResult:
    scene: str
    split: str
    vertices: int = 0
    class_points: np.ndarray | None = None  # (200,) labelled vertices per class
    class_instances: np.ndarray | None = None  # (200,) instances per class
    error: str | None = None


@dataclass
class PreprocessReport:
    done: list[SceneResult] = field(default_factory=list)
    failed: list[SceneResult] = field(default_factory=list)


def process_scene(raw_dir: Path, out_dir: Path, scene: str, split: str, table: LabelTable | None,
                  annotation: dict | None = None) -> SceneResult:
    """Read, label and write one scene; test scenes (no annotations) get geometry only.

    ``annotation`` (``fraction``, ``rule``, ``seed``; see ``lgseg.scannet.annotation``) limits the
    labels of train scenes to a fraction of each object's points.
    """
    annotated = split != "test"
    final = scene_path(split_dir(out_dir, split), scene)
    raw = read_scene(raw_dir, scene, annotations=annotated, normals=True)
    result = SceneResult(scene, split, raw.num_vertices)
    segment = instance = None
    if annotated:
        segment, instance = vertex_segment200(raw, table)
        segment = _labelled(result, segment, raw.coord, instance, annotation)
    with atomic_dir(final) as tmp:
        write_scene(tmp, raw.coord, raw.color, segment, instance, normal=raw.normal)
    return result


def import_scene(src_dir: Path, out_dir: Path, scene: str, split: str, annotation: dict | None = None) -> SceneResult:
    """Check and copy one scene of a processed-layout folder (``lgseg.scene_io.read_scene_arrays``:
    int64 labels become int16/int32); its normals come along when it has them. Test scenes: geometry
    only. ``annotation`` limits the labels of train scenes as ``process_scene`` does."""
    annotated = split != "test"
    final = scene_path(split_dir(out_dir, split), scene)
    arrays = read_scene_arrays(split_dir(src_dir, split) / check_scene_id(scene), scene, labels=annotated)
    result = SceneResult(scene, split, len(arrays["coord"]))
    segment, instance = arrays.get("segment200"), arrays.get("instance")
    if annotated:
        segment = _labelled(result, segment, arrays["coord"], instance, annotation)
    with atomic_dir(final) as tmp:
        write_scene(tmp, arrays["coord"], arrays["color"], segment, instance, normal=arrays.get("normal"))
    return result


def _labelled(result: SceneResult, segment: np.ndarray, coord: np.ndarray, instance: np.ndarray,
              annotation: dict | None) -> np.ndarray:
    """A train scene's labels limited to ``annotation``'s fraction (others as they are); their class
    counts go into ``result``."""
    if result.split == "train" and annotation and annotation["fraction"] < 1:
        segment = limit_annotations(segment, coord, instance, annotation["fraction"], annotation["rule"],
                                    annotation["seed"], result.scene)
    result.class_points, result.class_instances = _class_counts(segment, instance)
    return segment


def _class_counts(segment: np.ndarray, instance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labelled = segment >= 0
    points = np.bincount(segment[labelled], minlength=NUM_CLASSES)
    # an instance counts once for each class its labelled vertices carry (normally exactly one)
    both = labelled & (instance >= 0)
    pairs = np.unique(instance[both].astype(np.int64) * NUM_CLASSES + segment[both])
    instances = np.bincount(pairs % NUM_CLASSES, minlength=NUM_CLASSES)
    return points.astype(np.int64), instances.astype(np.int64)


_TABLE: LabelTable | None = None  # set once per worker process, not pickled with every job
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _init_worker(table: LabelTable) -> None:
    global _TABLE
    _TABLE = table


def _init_pool_worker(table: LabelTable, parent: int) -> None:
    _init_worker(table)
    _exit_with_parent(parent)


def _exit_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this worker when its parent dies: a killed run's workers would
    otherwise finish their scene and die on a BrokenPipeError traceback sending it back. (Linux
    only, the platform lgseg runs on; elsewhere a killed run's workers end as described.)"""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _from_raw(raw_dir: Path, out_dir: Path, scene: str, split: str, annotation: dict | None) -> SceneResult:
    return process_scene(raw_dir, out_dir, scene, split, _TABLE, annotation)


def _worker(job) -> SceneResult:
    """One scene's job; whatever fails in it is that scene's failure, so --keep-going goes on to the
    others. Checked input problems are LgsegErrors naming the file; anything else (an input no check
    foresaw, or a bug) becomes one line naming the scene and the exception, never an aborted run."""
    fn, source, out_dir, scene, split, annotation = job  # fn: _from_raw or import_scene
    try:
        return fn(source, out_dir, scene, split, annotation)
    except LgsegError as e:
        return SceneResult(scene, split, error=str(e))
    except Exception as e:  # noqa: BLE001 -- reported per scene, with the exception named
        log.debug("scene %s failed", scene, exc_info=True)
        detail = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        return SceneResult(scene, split, error=f"scene {scene}: unexpected {detail} (an input problem lgseg does "
                                               "not check yet, or a bug: please report it with this scene's files)")


def preprocess(raw_dir: str | Path, out_dir: str | Path, workers: int = 1, keep_going: bool = False,
               splits: tuple[str, ...] = ("train", "val", "test"), progress: bool = True,
               annotation: dict | None = None) -> PreprocessReport:
    """Preprocess every scene of the split lists. Raises LgsegError naming each failed scene.

    ``annotation``: limited annotations of the train scenes (``fraction``, ``rule``, ``seed``).
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    annotation = _annotation(annotation)
    table = LabelTable.read(raw_dir / LABELS_TSV)
    lists = scene_splits(raw_dir)
    jobs = [(_from_raw, raw_dir, out_dir, s, split, annotation) for split in splits for s in lists[split]]
    if not jobs:
        raise InputError(raw_dir, "no scenes listed in the split files", "check scannetv2_*.txt")
    return _run(jobs, out_dir, table, workers, keep_going, progress, annotation)


def import_processed(src_dir: str | Path, out_dir: str | Path, workers: int = 1, keep_going: bool = False,
                     progress: bool = True, annotation: dict | None = None) -> PreprocessReport:
    """Check and copy every scene of ``src_dir``, a folder in the processed layout (Pointcept's
    ScanNet200 preprocessing, or lgseg's), into ``out_dir`` and write its stats.json, as
    ``preprocess`` does from raw scans. The splits are the folder's own (``processed_scenes``).
    Raises LgsegError naming each failed scene."""
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    annotation = _annotation(annotation)
    lists = processed_scenes(src_dir)
    jobs = [(import_scene, src_dir, out_dir, s, split, annotation) for split in SPLIT_NAMES for s in lists[split]]
    return _run(jobs, out_dir, None, workers, keep_going, progress, annotation)


def _annotation(annotation: dict | None) -> dict | None:
    if not annotation:
        return annotation
    annotation = {"fraction": float(annotation.get("fraction", 1.0)),
                  "rule": annotation.get("rule", "paper"), "seed": int(annotation.get("seed", 0))}
    if not 0 < annotation["fraction"] <= 1 or annotation["rule"] not in ANNOTATION_RULES:
        raise LgsegError(f"annotation.fraction must be in (0, 1] and annotation.rule one of "
                         f"{', '.join(ANNOTATION_RULES)}, not {annotation}")
    return annotation


def _run(jobs: list, out_dir: Path, table: LabelTable | None, workers: int, keep_going: bool, progress: bool,
         annotation: dict | None) -> PreprocessReport:
    """Run the scene jobs (in ``workers`` processes), then write stats.json; raise naming the failures."""
    _remove_stale_temporaries(out_dir)
    report = PreprocessReport()
    bar = tqdm(total=len(jobs), desc="preprocess", unit="scene", disable=not progress)
    _init_worker(table)
    # spawn, not fork: the caller may run threads (MLflow's, tqdm's monitor) whose locks a forked
    # worker would inherit held, and wait on forever (a preprocess stage hung so in a CI run)
    pool = (mp.get_context("spawn").Pool(workers, _init_pool_worker, (table, os.getpid())) if workers > 1
            else _Inline())
    with pool:
        for res in pool.imap_unordered(_worker, jobs):
            bar.update()
            (report.failed if res.error else report.done).append(res)
            if res.error and not keep_going:
                bar.close()
                raise LgsegError(f"preprocessing failed: {res.error} (--keep-going processes the other "
                                 "scenes and lists every failure)")
    bar.close()
    write_json(stats_path(out_dir), {**_stats(report), "annotation": annotation or {"fraction": 1.0}})
    if report.failed:
        lines = "\n".join(f"  {r.error}" for r in sorted(report.failed, key=lambda r: r.scene))
        raise LgsegError(f"{len(report.failed)} of {len(jobs)} scene(s) failed; the others were "
                         f"written to {out_dir}:\n{lines}")
    return report


_SCENE_TMP = re.compile(r"\.(scene[0-9]{4}_[0-9]{2})\.tmp-.*")  # atomic_dir's temporary of a scene folder


def _remove_stale_temporaries(out_dir: Path) -> None:
    """Remove what a killed run left in ``out_dir``: the temporaries of scene folders (any scene,
    listed now or not) and of stats.json. fileio decides what is ours by name. (Runs into one
    output folder do not overlap: each would rewrite the same scenes.)"""
    for split in SPLIT_NAMES:
        base = split_dir(out_dir, split)
        if base.is_dir():
            for scene in {m.group(1) for p in base.iterdir() if (m := _SCENE_TMP.fullmatch(p.name))}:
                remove_stale_temporaries(base / scene)
    remove_stale_temporaries(stats_path(out_dir))


def _stats(report: PreprocessReport) -> dict:
    train = [r for r in report.done if r.split == "train"]
    points = sum((r.class_points for r in train), np.zeros(NUM_CLASSES, np.int64))
    instances = sum((r.class_instances for r in train), np.zeros(NUM_CLASSES, np.int64))
    split_scenes = {s: sum(r.split == s for r in report.done) for s in SPLIT_NAMES}
    split_vertices = {s: int(sum(r.vertices for r in report.done if r.split == s)) for s in split_scenes}
    return {
        "scenes": split_scenes,
        "vertices": split_vertices,
        "class_ids": list(VALID_CLASS_IDS),
        "class_names": list(CLASS_NAMES),
        "train_points": points.tolist(),
        "train_instances": instances.tolist(),
    }


class _Inline:
    """Pool stand-in for workers=1: same interface, no subprocesses."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def imap_unordered(self, fn, jobs):
        return map(fn, jobs)
