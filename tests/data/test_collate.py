"""collate / CollateFn: batch column, offsets, concatenation and the point cap."""

from __future__ import annotations

import importlib
import logging
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lgseg.data.collate import CollateFn, collate

collate_module = importlib.import_module("lgseg.data.collate")  # the name `collate` is the function


def _sample(m: int, scene: str, with_inverse: bool = True) -> dict:
    s = {
        "coord": np.arange(3 * m, dtype=np.int32).reshape(m, 3),
        "feat": np.full((m, 3), float(m), dtype=np.float32),
        "label": np.arange(m, dtype=np.int64),
        "scene": scene,
        "num_points": 2 * m,
    }
    if with_inverse:
        s["inverse"] = np.repeat(np.arange(m), 2)
    return s


@pytest.fixture(autouse=True)
def fresh_warning_flag(monkeypatch):
    monkeypatch.setattr(collate_module, "_warned_truncation", False)


def test_batch_layout():
    batch = collate([_sample(5, "a"), _sample(4, "b"), _sample(3, "c")])
    assert batch["coord"].dtype == torch.int32 and batch["coord"].shape == (12, 4)
    assert batch["coord"][:, 0].tolist() == [0] * 5 + [1] * 4 + [2] * 3
    torch.testing.assert_close(batch["coord"][5:9, 1:], torch.arange(12, dtype=torch.int32).reshape(4, 3))
    assert batch["offset"].tolist() == [0, 5, 9, 12] and batch["offset"].dtype == torch.int64
    assert batch["feat"].dtype == torch.float32
    assert batch["feat"][:, 0].tolist() == [5] * 5 + [4] * 4 + [3] * 3
    assert batch["label"].dtype == torch.int64 and batch["label"][9:].tolist() == [0, 1, 2]
    assert batch["scenes"] == ["a", "b", "c"] and batch["num_points"] == [10, 8, 6]
    assert [len(i) for i in batch["inverse"]] == [10, 8, 6]


def test_inverse_only_when_present():
    assert "inverse" not in collate([_sample(2, "a", with_inverse=False), _sample(2, "b")])


def test_cap_keeps_order_and_drops_tail_with_one_warning(caplog):
    samples = [_sample(5, "a"), _sample(4, "b"), _sample(3, "c")]
    with caplog.at_level(logging.DEBUG, logger="lgseg.data.collate"):
        batch = collate(samples, max_points=9)
        assert batch["scenes"] == ["a", "b"] and batch["offset"].tolist() == [0, 5, 9]
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "dropped 1 of 3" in warnings[0].getMessage()
        collate(samples, max_points=9)  # the second truncation is not warned again
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    assert collate(samples, max_points=12)["scenes"] == ["a", "b", "c"]  # exactly at the cap: all kept


def test_cap_always_keeps_the_first_sample(caplog):
    with caplog.at_level(logging.WARNING, logger="lgseg.data.collate"):
        batch = collate([_sample(5, "a"), _sample(1, "b")], max_points=2)
    assert batch["scenes"] == ["a"] and batch["coord"].shape == (5, 4)
    assert "dropped 1 of 2" in caplog.text


def test_collate_fn_is_picklable_and_works_in_a_dataloader():
    fn = pickle.loads(pickle.dumps(CollateFn(max_points=9)))
    assert fn.max_points == 9
    loader = DataLoader([_sample(5, "a"), _sample(4, "b"), _sample(3, "c")], batch_size=2, collate_fn=fn)
    batches = list(loader)
    assert [b["scenes"] for b in batches] == [["a", "b"], ["c"]]
    with pytest.raises(ValueError, match="max_points"):
        CollateFn(max_points=0)
