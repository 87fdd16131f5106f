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


# ---- hostile tables (input-handling review, items 6 and 9) ---------------------------------------

def test_tsv_with_a_second_id_column_is_refused_naming_it(tmp_path):
    """A spreadsheet's or pandas' row index saved as an 'id' column in front of the real one: the
    first 'id' was taken, so each row got its 0-based position as id and every chair (the second row)
    became wall (id 1); the wall itself, at position 0, became 0: no class."""
    p = tmp_path / "labels.tsv"
    lines = ["id\t" + TSV_HEADER, "0\t1\twall\twall\t1\t40", "1\t2\tchair\tchair\t1\t40"]
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as e:
        LabelTable.read(p)
    assert str(e.value) == (f"{p}: line 1: column 'id' appears 2 times (columns 1, 2), so which holds the ids is "
                            "ambiguous. keep one 'id' column (a spreadsheet or pandas export may have saved its row "
                            "index as another), or use the official scannetv2-labels.combined.tsv")


def test_tsv_with_a_second_raw_category_column_is_refused(tmp_path):
    p = tmp_path / "labels.tsv"
    p.write_text("id\traw_category\tcategory\traw_category\n1\twall\twall\tchair\n")
    with pytest.raises(InputError, match=r"line 1: column 'raw_category' appears 2 times \(columns 2, 4\)"):
        LabelTable.read(p)


def test_rows_sharing_an_id_are_aliases_not_an_error(tmp_path):
    # ScanNet's own kind of duplicate (and the synthetic set's): two raw categories, one id
    p = tmp_path / "labels.tsv"
    p.write_text(tsv_text([(6, "couch"), (6, "sofa"), (2, "chair")]))
    t = LabelTable.read(p)
    assert (t.raw_id("couch"), t.raw_id("sofa"), t.raw_id("chair")) == (6, 6, 2)


@pytest.mark.parametrize("cell", ["99999999999", "2147483648", "-3", "+3", "1_000", "3.0", "٣", "9" * 5000, ""])
def test_tsv_id_that_is_no_id_names_line_column_and_value(tmp_path, cell):
    p = tmp_path / "labels.tsv"
    p.write_text(tsv_text([(1, "wall")]).replace("\r", "") + f"{cell}\tchair\tchair\t1\t40\n")
    with pytest.raises(InputError) as e:
        LabelTable.read(p)
    assert str(e.value) == (f"{p}: line 3, column 'id' (column 1): {cell[:40]!r} is not an integer in 0..2147483647. "
                            "use the official scannetv2-labels.combined.tsv")


def test_tsv_short_row_names_the_line(tmp_path):
    p = tmp_path / "labels.tsv"
    p.write_text(TSV_HEADER + "\n1\n")
    with pytest.raises(InputError, match=r"line 2: 1 column\(s\), too few for 'id' \(column 1\) and 'raw_category'"):
        LabelTable.read(p)


@pytest.mark.parametrize("eol", ["\r\r\n", "\r\n", "\n"])
def test_tsv_with_a_utf8_bom_reads_as_without(tmp_path, eol):
    text = tsv_text([(1, "wall"), (2, "chair"), (6, "sofa")], eol=eol)
    plain, bom = tmp_path / "plain.tsv", tmp_path / "bom.tsv"
    plain.write_bytes(text.encode())
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode())  # what Windows tools (Excel, Notepad) save
    assert LabelTable.read(bom).raw_to_id == LabelTable.read(plain).raw_to_id == {"wall": 1, "chair": 2, "sofa": 6}


def test_tsv_not_utf8_names_the_byte_after_a_bom(tmp_path):
    p = tmp_path / "labels.tsv"
    p.write_bytes(b"\xef\xbb\xbfid\traw_category\n1\twa\xffll\n")
    with pytest.raises(InputError, match=r"not UTF-8 text \(invalid start byte at byte 23\)"):
        LabelTable.read(p)


def test_huge_tsv_id_through_preprocess_is_one_error_naming_the_tsv(tiny_raw, tmp_path):
    from lgseg.scannet.preprocess import preprocess

    tsv = tiny_raw / "scannetv2-labels.combined.tsv"
    tsv.write_text(tsv_text([(1, "wall"), (99999999999, "chair")]))  # was an OverflowError in every scene
    with pytest.raises(InputError, match=r"scannetv2-labels\.combined\.tsv: line 3, column 'id' \(column 1\): "
                                         r"'99999999999' is not an integer"):
        preprocess(tiny_raw, tmp_path / "p", keep_going=True, progress=False)
