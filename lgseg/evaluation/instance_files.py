"""ScanNet200 instance benchmark files, their one owner: ground truth and predictions.

Ground truth: ``<gt>/<scene>.txt``, one integer per mesh vertex in mesh order,
``raw_label_id * 1000 + instance_id`` with instance_id = segGroup id + 1 (1..999, as ScanNet's
export and Mask3D write it); 0 = in no instance. An instance whose label is not one of the 200 is
``0 * 1000 + instance_id``, which the evaluator reads as void.

Predictions (the official layout): ``<pred>/<scene>.txt`` holds one line per predicted instance,
``<mask path> <raw label id> <confidence>`` separated by single spaces, the mask path relative to
``<pred>`` (lgseg writes ``pred_mask/<scene>_<k:03d>.txt``); a mask file holds one integer per line,
one line per mesh vertex, non-zero = in the instance.

Stricter than the official reader (util_3d.read_instance_prediction_file), each refusal an
InputError naming the file and line: the official script silently drops a label outside its class
list and reads "5.9" as 5, so a typo would only show as a lower AP; here a label must be a decimal
integer and one of the 200 ids (wall and floor are valid input, simply not evaluated). A confidence
must be finite (NaN sorts arbitrarily in the precision/recall curve). A mask path must resolve,
symlinks followed, inside the prediction folder (the official compares string prefixes, so
``/pred2/..`` passes for ``/pred`` and a symlink can leave it). A mask file listed twice is refused
(the official keys masks by path: the last line silently replaces the first).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lgseg.errors import InputError
from lgseg.evaluation.benchmark import read_benchmark_file, write_benchmark_file
from lgseg.evaluation.folders import INSTANCE_GT, PRED_MASK_DIR, is_scene_file
from lgseg.fileio import atomic_dir, atomic_file, claim_folder, listed_file, mark_product, open_regular
from lgseg.scannet.constants import VALID_CLASS_IDS, check_scene_id, index_to_raw
from lgseg.scannet.splits import scene_folders
from lgseg.scene_io import PREPROCESS_FIX, array_path, read_array, split_dir

LABEL_FACTOR = 1000  # ground truth = raw label id * 1000 + instance id
MAX_INSTANCE_ID = LABEL_FACTOR - 1  # instance ids are 1..999 in that encoding

LINE_FIX = "write one line per instance: <mask path> <raw label id> <confidence>, separated by single spaces"
GT_FIX = "export the instance ground truth again: one label * 1000 + instance id per line, one line per mesh vertex"
LABEL_FIX = "write the raw ScanNet200 id of the class (e.g. 2 = chair)"
MASK_FIX = "write one integer per line (1 = in the instance, 0 = not), one line per mesh vertex, in mesh order"
_LABEL = re.compile(r"[+-]?[0-9]+")
_VALID_IDS = frozenset(VALID_CLASS_IDS)
_MASK_BYTES_PER_VERTEX = 32  # a mask line is a digit and a line break: 32 bytes is generous
# Instances per scene a prediction file may list. Methods submit tens to hundreds per scene (the
# official evaluation scores every listed mask); the bound keeps the (instances x vertices) masks of
# a scene within memory (5000 x 300k vertices: 1.5 GB) and refuses a runaway file before it is parsed.
MAX_PREDICTED_INSTANCES = 5000
_LINE_BYTES = 1024  # a summary line: a mask path, a label id, a confidence
_NEWLINE, _ZERO = ord("\n"), ord("0")


# ---- ground truth ------------------------------------------------------------------------------

def encode_instance_gt(segment200, instance) -> np.ndarray:
    """Per-vertex ``raw_label_id * 1000 + segGroup id + 1`` (int64) from class indices (0..199, -1
    none) and segGroup ids (-1 none); a vertex in an instance without one of the 200 classes gets
    ``0 * 1000 + instance id`` (void), a vertex in no instance 0."""
    segment, inst = np.asarray(segment200), np.asarray(instance)
    if segment.ndim != 1 or segment.shape != inst.shape:
        raise ValueError(f"segment200 and instance must be 1-D of the same length, got {segment.shape} and "
                         f"{inst.shape}")
    if not (np.issubdtype(segment.dtype, np.integer) and np.issubdtype(inst.dtype, np.integer)):
        raise ValueError(f"segment200 and instance must be integers, got {segment.dtype} and {inst.dtype}")
    if segment.size and (segment.min() < -1 or segment.max() >= len(VALID_CLASS_IDS)):
        raise ValueError(f"segment200 holds {segment.min()}..{segment.max()}, not class indices 0..199 or -1")
    in_instance = inst >= 0
    instance_id = inst.astype(np.int64) + 1
    if in_instance.any() and instance_id[in_instance].max() > MAX_INSTANCE_ID:
        worst = int(instance_id[in_instance].max())
        raise ValueError(f"instance id {worst} (segGroup id {worst - 1}) does not fit the benchmark's "
                         f"label * {LABEL_FACTOR} + instance id encoding: at most {MAX_INSTANCE_ID} instances")
    label = index_to_raw(segment).astype(np.int64)  # -1 (none of the 200) -> 0
    return np.where(in_instance, label * LABEL_FACTOR + instance_id, 0)


def write_instance_gt(path: str | Path, values) -> None:
    """Write encoded ground truth (``encode_instance_gt``), one ``%d`` line per vertex, atomically."""
    write_benchmark_file(path, values)


def read_instance_gt(path: str | Path, scene: str | None = None) -> np.ndarray:
    """Encoded ground truth of one scene (int64, one value per vertex; the file size bounded as every
    benchmark file's)."""
    try:
        return read_benchmark_file(path, scene=scene)
    except InputError as e:  # the semantic format's fix would mislead here
        raise InputError(path, e.problem, GT_FIX, scene=scene) from None


def _check_test_split(split: str) -> None:
    if split == "test":
        raise ValueError("test scenes have no public annotations; export train or val")


def instance_gt_from_processed(processed: str | Path, out_dir: str | Path, split: str = "val",
                               progress: bool = True) -> int:
    """``<out_dir>/<scene>.txt`` for every scene folder of ``processed/<split>``, from its
    segment200.npy and instance.npy; the folder is replaced as a whole, and only if it holds nothing
    but earlier instance ground truth. Returns #scenes."""
    _check_test_split(split)
    claim_folder(out_dir, INSTANCE_GT, inputs=[processed], owns=is_scene_file)
    folder = split_dir(processed, split)
    scenes = scene_folders(folder)
    if not scenes:
        raise InputError(folder, f"no scene folders in the {split} split", PREPROCESS_FIX)
    with atomic_dir(out_dir) as tmp:
        mark_product(tmp, INSTANCE_GT)
        for scene in tqdm(scenes, desc=f"export-instance-gt {split}", unit="scene", disable=not progress):
            scene_folder = folder / scene
            segment = read_array(scene_folder, "segment200", scene)
            instance = read_array(scene_folder, "instance", scene)
            try:
                values = encode_instance_gt(segment, instance)
            except ValueError as e:
                raise InputError(array_path(scene_folder, "instance"), str(e), PREPROCESS_FIX, scene=scene) from None
            write_instance_gt(tmp / f"{scene}.txt", values)
    return len(scenes)


# ---- predictions -------------------------------------------------------------------------------

@dataclass
class InstancePrediction:
    """One scene's predicted instances, in file order (the order the evaluator matches them in)."""

    masks: np.ndarray  # (P, N) bool, one row per instance over the mesh vertices
    label_ids: np.ndarray  # (P,) int64 raw ScanNet ids
    scores: np.ndarray  # (P,) float64 confidences
    mask_files: list[str] = field(default_factory=list)  # as listed in <scene>.txt (empty when made in memory)

    def vertex_instances(self) -> np.ndarray:
        """(N,) the instance (row of ``masks``) of each vertex, -1 for none; a vertex in several masks
        takes the most confident one (a picture's colouring; the evaluation keeps every mask)."""
        out = np.full(self.masks.shape[1], -1, dtype=np.int64)
        for i in np.argsort(self.scores, kind="stable"):  # the most confident written last
            out[self.masks[i]] = i
        return out

    def __post_init__(self) -> None:
        self.masks = np.asarray(self.masks, dtype=bool)
        self.label_ids = np.asarray(self.label_ids, dtype=np.int64)
        self.scores = np.asarray(self.scores, dtype=np.float64)
        p = len(self.masks)
        if self.masks.ndim != 2 or self.label_ids.shape != (p,) or self.scores.shape != (p,):
            raise ValueError(f"need masks (P, N), label_ids (P,) and scores (P,); got {self.masks.shape}, "
                             f"{self.label_ids.shape} and {self.scores.shape}")

    def __len__(self) -> int:
        return len(self.masks)


def _check_prediction_arrays(masks, label_ids, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    masks, label_ids, scores = np.asarray(masks), np.asarray(label_ids), np.asarray(scores)
    if masks.dtype != bool or masks.ndim != 2:
        raise ValueError(f"masks must be a (P, N) bool array, got {masks.dtype} of shape {masks.shape}")
    if label_ids.shape != (len(masks),) or not np.issubdtype(label_ids.dtype, np.integer):
        raise ValueError(f"label_ids must be {len(masks)} integers, got {label_ids.dtype} of shape {label_ids.shape}")
    if scores.shape != (len(masks),) or not np.issubdtype(scores.dtype, np.number):
        raise ValueError(f"scores must be {len(masks)} numbers, got {scores.dtype} of shape {scores.shape}")
    unknown = sorted(set(label_ids.tolist()) - _VALID_IDS)
    if unknown:
        raise ValueError(f"label ids {unknown[:5]} are not ScanNet200 raw ids")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    return np.ascontiguousarray(masks), label_ids, scores


def write_instance_prediction(folder: str | Path, scene: str, masks, label_ids, scores) -> None:
    """Write one scene's instances into ``folder`` in the official layout: ``<scene>.txt`` and one
    mask file per instance under ``pred_mask/``. The caller makes ``folder`` atomic (atomic_dir)."""
    check_scene_id(scene)
    masks, label_ids, scores = _check_prediction_arrays(masks, label_ids, scores)
    folder = Path(folder)
    (folder / PRED_MASK_DIR).mkdir(parents=True, exist_ok=True)
    # "d\n" per vertex: one (N, 2) byte buffer, its digit column refilled per mask
    buf = np.full((masks.shape[1], 2), _NEWLINE, dtype=np.uint8)
    lines = []
    for k, (mask, label, score) in enumerate(zip(masks, label_ids.tolist(), scores.tolist())):
        rel = f"{PRED_MASK_DIR}/{scene}_{k:03d}.txt"
        np.add(mask.view(np.uint8), _ZERO, out=buf[:, 0])
        with atomic_file(folder / rel, "wb") as f:
            f.write(buf.tobytes())
        lines.append(f"{rel} {label} {float(score)!r}\n")  # repr: the shortest text that reads back exactly
    with atomic_file(folder / f"{scene}.txt") as f:
        f.write("".join(lines))


def _show(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


@dataclass
class _Line:
    """One parsed line of a scene's prediction file."""

    lineno: int
    mask_file: str
    mask_path: Path  # resolved
    label_id: int
    score: float


def _parse_line(txt: Path, root: Path, lineno: int, raw: bytes, scene: str) -> _Line:
    """Check one ``<mask path> <label> <confidence>`` line; ``root`` is the resolved folder."""
    def refuse(problem: str, fix: str = LINE_FIX) -> InputError:
        return InputError(txt, f"line {lineno}: {problem}", fix, scene=scene)

    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise refuse(f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not line.strip():
        raise refuse("blank line")
    parts = line.split(" ")
    if len(parts) != 3:
        raise refuse(f"{len(parts)} space-separated fields, not 3: {_show(line)}")
    rel, label, conf = parts
    if not rel:
        raise refuse(f"empty mask path: {_show(line)}")
    if os.path.isabs(rel):
        raise refuse(f"mask path {rel!r} is absolute", "give mask paths relative to the prediction folder")
    path = (root / rel).resolve()
    if path == root or not path.is_relative_to(root):
        raise refuse(f"mask path {rel!r} leads outside the prediction folder (to {path})",
                     "keep the mask files inside the prediction folder (no '..', no links out of it)")
    if not _LABEL.fullmatch(label):
        raise refuse(f"label id {label!r} is not an integer", LABEL_FIX)
    if int(label) not in _VALID_IDS:
        raise refuse(f"label id {int(label)} is not one of the 200 ScanNet200 ids", LABEL_FIX)
    try:
        score = float(conf)
    except ValueError:
        score = math.nan
    if not math.isfinite(score):
        raise refuse(f"confidence {conf!r} is not a finite number", "write the instance's confidence as a number")
    return _Line(lineno, rel, path, int(label), score)


def _parse_prediction_lines(txt: Path, root: Path, data: bytes, scene: str) -> list[_Line]:
    lines: list[_Line] = []
    first_line: dict[Path, int] = {}
    # bytes.splitlines breaks at \n, \r and \r\n only, like the official reader
    for lineno, raw in enumerate(data.splitlines(), start=1):
        line = _parse_line(txt, root, lineno, raw, scene)
        if line.mask_path in first_line:
            raise InputError(txt, f"line {lineno}: mask file {line.mask_file!r} is already listed on line "
                             f"{first_line[line.mask_path]}", "list each instance's mask file once", scene=scene)
        first_line[line.mask_path] = lineno
        lines.append(line)
    return lines


def _mask_from_digits(data: bytes, num_vertices: int) -> np.ndarray | None:
    """The mask if ``data`` is exactly one digit and "\\n" per vertex (what writers emit), else None."""
    if len(data) != 2 * num_vertices:
        return None
    pairs = np.frombuffer(data, dtype=np.uint8).reshape(-1, 2)
    digits = pairs[:, 0] - np.uint8(_ZERO)  # wraps below '0' to >= 10
    if not ((pairs[:, 1] == _NEWLINE).all() and (digits < 10).all()):
        return None
    return digits != 0


def _mask_from_text(path: Path, shown: Path, listed: str, data: bytes, num_vertices: int,
                    scene: str, against: str) -> np.ndarray:
    """The general parser: any integers, one per line, non-zero = in the instance. Errors name the
    mask as listed (``shown``) and where it is listed (``listed``)."""
    try:  # the benchmark's reader: one integer per line, else it names the line
        values = read_benchmark_file(path, scene=scene, limit=len(data))
    except InputError as e:
        raise InputError(shown, f"{e.problem}; a mask holds one integer per line ({listed})", MASK_FIX,
                         scene=scene) from None
    if values.size != num_vertices:
        raise InputError(shown, f"{values.size} lines but {against.format(n=num_vertices)} ({listed})"
                         + (": both need one line per mesh vertex, so one of the two is not of this scene's mesh"
                            if "{n} vertices" not in against else ""), MASK_FIX, scene=scene)
    return values != 0


def _read_mask(txt: Path, line: _Line, num_vertices: int, scene: str, against: str) -> np.ndarray:
    shown, listed = txt.parent / line.mask_file, f"listed on line {line.lineno} of {txt.name}"
    limit = _MASK_BYTES_PER_VERTEX * num_vertices + 4096
    with open_regular(line.mask_path, f"mask file {listed}", MASK_FIX, limit=limit, scene=scene) as f:
        data = f.read(limit + 1)
    mask = _mask_from_digits(data, num_vertices)
    return mask if mask is not None else _mask_from_text(line.mask_path, shown, listed, data, num_vertices, scene,
                                                         against)


def read_instance_prediction(folder: str | Path, scene: str, num_vertices: int,
                             against: str = "the mesh has {n} vertices") -> InstancePrediction:
    """Read ``folder/<scene>.txt`` and its masks (each ``num_vertices`` lines), checked; every problem
    is one InputError naming the file and line. ``against`` says where ``num_vertices`` (``{n}``) comes
    from in a length mismatch's message (the evaluation's: "the ground truth <file> has {n} lines").

    Bounded before anything large is made: the summary's size and its lines (at most
    ``MAX_PREDICTED_INSTANCES``) before it is parsed, every listed mask checked to exist before the
    (instances x vertices) masks are allocated, each mask's size before it is read."""
    check_scene_id(scene)
    folder = Path(folder)
    txt = listed_file(folder, f"{scene}.txt", "instance prediction file", scene=scene)
    fix = f"write {scene}.txt ({LINE_FIX})"
    limit = MAX_PREDICTED_INSTANCES * _LINE_BYTES
    with open_regular(txt, "instance prediction file", fix, limit=limit, scene=scene) as f:
        data = f.read(limit)  # open_regular refused a larger file
    if (listed := len(data.splitlines())) > MAX_PREDICTED_INSTANCES:
        raise InputError(txt, f"{listed} lines: at most {MAX_PREDICTED_INSTANCES} instances per scene are read",
                         "keep each scene's most confident instances", scene=scene)
    lines = _parse_prediction_lines(txt, folder.resolve(), data, scene)
    for line in lines:
        if not line.mask_path.exists():
            raise InputError(txt, f"line {line.lineno}: mask file {line.mask_file!r} does not exist",
                             "write the mask files the prediction file lists", scene=scene)
    masks = np.zeros((len(lines), num_vertices), dtype=bool)
    for k, line in enumerate(lines):
        masks[k] = _read_mask(txt, line, num_vertices, scene, against)
    return InstancePrediction(
        masks=masks,
        label_ids=np.array([line.label_id for line in lines], dtype=np.int64),
        scores=np.array([line.score for line in lines], dtype=np.float64),
        mask_files=[line.mask_file for line in lines],
    )
