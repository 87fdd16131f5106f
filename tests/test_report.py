"""lgseg.report: the experiments of Table 1 / Fig. 5 and their layout beside the paper's numbers."""

import matplotlib.image as mpimg
import pytest

from lgseg.report import (
    FIG5,
    PAPER_TABLE1,
    TABLE1,
    experiment_results,
    queue_command,
    table1_markdown,
    write_report,
)


def summary(miou):
    """An evaluate.json whose split scores are miou + 0/1/2 for mIoU/precision/recall."""
    return {s: {"miou": miou, "precision": miou + 1, "recall": miou + 2} for s in ("head", "common", "tail", "all")}


def exp_show(results: dict, source="synthetic", stamp="2026-11-21T09:00:00") -> list:
    """``dvc exp show --json`` as DVC 3 prints it: baselines, each with its experiments' revs."""
    def rev(name, metrics):
        return {"rev": "0" * 40, "name": name, "data": {"timestamp": stamp,
            "params": {"params.yaml": {"data": {"data": {"source": source}}}},
            "metrics": {"metrics/evaluate.json": {"data": metrics}}}}
    return [{"rev": "workspace", "name": None, "data": {}, "experiments": None},
            {"rev": "1" * 40, "name": "main", "data": {}, "experiments": [
                {"revs": [rev(n, m)]} for n, m in results.items()] + [{"revs": [{"name": "broken", "error": {}}]}]}]


def test_experiment_definitions_match_the_paper():
    assert [r.label for r in TABLE1] == list(PAPER_TABLE1)  # the rows that need no other method's code
    rows = {r.label: r.overrides for r in TABLE1}
    assert rows["Scratch"] == {"finetune.init": "scratch", "loss.type": "ce", "instance_sampling.enabled": False}
    assert rows["Ours (CLIP only)"]["finetune.init"] == "pretrained" and rows["Ours (CLIP only)"]["loss.type"] == "ce"
    assert rows["Ours"] == {"finetune.init": "pretrained", "loss.type": "cb_focal", "instance_sampling.enabled": True}
    assert sorted({r.overrides["annotation.fraction"] for r in FIG5}) == [0.05, 0.1, 0.5]
    assert queue_command(TABLE1[1]) == [
        "dvc", "exp", "run", "--queue", "-n", "t1-ins-samp", "-S", "finetune.init=scratch", "-S", "loss.type=ce",
        "-S", "instance_sampling.enabled=true"]


def test_results_and_table_cells():
    results = experiment_results(exp_show({"t1-scratch": summary(10.0), "t1-ours": summary(12.5)}))
    assert set(results) == {"t1-scratch", "t1-ours"} and results["t1-ours"]["metrics"]["all"]["miou"] == 12.5
    md = table1_markdown(results)
    scratch = next(line for line in md.splitlines() if line.startswith("| Scratch |"))
    # mIoU head ... all, then precision, then recall: ours (paper)
    assert scratch.split(" | ")[1:5] == ["10.0 (48.3)", "10.0 (19.1)", "10.0 (7.9)", "10.0 (25.0)"]
    assert "11.0 (68.8)" in scratch and "12.0 (33.7)" in scratch
    ins = next(line for line in md.splitlines() if line.startswith("| Ins. samp. |"))
    assert ins.split(" | ")[1] == "– (48.5)"
    assert "not ScanNet numbers" in md and "t1-ins-samp, t1-c-focal, t1-clip-only" in md
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
    assert sorted(files) == ["fig5.md", "fig5.png", "table1.md", "table1.png"]
    fig5 = files["fig5.md"].read_text()
    assert "| Ours | 5% | 3.0 |" in fig5 and "| Scratch | 100% | 10.0 |" in fig5 and "| Ours | 10% | – |" in fig5
    for png in ("table1.png", "fig5.png"):
        image = mpimg.imread(files[png])
        assert image.shape[0] > 300 and image.std() > 0


@pytest.mark.parametrize("bad", [[], [{"rev": "workspace", "experiments": None}]])
def test_no_experiments_yet_gives_an_empty_table_not_an_error(bad, tmp_path):
    md = table1_markdown(experiment_results(bad))
    assert md.count("– (") == 5 * 12 and "Not run yet" in md
