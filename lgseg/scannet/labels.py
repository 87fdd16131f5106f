"""ScanNet200 label semantics: raw category (aggregation ``label``) -> tsv ``id`` -> class index.

Benchmark rule: the first tsv row whose ``raw_category`` equals the label gives the raw ScanNet
``id`` (not ``nyu40id``); ids outside the 200 valid ones, labels absent from the tsv and vertices
in no group are ignored (-1). Later groups overwrite earlier ones on shared segments.

The tsv is read as ScanNet ships it and as Windows tools save it: a UTF-8 byte-order mark and
``\r\n`` or ``\r\r\n`` line ends are tolerated. Several rows may give one id (aliases: "sofa" and
"couch") and a raw category may repeat (the first row counts), but the header must name ``id`` and
``raw_category`` once each (a second ``id`` column, e.g. a spreadsheet's or pandas' row index saved in
front of the real one, would silently shift every id: chair, the second row, would get wall's id 1),
and every id must be an integer in 0..2**31 - 1 (``ID_MAX``).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path

import numpy as np

from lgseg.errors import InputError
from lgseg.scannet.constants import raw_to_index
from lgseg.fileio import read_regular
from lgseg.scannet.raw import ID_MAX, LABELS_LIMIT, RawScene

REQUIRED_COLUMNS = ("id", "raw_category")
_DIGITS = re.compile(r"[0-9]+")  # an id cell: int() would also take "+3", "1_000" or non-ASCII digits


class LabelTable:
    """raw_category -> raw ScanNet id, read from ``scannetv2-labels.combined.tsv``."""

    def __init__(self, raw_to_id: dict[str, int]):
        self.raw_to_id = raw_to_id

    @classmethod
    def read(cls, path: str | Path) -> "LabelTable":
        path = Path(path)
        fix = "ScanNet ships scannetv2-labels.combined.tsv next to scans/; recreate data/raw (dvc repro download)"
        data = read_regular(path, "label table", fix, LABELS_LIMIT)
        bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0  # saved by a Windows tool
        try:
            text = data[bom:].decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(path, f"not UTF-8 text ({e.reason} at byte {e.start + bom})", fix) from None
        # The ScanNet200-era file ends lines with \r\r\n: drop every \r before parsing.
        rows = list(csv.reader(io.StringIO(text.replace("\r", "")), delimiter="\t"))
        if not rows:
            raise InputError(path, "empty label table", "use the official scannetv2-labels.combined.tsv")
        header = [h.strip() for h in rows[0]]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise InputError(path, f"missing column(s) {missing}; found {header[:6]}...",
                             "use the official scannetv2-labels.combined.tsv (tab-separated, header row)")
        for name in REQUIRED_COLUMNS:
            at = [i + 1 for i, h in enumerate(header) if h == name]
            if len(at) > 1:
                raise InputError(path, f"line 1: column {name!r} appears {len(at)} times (columns "
                                 f"{', '.join(map(str, at))}), so which holds the {name}s is ambiguous",
                                 f"keep one {name!r} column (a spreadsheet or pandas export may have saved its "
                                 "row index as another), or use the official scannetv2-labels.combined.tsv")
        i_id, i_raw = header.index("id"), header.index("raw_category")
        table: dict[str, int] = {}
        for n, row in enumerate(rows[1:], start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(i_id, i_raw):
                raise InputError(path, f"line {n}: {len(row)} column(s), too few for 'id' (column {i_id + 1}) and "
                                 f"'raw_category' (column {i_raw + 1})", "use the official "
                                 "scannetv2-labels.combined.tsv (tab-separated)")
            raw, cell = row[i_raw].strip(), row[i_id].strip()
            cid = int(cell) if len(cell) <= 10 and _DIGITS.fullmatch(cell) else -1  # ID_MAX: 10 digits
            if not 0 <= cid <= ID_MAX:
                raise InputError(path, f"line {n}, column 'id' (column {i_id + 1}): {cell[:40]!r} is not an integer "
                                 f"in 0..{ID_MAX}", "use the official scannetv2-labels.combined.tsv")
            table.setdefault(raw, cid)  # the first row wins
        return cls(table)

    def raw_id(self, label: str) -> int:
        """Raw ScanNet id of an aggregation label, 0 when the tsv does not list it."""
        return self.raw_to_id.get(label.strip(), 0)


def vertex_labels(scene: RawScene, table: LabelTable) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex raw ScanNet id (0 = none) and instance id (segGroup id, -1 = none)."""
    if scene.seg_indices is None or scene.seg_groups is None:
        raise ValueError(f"scene {scene.scene_id} was read without annotations")
    segments = scene.segment_ids if scene.segment_ids is not None else np.unique(scene.seg_indices)
    inverse = np.searchsorted(segments, scene.seg_indices)
    seg_raw = np.zeros(len(segments), dtype=np.int32)
    seg_inst = np.full(len(segments), -1, dtype=np.int32)
    for g in scene.seg_groups:  # in file order, so later groups overwrite earlier ones
        pos = np.searchsorted(segments, g.segments)
        seg_raw[pos] = table.raw_id(g.label)
        seg_inst[pos] = g.id
    return seg_raw[inverse], seg_inst[inverse]


def vertex_segment200(scene: RawScene, table: LabelTable) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex class index 0..199 (-1 ignore, int16) and instance id (int32)."""
    raw, inst = vertex_labels(scene, table)
    return raw_to_index(raw), inst
