import numpy as np
import pytest

from lgseg.errors import InputError
from lgseg.scannet.labels import LabelTable, vertex_labels, vertex_segment200
from lgseg.scannet.raw import read_scene

from scannet_files import TSV_HEADER, tsv_text


def test_tsv_first_row_wins_and_crlf_and_whitespace(tmp_path):
    p = tmp_path / "labels.tsv"
    p.write_text(tsv_text([(2, "chair"), (4, " chair "), (6, "sofa  ")], eol="\r\r\n"))
    t = LabelTable.read(p)
    assert t.raw_id("chair") == 2          # first row wins over the later 'chair' (whitespace stripped)
    assert t.raw_id("sofa") == 6           # trailing whitespace tolerated
    assert t.raw_id("chair ") == 2         # labels are stripped too
    assert t.raw_id("unknown thing") == 0  # not in the table -> 0 (ignore)


def test_tsv_plain_newlines(tmp_path):
    p = tmp_path / "labels.tsv"
    p.write_text(tsv_text([(1, "wall")], eol="\n"))
    assert LabelTable.read(p).raw_id("wall") == 1


def test_tsv_without_needed_columns_is_a_clear_error(tmp_path):
    p = tmp_path / "labels.tsv"
    p.write_text("index\tname\n1\twall\n")
    with pytest.raises(InputError, match=r"labels.tsv: missing column\(s\) \['id', 'raw_category'\]"):
        LabelTable.read(p)


def test_tsv_non_integer_id(tmp_path):
    p = tmp_path / "labels.tsv"
    p.write_text(TSV_HEADER + "\nabc\twall\n")
    with pytest.raises(InputError, match="line 2"):
        LabelTable.read(p)


def test_benchmark_label_rules(tiny_raw):
    table = LabelTable.read(tiny_raw / "scannetv2-labels.combined.tsv")
    scene = read_scene(tiny_raw, "scene0000_00")
    raw, inst = vertex_labels(scene, table)
    # chair, chair, sofa->couch(6), ceiling(12), mystery->0, no group->0, table overwrote chair (4)
    assert raw.tolist() == [2, 2, 6, 12, 0, 0, 4, 4]
    assert inst.tolist() == [0, 0, 1, 2, 3, -1, 4, 4]
    seg200, _ = vertex_segment200(scene, table)
    assert seg200.dtype == np.int16
    # class indices: chair 1, couch 5, table 3; ceiling (id 12) is not one of the 200 -> -1
    assert seg200.tolist() == [1, 1, 5, -1, -1, -1, 3, 3]
