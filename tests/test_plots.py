"""lgseg.plots: PNGs of the pipeline's plot CSVs; and what `dvc plots show` draws of the pipeline's
files with the project's dvc.yaml plots and .dvc/plots templates, on a page that needs no network."""

import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import matplotlib.image as mpimg
import pytest
import yaml

from lgseg.engine.hooks import CurveHook
from lgseg.plots import PER_CLASS_PNG, best_and_worst, render_plot
from lgseg.scannet.constants import CLASS_NAMES, CLASS_SPLIT


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


# ---- what `dvc plots show` draws: the project's dvc.yaml plots and .dvc/plots templates -----------

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
VALIDATED = (5, 10, 12)  # val_every 5 over 12 epochs: the last epoch validates too


def history(epochs: int = 12) -> list[dict]:
    """A trainer's history as the hooks see it: every epoch's training numbers, val_* on validated ones
    (a class group absent from val is NaN)."""
    rows = []
    for e in range(1, epochs + 1):
        row = {"epoch": e, "loss": 2.0 / e, "lr": 0.1, "voxels_per_s": 1e4, "data_share": 0.02, "steps": 14 * e}
        if e in VALIDATED:
            row.update(val_miou=3.0 * e, val_miou_200=1.5 * e, val_miou_head=5.0 * e, val_miou_common=0.0,
                       val_miou_tail=0.5, val_miou_holdout=math.nan)
        rows.append(row)
    return rows


def write_curves(folder: Path, stage: str) -> None:
    hist = history()
    CurveHook(path=folder / f"{stage}_curve.csv", val_path=folder / f"{stage}_val.csv").after_epoch(
        types.SimpleNamespace(history=hist), hist[-1])


def test_curve_hook_keeps_validation_to_the_validated_epochs(tmp_path):
    write_curves(tmp_path, "finetune")
    with open(tmp_path / "finetune_curve.csv") as f:
        train = list(csv.DictReader(f))
    with open(tmp_path / "finetune_val.csv") as f:
        val = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in train] == list(range(1, 13)) and not any(k.startswith("val_") for k in train[0])
    assert [int(r["epoch"]) for r in val] == list(VALIDATED)
    assert list(val[0])[:2] == ["epoch", "val_miou"] and all(r["val_miou"] for r in val)
    assert {r["val_miou_holdout"] for r in val} == {""}  # undefined stays undefined, not 0 and not 'nan'
    # without a validation file (tests, benchmarks) one CSV holds it all, as before
    hist = history()
    CurveHook(path=tmp_path / "all.csv").after_epoch(types.SimpleNamespace(history=hist), hist[-1])
    assert (tmp_path / "all.csv").read_text().startswith("epoch,loss,lr")


@pytest.fixture(scope="module")
def plots_repo(tmp_path_factory) -> Path:
    """The project's plot definitions and templates over plot files like the pipeline's."""
    d = tmp_path_factory.mktemp("plots")
    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    (d / "dvc.yaml").write_text(yaml.safe_dump({"plots": plots}, allow_unicode=True, sort_keys=False))
    subprocess.run([BIN / "dvc", "init", "--no-scm", "-q"], cwd=d, check=True)
    shutil.copytree(ROOT / ".dvc/plots", d / ".dvc/plots", ignore=shutil.ignore_patterns("page.html"),
                    dirs_exist_ok=True)
    m = d / "metrics"
    m.mkdir()
    for stage in ("pretrain", "finetune", "insseg"):
        write_curves(m, stage)
    with open(m / "insseg_per_class.csv", "w", newline="") as f:  # the instance evaluation's per-class AP
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "name", "split", "ap", "ap50", "ap25", "gt_instances", "predictions"])
        for c, (name, split) in enumerate(zip(CLASS_NAMES, CLASS_SPLIT, strict=True)):
            if name not in ("wall", "floor"):
                w.writerow([c, name, split, "", "" if c % 5 == 2 else (c * 13) % 101, "", 1, 1])
    with open(m / "per_class.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "name", "split", "iou", "train_points"])
        for c, (name, split) in enumerate(zip(CLASS_NAMES, CLASS_SPLIT, strict=True)):
            w.writerow([c, name, split, "" if c % 7 == 3 else (c * 37) % 101, 10 + (c * 997) % 100000])
    # written alphabetically here, the way DVC's bar_horizontal sorted them
    (m / "confusion.csv").write_text("pair,gt,predicted,points,share\nbed → wall,bed,wall,50,0.1\n"
                                     "chair → table,chair,table,900,0.3\ndoor → wall,door,wall,300,0.2\n")
    return d


@pytest.fixture(scope="module")
def shown(plots_repo) -> dict:
    r = subprocess.run([BIN / "dvc", "plots", "show", "--json"], cwd=plots_repo, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return {name: p[0]["content"] for name, p in json.loads(r.stdout)["data"].items()}


def test_no_plot_draws_an_epoch_without_validation(shown):
    curves = {name: spec for name, spec in shown.items() if "epoch" in spec["data"]["values"][0]}
    assert len(curves) == 5  # pretrain and finetune: loss and val mIoU; insseg: loss
    for name, spec in curves.items():
        values = spec["data"]["values"]
        fields = {v["field"] for v in values}
        if any(f.startswith("val_") for f in fields):  # validation: the validated epochs, every value a number
            assert fields <= {"val_miou", "val_miou_head", "val_miou_common", "val_miou_tail"}, name
            assert {int(v["epoch"]) for v in values} == set(VALIDATED), name
            assert all(v["dvc_inferred_y_value"] not in ("", None) for v in values), name
        else:  # the loss, every epoch, and no validation column to be read as 0
            assert fields == {"loss"} and len(values) == 12 and not any(k.startswith("val_") for k in values[0]), name


def test_each_chart_has_one_labelled_quantity_per_axis(shown):
    for name, spec in shown.items():
        inner = spec.get("spec", spec)  # a faceted chart's axes are in its spec
        x, y = inner["encoding"]["x"], inner["encoding"]["y"]
        assert spec["title"]["text"], name
        assert x["title"], name
        assert y["title"] or y["type"] == "nominal", name  # a bar chart's names need no axis title
    assert {s["encoding"]["y"]["title"] for n, s in shown.items() if "val mIoU" in n} == {"val mIoU (%)"}
    assert {s["encoding"]["y"]["title"] for n, s in shown.items() if n.endswith("loss")} == {
        "contrastive loss (train)", "loss (train; loss.type)", "loss (train; loss.type + offset terms)"}


def test_bars_are_sorted_by_value_and_the_long_tail_labels_decades(shown):
    pairs = shown["most confused class pairs"]
    assert pairs["encoding"]["y"]["sort"] == "-x" and pairs["encoding"]["x"]["field"] == "value"
    per_class = shown["per-class IoU, best and worst"]
    assert per_class["spec"]["encoding"]["y"]["sort"]["order"] == "descending"
    assert {"filter": "datum.place <= 5 || datum.place > datum.classes - 5"} in per_class["transform"]
    axis = shown["long tail, per-class IoU against train frequency"]["encoding"]["x"]["axis"]
    assert "round(log(datum.value) / LN10)" in axis["labelExpr"]  # 1k, 10k, ...: never 1,000 beside 2,000


def test_best_and_worst_per_split():
    rows = [{"name": f"c{i}", "split": "head", "iou": str(i)} for i in range(20)] + [
        {"name": "x", "split": "tail", "iou": ""}, {"name": "y", "split": "tail", "iou": "0.0"}]
    g = best_and_worst(rows, k=3)
    assert [n for n, _ in g["head"]["shown"]] == ["c19", "c18", "c17", "c2", "c1", "c0"]
    assert g["head"]["classes"] == 20 and g["head"]["zero"] == 1 and g["head"]["miou"] == pytest.approx(9.5)
    assert g["tail"] == {"classes": 1, "zero": 1, "shown": [("y", 0.0)], "miou": 0.0}
    assert g["common"]["classes"] == 0 and g["common"]["miou"] is None


def test_pngs_of_the_pipeline_files(plots_repo, tmp_path):
    m = plots_repo / "metrics"
    for name in ("pretrain_curve", "pretrain_val", "confusion"):
        assert render_plot(m / f"{name}.csv", tmp_path / f"{name}.png")
    assert render_plot(m / "per_class.csv", tmp_path / "long_tail.png")
    for png in ("pretrain_curve", "pretrain_val", "confusion", "long_tail", PER_CLASS_PNG.removesuffix(".png")):
        image = mpimg.imread(tmp_path / f"{png}.png")
        assert image.shape[0] > 200 and image.std() > 0, png


# ---- the page of `dvc plots show`, offline ----------------------------------------------------------

@pytest.fixture(scope="module")
def page(plots_repo, tmp_path_factory) -> Path:
    """dvc_plots/index.html made with the template stages/plots_page.py writes."""
    template = tmp_path_factory.mktemp("tpl") / "page.html"
    subprocess.run([sys.executable, ROOT / "stages/plots_page.py", "--out", template], check=True,
                   capture_output=True)
    text = template.read_text()
    assert "{plot_divs}" in text and "{scripts}" not in text  # DVC's CDN <script> tags go into {scripts}
    out = plots_repo / "offline_page"
    subprocess.run([BIN / "dvc", "plots", "show", "--html-template", template, "-o", out], cwd=plots_repo,
                   check=True, capture_output=True)
    return out / "index.html"


def test_the_plots_page_loads_nothing_from_the_network(page):
    html = page.read_text(encoding="utf-8")
    markup = re.sub(r"<script>.*?</script>", "<script></script>", html, flags=re.S)  # the page less its code
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=", markup, re.I)  # all inline
    # the one URL left names the specs' Vega-Lite version ("$schema"), which Vega-Embed reads, never fetches
    assert not re.search(r"https?://", re.sub(r'"\$schema": "https://vega\.github\.io/schema/[^"]+"', "", markup))
    assert '<meta charset="utf-8">' in html  # the class pairs' arrows, Vega's own non-ASCII
    assert html.count("vegaEmbed(") == 9
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert 'version="5.33.0"' in scripts[0] and "5.23.0" in scripts[1] and "vegaEmbed" in scripts[2]
    if shutil.which("node"):  # each inlined script parses
        for i, js in enumerate(scripts[:3]):
            f = page.parent / f"script{i}.js"
            f.write_text(js, encoding="utf-8")
            r = subprocess.run(["node", "--check", f], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr


@pytest.mark.skipif(not shutil.which("chromium"), reason="no chromium to draw the page")
def test_the_plots_page_draws_with_the_network_blocked(page):
    """Headless Chromium with every host unresolvable and an unreachable proxy: all 7 charts drawn."""
    offline = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
               "--proxy-bypass-list=<-loopback>"]
    r = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", *offline,
                        "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
                       capture_output=True, text=True, timeout=180, env={**os.environ, "HOME": str(page.parent)})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("<canvas") == 7, r.stderr[-2000:]
