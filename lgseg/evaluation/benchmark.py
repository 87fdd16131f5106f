"""Official ScanNet200 benchmark files and scoring a folder of predictions against ground truth.

Format: one ``<scene>.txt`` per scene holding one integer per line, one line per mesh vertex in
mesh order; values are raw ScanNet ids (1 = wall, ..., 1191 = mattress), and 0 or any id that is
not one of the 200 classes means "none of the 200". Parsing is vectorised: evaluating a folder
costs little more than reading its text.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
from tqdm import tqdm

from lgseg.errors import InputError
from lgseg.evaluation.folders import SEMANTIC_GT, SEMANTIC_PRED, check_folder_holds, entry_problem
from lgseg.fileio import atomic_file, listed_file, open_regular
from lgseg.scannet.constants import NUM_CLASSES, VALID_CLASS_IDS, raw_to_index

log = logging.getLogger(__name__)

FORMAT_FIX = "write one integer per line (raw ScanNet id, 0 = none of the 200), one line per mesh vertex"
_INT_TOKEN = re.compile(rb"[+-]?[0-9]+")
_INT64 = np.iinfo(np.int64)

# Bounds on what one file may hold, so that a huge or endless file is refused before it is read.
# ScanNet's _vh_clean_2 meshes have at most a few hundred thousand vertices; a benchmark line is one
# integer and a line end (a ground-truth line at most 8 bytes, "1191999\n"; 32 allows spaces and CRLF).
MAX_VERTICES = 4_000_000
BYTES_PER_LINE = 32
MAX_FILE_BYTES = MAX_VERTICES * BYTES_PER_LINE


def lines_limit(num_vertices: int) -> int:
    """The most bytes a benchmark file of ``num_vertices`` lines can take."""
    return BYTES_PER_LINE * num_vertices + 4096


def _parse_fast(data: bytes) -> np.ndarray | None:
    """The exact layout, vectorised: one integer per line via np.fromstring (several times faster
    than split + int). What fromstring would get wrong is ruled out first, at a few byte counts' cost:
    only digits, signs and line ends; a CR only as CRLF's first half; a sign only at a line's start
    and before a digit (fromstring reads a lone "-" as 0). Then each line can give fromstring at most
    one number, so as many numbers as lines means no line was blank. On anything else (a blank line,
    two numbers on a line, spaces, a saturated overflow) this returns None and the strict parser
    decides and names the line."""
    if not data:
        return np.empty(0, dtype=np.int64)
    if data.translate(None, _LAYOUT_BYTES):  # a byte other than digits, signs and line ends
        return None
    b = np.frombuffer(data, dtype=np.uint8)
    lf = b == _LF
    if b"\r" in data:
        cr = b == _CR
        if cr[-1] or np.count_nonzero(cr[:-1] & lf[1:]) != np.count_nonzero(cr):
            return None  # a CR not followed by LF
    if (b"-" in data or b"+" in data) and (_BAD_SIGN.search(data) or data[-1:] in (b"-", b"+")):
        return None
    try:
        with warnings.catch_warnings():
            # fromstring only warns (and stops) at the first unparsable token: make that an error
            warnings.simplefilter("error")
            values = np.fromstring(data, dtype=np.int64, sep=" ")
    except (ValueError, Warning):
        return None
    if values.size != np.count_nonzero(lf) + (b[-1] != _LF):  # a blank line gave no number
        return None
    if values.size == 1 and not data.strip(b"\r\n"):
        return None  # fromstring reads a lone line end as [0]
    if values.size and (values.min() == _INT64.min or values.max() == _INT64.max):
        return None  # fromstring saturates out-of-range numbers silently
    return values


_LAYOUT_BYTES = b"0123456789+-\r\n"
_LF, _CR = ord("\n"), ord("\r")
_BAD_SIGN = re.compile(rb"[^\n][+-]|[+-][^0-9]")  # a sign mid-line, or with no digit after it


def _show(line: bytes, limit: int = 40) -> str:
    text = line.decode("utf-8", errors="replace")
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _parse_strict(path: Path, data: bytes, scene: str | None) -> np.ndarray:
    """Line-by-line parse that names the first bad line (only used after the fast path declined).

    A line holds one integer, spaces or tabs around it allowed; lines end with LF or CRLF, the last
    one's end optional. A blank line or a line of several numbers is an error: read as whitespace-
    separated numbers either would shift every later vertex's label onto another vertex."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the final line end (or the empty file)
    values = []
    for lineno, line in enumerate(lines, start=1):
        if line.endswith(b"\r"):
            line = line[:-1]
        token = line.strip(b" \t")
        if not token:
            raise InputError(path, f"line {lineno} is blank", FORMAT_FIX, scene=scene)
        if not _INT_TOKEN.fullmatch(token):
            tokens = token.split()
            if len(tokens) > 1 and all(_INT_TOKEN.fullmatch(t) for t in tokens):
                raise InputError(path, f"line {lineno} is {len(tokens)} integers: {_show(line)}",
                                 FORMAT_FIX, scene=scene)
            raise InputError(path, f"line {lineno} is not an integer: {_show(line)}", FORMAT_FIX, scene=scene)
        # int() of thousands of digits is slow or refused: an int64 has at most 19 significant ones
        value = int(token) if len(token.lstrip(b"+-").lstrip(b"0")) <= 19 else None
        if value is None or not _INT64.min <= value <= _INT64.max:
            raise InputError(path, f"line {lineno} is out of the int64 range: {_show(line)}", FORMAT_FIX,
                             scene=scene)
        values.append(value)
    return np.array(values, dtype=np.int64)


def read_benchmark_file(path: str | Path, scene: str | None = None, limit: int = MAX_FILE_BYTES) -> np.ndarray:
    """Read a benchmark ``.txt`` file into an int64 array of raw ids (one per vertex).

    Exactly one integer per line (spaces around it tolerated), LF or CRLF line ends, the final one
    optional; anything else (a blank line, two numbers on a line, a non-integer) raises InputError
    naming the file and line (and ``scene`` if given). A file larger than ``limit`` bytes (default:
    what ``MAX_VERTICES`` lines take) is refused before it is read.
    """
    path = Path(path)
    fix = "write one raw ScanNet id per mesh vertex (lgseg predict)"
    if not path.exists():
        raise InputError(path, "cannot read benchmark file (no such file)", fix, scene=scene)
    with open_regular(path, "benchmark file", fix, limit=limit, scene=scene) as f:  # a FIFO would block
        data = f.read(limit + 1)
    if len(data) > limit:  # it grew while read
        raise InputError(path, f"more than the {limit} bytes a benchmark file can hold", fix, scene=scene)
    values = _parse_fast(data)
    return values if values is not None else _parse_strict(path, data, scene)


def write_benchmark_file(path: str | Path, raw_ids) -> None:
    """Write raw ScanNet ids, one ``%d`` line per vertex, atomically."""
    arr = np.asarray(raw_ids)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"raw_ids must be a 1-D integer array, got shape {arr.shape} and dtype {arr.dtype}")
    # str() of Python ints joined once is ~10x faster than np.savetxt's per-row formatting
    text = "\n".join(map(str, arr.tolist())) + "\n" if arr.size else ""
    with atomic_file(path) as f:
        f.write(text)


def _scene_list(gt_dir: Path, scenes: Iterable[str] | None) -> list[str]:
    """The scenes to evaluate: ``scenes`` as given, else every ``*.txt`` in ``gt_dir`` (sorted)."""
    if not gt_dir.is_dir():
        raise InputError(gt_dir, "ground-truth directory does not exist",
                         "create it with `lgseg export-gt` or pass the right folder")
    if scenes is None:
        scenes = sorted(p.stem for p in gt_dir.glob("*.txt") if p.is_file())
        if not scenes:
            raise InputError(gt_dir, "no ground-truth <scene>.txt files in this directory",
                             "create them with `lgseg export-gt` or pass the right folder")
        return scenes
    scenes = list(scenes)
    if not scenes:
        raise InputError(gt_dir, "the list of scenes to evaluate is empty", "pass at least one scene")
    return scenes


def _check_folders(pred_dir: Path, gt_dir: Path) -> None:
    """Both folders exist and are two folders, neither inside the other (links followed): scoring the
    ground truth against itself would report 100 % without a word."""
    if not gt_dir.is_dir():
        raise InputError(gt_dir, "ground-truth directory does not exist",
                         "create it with `lgseg export-gt` or pass the right folder")
    if not pred_dir.is_dir():
        raise InputError(pred_dir, "prediction directory does not exist", "pass the folder of <scene>.txt files")
    pred, gt = pred_dir.resolve(), gt_dir.resolve()
    fix = "pass the folder the predictions were written to (lgseg predict --out)"
    if pred == gt:
        raise InputError(pred_dir, "the prediction folder is the ground-truth folder"
                         + (f" ({gt})" if pred_dir.absolute() != gt_dir.absolute() else ""), fix)
    if pred.is_relative_to(gt):
        raise InputError(pred_dir, f"the prediction folder is inside the ground-truth folder {gt}", fix)
    if gt.is_relative_to(pred):
        raise InputError(pred_dir, f"the prediction folder holds the ground-truth folder {gt}", fix)


def _shown(names: list[str], limit: int = 5) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _listed_scenes(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.txt") if p.is_file()}


def _check_files(pred_dir: Path, gt_dir: Path, scenes: list[str]) -> None:
    """Fail before any parsing if a ground-truth or prediction file is missing (or not a regular file),
    counting all of them, if one leads outside its folder, or if a prediction file is its
    ground-truth file (a link or hard link to it)."""
    for kind, folder in (("ground truth", gt_dir), ("prediction", pred_dir)):
        if not folder.is_dir():
            raise InputError(folder, f"{kind} directory does not exist", "pass the folder of <scene>.txt files")
        bad = {s: k for s in scenes if (k := entry_problem(folder / f"{s}.txt")) is not None}
        if bad:
            first = next(iter(bad))
            shown = ", ".join(list(bad)[:5]) + (", ..." if len(bad) > 5 else "")
            raise InputError(
                folder / f"{first}.txt",
                f"{kind} file {bad[first]}; {len(bad)} of {len(scenes)} scene(s) have none ({shown})",
                f"write one <scene>.txt file per scene into {folder}",
                scene=first,
            )
    for scene in scenes:
        pred, gt = pred_dir / f"{scene}.txt", gt_dir / f"{scene}.txt"
        if os.path.samefile(pred, gt):
            raise InputError(pred, f"the prediction file is the ground-truth file {gt.resolve()}",
                             "write the predictions as files of their own (lgseg predict --out)", scene=scene)
        for kind, folder in (("ground truth", gt_dir), ("prediction", pred_dir)):
            listed_file(folder, f"{scene}.txt", f"{kind} file", scene=scene)


# Lookup tables raw id -> class index, derived from raw_to_index once. Entry _N_RAW stands for every
# id >= _N_RAW; "none of the 200" becomes K, i.e. the extra ignored row / the last ("miss") column.
_N_RAW = max(VALID_CLASS_IDS) + 1
_RAW_CLASS = raw_to_index(np.arange(_N_RAW + 1)).astype(np.int64)
_RAW_CLASS[_RAW_CLASS < 0] = NUM_CLASSES
_RAW_ROW_OFFSET = _RAW_CLASS * (NUM_CLASSES + 1)


def _raw_pair_counts(gt_raw: np.ndarray, pred_raw: np.ndarray) -> np.ndarray:
    """Flat (K + 1) x (K + 1) counts of (gt, pred) raw-id pairs; row K holds ignored ground truth.

    Same result as confusion_matrix(raw_to_index(gt), raw_to_index(pred)) plus the ignored row, in
    a few passes over the data instead of ten (evaluation time should be parsing time).
    """
    gt_raw = np.ascontiguousarray(gt_raw, dtype=np.int64)
    pred_raw = np.ascontiguousarray(pred_raw, dtype=np.int64)
    # viewed as unsigned, negative ids are huge: one np.minimum sends every id >= _N_RAW to _N_RAW
    flat = np.take(_RAW_ROW_OFFSET, np.minimum(gt_raw.view(np.uint64), _N_RAW).view(np.int64))
    flat += np.take(_RAW_CLASS, np.minimum(pred_raw.view(np.uint64), _N_RAW).view(np.int64))
    return np.bincount(flat, minlength=(NUM_CLASSES + 1) ** 2)


def scene_confusion(gt_raw, pred_raw) -> np.ndarray:
    """Confusion matrix of one scene from raw ids (non-200 ids: ignored in gt, a miss in pred)."""
    gt_raw, pred_raw = np.asarray(gt_raw), np.asarray(pred_raw)
    if not (np.issubdtype(gt_raw.dtype, np.integer) and np.issubdtype(pred_raw.dtype, np.integer)):
        raise ValueError(f"raw ids must be integers, got {gt_raw.dtype} and {pred_raw.dtype}")
    if gt_raw.shape != pred_raw.shape:
        raise ValueError(f"gt has {gt_raw.size} entries, pred has {pred_raw.size}")
    return _raw_pair_counts(gt_raw, pred_raw).reshape(NUM_CLASSES + 1, -1)[:NUM_CLASSES].copy()


def evaluate_dirs(pred_dir: str | Path, gt_dir: str | Path, scenes: Iterable[str] | None = None,
                  progress: bool = True) -> tuple[np.ndarray, int]:
    """Score ``pred_dir/<scene>.txt`` against ``gt_dir/<scene>.txt``; return (confusion, #scenes).

    ``scenes`` defaults to every ``*.txt`` in ``gt_dir``. The two folders must differ, neither inside
    the other, and all files are checked to exist before any is read; prediction files of scenes not
    in ``gt_dir`` are logged, unscored (one warning). A vertex count mismatch raises InputError naming
    the scene, both counts and files.
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    _check_folders(pred_dir, gt_dir)
    check_folder_holds(gt_dir, SEMANTIC_GT, "--gt")
    check_folder_holds(pred_dir, SEMANTIC_PRED, "--pred")
    scene_names = _scene_list(gt_dir, scenes)
    _check_files(pred_dir, gt_dir, scene_names)
    extra = sorted(_listed_scenes(pred_dir) - _listed_scenes(gt_dir))
    if extra:
        log.warning("%s: %d prediction file(s) for scenes without ground truth in %s, not evaluated: %s",
                    pred_dir, len(extra), gt_dir, _shown(extra))
    counts = np.zeros((NUM_CLASSES + 1) ** 2, dtype=np.int64)
    for scene in tqdm(scene_names, desc="evaluate", unit="scene", disable=not progress):
        gt_path, pred_path = gt_dir / f"{scene}.txt", pred_dir / f"{scene}.txt"
        gt = read_benchmark_file(gt_path, scene=scene)
        pred = read_benchmark_file(pred_path, scene=scene, limit=lines_limit(gt.size))
        if gt.size != pred.size:
            raise InputError(
                pred_path,
                f"{pred.size} predicted vertices but the ground truth {gt_path} has {gt.size}",
                "write one line per mesh vertex, in mesh order",
                scene=scene,
            )
        counts += _raw_pair_counts(gt, pred)
    conf = counts.reshape(NUM_CLASSES + 1, -1)[:NUM_CLASSES].copy()  # drop the ignored-gt row
    if not conf.any():
        raise InputError(gt_dir, f"no vertex of its {len(scene_names)} scene(s) is labelled with one of the 200 "
                         "classes: nothing to score (instance ground truth, label * 1000 + instance, reads so)",
                         "pass the semantic ground truth (lgseg export-gt)")
    return conf, len(scene_names)
