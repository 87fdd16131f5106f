"""CLIP's text side (tokenizer, model, weights) without importing the ``clip`` package.

``import clip`` pulls in torchvision (image transforms) and ``pkg_resources``; neither is needed
for text and torchvision cannot be installed here. The package's ``simple_tokenizer.py`` and
``model.py`` import neither, so they are loaded as standalone modules from the installed package
directory. Token ids and ``CLIP.encode_text`` are those of openai-clip 1.0.1.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from lgseg.errors import LgsegError

CONTEXT_LENGTH = 77  # every published CLIP model
SOT_TOKEN = 49406  # <|startoftext|>
EOT_TOKEN = 49407  # <|endoftext|>
CLIP_CACHE = "~/.cache/clip"  # where clip.load() downloads to and where we look

# model name -> weights file name used by clip.load() (the basename of its download URL)
CLIP_FILES: dict[str, str] = {
    "RN50": "RN50.pt",
    "RN101": "RN101.pt",
    "RN50x4": "RN50x4.pt",
    "RN50x16": "RN50x16.pt",
    "RN50x64": "RN50x64.pt",
    "ViT-B/32": "ViT-B-32.pt",
    "ViT-B/16": "ViT-B-16.pt",
    "ViT-L/14": "ViT-L-14.pt",
    "ViT-L/14@336px": "ViT-L-14-336px.pt",
}
# joint embedding width of each model: a cheap check that a weights file is the model it claims
CLIP_DIMS: dict[str, int] = {
    "RN50": 1024, "RN101": 512, "RN50x4": 640, "RN50x16": 768, "RN50x64": 1024,
    "ViT-B/32": 512, "ViT-B/16": 512, "ViT-L/14": 768, "ViT-L/14@336px": 768,
}
_INSTALL_HINT = "pip install ftfy regex && pip install --no-deps openai-clip==1.0.1"


def clip_package_dir() -> Path:
    """The installed openai-clip package's folder (found without importing it)."""
    spec = importlib.util.find_spec("clip")
    if spec is None or not spec.submodule_search_locations:
        raise LgsegError(f"the CLIP text encoder needs the openai-clip package: {_INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0])


@functools.cache
def _clip_module(name: str) -> ModuleType:
    """Load ``clip/<name>.py`` alone (registered in sys.modules so inspect/jit can find its source)."""
    path = clip_package_dir() / f"{name}.py"
    mod_name = f"lgseg_clip_{name}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise LgsegError(f"{path}: not found in the openai-clip package. Reinstall it: {_INSTALL_HINT}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except ModuleNotFoundError as e:  # ftfy / regex missing
        del sys.modules[mod_name]
        raise LgsegError(f"the CLIP tokenizer needs {e.name!r}: {_INSTALL_HINT}") from e
    return module


def clip_model_module() -> ModuleType:
    """The package's ``clip/model.py`` (defines ``CLIP`` and ``build_model``)."""
    return _clip_module("model")


@functools.cache
def _tokenizer():
    return _clip_module("simple_tokenizer").SimpleTokenizer()


def tokenize(texts: str | Sequence[str], context_length: int = CONTEXT_LENGTH) -> torch.Tensor:
    """CLIP token ids, shape (N, context_length) int64: SOT, BPE ids, EOT, then zeros.

    Same ids as ``clip.tokenize`` (without truncation: a text that does not fit is an error).
    """
    if isinstance(texts, str):
        texts = [texts]
    tok = _tokenizer()
    out = torch.zeros(len(texts), context_length, dtype=torch.long)
    for i, text in enumerate(texts):
        ids = [SOT_TOKEN, *tok.encode(text), EOT_TOKEN]
        if len(ids) > context_length:
            raise LgsegError(
                f"text {text!r} is {len(ids)} CLIP tokens long (with start/end tokens); "
                f"at most {context_length} fit. Shorten the class name or prompt"
            )
        out[i, : len(ids)] = torch.tensor(ids)
    return out


def build_clip(state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """The CLIP model described by ``state_dict`` (via the package's ``build_model``), float32, eval.

    ``build_model`` casts to fp16 and deletes keys from its argument, so it gets a copy; the
    result is cast back to float32 as ``clip.load`` does on CPU (fp16 matmuls are slow there).
    """
    try:
        model = clip_model_module().build_model(dict(state_dict))
    except (KeyError, RuntimeError, AssertionError) as e:
        raise LgsegError(f"these weights are not a CLIP state dict ({type(e).__name__}: {e})") from e
    return model.float().eval()


def default_weights_path(model_name: str) -> Path:
    """``~/.cache/clip/<file>``: where ``clip.load(model_name)`` keeps its download."""
    if model_name not in CLIP_FILES:
        raise LgsegError(f"unknown CLIP model {model_name!r}; known: {', '.join(CLIP_FILES)}")
    return Path(os.path.expanduser(CLIP_CACHE)) / CLIP_FILES[model_name]


def _how_to_get(model_name: str) -> str:
    file = CLIP_FILES[model_name]
    return (
        f"Run `lgseg download-clip {model_name}` on a machine with internet: it writes {CLIP_CACHE}/{file} "
        f"and checks its SHA-256; on a machine without, copy that file from one into {CLIP_CACHE}/, "
        f"or set text.clip_weights in params.yaml to its path"
    )


def _read_state_dict(path: Path, model_name: str) -> dict[str, torch.Tensor]:
    """Read a TorchScript archive (the published files) or a plain ``torch.save`` state dict."""
    try:
        with warnings.catch_warnings():
            # torch.jit is deprecated, but it is the format OpenAI published the weights in
            warnings.simplefilter("ignore", DeprecationWarning)
            return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
    except Exception:  # not TorchScript; a fresh open below (openai-clip 1.0.1 forgets to rewind)
        pass
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise LgsegError(
            f"{path}: cannot read CLIP weights ({type(e).__name__}: {e}). The file is corrupt or "
            f"not a CLIP checkpoint; replace it. {_how_to_get(model_name)}"
        ) from e
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise LgsegError(f"{path}: not a CLIP state dict (got {type(obj).__name__}); "
                         "expected a TorchScript archive or torch.save(model.state_dict())")
    return dict(obj)


def load_clip_weights(model_name: str, weights_path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The state dict of CLIP ``model_name`` from ``weights_path`` or ``~/.cache/clip/<file>``.

    Offline only: when no file exists this raises an LgsegError saying where to put one and how
    to get it (``lgseg download-clip``, ``lgseg.text.download``, on a machine with internet).
    """
    if model_name not in CLIP_FILES:
        raise LgsegError(f"unknown CLIP model {model_name!r}; known: {', '.join(CLIP_FILES)}")
    if weights_path is None or str(weights_path) == "":
        path = default_weights_path(model_name)
        if not path.is_file():
            raise LgsegError(f"CLIP {model_name} weights not found at {path} "
                             f"({CLIP_CACHE}/{CLIP_FILES[model_name]}); training and queries do not download "
                             f"them. {_how_to_get(model_name)}")
    else:
        path = Path(os.path.expanduser(str(weights_path)))
        if not path.is_file():
            raise LgsegError(f"{path}: CLIP weights file (text.clip_weights) does not exist. "
                             f"{_how_to_get(model_name)}")
    state_dict = _read_state_dict(path, model_name)
    _check_matches(model_name, state_dict, path)
    return state_dict


def _check_matches(model_name: str, state_dict: Mapping[str, torch.Tensor], path: Path) -> None:
    """Refuse weights of another model (e.g. a ViT-L/14 file configured as ViT-B/32)."""
    proj = state_dict.get("text_projection")
    if proj is None or proj.ndim != 2:
        raise LgsegError(f"{path}: not a CLIP state dict (no 'text_projection')")
    vit = "visual.proj" in state_dict
    if proj.shape[1] != CLIP_DIMS[model_name] or vit != model_name.startswith("ViT"):
        kind = "ViT" if vit else "ResNet"
        raise LgsegError(f"{path}: holds a {kind} CLIP with {proj.shape[1]}-d embeddings, "
                         f"not {model_name} ({CLIP_DIMS[model_name]}-d); fix text.clip_model or "
                         "text.clip_weights")
