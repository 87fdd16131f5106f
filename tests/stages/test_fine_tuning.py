"""stages/fine_tuning.py: where the two fine-tuning stages start from."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "stages"))
from fine_tuning import start_weights  # noqa: E402

from lgseg.errors import LgsegError  # noqa: E402


@pytest.mark.parametrize("section", ["finetune", "insseg"])
def test_each_fine_tuning_starts_from_its_own_keys(section):
    params = {section: {"init": "pretrained", "weights": ""}}
    assert start_weights(params, section, "models/pretrain.pt") == "models/pretrain.pt"
    params[section]["weights"] = "their.ckpt"
    assert start_weights(params, section, "models/pretrain.pt") == "their.ckpt"
    with pytest.raises(LgsegError, match=f"{section}.weights is 'their.ckpt' but {section}.init is 'scratch'"):
        start_weights({section: {"init": "scratch", "weights": "their.ckpt"}}, section, "models/pretrain.pt")
    assert start_weights({section: {"init": "scratch", "weights": ""}}, section, "models/pretrain.pt") is None
    with pytest.raises(LgsegError, match=f"{section}.init must be 'pretrained' or 'scratch'"):
        start_weights({section: {"init": "cold", "weights": ""}}, section, "models/pretrain.pt")
