"""lgseg.report: the experiments of Table 1 / Fig. 5 and their layout beside the paper's numbers."""

import matplotlib.image as mpimg
import pytest

from lgseg.errors import LgsegError
from lgseg.report import (
    FIG5,
    FIG7,
    PAPER_TABLE1,
    TABLE1,
    Stat,
    beyond_spread,
    experiment_results,
    fig5_markdown,
    queue_command,
    runs_of,
    table1_markdown,
    with_seeds,
    write_report,
)


def summary(miou):
    """An evaluate.json whose split scores are miou + 0/1/2 for mIoU/precision/recall."""
    return {s: {"miou": miou, "precision": miou + 1, "recall": miou + 2} for s in ("head", "common", "tail", "all")}


def exp_show(results: dict, source="synthetic", stamp="2026-11-21T09:00:00", seeds=None, insseg=None) -> list:
    """``dvc exp show --json`` as DVC 3 prints it: baselines, each with its experiments' revs.
    ``seeds``: {name: seed} for pretrain.seed / finetune.seed in the experiment's params; ``insseg``:
    {name: insseg.json} for the experiments that ran the instance stages."""
    def rev(name, metrics):
        params = {"data": {"source": source}}
        if seeds and name in seeds:
            params.update(pretrain={"seed": seeds[name]}, finetune={"seed": seeds[name]})
        files = {"metrics/evaluate.json": {"data": metrics}}
        if insseg and name in insseg:
            files["metrics/insseg.json"] = {"data": insseg[name]}
        return {"rev": "0" * 40, "name": name, "data": {"timestamp": stamp,
            "params": {"params.yaml": {"data": params}}, "metrics": files}}
    return [{"rev": "workspace", "name": None, "data": {}, "experiments": None},
            {"rev": "1" * 40, "name": "main", "data": {}, "experiments": [
                {"revs": [rev(n, m)]} for n, m in results.items()] + [{"revs": [{"name": "broken", "error": {}}]}]}]


def test_experiment_definitions_match_the_paper():
    # the paper's rows, in its order, and its ablation behind Fig. 7 (printed without numbers)
    assert [r.label for r in TABLE1 if r.label in PAPER_TABLE1] == list(PAPER_TABLE1)
    assert [r.label for r in TABLE1 if r.label not in PAPER_TABLE1] == ["Ours (positives only)", "2D distillation"]
    rows = {r.label: r.overrides for r in TABLE1}
    assert rows["Ours (positives only)"] == {**rows["Ours"], "pretrain.contrastive.neg_weight": 0.0}
    assert rows["2D distillation"] == {**rows["Ours (CLIP only)"], "pretrain.objective": "distill"}
    assert [r.label for r in FIG7] == ["CSC", "SupCon", "Ours (positives only)", "Ours"]
    assert rows["Scratch"] == {"finetune.init": "scratch", "insseg.init": "scratch", "loss.type": "ce",
                               "instance_sampling.enabled": False}
    assert rows["Ours (CLIP only)"]["finetune.init"] == "pretrained" and rows["Ours (CLIP only)"]["loss.type"] == "ce"
    assert rows["Ours"] == {"pretrain.objective": "language", "finetune.init": "pretrained", "insseg.init": "pretrained",
                            "loss.type": "cb_focal", "instance_sampling.enabled": True}
    # SupCon: the same pretraining voxels without text, fine-tuned as CLIP only is
    assert rows["SupCon"] == {**rows["Ours (CLIP only)"], "pretrain.objective": "supcon"}
    assert rows["Ours (CLIP only)"]["pretrain.objective"] == "language"
    assert sorted({r.overrides["annotation.fraction"] for r in FIG5}) == [0.05, 0.1, 0.5]
    assert queue_command(TABLE1[1]) == [
        "dvc", "exp", "run", "--queue", "-n", "t1-ins-samp", "-S", "finetune.init=scratch", "-S", "insseg.init=scratch",
        "-S", "loss.type=ce", "-S", "instance_sampling.enabled=true"]


def test_results_and_table_cells():
    results = experiment_results(exp_show({"t1-scratch": summary(10.0), "t1-ours": summary(12.5)}))
    assert set(results) == {"t1-scratch", "t1-ours"} and results["t1-ours"]["metrics"]["all"]["miou"] == 12.5
    md = table1_markdown(results)
    scratch = next(line for line in md.splitlines() if line.startswith("| Scratch |"))
    # runs, then mIoU head ... all, then precision, then recall: ours (paper)
    assert scratch.split(" | ")[1:6] == ["1", "10.0 (48.3)", "10.0 (19.1)", "10.0 (7.9)", "10.0 (25.0)"]
    assert "11.0 (68.8)" in scratch and "12.0 (33.7)" in scratch
    ins = next(line for line in md.splitlines() if line.startswith("| Ins. samp. |"))
    assert ins.split(" | ")[1:3] == ["0", "– (48.5)"]
    assert "| SupCon | 0 | – (48.5) | – (19.2) | – (10.3) | – (26.0) |" in md
    assert "not ScanNet numbers" in md and "t1-ins-samp, t1-c-focal, t1-supcon, t1-csc, t1-pos-only, t1-clip-only" in md
    assert "| CSC | 0 | – (49.4) | – (19.5) | – (10.3) | – (26.4) |" in md
    assert "fewer than 2 runs on a side" in md and "▲" not in scratch
    assert "ScanNet v2 val" in table1_markdown(experiment_results(exp_show({"t1-ours": summary(1)}, "scannet")))


def test_unfinished_experiments_are_left_out():
    show = exp_show({"t1-ours": summary(1.0), "t1-scratch": summary(2.0), "t1-c-focal": summary(3.0)})
    experiments = show[1]["experiments"]
    experiments[0]["executor"] = {"state": "running"}  # DVC shows the baseline's metrics until it ends
    experiments[1]["executor"] = {"state": "success"}
    experiments[2]["executor"] = {"state": "failed"}
    assert set(experiment_results(show)) == {"t1-scratch"}


def test_the_newest_run_of_a_name_counts():
    old = exp_show({"t1-ours": summary(1.0), "t1-scratch": summary(2.0)}, stamp="2026-11-21T09:00:00")
    new = exp_show({"t1-ours": summary(5.0)}, stamp="2026-11-21T10:00:00")
    for order in (old + new, new + old):
        results = experiment_results(order)
        miou = {name: r["metrics"]["all"]["miou"] for name, r in results.items()}
        assert miou == {"t1-ours": 5.0, "t1-scratch": 2.0}


def test_write_report_files(tmp_path):
    results = {"t1-scratch": summary(10.0), "t1-ours": summary(12.5), "f5-ours-5": summary(3.0),
               "f5-scratch-50": summary(8.0)}
    files = write_report(tmp_path / "reports", exp_show(results))
    assert sorted(files) == ["fig5.md", "fig5.png", "fig7.md", "fig7.png", "fig7_points.csv", "runs.json",
                             "table1.md", "table1.png", "table2.md", "table2.png", "zeroshot.md"]
    fig5 = files["fig5.md"].read_text()
    assert "| Ours | 5% | 1 | 3.0 |" in fig5 and "| Scratch | 100% | 1 | 10.0 |" in fig5
    assert "| Ours | 10% | 0 | – |" in fig5 and "Runs per point: one seed each" in fig5
    for png in ("table1.png", "table2.png", "fig5.png", "fig7.png"):
        image = mpimg.imread(files[png])
        assert image.shape[0] > 300 and image.std() > 0


@pytest.mark.parametrize("bad", [[], [{"rev": "workspace", "experiments": None}]])
def test_no_experiments_yet_gives_an_empty_table_not_an_error(bad, tmp_path):
    md = table1_markdown(experiment_results(bad))
    assert md.count("– (") == 7 * 12 and "Not run yet" in md


def test_seeds_queue_each_row_with_its_seeds():
    rows = with_seeds(TABLE1, 3)
    assert len(rows) == 3 * len(TABLE1) and with_seeds(TABLE1, None) == TABLE1
    # seed by seed: the first seed's whole table is queued before the second seed's runs
    assert [r.name for r in rows[:len(TABLE1)]] == [f"{r.name}-s42" for r in TABLE1]
    supcon = next(r for r in rows if r.name == "t1-supcon-s44")
    assert supcon.label == "SupCon" and supcon.overrides["pretrain.objective"] == "supcon"
    assert supcon.overrides["pretrain.seed"] == 44 and supcon.overrides["finetune.seed"] == 44
    assert queue_command(supcon)[-6:] == ["-S", "pretrain.seed=44", "-S", "finetune.seed=44", "-S", "insseg.seed=44"]
    assert {r.overrides["finetune.seed"] for r in with_seeds(FIG5, 2)} == {42, 43}
    with pytest.raises(LgsegError, match="--seeds must be an integer >= 1"):
        with_seeds(TABLE1, 0)


def test_a_rows_runs_are_its_name_and_its_seeded_names_once_per_seed():
    results = experiment_results(
        exp_show({"t1-ours": summary(1.0), "t1-ours-s43": summary(2.0), "t1-ours-s44": summary(3.0),
                  "t1-ours-x": summary(9.0), "f5-ours-5": summary(4.0), "f5-ours-50": summary(5.0)},
                 seeds={"t1-ours": 43, "t1-ours-s43": 43, "t1-ours-s44": 44}, stamp="2026-11-21T09:00:00")
        + exp_show({"t1-ours-s43": summary(2.5)}, seeds={"t1-ours-s43": 43}, stamp="2026-11-21T10:00:00"))
    # t1-ours ran with seed 43 too: one configuration, the newest run counts; t1-ours-x is another row
    assert sorted(r["metrics"]["all"]["miou"] for r in runs_of(results, "t1-ours")) == [2.5, 3.0]
    assert [r["metrics"]["all"]["miou"] for r in runs_of(results, "f5-ours-5")] == [4.0]


def test_mean_std_and_the_spread_rule():
    a, b = Stat((10.0, 12.0, 14.0), 3), Stat((5.0, 6.0, 7.0), 3)  # std 2 and 1
    assert (a.mean, a.std) == (12.0, 2.0)
    assert beyond_spread(a, b) == 1 and beyond_spread(b, a) == -1  # |12 - 6| = 6 > 2 + 1
    assert beyond_spread(a, Stat((9.5, 10.0, 10.5), 3)) == 0  # 12 - 10 = 2 < 2 + 0.5
    assert beyond_spread(Stat((12.0,), 1), Stat((1.0,), 1)) == 0  # one run: no spread, no mark
    assert Stat((), 2).mean is None and Stat((3.0,), 1).std is None


def test_table_with_seeds_prints_mean_std_and_marks_only_beyond_the_spread():
    def m(all_miou, head):  # evaluate.json with its own all / head mIoU
        return {**summary(all_miou), "head": {"miou": head, "precision": None, "recall": head}}

    scratch = {"t1-scratch-s42": m(10.0, 20.0), "t1-scratch-s43": m(11.0, 22.0), "t1-scratch-s44": m(12.0, 24.0)}
    ours = {"t1-ours-s42": m(10.5, 30.0), "t1-ours-s43": m(12.0, 31.0), "t1-ours-s44": m(13.5, 32.0)}
    seeds = {name: int(name[-2:]) for name in {**scratch, **ours}}
    md = table1_markdown(experiment_results(exp_show({**scratch, **ours, "t1-supcon-s42": m(5.0, 5.0)},
                                                     seeds=seeds)))
    row = {line.split(" | ")[0][2:]: line.split(" | ") for line in md.splitlines() if line.startswith("| ")}
    assert row["Scratch"][1] == "3 (42, 43, 44)" and row["SupCon"][1] == "1"
    # head mIoU: 31 ± 1 vs 22 ± 2, beyond the spread; all: 12 ± 1.5 vs 11 ± 1, within it
    assert row["Ours"][2] == "31.0 ± 1.0 ▲ (51.5)" and row["Scratch"][2] == "22.0 ± 2.0 (48.3)"
    assert row["Ours"][5] == "12.0 ± 1.5 (28.9)" and row["Scratch"][5] == "11.0 ± 1.0 (25.0)"
    assert row["Ours"][6] == "–" + " (72.7)" and row["SupCon"][2] == "5.0 (48.5)"  # no precision defined
    assert ("Ours vs Scratch (3 and 3 runs): beyond the seeds' spread in 2 of 11 cells: mIoU head +9.0, "
            "Recall head +9.0; the other cells are within it.") in md
    assert "sum of both rows' standard deviations" in md


def test_fig5_says_one_seed_each_unless_a_point_pools_seeds(tmp_path):
    one = experiment_results(exp_show({"f5-ours-5": summary(3.0), "t1-ours": summary(9.0)}))
    assert "Runs per point: one seed each (" in fig5_markdown(one)
    several = experiment_results(exp_show({"f5-ours-5": summary(3.0), "t1-ours-s42": summary(9.0),
                                           "t1-ours-s43": summary(11.0)},
                                          seeds={"t1-ours-s42": 42, "t1-ours-s43": 43}))
    md = fig5_markdown(several)
    assert "one seed each, except 100 %: mean ± std of 2 seeds" in md and "| Ours | 100% | 2 (42, 43) | 10.0 ± 1.4 |" in md


def insseg(ap50: float) -> dict:
    """An insseg.json: AP50 as given, AP = AP50 - 10, AP25 = AP50 + 10, the semantic head's
    precision 50 + AP50 and mIoU 20 + AP50."""
    return {"all": {"ap": ap50 - 10, "ap50": ap50, "ap25": ap50 + 10, "precision": 50 + ap50, "miou": 20 + ap50},
            **{s: {"ap": 1.0, "ap50": 2.0, "ap25": 3.0} for s in ("head", "common", "tail")}}


def test_table2_rows_are_table1_experiments_with_the_papers_numbers_beside():
    from lgseg.report import PAPER_TABLE2, TABLE2, table2_markdown

    by_label = {r.label: r for r in TABLE1}
    assert [r.label for r in TABLE2 if r.label in PAPER_TABLE2] == list(PAPER_TABLE2) == ["Scratch", "CSC",
                                                                                        "CLIP only", "Ours"]
    assert [r.name for r in TABLE2] == ["t1-scratch", "t1-csc", "t1-clip-only", "t1-ours", "t1-distill"]
    assert {r.name: r.overrides for r in TABLE2}["t1-clip-only"] == by_label["Ours (CLIP only)"].overrides
    names = {f"t1-ours-s{s}": s for s in (42, 43, 44)} | {f"t1-scratch-s{s}": s for s in (42, 43, 44)}
    ap50 = {"t1-ours-s42": 30.0, "t1-ours-s43": 32.0, "t1-ours-s44": 34.0,
            "t1-scratch-s42": 20.0, "t1-scratch-s43": 21.0, "t1-scratch-s44": 22.0}
    results = experiment_results(exp_show({n: summary(1.0) for n in names} | {"t1-csc": summary(1.0)},
                                          seeds=names, insseg={n: insseg(v) for n, v in ap50.items()}))
    md = table2_markdown(results)
    ours = next(line for line in md.splitlines() if line.startswith("| Ours |"))
    # precision, mIoU, mAP@0.5 (paper), AP, AP25: mean ± std of 30, 32, 34
    assert ours.split(" | ")[1:8] == ["t1-ours", "3 (42, 43, 44)", "82.0 ± 2.0 ▲ (65.3)", "52.0 ± 2.0 ▲ (27.7)",
                                      "32.0 ± 2.0 ▲ (26.1)", "22.0 ± 2.0 ▲", "42.0 ± 2.0 ▲ |"]
    assert "| CSC | t1-csc | 0 |" in md  # ran before the instance stages existed: no instance metrics
    assert "mAP@0.5 +11.0 (above the spread 3.0)" in md and "Not run yet: t1-csc, t1-clip-only, t1-distill" in md


def test_queue_leaves_out_experiments_that_ran_or_are_queued(monkeypatch):
    import lgseg.report as report

    show = exp_show({"t1-scratch": summary(1.0)})
    show[1]["experiments"].append({"executor": {"state": "queued"}, "revs": [{"name": "t1-ours"}]})
    show[1]["experiments"].append({"executor": {"state": "failed"}, "revs": [{"name": "t1-csc"}]})
    calls = []
    monkeypatch.setattr(report, "exp_show_json", lambda cwd=".": show)
    monkeypatch.setattr(report, "_dvc", lambda *args, cwd=".": calls.append(args) or
                        type("R", (), {"returncode": 0, "stderr": ""})())
    queued, present = report.queue("table2")
    assert queued == ["t1-csc", "t1-clip-only", "t1-distill"] and present == ["t1-scratch", "t1-ours"]
    assert [c[c.index("-n") + 1] for c in calls] == ["t1-csc", "t1-clip-only", "t1-distill"]


def features(knn: float, silhouette: float) -> dict:
    return {"knn_accuracy": {"all": knn, "head": knn + 1, "common": knn, "tail": knn - 1}, "silhouette": silhouette}


def test_fig7_reads_the_feature_scores_and_points_and_the_report_keeps_them_for_another_clone(tmp_path):
    import json
    import subprocess

    repo = tmp_path / "repo"
    (repo / "metrics").mkdir(parents=True)
    (repo / "metrics/features_tsne.csv").write_text("x,y,class,name,split,scene\n0.5,1.0,0,wall,head,scene0001_00\n"
                                                    "2.0,-1.0,7,table,head,scene0001_00\n")
    for cmd in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "exp"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()

    def rev(name, seed, feats, commit="0" * 40):
        params = {"data": {"source": "synthetic"}, "pretrain": {"seed": seed}, "finetune": {"seed": seed}}
        return {"revs": [{"rev": commit, "name": name, "data": {"timestamp": f"2026-12-0{seed - 41}T00:00:00",
                "params": {"params.yaml": {"data": params}},
                "metrics": {"metrics/evaluate.json": {"data": summary(10.0)},
                            "metrics/features.json": {"data": feats}}}}]}

    show = [{"rev": "1" * 40, "name": "main", "data": {}, "experiments": [
        rev("t1-csc-s42", 42, features(20.0, 0.05), sha), rev("t1-ours-s42", 42, features(60.0, 0.3)),
        rev("t1-ours-s43", 43, features(70.0, 0.4))]}]
    out = tmp_path / "reports"
    files = write_report(out, show, cwd=repo)
    md = files["fig7.md"].read_text()
    assert "| CSC | t1-csc | 1 | t1-csc-s42 | 20.0 | 21.0 | 20.0 | 19.0 | 0.050 |" in md
    assert "| Ours | t1-ours | 2 (42, 43) | t1-ours-s42 | 65.0 ± 7.1 | 66.0 ± 7.1 |" in md and "0.350 ± 0.071" in md
    assert "| SupCon | t1-supcon | 0 | – |" in md and "Not run yet: t1-supcon, t1-pos-only" in md
    # the pictured CSC run's points came from its commit; Ours' commit is not in this clone
    assert files["fig7_points.csv"].read_text() == "experiment,x,y,class\nt1-csc-s42,0.500,1.000,0\n" \
                                                    "t1-csc-s42,2.000,-1.000,7\n"
    kept = json.loads(files["runs.json"].read_text())
    assert set(kept) == {"t1-csc-s42", "t1-ours-s42", "t1-ours-s43"}
    assert kept["t1-ours-s43"]["params"] == {"data": {"source": "synthetic"}, "pretrain": {"seed": 43},
                                             "finetune": {"seed": 43}}
    before = {n: files[n].read_text() for n in ("table1.md", "fig7.md", "fig7_points.csv")}
    # another clone: no experiment, no commit; the report is the same from what it kept
    again = write_report(out, [], cwd=tmp_path)
    assert {n: again[n].read_text() for n in before} == before
    assert mpimg.imread(again["fig7.png"]).std() > 0


def zeroshot_metrics(model, fusion=None, ensemble=None) -> dict:
    block = lambda v: None if v is None else {s: {"miou": v} for s in ("all", "head", "common", "tail")}  # noqa: E731
    return {"model": block(model), "fusion": block(fusion), "ensemble": block(ensemble)}


def test_the_zeroshot_table_reads_each_rows_readout_and_the_teachers_2d_scores():
    from lgseg.report import zeroshot_markdown

    show = exp_show({"t1-ours-s42": summary(1.0), "t1-ours-s43": summary(1.0), "t1-distill-s42": summary(1.0)},
                    seeds={"t1-ours-s42": 42, "t1-ours-s43": 43, "t1-distill-s42": 42})
    files = {"t1-ours-s42": zeroshot_metrics(3.0), "t1-ours-s43": zeroshot_metrics(5.0),
             "t1-distill-s42": zeroshot_metrics(2.0, 6.0, 7.0)}
    for exp in show[1]["experiments"]:
        rev = exp["revs"][0]
        if rev.get("name") in files:
            rev["data"]["metrics"]["metrics/zeroshot.json"] = {"data": files[rev["name"]]}
            if rev["name"] == "t1-distill-s42":
                rev["data"]["metrics"]["metrics/teacher.json"] = {"data": summary(40.0)}
    md = zeroshot_markdown(experiment_results(show))
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in md.splitlines() if line.startswith("| ")}
    assert rows["Ours: the language-grounded readout"][:3] == ["t1-ours", "2 (42, 43)", "4.0 ± 1.4"]
    assert rows["2D fusion: the demo teacher's features fused onto the points"][:3] == ["t1-distill", "1", "6.0"]
    assert rows["2D distillation: the 3D network"][2] == "2.0"
    assert rows["2D distillation: OpenScene's ensemble of 2D and 3D"][2] == "7.0"
    assert rows["Ours (positives only)"][1:3] == ["0", "–"]
    assert "2D mIoU all / head / common / tail 40.0 / 40.0 / 40.0 / 40.0" in md and "Not run yet: t1-pos-only" in md
