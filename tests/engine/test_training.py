"""Training runs end to end, resumes after a kill, stops on a non-finite loss."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lgseg.engine.checkpoint import load_checkpoint, load_model
from lgseg.engine.launch import run_training
from lgseg.engine.trainer import NonFiniteLossError

from conftest import train_paths


def test_pretrain_then_finetune(tiny_data, tiny_cfg, tmp_path):
    pre = run_training("pretrain", tiny_cfg, train_paths(tiny_data, tmp_path / "pre", embeddings=tiny_data["text"]),
                       progress=False)
    assert pre["epochs"] == 3 and pre["steps"] == 3 * 2  # 4 train scenes, batch 2
    hist = pre["history"]
    assert [h["epoch"] for h in hist] == [1, 2, 3] and all(h["loss"] > 0 for h in hist)
    assert "val_miou" in hist[-1] and (tmp_path / "pre/curve.csv").read_text().startswith("epoch,loss")
    net, meta = load_model(tmp_path / "pre/model.pt")
    assert meta["kind"] == "pretrain" and meta["feature_dim"] == 16 and meta["num_classes"] is None

    fine = run_training("finetune", tiny_cfg, train_paths(tiny_data, tmp_path / "fine", embeddings=tiny_data["text"],
                                                          init=tmp_path / "pre/model.pt", stats=tiny_data["stats"]),
                        progress=False)
    assert fine["steps"] == 6
    net, meta = load_model(tmp_path / "fine/model.pt")
    assert meta["num_classes"] == 200 and meta["voxel_size"] == 0.1
    ckpt = load_checkpoint(tmp_path / "fine/ckpt/state.pt")  # weights_only=True loading works
    assert ckpt["complete"] and ckpt["epoch"] == 3 and ckpt["global_step"] == 6


def test_loss_decreases_when_overfitting(tiny_data, tiny_cfg, tmp_path):
    tiny_cfg.update(epochs=8, val_every=8, augment={k: False for k in tiny_cfg["augment"]} | {"random_translation": 0},
                    optimizer={"type": "sgd", "lr": 0.05, "momentum": 0.9})
    tiny_cfg["scheduler"] = {"type": "constant"}
    r = run_training("finetune", tiny_cfg, train_paths(tiny_data, tmp_path), progress=False)
    losses = [h["loss"] for h in r["history"]]
    assert losses[-1] < 0.5 * losses[0]


RUNNER = """
import json, logging, sys
logging.basicConfig(level=logging.INFO)
from pathlib import Path
sys.path.insert(0, {tests!r})
from conftest import train_paths
from lgseg.engine.launch import run_training
cfg = json.loads(Path({cfg!r}).read_text())
data = {{k: Path(v) for k, v in json.loads(Path({data!r}).read_text()).items()}}
r = run_training("finetune", cfg, train_paths(data, Path({out!r}), stats=data["stats"]), progress=False)
print("DONE", r["epochs"], r["steps"])
"""


def _runner(tiny_data, cfg, out: Path) -> list[str]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "cfg.json").write_text(json.dumps(cfg))
    (out / "data.json").write_text(json.dumps({k: str(v) for k, v in tiny_data.items()}))
    code = RUNNER.format(tests=str(Path(__file__).parent), cfg=str(out / "cfg.json"), data=str(out / "data.json"),
                         out=str(out))
    return [sys.executable, "-c", code]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_run_resumes_to_the_same_end(tiny_data, tiny_cfg, tmp_path, sig):
    tiny_cfg.update(epochs=4, val_every=10)
    tiny_cfg["loss"] = {"type": "cb_focal", "gamma": 2.0, "alpha_norm": "mean"}
    ref = subprocess.run(_runner(tiny_data, tiny_cfg, tmp_path / "ref"), capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr
    assert "DONE 4 8" in ref.stdout

    cmd = _runner(tiny_data, tiny_cfg, tmp_path / "run")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ckpt = tmp_path / "run" / "ckpt" / "state.pt"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:  # kill once 2 of 4 epochs are saved
        if ckpt.is_file() and load_checkpoint(ckpt)["epoch"] >= 2:
            proc.send_signal(sig)
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert proc.returncode != 0, "the run finished before it could be interrupted"
    interrupted = load_checkpoint(ckpt)
    assert 2 <= interrupted["epoch"] < 4 and not interrupted["complete"]

    resumed = subprocess.run(cmd, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "DONE 4 8" in resumed.stdout and "resuming finetune" in resumed.stderr
    a, b = load_checkpoint(tmp_path / "ref/ckpt/state.pt"), load_checkpoint(ckpt)
    assert (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"]) == (4, 8)
    # same data order and RNG after the restore: the same per-epoch losses and the same weights, up
    # to the float noise of MinkowskiEngine's unordered CPU reductions (single small tensors such as
    # BN biases can differ by 20 % relative, so the whole weight vector is compared)
    assert [h["epoch"] for h in b["history"]] == [1, 2, 3, 4]
    np.testing.assert_allclose([h["loss"] for h in b["history"]], [h["loss"] for h in a["history"]], rtol=1e-2)
    keys = [k for k, v in a["model"].items() if v.is_floating_point()]
    wa, wb = (torch.cat([m["model"][k].flatten() for k in keys]) for m in (a, b))
    assert float((wa - wb).norm() / wa.norm()) < 0.01  # observed ~0.1 %


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tiny_data, tiny_cfg, tmp_path, monkeypatch):
    from lgseg.engine import tasks

    calls = {"n": 0}
    real = tasks.FinetuneTask.loss

    def loss_that_breaks(self, out, labels):  # fine for 2 epochs (4 steps), then NaN
        calls["n"] += 1
        value = real(self, out, labels)
        return value * float("nan") if calls["n"] > 4 else value

    monkeypatch.setattr(tasks.FinetuneTask, "loss", loss_that_breaks)
    tiny_cfg["val_every"] = 10
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 3, step 5.*last good checkpoint \(epoch 2\)"):
        run_training("finetune", tiny_cfg, train_paths(tiny_data, tmp_path), progress=False)
    state = load_checkpoint(tmp_path / "ckpt/state.pt")
    assert state["epoch"] == 2 and not state["complete"]
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert not (tmp_path / "model.pt").exists()


def test_changed_settings_start_afresh(tiny_data, tiny_cfg, tmp_path, caplog):
    tiny_cfg.update(epochs=1, val_every=10)
    run_training("finetune", tiny_cfg, train_paths(tiny_data, tmp_path), progress=False)
    tiny_cfg["optimizer"]["lr"] = 0.01
    with caplog.at_level("INFO", logger="lgseg.train"):
        r = run_training("finetune", tiny_cfg, train_paths(tiny_data, tmp_path), progress=False)
    assert r["steps"] == 2 and "finished run; starting a new run" in caplog.text


def test_pretrain_holdout_hides_classes_from_training_and_reports_their_zero_shot_iou(tiny_data, tiny_cfg, tmp_path):
    from lgseg.data import ScanNetDataset, collate
    from lgseg.engine.distributed import DistInfo
    from lgseg.engine.launch import build_loaders, holdout_classes
    from lgseg.errors import LgsegError
    from lgseg.evaluation.metrics import SegmentationMetrics, class_scores
    from lgseg.losses import nearest_anchor
    from lgseg.scannet.constants import CLASS_NAMES
    from lgseg.text import load_embeddings

    val = np.concatenate([np.load(p / "segment200.npy") for p in (tiny_data["processed"] / "val").iterdir()])
    counts = np.bincount(val[val >= 0], minlength=200)
    held = holdout_classes([CLASS_NAMES[c] for c in np.argsort(-counts)[2:4]])  # two classes present in val
    cfg = {**tiny_cfg, "epochs": 1, "holdout": [CLASS_NAMES[c] for c in held]}
    paths = train_paths(tiny_data, tmp_path, embeddings=tiny_data["text"])

    train_loader, val_loader = build_loaders(cfg, paths, DistInfo(), train_ignore=held)
    seen = np.concatenate([train_loader.dataset[i]["label"] for i in range(len(train_loader.dataset))])
    shown = np.concatenate([val_loader.dataset[i]["label"] for i in range(len(val_loader.dataset))])
    assert not np.isin(seen, held).any() and np.isin(shown, held).any()

    logs = run_training("pretrain", cfg, paths, progress=False)["history"][-1]
    net, _ = load_model(tmp_path / "model.pt")
    anchors = torch.from_numpy(load_embeddings(tiny_data["text"])[0])
    metrics = SegmentationMetrics()
    dataset = ScanNetDataset(tiny_data["processed"], "val", voxel_size=cfg["voxel_size"])
    for i in range(len(dataset)):  # the anchor readout, recomputed outside the trainer
        batch = collate([dataset[i]])
        with torch.no_grad():
            pred = nearest_anchor(net.eval()(batch["coord"], batch["feat"]), anchors)
        metrics.update(batch["label"].numpy(), pred.numpy())
    expected = np.nanmean(class_scores(metrics.confusion)["iou"][held]) * 100
    assert logs["val_miou_holdout"] == pytest.approx(expected, abs=0.5)
    with pytest.raises(LgsegError, match="unknown ScanNet200 class name"):
        holdout_classes(["chair", "unicorn"])


# ---- SupCon pretraining and the zero-shot chance level ---------------------------------------------

def test_chance_iou_by_hand_and_against_a_uniform_random_readout():
    from lgseg.evaluation.confusion import confusion_matrix
    from lgseg.evaluation.metrics import chance_iou, class_scores

    # 4 classes with 6, 3, 1, 0 voxels of N = 10, m = 4 choices: IoU_c = n_c / (N + (m - 1) n_c)
    gt = np.repeat(np.arange(4), [6, 3, 1, 0])
    conf = confusion_matrix(gt, gt, 4)  # the prediction does not matter: only the ground truth counts
    expected = [6 / 28, 3 / 19, 1 / 13, 0.0]
    np.testing.assert_allclose(chance_iou(conf, 4), expected)
    # E[TP] = n/m, E[FP] = (N - n)/m, E[FN] = n - n/m, written out for class 0 (n 6, N 10, m 4)
    assert 6 / 28 == pytest.approx((6 / 4) / (6 / 4 + 4 / 4 + (6 - 6 / 4)))
    assert np.isnan(chance_iou(np.zeros((4, 5), np.int64), 4)).all()  # no labelled voxel: undefined

    # Monte Carlo: a readout picking uniformly among all 200 classes on the same voxels
    rng = np.random.default_rng(0)
    gt = np.repeat(np.arange(4), [40000, 20000, 10000, 5000])  # E[TP] = 200, 100, 50, 25
    conf = confusion_matrix(gt, gt, 200)
    trials = [class_scores(confusion_matrix(gt, rng.integers(0, 200, gt.size), 200))["iou"][:4] for _ in range(200)]
    np.testing.assert_allclose(np.mean(trials, axis=0), chance_iou(conf)[:4], rtol=0.05)  # 5 %: > 3 sigma


class _FixedNet(torch.nn.Module):
    def forward(self, coords, feats):
        return feats  # the "features" are the predictions, one column


def _fake_trainer(task, batches):
    from types import SimpleNamespace
    from contextlib import nullcontext

    from lgseg.engine.distributed import DistInfo

    return SimpleNamespace(net=_FixedNet(), task=task, dist=DistInfo(), progress=False, epoch=1, epochs=1,
                           inputs=lambda b: (b["coord"], b["feat"]), autocast=nullcontext)


def test_validation_reports_the_holdout_iou_beside_its_chance_level():
    from types import SimpleNamespace

    from lgseg.engine.hooks import ValidationHook
    from lgseg.evaluation.metrics import chance_iou

    # val: class 0 x 6, class 1 x 3, class 2 x 1 (class 3 held out too, absent from val)
    labels = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 2])
    pred = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 3, 3])  # class 1: TP 2, FP 2, FN 1 -> IoU 2/5; class 2: 0
    batch = {"coord": torch.zeros(10, 4), "feat": pred.unsqueeze(1), "label": labels, "scenes": ["s"]}
    task = SimpleNamespace(name="pretrain", readout="test", class_groups={"holdout": [1, 2, 3]},
                           predict=lambda out: out[:, 0])
    logs = {"epoch": 1}
    ValidationHook(loader=[batch]).after_epoch(_fake_trainer(task, [batch]), logs)
    assert logs["val_miou_holdout"] == pytest.approx((0.4 + 0.0) / 2 * 100)  # classes 1 and 2: present in val
    n, big_n = np.array([3, 1]), 10  # their voxels, of 10 labelled; 200 anchors
    assert logs["val_miou_holdout_chance"] == pytest.approx(np.mean(n / (big_n + 199 * n)) * 100)
    conf = np.zeros((200, 201), np.int64)
    conf[[0, 1, 2], [0, 1, 2]] = [6, 3, 1]
    assert logs["val_miou_holdout_chance"] == pytest.approx(np.mean(chance_iou(conf)[[1, 2]]) * 100)


def test_supcon_pretraining_has_no_zero_shot_validation(caplog):
    from lgseg.engine.hooks import ValidationHook
    from lgseg.engine.tasks import SupConPretrainTask
    from lgseg.losses import SupConLoss

    task = SupConPretrainTask(SupConLoss())
    trainer, logs = _fake_trainer(task, []), {"epoch": 1, "loss": 1.0}
    hook = ValidationHook(loader=[{"never": "read"}])
    with caplog.at_level("INFO", logger="lgseg.train"):
        hook.before_train(trainer)
        hook.after_epoch(trainer, logs)
    assert logs == {"epoch": 1, "loss": 1.0} and "no validation" in caplog.text and "has no meaning" in caplog.text
    with pytest.raises(NotImplementedError, match="zero-shot readout"):
        task.predict(torch.zeros(2, 3))


def test_the_pretrain_stage_config_builds_the_objectives_loss(tiny_data):
    import yaml

    from lgseg.config import training_config
    from lgseg.engine.launch import build_task
    from lgseg.engine.tasks import PretrainTask, SupConPretrainTask
    from lgseg.losses import ContrastiveLanguageLoss, SupConLoss
    from lgseg.text import load_embeddings

    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    emb = load_embeddings(tiny_data["text"])[0]
    params["pretrain"]["objective"] = "supcon"
    task = build_task("pretrain", training_config(params, "pretrain"), emb, None, [])
    supcon = params["pretrain"]["supcon"]
    assert isinstance(task, SupConPretrainTask) and isinstance(task.loss_fn, SupConLoss) and task.readout is None
    assert (task.loss_fn.temperature, task.loss_fn.samples, task.loss_fn.sampling) == (
        supcon["temperature"], supcon["samples"], supcon["sampling"])
    params["pretrain"]["objective"] = "language"
    task = build_task("pretrain", training_config(params, "pretrain"), emb, None, [5])
    assert isinstance(task, PretrainTask) and isinstance(task.loss_fn, ContrastiveLanguageLoss)
    assert task.class_groups == {"holdout": [5]}


def test_the_finetune_stage_config_builds_the_loss_of_params_yaml(tiny_data):
    # loss.gamma's whole path: params.yaml -> config.training_config -> launch.build_task -> focal.py
    import yaml

    from lgseg.config import training_config
    from lgseg.engine.launch import TrainPaths, build_task
    from lgseg.losses import CrossEntropy, FocalLoss, class_balanced_alpha

    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    params["loss"].update(type="cb_focal", gamma=3.5, alpha_norm="sum")
    paths = TrainPaths(processed=tiny_data["processed"], checkpoint=Path("c"), model=Path("m"), curve=Path("v"),
                       stats=tiny_data["stats"])
    loss = build_task("finetune", training_config(params, "finetune"), None, paths, []).loss_fn
    counts = json.loads(tiny_data["stats"].read_text())["train_points"]
    assert isinstance(loss, FocalLoss) and loss.gamma == 3.5
    torch.testing.assert_close(loss.alpha, class_balanced_alpha(counts))
    params["loss"]["type"] = "ce"  # -S loss.type=ce keeps loss.gamma in params.yaml: not a key of ce
    assert isinstance(build_task("finetune", training_config(params, "finetune"), None, paths, []).loss_fn,
                      CrossEntropy)

def test_supcon_pretraining_runs_and_feeds_finetuning(tiny_data, tiny_cfg, tmp_path, caplog):
    cfg = {**tiny_cfg, "epochs": 1, "objective": "supcon",
           "supcon": {"temperature": 0.1, "samples": 256, "sampling": "balanced"}}
    with caplog.at_level("INFO", logger="lgseg.train"):
        pre = run_training("pretrain", cfg, train_paths(tiny_data, tmp_path / "pre", embeddings=tiny_data["text"]),
                           progress=False)
    hist = pre["history"]
    assert hist[-1]["loss"] > 0 and not any(k.startswith("val_") for h in hist for k in h)
    assert "no validation: supcon pretraining" in caplog.text
    fine = run_training("finetune", {**tiny_cfg, "epochs": 1},
                        train_paths(tiny_data, tmp_path / "fine", embeddings=tiny_data["text"],
                                    init=tmp_path / "pre/model.pt", stats=tiny_data["stats"]), progress=False)
    assert fine["steps"] == 2 and "val_miou" in fine["history"][-1]
