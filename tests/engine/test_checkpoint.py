"""Reading weights: lgseg model files, the authors' Lightning checkpoints, and refusing pickled code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from lgseg.engine.checkpoint import load_model, place, read_weights, save_model
from lgseg.errors import InputError, LgsegError
from lgseg.models import build_model


pytestmark = pytest.mark.usefixtures("one_thread")


def authors_layout(state: dict) -> dict:
    """lgseg names -> the authors' (``model.`` + backbone at top level, head ``final``)."""
    out = {}
    for name, value in state.items():
        name = "final." + name[len("classifier."):] if name.startswith("classifier.") else name[len("backbone."):]
        out["model." + name] = value.clone()
    return out


def lightning_checkpoint(net: torch.nn.Module, path: Path, sgd_step: bool = True) -> Path:
    """What PyTorch Lightning 1.6.5 writes for the authors' trainer, with real optimizer/scheduler states
    (``sgd_step``: after one step, so that SGD holds momentum buffers as in a real run)."""
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[120, 150], gamma=0.3)
    if sgd_step:
        for p in net.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()
        sched.step()
    ckpt = {
        "epoch": 399, "global_step": 120000, "pytorch-lightning_version": "1.6.5",
        "state_dict": authors_layout(net.state_dict()),
        "loops": {"fit_loop": {"state_dict": {}, "epoch_loop.state_dict": {"_batches_that_stepped": 120000},
                               "epoch_progress": {"total": {"ready": 400, "started": 400, "processed": 400,
                                                            "completed": 399}, "current": {"ready": 400}}},
                  "validate_loop": {"state_dict": {}}},
        "callbacks": {"ModelCheckpoint{'monitor': 'val_miou', 'mode': 'max'}": {
            "monitor": "val_miou", "best_model_score": torch.tensor(27.5), "best_model_path": "/ckpt/best.ckpt",
            "current_score": torch.tensor(27.1), "dirpath": "/ckpt", "kth_value": torch.tensor(26.0),
            "best_k_models": {"/ckpt/best.ckpt": torch.tensor(27.5)}, "kth_best_model_path": "/ckpt/k.ckpt",
            "last_model_path": "/ckpt/last.ckpt"}},
        "optimizer_states": [opt.state_dict()],
        "lr_schedulers": [sched.state_dict()],
        "hparams_name": "config",
        "hyper_parameters": {"model": net.arch, "voxel_size": 0.02, "lr": 0.05, "milestones": "120,150",
                             "train_phase": "train", "weights": None, "is_train": True, "scheduler_gamma": 0.3},
    }
    assert type(ckpt["lr_schedulers"][0]["milestones"]).__name__ == "Counter"  # what needs the allow-list check
    torch.save(ckpt, path)
    return path


def small_net(num_classes: int | None = 200, backend: str = "spconv", name: str = "Res16UNet14S", seed: int = 0):
    torch.manual_seed(seed)
    return build_model({"name": name, "backend": backend}, feature_dim=None, num_classes=num_classes)


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        torch.testing.assert_close(sb[name], sa[name], rtol=0, atol=0, msg=name)


def test_lightning_checkpoint_loads_weights_only_and_equal(tmp_path):
    src = small_net()
    path = lightning_checkpoint(src, tmp_path / "authors.ckpt")
    state, meta = read_weights(path)
    assert meta is None and all(k.startswith("model.") for k in state)
    net, meta = load_model(path, model="Res16UNet14S", voxel_size=0.02)
    assert meta["num_classes"] == 200 and meta["voxel_size"] == 0.02 and meta["model"]["backend"] == "minkowski"
    assert_same_weights(src, net)


def test_authors_backbone_checkpoint_has_no_classifier(tmp_path):
    src = small_net(num_classes=None, backend="minkowski")
    net, meta = load_model(lightning_checkpoint(src, tmp_path / "pre.ckpt"), backend="spconv",
                           model="Res16UNet14S", voxel_size=0.02)
    assert net.classifier is None and meta["num_classes"] is None and net.backend == "spconv"
    assert_same_weights(src, net)


def test_lgseg_model_file_round_trips_onto_the_other_backend(tmp_path):
    src = small_net(backend="minkowski")
    meta = {"kind": "finetune", "model": {"name": "Res16UNet14S", "backend": "minkowski"}, "feature_dim": 32,
            "num_classes": 200, "text": None, "voxel_size": 0.1}
    save_model(tmp_path / "m.pt", src, meta)
    net, got = load_model(tmp_path / "m.pt", backend="spconv")
    assert net.backend == "spconv" and got["model"]["backend"] == "spconv" and got["voxel_size"] == 0.1
    assert_same_weights(src, net)
    with pytest.raises(InputError, match=r"m\.pt: a Res16UNet14S model, not Res16UNet34C. leave --model out"):
        load_model(tmp_path / "m.pt", model="Res16UNet34C")


def test_plain_state_dict_reads_without_meta(tmp_path):
    src = small_net(num_classes=None)
    torch.save(src.state_dict(), tmp_path / "plain.pt")
    state, meta = read_weights(tmp_path / "plain.pt")
    assert meta is None and state.keys() == src.state_dict().keys()


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_checkpoint_naming_code_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {"model.x": torch.zeros(1)}, "hyper_parameters": _RunsCode(marker)}, path)
    with pytest.raises(InputError) as e:
        read_weights(path)
    msg = str(e.value)
    assert str(path) in msg and "system" in msg and "nothing it names was run" in msg and "\n" not in msg
    assert "weights_only" not in msg  # torch's advice to switch the safety off is not passed on
    assert not marker.exists()


def test_pickled_custom_class_is_refused(tmp_path):
    path = tmp_path / "custom.pt"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "meta": {"cfg": InputError(None, "x")}}, path)
    with pytest.raises(InputError, match=r"custom\.pt: refused: its pickle names code.*lgseg\.errors\.InputError"):
        read_weights(path)


def test_unreadable_and_missing_files_are_one_line_errors(tmp_path):
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"junk\.ckpt: cannot load checkpoint") as e:
        read_weights(tmp_path / "junk.ckpt")
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match=r"nope\.ckpt: checkpoint not found"):
        read_weights(tmp_path / "nope.ckpt")
    torch.save({"epoch": 3}, tmp_path / "noweights.pt")
    with pytest.raises(InputError, match=r"noweights\.pt: holds no model weights"):
        read_weights(tmp_path / "noweights.pt")


def test_bare_checkpoint_needs_model_and_voxel_size(tmp_path):
    path = lightning_checkpoint(small_net(), tmp_path / "a.ckpt")
    with pytest.raises(InputError, match=r"a\.ckpt: .*does not record its architecture.*--model NAME --voxel-size V"):
        load_model(path)
    with pytest.raises(InputError, match=r"a\.ckpt: .*--model NAME --voxel-size V"):
        load_model(path, model="Res16UNet14S")
    with pytest.raises(InputError, match=r"a\.ckpt: cannot build its network: model\.name must be one of .*34C"):
        load_model(path, model="Res16UNet99", voxel_size=0.02)


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    path = lightning_checkpoint(small_net(name="Res16UNet14A"), tmp_path / "a14.ckpt")
    with pytest.raises(InputError, match=r"a14\.ckpt: does not hold all weights of a Res16UNet14S: 0 tensor\(s\) "
                                         r"missing, 161 of another shape \(backbone\.conv0p1s1\.kernel \(27, 3, 32\)"
                                         r"!=\(27, 3, 16\).*pass the --model the checkpoint was trained as"):
        load_model(path, model="Res16UNet14S", voxel_size=0.02)


def test_checkpoint_missing_tensors_is_refused(tmp_path):
    """Loaded leniently, a partial checkpoint would leave tensors random: an error, not silent garbage."""
    state = small_net(num_classes=None).state_dict()
    torch.save({k: v for k, v in state.items() if not k.startswith("backbone.block8.")}, tmp_path / "part.pt")
    with pytest.raises(InputError, match=r"part\.pt: does not hold all weights of a Res16UNet14S: 15 tensor\(s\) "
                                         r"missing, 0 of another shape \(backbone\.block8\.0\.conv1\.kernel, "):
        load_model(tmp_path / "part.pt", model="Res16UNet14S", voxel_size=0.02)


def test_minkowski_on_cuda_is_a_one_line_error():
    with pytest.raises(LgsegError, match="minkowski runs on the CPU only.*spconv"):
        place(small_net(backend="minkowski"), "cuda")


def _model_file(tmp_path: Path, **meta) -> tuple[Path, torch.nn.Module]:
    net = build_model({"name": "Res16UNet14S", "backend": "minkowski"}, feature_dim=None, num_classes=200)
    path = tmp_path / "model.pt"
    save_model(path, net, {"kind": "finetune", "model": {"name": "Res16UNet14S", "backend": "minkowski"},
                           "feature_dim": net.feature_dim, "num_classes": 200, "text": None, "voxel_size": 0.05,
                           **meta})
    return path, net


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.0, -1.0, 1e-9, "0.02"])
def test_a_model_file_with_an_unusable_voxel_size_is_refused(tmp_path, bad):
    path, _ = _model_file(tmp_path, voxel_size=bad)
    with pytest.raises(InputError, match=r"model.pt: records an unusable voxel size: a voxel size must be a number "
                                         r"of metres in \[0.001, 10\]"):
        load_model(path)


def test_weights_that_are_not_finite_are_refused_naming_the_first_tensor(tmp_path):
    net = build_model({"name": "Res16UNet14S", "backend": "minkowski"}, feature_dim=None, num_classes=200)
    state = net.state_dict()
    state["backbone.block2.0.conv1.kernel"] = torch.full_like(state["backbone.block2.0.conv1.kernel"], float("nan"))
    path = tmp_path / "diverged.pt"
    torch.save({"state_dict": state, "meta": {"voxel_size": 0.05}}, path)
    for read in (read_weights, load_model):  # fine-tuning's start and prediction alike
        with pytest.raises(InputError, match="tensor backbone.block2.0.conv1.kernel holds NaN or infinite values"):
            read(path)


def test_training_never_writes_weights_that_are_not_finite(tmp_path):
    from lgseg.engine.checkpoint import NonFiniteWeightsError, save_checkpoint

    path, net = _model_file(tmp_path)
    before = path.read_bytes()
    with torch.no_grad():
        net.classifier.kernel[0, 0] = float("inf")
    for write in (lambda: save_model(path, net, {}), lambda: save_checkpoint(path, {"model": net.state_dict()})):
        with pytest.raises(NonFiniteWeightsError, match="tensor classifier.kernel of the network holds NaN"):
            write()
        assert path.read_bytes() == before  # the last good file stays
