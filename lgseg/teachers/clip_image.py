"""CLIP's image encoder as a feature teacher: one global embedding, or 3D-OVS's multi-scale patch features.

The weights are the ``~/.cache/clip/<model>.pt`` files that ``lgseg download-clip`` writes, read and
built by :mod:`lgseg.text.clip_text` (``load_clip_weights`` / ``build_clip``: the package's own
``build_model``); this teacher keeps the image half of that model (``CLIP.visual``, so
``encode_image``). Preprocessing is CLIP's ``_transform`` (openai-clip 1.0.1 ``clip/clip.py``)
written in torch: bicubic resize of the short side to the model's resolution (long side
``int(n * long / short)``, antialiased as PIL resizes, rounded back to 0..255 as PIL's uint8 result
is), centre crop (offsets ``round((size - n) / 2)``), scaling to 0..1 and CLIP's mean/std. It equals
torchvision's tensor ``Resize``/``CenterCrop``; PIL's bicubic, which rounds between its horizontal and
vertical passes, differs by at most one grey level on photo-like images (more on pixel noise).

``mode="patches"`` is 3D-OVS's ``extract_clip_feature.py`` (CLIP ViT-B/16 there):

1. the image is downsampled by ``downsample`` (8) to ``(H // 8, W // 8)`` (bicubic, as PIL's
   ``Image.resize`` does by default);
2. for each divisor ``d`` of ``patch_divisors`` ((5, 7, 10)): patch size ``p = min(h, w) // d``,
   stride ``s = max(1, p // stride_divisor)`` (4; 3D-OVS has no ``max``: ``p < 4`` crashes there), a
   grid of ``(h - p) // s + 1 (+1 when (h - p) % s)`` rows by the same over the columns, crop
   ``(i*s, j*s)`` to ``(i*s + p, j*s + p)``; each side is grown at random by an integer in
   ``0..p // growth_divisor`` (4; 0 = no growth) and clipped to the image (draws seeded by
   ``seed``, so the same for every image of a size, in the order left, top, right, bottom);
3. every crop goes through the preprocessing above and ``encode_image``: one global embedding each;
4. per scale, each pixel's feature is the mean of the (raw) embeddings of the crops covering it,
   then L2-normalised (3D-OVS normalises when it reads the features back).

``scale_features`` returns the per-scale maps (S, h, w, D) as 3D-OVS stores them (it learns which
scale to trust); ``features`` returns their mean, L2-normalised again: (h, w, D).
``mode="global"``: one ``encode_image`` embedding of the whole (centre-cropped) image, L2-normalised,
broadcast (a read-only view) to the same ``(H // downsample, W // downsample)`` grid.

Cost: a 640x480 image gives 80x60 after downsampling and 408 + 999 + 4125 crops at 3D-OVS's
settings, each a full ViT-B/16 pass: use a GPU (``device``) and a large ``batch_size``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lgseg.errors import InputError, LgsegError, one_line
from lgseg.teachers.registry import TEACHERS, FeatureTeacher, check_image
from lgseg.text.clip_text import CLIP_FILES, build_clip, default_weights_path, load_clip_weights

# CLIP's Normalize (clip/clip.py, _transform)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MODES = ("global", "patches")

Box = tuple[int, int, int, int]  # top, left, bottom, right (exclusive), in downsampled pixels


def resize_like_pil(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(..., 3, h, w) 0..255 float -> (..., 3, *size): bicubic, antialiased when shrinking (PIL's
    filter), clamped and rounded to whole levels as PIL's uint8 output is. Same size: unchanged."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    batched = image if image.ndim == 4 else image[None]
    out = F.interpolate(batched, size=size, mode="bicubic", align_corners=False, antialias=True)
    out = out.clamp_(0, 255).round_()
    return out if image.ndim == 4 else out[0]


def short_side_size(height: int, width: int, n_px: int) -> tuple[int, int]:
    """torchvision ``Resize(n_px)``'s output (h, w): short side ``n_px``, long ``int(n_px * long / short)``."""
    if width <= height:
        return int(n_px * height / width), n_px
    return n_px, int(n_px * width / height)


def clip_preprocess(image: torch.Tensor, n_px: int) -> torch.Tensor:
    """CLIP's preprocessing of one (3, h, w) 0..255 float image -> (3, n_px, n_px) normalised."""
    h, w = image.shape[-2:]
    x = resize_like_pil(image, short_side_size(h, w, n_px))
    h, w = x.shape[-2:]
    top, left = int(round((h - n_px) / 2.0)), int(round((w - n_px) / 2.0))
    x = x[:, top:top + n_px, left:left + n_px] / 255.0
    mean = torch.tensor(CLIP_MEAN, dtype=x.dtype, device=x.device)[:, None, None]
    std = torch.tensor(CLIP_STD, dtype=x.dtype, device=x.device)[:, None, None]
    return (x - mean) / std


def patch_grid(height: int, width: int, patch: int, stride: int) -> tuple[list[int], list[int]]:
    """3D-OVS's crop origins: rows then columns, ``(n - p) // s + 1`` plus one when ``(n - p) % s``."""
    def starts(n: int) -> list[int]:
        count = (n - patch) // stride + 1 + int((n - patch) % stride > 0)
        return [i * stride for i in range(count)]
    return starts(height), starts(width)


def crop_boxes(height: int, width: int, patch_divisors: Sequence[int] = (5, 7, 10), stride_divisor: int = 4,
               growth_divisor: int = 4, seed: int = 0) -> list[list[Box]]:
    """3D-OVS's crops of a ``height`` x ``width`` (downsampled) image: per patch divisor, the boxes
    (top, left, bottom, right), row by row; see the module docstring. Seeded: the same every call."""
    rng = np.random.default_rng(seed)
    scales = []
    for d in patch_divisors:
        p = min(height, width) // d
        if p < 1:
            raise ValueError(f"the downsampled image is {height}x{width}: too small for patch divisor {d} "
                             f"(patch size min(h, w) // {d} = 0); use a larger image or smaller divisors")
        s = max(1, p // stride_divisor)
        g = p // growth_divisor if growth_divisor else 0
        rows, cols = patch_grid(height, width, p, s)
        grow = rng.integers(0, g + 1, size=(len(rows) * len(cols), 4))
        boxes = []
        for k, (y, x) in enumerate((y, x) for y in rows for x in cols):
            dl, dt, dr, db = (int(v) for v in grow[k])  # 3D-OVS draws left, upper, right, lower
            boxes.append((max(y - dt, 0), max(x - dl, 0), min(y + p + db, height), min(x + p + dr, width)))
        scales.append(boxes)
    return scales


def _positive_int(value, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, not {value!r}")
    return int(value)


@TEACHERS.register("clip")
class ClipImageTeacher(FeatureTeacher):
    """OpenAI CLIP's image encoder (``encode_image``), L2-normalised, ``dim`` = the joint embedding width.

    ``weights``: a CLIP weights file (TorchScript as published, or a plain state dict); None or ""
    means ``~/.cache/clip/<file>`` (``lgseg download-clip MODEL``). The feature grid is
    ``(H // downsample, W // downsample)``: cell (i, j) is downsampled pixel (i, j), i.e. input
    pixels ``[i*ds, (i+1)*ds) x [j*ds, (j+1)*ds)`` (a remainder of fewer than ``ds`` rows/columns at
    the bottom/right is left out). See the module docstring for the two modes.
    """

    name = "clip"

    def __init__(self, model: str = "ViT-B/16", weights: str | Path | None = None, mode: str = "patches",
                 downsample: int = 8, patch_divisors: Sequence[int] = (5, 7, 10), stride_divisor: int = 4,
                 growth_divisor: int = 4, seed: int = 0, batch_size: int = 32, device: str = "cpu") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if model not in CLIP_FILES:
            raise ValueError(f"model must be one of {', '.join(CLIP_FILES)}, not {model!r}")
        if isinstance(patch_divisors, (str, bytes)) or not isinstance(patch_divisors, Sequence) \
                or not patch_divisors:
            raise ValueError(f"patch_divisors must be a non-empty list of integers, not {patch_divisors!r}")
        self.model, self.mode = model, mode
        self.downsample = _positive_int(downsample, "downsample")
        self.patch_divisors = tuple(_positive_int(d, "each of patch_divisors") for d in patch_divisors)
        self.stride_divisor = _positive_int(stride_divisor, "stride_divisor")
        self.growth_divisor = _positive_int(growth_divisor, "growth_divisor", minimum=0)
        self.seed = _positive_int(seed, "seed", minimum=0)
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.device = torch.device(device)

        self.weights_file = (default_weights_path(model) if weights is None or str(weights) == ""
                             else Path(os.path.expanduser(str(weights))))
        state_dict = self._read(weights)
        try:
            clip = build_clip(state_dict)
        except LgsegError as e:  # the file's tensors do not make the CLIP they claim to be
            raise InputError(self.weights_file, f"not CLIP {model} weights: {one_line(str(e))}",
                             f"replace it (`lgseg download-clip {model}`) or fix the teacher's model option") from e
        self.network = clip.visual.float().eval().to(self.device)  # the text tower is dropped
        self.network.requires_grad_(False)
        self.n_px = int(self.network.input_resolution)
        self.dim = int(self.network.output_dim)
        self._boxes: dict[tuple[int, int], list[list[Box]]] = {}

    def _read(self, weights) -> dict[str, torch.Tensor]:
        if weights and not self.weights_file.is_file():
            raise LgsegError(f"{self.weights_file}: CLIP {self.model} weights (the clip teacher's weights option) "
                             f"not found; teachers never download them. Run `lgseg download-clip {self.model}` on a "
                             f"machine with internet (it writes ~/.cache/clip/{CLIP_FILES[self.model]}) and point "
                             "weights at that file, or leave weights empty to read it from ~/.cache/clip/")
        try:
            with warnings.catch_warnings():  # torch 2.9+ deprecates torch.jit, the format OpenAI published in
                warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*", category=FutureWarning)
                return load_clip_weights(self.model, weights or None)
        except InputError:
            raise
        except LgsegError as e:  # an existing file of another model or a damaged one: the file is at fault
            if self.weights_file.is_file():
                raise InputError(None, one_line(str(e))) from e
            raise

    # ---- sizes -------------------------------------------------------------------------------

    @property
    def stride(self) -> tuple[int, int]:
        return self.downsample, self.downsample

    def text_space(self) -> dict:
        """CLIP's image and text encoders share one space: the anchors of text.encoder clip with the
        same model (text.clip_model) read these features out."""
        return {"encoder": "clip", "model": self.model, "dim": int(self.dim)}

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        h, w = height // self.downsample, width // self.downsample
        if h < 1 or w < 1:
            raise ValueError(f"a {height}x{width} image is smaller than downsample={self.downsample}")
        return h, w

    def crop_boxes(self, height: int, width: int) -> list[list[Box]]:
        """Per scale, the crops (top, left, bottom, right) of a downsampled ``height`` x ``width`` image."""
        key = (height, width)
        if key not in self._boxes:
            self._boxes[key] = crop_boxes(height, width, self.patch_divisors, self.stride_divisor,
                                          self.growth_divisor, self.seed)
        return self._boxes[key]

    # ---- encoding ----------------------------------------------------------------------------

    def _tensor(self, image: np.ndarray) -> torch.Tensor:
        """(3, H, W) float 0..255 on the device."""
        return torch.from_numpy(check_image(image)).to(self.device).permute(2, 0, 1).float()

    def encode(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """Raw ``encode_image`` embeddings (N, dim) float32 of (3, h, w) 0..255 images of any sizes."""
        out = []
        with torch.inference_mode():
            for i in range(0, len(images), self.batch_size):
                batch = torch.stack([clip_preprocess(x, self.n_px) for x in images[i:i + self.batch_size]])
                out.append(self.network(batch).float())
        return torch.cat(out) if out else torch.zeros(0, self.dim, device=self.device)

    def embed(self, image: np.ndarray) -> np.ndarray:
        """The image's global CLIP embedding (dim,) float32, L2-normalised."""
        emb = F.normalize(self.encode([self._tensor(image)]), dim=1)[0]
        return emb.cpu().numpy().astype(np.float32)

    def downsampled(self, image: np.ndarray) -> torch.Tensor:
        """The (3, H // ds, W // ds) 0..255 image the patch crops are taken from."""
        x = self._tensor(image)
        return resize_like_pil(x, self.output_size(x.shape[1], x.shape[2]))

    def scale_features(self, image: np.ndarray) -> np.ndarray:
        """3D-OVS's per-scale maps (S, h, w, dim) float32, each pixel L2-normalised (patches mode)."""
        if self.mode != "patches":
            raise ValueError("scale_features needs mode='patches'")
        small = self.downsampled(image)
        h, w = small.shape[1:]
        maps = []
        for boxes in self.crop_boxes(h, w):
            emb = self.encode([small[:, t:b, l:r] for t, l, b, r in boxes]).double()
            maps.append(F.normalize(_mean_over_boxes(emb, boxes, h, w), dim=-1).float())
        return torch.stack(maps).cpu().numpy()

    def features(self, image: np.ndarray) -> np.ndarray:
        """(h, w, dim) float32, L2-normalised: the mean of the scale maps (patches) or the broadcast
        global embedding (global, a read-only view)."""
        if self.mode == "global":
            h, w = self.output_size(*check_image(image).shape[:2])
            return np.broadcast_to(self.embed(image), (h, w, self.dim))
        maps = torch.from_numpy(self.scale_features(image))
        return F.normalize(maps.mean(0), dim=-1).numpy()


def _mean_over_boxes(emb: torch.Tensor, boxes: Sequence[Box], height: int, width: int) -> torch.Tensor:
    """(height, width, D): per pixel, the mean of the rows of ``emb`` whose box covers it (every pixel is
    covered: the grid's stride never exceeds its patch). Summed with a 2D difference array."""
    t, l, b, r = (torch.tensor(c, device=emb.device) for c in zip(*boxes))
    diff = torch.zeros(height + 1, width + 1, emb.shape[1] + 1, dtype=emb.dtype, device=emb.device)
    vals = torch.cat([emb, torch.ones(len(boxes), 1, dtype=emb.dtype, device=emb.device)], dim=1)
    for rows, cols, sign in ((t, l, 1), (t, r, -1), (b, l, -1), (b, r, 1)):
        diff.index_put_((rows, cols), sign * vals, accumulate=True)
    sums = diff.cumsum(0).cumsum(1)[:height, :width]
    return sums[..., :-1] / sums[..., -1:]
