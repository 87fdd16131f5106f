"""The training loop: epochs of optimiser steps and resumable state.

The loop knows nothing of files or validation; hooks (validation, checkpoints, curves, tracking)
act on its state after each epoch.
"""

from __future__ import annotations

import contextlib
import logging
import time

import torch
from tqdm import tqdm

from lgseg.engine.checkpoint import rng_state, set_rng_state
from lgseg.engine.distributed import DistInfo
from lgseg.errors import LgsegError

log = logging.getLogger("lgseg.train")


class NonFiniteLossError(LgsegError):
    """The loss became NaN or inf: training stops, the last good checkpoint stays."""


class Trainer:
    def __init__(self, model, task, optimizer, scheduler, train_loader, *, epochs: int,
                 dist: DistInfo = DistInfo(), amp: bool = False, hooks=(), fingerprint: str = "",
                 progress: bool = True):
        self.model, self.task = model, task.to(dist.device)
        self.optimizer, self.scheduler = optimizer, scheduler
        self.train_loader, self.epochs = train_loader, epochs
        self.dist, self.hooks, self.fingerprint = dist, list(hooks), fingerprint
        self.amp = amp and dist.device.type == "cuda"  # mixed precision only where it pays: GPUs
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.progress = progress and dist.is_main
        self.epoch, self.global_step, self.history = 0, 0, []

    # ---- state -------------------------------------------------------------------------------
    @property
    def net(self) -> torch.nn.Module:
        """The model without its DistributedDataParallel wrapper (stable parameter names)."""
        return getattr(self.model, "module", self.model)

    def state_dict(self, complete: bool = False) -> dict:
        return {"model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "epoch": self.epoch, "global_step": self.global_step, "history": self.history,
                "rng": rng_state(), "fingerprint": self.fingerprint, "complete": complete}

    def resume(self, state: dict) -> None:
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.global_step = state["epoch"], state["global_step"]
        self.history = list(state["history"])
        set_rng_state(state["rng"])

    # ---- loop --------------------------------------------------------------------------------
    def fit(self) -> list[dict]:
        self._call("before_train")
        try:
            while self.epoch < self.epochs:
                logs = {"epoch": self.epoch + 1, **self.train_epoch()}
                self.scheduler.step()
                self.epoch += 1
                self.history.append(logs)  # the hooks may add to logs (validation's val_* keys)
                self._call("after_epoch", logs)
        except BaseException as e:
            self._call("on_exception", e)
            raise
        self._call("after_train")
        return self.history

    def _call(self, event: str, *args) -> None:
        """Each hook's ``event``, in order; ``main_only`` hooks (files, trackers) on rank 0 alone."""
        for h in self.hooks:
            if self.dist.is_main or not getattr(h, "main_only", True):
                getattr(h, event)(self, *args)

    def inputs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's inputs, voxel coordinates and features, on the device."""
        return self._move(batch["coord"]), self._move(batch["feat"])

    def targets(self, batch: dict) -> torch.Tensor | dict:
        """What the task's loss takes (``task.target_keys``, default the labels), on the device."""
        keys = getattr(self.task, "target_keys", ("label",))
        moved = {k: self._move(batch[k]) for k in keys}
        return moved[keys[0]] if len(keys) == 1 else moved

    def _move(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(self.dist.device, non_blocking=self.dist.device.type == "cuda")

    def autocast(self):
        return torch.autocast("cuda", dtype=torch.float16) if self.amp else contextlib.nullcontext()

    def _set_epoch(self, loader) -> None:
        for obj in (getattr(loader, "sampler", None), getattr(loader, "dataset", None)):
            if hasattr(obj, "set_epoch"):
                obj.set_epoch(self.epoch)

    def train_epoch(self) -> dict:
        """One pass over the training data. Besides the loss it reports throughput and where the
        time went: ``data_share`` waiting for batches, ``outside_share`` everything but the
        network's forward, backward and optimiser step (loading, collate, transfer, loss)."""
        self.model.train()
        self._set_epoch(self.train_loader)
        loss_sum, steps, voxels, data_time, net_time = 0.0, 0, 0, 0.0, 0.0
        part_sums: dict[str, float] = {}
        start = tick = time.perf_counter()
        bar = tqdm(self.train_loader, desc=f"{self.task.name} {self.epoch + 1}/{self.epochs}",
                   unit="batch", disable=not self.progress, leave=False)
        for batch in bar:
            data_time += time.perf_counter() - tick
            coords, feats = self.inputs(batch)
            target = self.targets(batch)
            t0 = self._now()
            with self.autocast():
                out = self.model(coords, feats)
            t1 = self._now()
            loss = self.task.loss(out, target)
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"{self.task.name}: the loss is {loss.item()} at epoch {self.epoch + 1}, step "
                    f"{self.global_step + 1}; training stopped and the last good checkpoint (epoch "
                    f"{self.epoch}) was kept. Lower the learning rate or check the inputs")
            t2 = self._now()
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            net_time += (t1 - t0) + (self._now() - t2)
            self.global_step += 1
            steps += 1
            loss_sum += loss.item()
            for k, v in getattr(self.task, "parts", {}).items():
                part_sums[k] = part_sums.get(k, 0.0) + v
            voxels += len(coords)
            elapsed = time.perf_counter() - start
            bar.set_postfix(loss=f"{loss_sum / steps:.4f}", vox_s=f"{voxels / elapsed:,.0f}")
            tick = time.perf_counter()
        elapsed = time.perf_counter() - start
        return {"loss": loss_sum / max(steps, 1), **{k: v / max(steps, 1) for k, v in part_sums.items()},
                "lr": self.optimizer.param_groups[0]["lr"],
                "voxels_per_s": voxels / elapsed, "data_share": data_time / elapsed,
                "outside_share": 1.0 - net_time / elapsed, "steps": self.global_step}

    def _now(self) -> float:
        if self.dist.device.type == "cuda":  # kernels run asynchronously: wait before reading the clock
            torch.cuda.synchronize(self.dist.device)
        return time.perf_counter()
