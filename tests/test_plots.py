"""lgseg.plots: PNGs of the pipeline's plot CSVs."""

import matplotlib.image as mpimg

from lgseg.plots import render_plot


def test_curves_and_long_tail_render_and_others_are_declined(tmp_path):
    curve = tmp_path / "curve.csv"
    curve.write_text("epoch,loss,lr,val_miou,val_miou_tail\n1,2.0,0.1,,\n2,1.5,0.1,10.0,0.0\n")
    per_class = tmp_path / "per_class.csv"
    per_class.write_text("id,name,split,iou,train_points\n1,wall,head,80.0,1000\n3,floor,head,,500\n"
                         "40,stool,common,5.0,20\n300,x,tail,0.0,0\n")
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("epoch,loss\n")
    pairs = tmp_path / "confusion.csv"
    pairs.write_text("pair,gt,predicted,points,share\nchair → table,chair,table,120,0.2\nwall → (none of the 200),wall,"
                     "(none of the 200),80,0.01\n")
    for src in (curve, per_class, pairs):
        png = tmp_path / f"{src.stem}.png"
        assert render_plot(src, png)
        image = mpimg.imread(png)
        assert image.shape[0] > 200 and image.shape[1] > 300 and image.std() > 0  # drawn, not blank
    assert not render_plot(other, tmp_path / "o.png") and not (tmp_path / "o.png").exists()
    assert not render_plot(empty, tmp_path / "e.png")
