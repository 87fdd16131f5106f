"""Res16UNet sparse-convolutional U-Nets, written once over a sparse-conv backend, and the
segmentation wrapper.

Architecture as in the reference (MinkowskiEngine's Res16UNet, used by LanguageGroundedSemseg):
a stem conv to ``INIT_DIM`` channels, four encoder levels (stride-2 kernel-2 conv that keeps the
width, then ``LAYERS[i]`` BasicBlocks of ``PLANES[i]``), four decoder levels (stride-2 kernel-2
transposed conv to ``PLANES[4+i]``, concatenation with the encoder skip of the same resolution,
the last one with the stem output, then ``LAYERS[4+i]`` BasicBlocks). Every conv is followed by
BatchNorm and ReLU.

Module names follow the reference (``conv0p1s1``, ``bn0``, ``block1``, ..., ``convtr7p2s2``,
``block8``) and every backend keeps MinkowskiEngine's parameter names and kernel layout, so a
reference checkpoint maps onto ``backbone.*`` by name on either engine (``lgseg.models.weights``);
the reference's ``final`` conv is our ``classifier``.

``SegmentationNet`` hides the engine from callers: it takes integer voxel coordinates ``(M, 4)``
(batch index first) and features ``(M, C)`` and returns ``(M, out)`` in input row order.

Three training-time details of the authors' model are switches (``lgseg.models.registry``):
BatchNorm momentum inside the residual blocks (theirs: 0.1, because their ``bn_momentum`` never
reaches the blocks; the stem, strided and transposed-conv BNs use ``bn_momentum``), and the
initialisation (theirs: MinkowskiEngine's default uniform kernels and biases; ``kaiming``: He-normal
kernels, zero biases).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from lgseg.models.backends import get_backend

INITS = ("kaiming", "minkowski")


class BasicBlock(nn.Module):
    """Two 3x3x3 convs with BN; identity (or the given ``downsample``, a 1x1 conv + BN, when widths
    differ) residual.

    ``final_relu=False`` drops the ReLU after the residual sum (the reference's ``NoReluBlock``),
    so the block's output can be negative. ``level``: log2 of the tensor stride it works at.
    """

    expansion = 1

    def __init__(self, backend, inplanes: int, planes: int, bn_momentum: float, downsample: nn.Module | None = None,
                 final_relu: bool = True, level: int = 0) -> None:
        super().__init__()
        b = self.backend = backend
        self.conv1 = b.conv(inplanes, planes, 3, level=level)
        self.norm1 = b.batch_norm(planes, bn_momentum)
        self.conv2 = b.conv(planes, planes, 3, level=level)
        self.norm2 = b.batch_norm(planes, bn_momentum)
        self.relu = b.relu()
        self.downsample = downsample
        self.final_relu = final_relu

    def forward(self, x):
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        out = self.backend.add(out, self.downsample(x) if self.downsample is not None else x)
        return self.relu(out) if self.final_relu else out


class Res16UNetBase(nn.Module):
    """Res16UNet; subclasses set ``LAYERS`` and ``PLANES`` (8 entries each).

    Args:
        in_channels: input feature width (3: RGB).
        feature_dim: per-voxel output width. None or ``PLANES[-1]``: the last decoder block's
            output is the feature; otherwise a 1x1 conv + BN ``projection`` (no ReLU)
            maps ``PLANES[-1]`` to ``feature_dim``.
        conv1_kernel_size: kernel of the stem conv.
        bn_momentum: momentum of the stem, strided, transposed-conv, downsample and projection BNs.
        block_bn_momentum: momentum of the two BNs of every residual block; None: ``bn_momentum``
            (the authors' code: 0.1, torch's default, as their ``bn_momentum`` never reaches the blocks).
        final_relu: whether the very last residual block ends with ReLU; None: the variant's
            default ``FINAL_RELU``.
        backend: sparse-conv engine, ``minkowski`` or ``spconv`` (``lgseg.models.backends``).
        init: ``kaiming`` (He-normal kernels, zero biases) or ``minkowski`` (the engine's default
            uniform kernels and biases, which the authors' model keeps).
    """

    BLOCK = BasicBlock
    INIT_DIM = 32
    LAYERS: tuple[int, ...] = ()
    PLANES: tuple[int, ...] = ()
    FINAL_RELU = True

    def __init__(self, in_channels: int = 3, feature_dim: int | None = None, conv1_kernel_size: int = 3,
                 bn_momentum: float = 0.02, final_relu: bool | None = None, block_bn_momentum: float | None = None,
                 backend: str = "minkowski", init: str = "kaiming") -> None:
        super().__init__()
        if len(self.LAYERS) != 8 or len(self.PLANES) != 8:
            raise ValueError(f"{type(self).__name__} needs 8 LAYERS and 8 PLANES")
        for name, value in (("in_channels", in_channels), ("conv1_kernel_size", conv1_kernel_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        if feature_dim is not None and (not isinstance(feature_dim, int) or feature_dim < 1):
            raise ValueError(f"feature_dim must be a positive int or None, not {feature_dim!r}")
        for name, value in (("bn_momentum", bn_momentum), ("block_bn_momentum", block_bn_momentum)):
            if value is not None and not (isinstance(value, (int, float)) and 0.0 < float(value) <= 1.0):
                raise ValueError(f"{name} must be in (0, 1], not {value!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, not {init!r}")
        self.backend = b = get_backend(backend)
        self.in_channels = in_channels
        self.final_relu = self.FINAL_RELU if final_relu is None else bool(final_relu)
        m = self._bn_momentum = float(bn_momentum)
        self._block_bn_momentum = m if block_bn_momentum is None else float(block_bn_momentum)
        P, L = self.PLANES, self.LAYERS

        self.inplanes = self.INIT_DIM
        self.conv0p1s1 = b.conv(in_channels, self.inplanes, conv1_kernel_size, level=0)
        self.bn0 = b.batch_norm(self.inplanes, m)
        # encoder: the stride-2 conv keeps the width, the blocks change it (as in the reference)
        self.conv1p1s2, self.bn1 = b.conv(self.inplanes, self.inplanes, 2, 2, level=0), b.batch_norm(self.inplanes, m)
        self.block1 = self._make_layer(P[0], L[0], level=1)
        self.conv2p2s2, self.bn2 = b.conv(self.inplanes, self.inplanes, 2, 2, level=1), b.batch_norm(self.inplanes, m)
        self.block2 = self._make_layer(P[1], L[1], level=2)
        self.conv3p4s2, self.bn3 = b.conv(self.inplanes, self.inplanes, 2, 2, level=2), b.batch_norm(self.inplanes, m)
        self.block3 = self._make_layer(P[2], L[2], level=3)
        self.conv4p8s2, self.bn4 = b.conv(self.inplanes, self.inplanes, 2, 2, level=3), b.batch_norm(self.inplanes, m)
        self.block4 = self._make_layer(P[3], L[3], level=4)
        # decoder: upsample onto the level below, then concatenate that level's skip
        skips = (P[2], P[1], P[0], self.INIT_DIM)
        self.convtr4p16s2, self.bntr4 = b.conv_transpose(self.inplanes, P[4], 2, 2, level=3), b.batch_norm(P[4], m)
        self.inplanes = P[4] + skips[0]
        self.block5 = self._make_layer(P[4], L[4], level=3)
        self.convtr5p8s2, self.bntr5 = b.conv_transpose(self.inplanes, P[5], 2, 2, level=2), b.batch_norm(P[5], m)
        self.inplanes = P[5] + skips[1]
        self.block6 = self._make_layer(P[5], L[5], level=2)
        self.convtr6p4s2, self.bntr6 = b.conv_transpose(self.inplanes, P[6], 2, 2, level=1), b.batch_norm(P[6], m)
        self.inplanes = P[6] + skips[2]
        self.block7 = self._make_layer(P[6], L[6], level=1)
        self.convtr7p2s2, self.bntr7 = b.conv_transpose(self.inplanes, P[7], 2, 2, level=0), b.batch_norm(P[7], m)
        self.inplanes = P[7] + skips[3]
        self.block8 = self._make_layer(P[7], L[7], level=0, final_relu=self.final_relu)
        self.relu = b.relu()

        self.out_channels = P[7] if feature_dim is None else feature_dim
        # BN keeps the projected features on the scale of a BN'd residual block (as 34D's are):
        # the cosine pretraining loss ignores feature norms, and unbounded norms made the
        # classifier's logits explode when fine-tuning started from them
        self.projection = (nn.Sequential(b.conv(P[7], feature_dim, 1), b.batch_norm(feature_dim, m))
                           if feature_dim is not None and feature_dim != P[7] else None)
        init_weights(self, init)

    def _make_layer(self, planes: int, blocks: int, level: int, final_relu: bool = True) -> nn.Sequential:
        b, layers = self.backend, []
        for i in range(blocks):
            last = i == blocks - 1
            downsample = (nn.Sequential(b.conv(self.inplanes, planes, 1), b.batch_norm(planes, self._bn_momentum))
                          if self.inplanes != planes * self.BLOCK.expansion else None)
            layers.append(self.BLOCK(b, self.inplanes, planes, self._block_bn_momentum, downsample,
                                     final_relu=final_relu or not last, level=level))
            self.inplanes = planes * self.BLOCK.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        """Sparse tensor in, sparse tensor of ``out_channels`` on the input's coordinates out."""
        cat = self.backend.cat
        out_p1 = self.relu(self.bn0(self.conv0p1s1(x)))
        out = self.relu(self.bn1(self.conv1p1s2(out_p1)))
        out_b1p2 = self.block1(out)
        out = self.relu(self.bn2(self.conv2p2s2(out_b1p2)))
        out_b2p4 = self.block2(out)
        out = self.relu(self.bn3(self.conv3p4s2(out_b2p4)))
        out_b3p8 = self.block3(out)
        out = self.relu(self.bn4(self.conv4p8s2(out_b3p8)))
        out = self.block4(out)

        out = self.relu(self.bntr4(self.convtr4p16s2(out)))
        out = self.block5(cat(out, out_b3p8))
        out = self.relu(self.bntr5(self.convtr5p8s2(out)))
        out = self.block6(cat(out, out_b2p4))
        out = self.relu(self.bntr6(self.convtr6p4s2(out)))
        out = self.block7(cat(out, out_b1p2))
        out = self.relu(self.bntr7(self.convtr7p2s2(out)))
        out = self.block8(cat(out, out_p1))
        return self.projection(out) if self.projection is not None else out


def init_weights(module: nn.Module, init: str = "kaiming") -> None:
    """Initialise every conv (canonical ``kernel`` (k^3, Cin, Cout) or (Cin, Cout)) and BN in ``module``.

    ``kaiming``: He-normal kernels (torch's fan_out of the canonical tensor, ReLU gain), zero biases.
    ``minkowski``: MinkowskiEngine's ``reset_parameters``: kernel and bias uniform in +-1/sqrt(n),
    n = Cin x k^3 (Cout x k^3 for a transposed conv). BN: weight 1, bias 0 either way.
    """
    for mod in module.modules():
        kernel = getattr(mod, "kernel", None)
        if isinstance(kernel, nn.Parameter):
            bias = getattr(mod, "bias", None)
            if init == "kaiming":
                nn.init.kaiming_normal_(kernel, mode="fan_out", nonlinearity="relu")
                if bias is not None:
                    nn.init.zeros_(bias)
            else:
                volume = kernel.shape[0] if kernel.ndim == 3 else 1
                width = kernel.shape[-1] if getattr(mod, "is_transpose", False) else kernel.shape[-2]
                bound = 1.0 / math.sqrt(width * volume)
                nn.init.uniform_(kernel, -bound, bound)
                if bias is not None:
                    nn.init.uniform_(bias, -bound, bound)
        elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(mod.weight)
            nn.init.zeros_(mod.bias)


class Res16UNet34C(Res16UNetBase):
    """The paper's fine-tuning baseline backbone."""
    LAYERS = (2, 3, 4, 6, 2, 2, 2, 2)
    PLANES = (32, 64, 128, 256, 256, 128, 96, 96)


class Res16UNet34D(Res16UNetBase):
    """The language-grounded backbone: 512-wide output (CLIP text dim), no final ReLU."""
    LAYERS = (2, 3, 4, 6, 2, 2, 2, 2)
    PLANES = (32, 64, 128, 256, 256, 256, 256, 512)
    FINAL_RELU = False


class Res16UNet14A(Res16UNetBase):
    """One block per level."""
    LAYERS = (1, 1, 1, 1, 1, 1, 1, 1)
    PLANES = (32, 64, 128, 256, 128, 128, 96, 96)


class Res16UNet14S(Res16UNetBase):
    """Small variant for the demo profile and CPU runs (not in the paper)."""
    INIT_DIM = 16
    LAYERS = (1, 1, 1, 1, 1, 1, 1, 1)
    PLANES = (16, 32, 64, 128, 64, 48, 32, 32)


class SegmentationNet(nn.Module):
    """Backbone + optional 1x1 ``classifier``; plain tensors in and out, in input row order.

    ``num_classes=None`` (pre-training): ``forward`` returns the backbone features.
    Inputs: ``coords`` int (M, 4) = (batch index, x, y, z) voxel coordinates, unique per batch
    item; ``feats`` float (M, C). Duplicate coordinates are tolerated: they share one voxel (whose
    input is one of their feature rows) and every duplicate row gets that voxel's output.
    """

    def __init__(self, backbone: Res16UNetBase, num_classes: int | None = None, init: str = "kaiming") -> None:
        super().__init__()
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
            raise ValueError(f"num_classes must be a positive int or None, not {num_classes!r}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.classifier = backbone.backend.conv(backbone.out_channels, num_classes, 1, bias=True) if num_classes else None
        if self.classifier is not None:  # initialised like every conv of the backbone
            init_weights(self.classifier, init)

    @property
    def feature_dim(self) -> int:
        return self.backbone.out_channels

    @property
    def arch(self) -> str:
        return type(self.backbone).__name__

    @property
    def backend(self) -> str:
        return self.backbone.backend.name

    def forward(self, coords: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        """(M, num_classes) logits, or (M, feature_dim) features without a classifier."""
        return self._run(coords, feats, head=True)

    def features(self, coords: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        """(M, feature_dim) backbone features, whether or not a classifier exists."""
        return self._run(coords, feats, head=False)

    def _run(self, coords: torch.Tensor, feats: torch.Tensor, head: bool) -> torch.Tensor:
        _check_inputs(coords, feats, self.backbone.in_channels)
        b = self.backbone.backend
        x, inverse = b.sparse_tensor(coords, feats)
        out = self.backbone(x)
        if head and self.classifier is not None:
            out = self.classifier(out)
        # the U-Net ends on the input's voxels; inverse sends every input row to its voxel
        return b.features(out, x)[inverse]


class InstanceSegmentationNet(SegmentationNet):
    """The instance variant (PointGroup / CSC): the same backbone and classifier, plus an offset head
    that gives every voxel a 3-d vector (metres) towards its object's centre, from the same last
    features the classifier reads. The head is the authors' (1x1 conv C->C with bias, BN, ReLU,
    1x1 conv C->3 with bias); it is new when fine-tuning starts from a semantic or pretrained model.

    ``forward`` returns ``{"logits": (M, num_classes), "offsets": (M, 3)}`` in input row order.
    """

    def __init__(self, backbone: Res16UNetBase, num_classes: int, init: str = "kaiming",
                 bn_momentum: float = 0.02) -> None:
        if not num_classes:
            raise ValueError("an instance network needs num_classes (its semantic head)")
        super().__init__(backbone, num_classes, init)
        b, width = backbone.backend, backbone.out_channels
        self.offset_head = nn.Sequential(b.conv(width, width, 1, bias=True), b.batch_norm(width, bn_momentum),
                                         b.relu(), b.conv(width, 3, 1, bias=True))
        init_weights(self.offset_head, init)

    def forward(self, coords: torch.Tensor, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        _check_inputs(coords, feats, self.backbone.in_channels)
        b = self.backbone.backend
        x, inverse = b.sparse_tensor(coords, feats)
        out = self.backbone(x)
        logits, offsets = self.classifier(out), self.offset_head(out)
        return {"logits": b.features(logits, x)[inverse], "offsets": b.features(offsets, x)[inverse]}


def semantic_logits(out: torch.Tensor | dict) -> torch.Tensor:
    """The class logits of a network's output, a semantic or an instance network's."""
    return out["logits"] if isinstance(out, dict) else out


def _check_inputs(coords: torch.Tensor, feats: torch.Tensor, in_channels: int) -> None:
    if coords.ndim != 2 or coords.shape[1] != 4:
        raise ValueError(f"coords must be (M, 4) = (batch, x, y, z), not {tuple(coords.shape)}")
    if coords.dtype.is_floating_point:
        raise ValueError(f"coords must be integer voxel coordinates, not {coords.dtype}")
    if feats.ndim != 2 or feats.shape != (coords.shape[0], in_channels):
        raise ValueError(f"feats must be (M, {in_channels}) with M = {coords.shape[0]}, not {tuple(feats.shape)}")


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


VARIANTS: Sequence[type[Res16UNetBase]] = (Res16UNet34C, Res16UNet34D, Res16UNet14A, Res16UNet14S)
