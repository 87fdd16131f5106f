"""DINO (v1) and DINOv2 ViTs as feature teachers: the last block's patch tokens on the patch grid.

The network is timm's (``timm.create_model(model, pretrained=False, num_classes=0,
dynamic_img_size=True)``); its weights come from a local copy of Meta's official backbone
checkpoint (``lgseg download-weights dino_vitb8`` etc., see :mod:`lgseg.teachers.weights`), read
with ``weights_only=True`` and converted by timm's own ``vision_transformer.checkpoint_filter_fn``
(the function timm applies to these very files when it downloads them: DINO v1 files are already
in timm's layout; for DINOv2 it drops ``mask_token``, and for the register variants moves
``register_tokens`` to ``reg_token`` and folds the class token's position embedding into
``cls_token``). Before that, the file's patch embedding and position-embedding length are
compared with the model's: timm's filter would otherwise silently resample a checkpoint of another
patch or image size. After it, every tensor must be present with the model's shape and none
may be left over; then ``load_state_dict(strict=True)``.

``features(image)`` -> (H // p, W // p, D) float32 (p = the patch size, 8 or 14 or 16): the image
scaled to 0..1 and normalised with ImageNet's mean/std, the position embeddings resampled to the
image's grid (timm's ``dynamic_img_size``: bicubic, antialiased; DINO's own code interpolates
slightly differently), and the last block's output tokens without the class (and register)
tokens. Cell (i, j) covers input pixels ``[i*p, (i+1)*p) x [j*p, (j+1)*p)``; a remainder of fewer
than p rows/columns at the bottom/right is not seen. E.g. 256x256 into ViT-B/8 -> 32x32x768 (3D-OVS's
FDA). ``image_size=[h, w]`` resizes the image first (Bridge3D's DINOv2 runs at 224x224 -> 16x16).

``final_norm``: whether the tokens pass the final LayerNorm. None (default) follows the founding
systems: off for DINO v1 (3D-OVS hooks the output of ``blocks[-1]``), on for DINOv2 (Bridge3D's
``last_hidden_state`` of transformers' Dinov2Model is layer-normed). ``embedding(image)`` is the
class token after the final norm (Bridge3D's pooled feature, DINO's global descriptor).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lgseg.errors import InputError, one_line
from lgseg.teachers.registry import TEACHERS, FeatureTeacher, check_image
from lgseg.teachers.weights import catalogue_name, check_state_dict, read_state_dict, resolve_weights

# timm.data.IMAGENET_DEFAULT_MEAN / _STD, the mean/std of the .dino and .lvd142m pretrained cfgs
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# timm names with official Meta checkpoints (timm's pretrained cfgs point at dl.fbaipublicfiles.com)
DINO_MODELS = (
    "vit_small_patch16_224.dino", "vit_small_patch8_224.dino",
    "vit_base_patch16_224.dino", "vit_base_patch8_224.dino",
    "vit_small_patch14_dinov2.lvd142m", "vit_base_patch14_dinov2.lvd142m",
    "vit_large_patch14_dinov2.lvd142m", "vit_giant_patch14_dinov2.lvd142m",
    "vit_small_patch14_reg4_dinov2.lvd142m", "vit_base_patch14_reg4_dinov2.lvd142m",
    "vit_large_patch14_reg4_dinov2.lvd142m", "vit_giant_patch14_reg4_dinov2.lvd142m",
)


def _image_size(value) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    if (isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in value)):
        return int(value[0]), int(value[1])
    raise ValueError(f"image_size must be null, an integer or [height, width], not {value!r}")


@TEACHERS.register("dino")
class DinoTeacher(FeatureTeacher):
    """DINO / DINOv2 ViT patch features (see the module docstring); ``dim`` = the ViT's width.

    ``weights``: the official checkpoint file; None or "" means the catalogue's file in
    ``~/.cache/lgseg/weights`` (``lgseg download-weights NAME``).
    """

    name = "dino"

    def __init__(self, model: str = "vit_base_patch8_224.dino", weights: str | Path | None = None,
                 final_norm: bool | None = None, image_size: int | Sequence[int] | None = None,
                 batch_size: int = 8, device: str = "cpu") -> None:
        if model not in DINO_MODELS:
            raise ValueError(f"model must be one of {', '.join(DINO_MODELS)}, not {model!r}")
        if final_norm is not None and not isinstance(final_norm, bool):
            raise ValueError(f"final_norm must be true, false or null, not {final_norm!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, not {batch_size!r}")
        import timm
        from timm.models.vision_transformer import checkpoint_filter_fn

        self.model = model
        self.version = 2 if "dinov2" in model else 1
        self.final_norm = (self.version == 2) if final_norm is None else final_norm
        self.image_size = _image_size(image_size)
        self.batch_size = batch_size
        self.device = torch.device(device)
        what = f"DINO{'v2' if self.version == 2 else ''} {model}"
        self.weights_file = resolve_weights(weights, catalogue_name("dino", model), what)

        network = timm.create_model(model, pretrained=False, num_classes=0, dynamic_img_size=True)
        raw = read_state_dict(self.weights_file, what)
        self._check_grid(raw, network, what)
        try:
            state_dict = checkpoint_filter_fn(dict(raw), network)
        except Exception as e:  # noqa: BLE001 - any failure of the conversion means a file of another layout
            raise InputError(self.weights_file, f"not {what} weights: timm's checkpoint conversion failed "
                             f"({one_line(e)})", "replace it with the official checkpoint") from e
        check_state_dict(self.weights_file, state_dict, network.state_dict(), what)
        network.load_state_dict(state_dict, strict=True)
        self.network = network.eval().to(self.device)
        self.network.requires_grad_(False)
        self.patch_size = int(network.patch_embed.patch_size[0])
        self.dim = int(network.embed_dim)
        self.num_prefix_tokens = int(network.num_prefix_tokens)  # class + register tokens

    def _check_grid(self, raw: dict, network, what: str) -> None:
        """Refuse a checkpoint of another patch size or pretraining resolution (timm would resample it)."""
        raw = raw.get("model", raw)
        raw = raw.get("state_dict", raw)
        weight, pos = raw.get("patch_embed.proj.weight"), raw.get("pos_embed")
        want = network.patch_embed.proj.weight.shape
        if isinstance(weight, torch.Tensor) and weight.shape != want:
            raise InputError(self.weights_file, f"not {what} weights: the patch embedding is {list(weight.shape)} "
                             f"in the file, {list(want)} in the model (another patch size or width)",
                             "check that the file and the teacher's model option belong together")
        # the official layouts keep the class token's slot in pos_embed, also with registers
        tokens = network.pos_embed.shape[1] + int("register_tokens" in raw)
        if isinstance(pos, torch.Tensor) and pos.ndim == 3 and pos.shape[1] != tokens:
            raise InputError(self.weights_file, f"not {what} weights: the position embedding has {pos.shape[1]} "
                             f"tokens in the file, {tokens} in the model (another image or patch size)",
                             "check that the file and the teacher's model option belong together")

    # ---- sizes -------------------------------------------------------------------------------

    @property
    def stride(self) -> tuple[int, int]:
        return self.patch_size, self.patch_size

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        if self.image_size is not None:
            height, width = self.image_size
        h, w = height // self.patch_size, width // self.patch_size
        if h < 1 or w < 1:
            raise ValueError(f"a {height}x{width} image is smaller than one {self.patch_size}-pixel patch")
        return h, w

    # ---- encoding ----------------------------------------------------------------------------

    def _batch(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        x = torch.stack([torch.from_numpy(check_image(im)) for im in images]).to(self.device)
        x = x.permute(0, 3, 1, 2).float() / 255.0
        h, w = self.output_size(x.shape[2], x.shape[3])  # also the size check
        if self.image_size is not None and tuple(x.shape[2:]) != self.image_size:
            x = F.interpolate(x, size=self.image_size, mode="bicubic", align_corners=False, antialias=True)
            x = x.clamp(0, 1)
        x = x[:, :, :h * self.patch_size, :w * self.patch_size]  # timm wants whole patches: the remainder goes
        mean = torch.tensor(IMAGENET_MEAN, device=self.device)[:, None, None]
        std = torch.tensor(IMAGENET_STD, device=self.device)[:, None, None]
        return (x - mean) / std

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, h, w, D) last-block patch tokens (final norm per ``final_norm``), (B, D) normed class token."""
        with torch.inference_mode():
            [(tokens, prefix)] = self.network.forward_intermediates(
                x, indices=1, norm=False, output_fmt="NLC", intermediates_only=True, return_prefix_tokens=True)
            if self.final_norm:
                tokens = self.network.norm(tokens)
            cls = self.network.norm(prefix[:, 0])
            h, w = self.network.patch_embed.dynamic_feat_size(tuple(x.shape[2:]))
            return tokens.reshape(x.shape[0], h, w, -1).float(), cls.float()

    def features_and_embedding(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``features(image)`` and ``embedding(image)`` from one forward pass."""
        tokens, cls = self._forward(self._batch([image]))
        return tokens[0].cpu().numpy(), cls[0].cpu().numpy()

    def features(self, image: np.ndarray) -> np.ndarray:
        """(H // p, W // p, D) float32 patch tokens of the last block (see the module docstring)."""
        return self._forward(self._batch([image]))[0][0].cpu().numpy()

    def embedding(self, image: np.ndarray) -> np.ndarray:
        """(D,) float32: the class token after the final LayerNorm."""
        return self._forward(self._batch([image]))[1][0].cpu().numpy()

    def features_batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """``features`` of each image, same-sized images run ``batch_size`` at a time."""
        out: list[np.ndarray | None] = [None] * len(images)
        by_size: dict[tuple, list[int]] = {}
        for i, im in enumerate(images):
            by_size.setdefault(check_image(im).shape, []).append(i)
        for idx in by_size.values():
            for k in range(0, len(idx), self.batch_size):
                chunk = idx[k:k + self.batch_size]
                tokens = self._forward(self._batch([images[i] for i in chunk]))[0].cpu().numpy()
                for i, t in zip(chunk, tokens):
                    out[i] = t
        return out  # type: ignore[return-value]
