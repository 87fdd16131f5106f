"""Res16UNet sparse-convolutional U-Nets (MinkowskiEngine) and the segmentation wrapper.

Architecture as in the reference (MinkowskiEngine's Res16UNet, used by LanguageGroundedSemseg):
a stem conv to ``INIT_DIM`` channels, four encoder levels (stride-2 kernel-2 conv that keeps the
width, then ``LAYERS[i]`` BasicBlocks of ``PLANES[i]``), four decoder levels (stride-2 kernel-2
transposed conv to ``PLANES[4+i]``, concatenation with the encoder skip of the same resolution,
the last one with the stem output, then ``LAYERS[4+i]`` BasicBlocks). Every conv is followed by
BatchNorm (momentum 0.02, the reference default) and ReLU.

Inside the backbone, module names follow the reference (``conv0p1s1``, ``bn0``, ``block1``, ...,
``convtr7p2s2``, ``block8``) so that a reference checkpoint maps onto ``backbone.*`` by name
(see ``lgseg.models.weights``); the reference's ``final`` conv is our ``classifier``.

``SegmentationNet`` hides MinkowskiEngine from callers: it takes integer voxel coordinates
``(M, 4)`` (batch index first) and features ``(M, C)`` and returns ``(M, out)`` in input row order.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lgseg.models.minkowski import import_minkowski

ME = import_minkowski()

D = 3  # spatial dimension


def _conv(cin: int, cout: int, kernel_size: int, stride: int = 1, bias: bool = False) -> nn.Module:
    return ME.MinkowskiConvolution(cin, cout, kernel_size=kernel_size, stride=stride, bias=bias, dimension=D)


def _bn(channels: int, momentum: float) -> nn.Module:
    return ME.MinkowskiBatchNorm(channels, momentum=momentum)


class BasicBlock(nn.Module):
    """Two 3x3x3 convs with BN; identity (or 1x1 conv + BN when widths differ) residual.

    ``final_relu=False`` drops the ReLU after the residual sum (the reference's ``NoReluBlock``),
    so the block's output can be negative.
    """

    expansion = 1

    def __init__(self, inplanes: int, planes: int, bn_momentum: float = 0.02, final_relu: bool = True) -> None:
        super().__init__()
        self.conv1 = _conv(inplanes, planes, 3)
        self.norm1 = _bn(planes, bn_momentum)
        self.conv2 = _conv(planes, planes, 3)
        self.norm2 = _bn(planes, bn_momentum)
        self.relu = ME.MinkowskiReLU(inplace=True)
        self.downsample = (nn.Sequential(_conv(inplanes, planes, 1), _bn(planes, bn_momentum))
                           if inplanes != planes else None)
        self.final_relu = final_relu

    def forward(self, x):
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        out = out + (self.downsample(x) if self.downsample is not None else x)
        return self.relu(out) if self.final_relu else out


class Res16UNetBase(nn.Module):
    """Res16UNet; subclasses set ``LAYERS`` and ``PLANES`` (8 entries each).

    Args:
        in_channels: input feature width (3: RGB).
        feature_dim: per-voxel output width. None or ``PLANES[-1]``: the last decoder block's
            output is the feature; otherwise a 1x1 conv + BN ``projection`` (no ReLU)
            maps ``PLANES[-1]`` to ``feature_dim``.
        conv1_kernel_size: kernel of the stem conv.
        bn_momentum: BatchNorm momentum of every BN layer.
        final_relu: whether the very last residual block ends with ReLU; None: the variant's
            default ``FINAL_RELU``.
    """

    BLOCK = BasicBlock
    INIT_DIM = 32
    LAYERS: tuple[int, ...] = ()
    PLANES: tuple[int, ...] = ()
    FINAL_RELU = True

    def __init__(self, in_channels: int = 3, feature_dim: int | None = None, conv1_kernel_size: int = 3,
                 bn_momentum: float = 0.02, final_relu: bool | None = None) -> None:
        super().__init__()
        if len(self.LAYERS) != 8 or len(self.PLANES) != 8:
            raise ValueError(f"{type(self).__name__} needs 8 LAYERS and 8 PLANES")
        for name, value in (("in_channels", in_channels), ("conv1_kernel_size", conv1_kernel_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        if feature_dim is not None and (not isinstance(feature_dim, int) or feature_dim < 1):
            raise ValueError(f"feature_dim must be a positive int or None, not {feature_dim!r}")
        if not 0.0 < float(bn_momentum) <= 1.0:
            raise ValueError(f"bn_momentum must be in (0, 1], not {bn_momentum!r}")
        self.in_channels = in_channels
        self.final_relu = self.FINAL_RELU if final_relu is None else bool(final_relu)
        self._bn_momentum = float(bn_momentum)
        P, L, m = self.PLANES, self.LAYERS, self._bn_momentum

        self.inplanes = self.INIT_DIM
        self.conv0p1s1 = _conv(in_channels, self.inplanes, conv1_kernel_size)
        self.bn0 = _bn(self.inplanes, m)
        # encoder: the stride-2 conv keeps the width, the blocks change it (as in the reference)
        self.conv1p1s2, self.bn1 = _conv(self.inplanes, self.inplanes, 2, 2), _bn(self.inplanes, m)
        self.block1 = self._make_layer(P[0], L[0])
        self.conv2p2s2, self.bn2 = _conv(self.inplanes, self.inplanes, 2, 2), _bn(self.inplanes, m)
        self.block2 = self._make_layer(P[1], L[1])
        self.conv3p4s2, self.bn3 = _conv(self.inplanes, self.inplanes, 2, 2), _bn(self.inplanes, m)
        self.block3 = self._make_layer(P[2], L[2])
        self.conv4p8s2, self.bn4 = _conv(self.inplanes, self.inplanes, 2, 2), _bn(self.inplanes, m)
        self.block4 = self._make_layer(P[3], L[3])
        # decoder: upsample, then concatenate the skip of the same resolution
        skips = (P[2], P[1], P[0], self.INIT_DIM)
        self.convtr4p16s2, self.bntr4 = self._up(P[4]), _bn(P[4], m)
        self.inplanes = P[4] + skips[0]
        self.block5 = self._make_layer(P[4], L[4])
        self.convtr5p8s2, self.bntr5 = self._up(P[5]), _bn(P[5], m)
        self.inplanes = P[5] + skips[1]
        self.block6 = self._make_layer(P[5], L[5])
        self.convtr6p4s2, self.bntr6 = self._up(P[6]), _bn(P[6], m)
        self.inplanes = P[6] + skips[2]
        self.block7 = self._make_layer(P[6], L[6])
        self.convtr7p2s2, self.bntr7 = self._up(P[7]), _bn(P[7], m)
        self.inplanes = P[7] + skips[3]
        self.block8 = self._make_layer(P[7], L[7], final_relu=self.final_relu)
        self.relu = ME.MinkowskiReLU(inplace=True)

        self.out_channels = P[7] if feature_dim is None else feature_dim
        # BN keeps the projected features on the scale of a BN'd residual block (as 34D's are):
        # the cosine pretraining loss ignores feature norms, and unbounded norms made the
        # classifier's logits explode when fine-tuning started from them
        self.projection = (nn.Sequential(_conv(P[7], feature_dim, 1), _bn(feature_dim, m))
                           if feature_dim is not None and feature_dim != P[7] else None)
        self._init_weights()

    def _up(self, planes: int) -> nn.Module:
        return ME.MinkowskiConvolutionTranspose(self.inplanes, planes, kernel_size=2, stride=2, bias=False,
                                                dimension=D)

    def _make_layer(self, planes: int, blocks: int, final_relu: bool = True) -> nn.Sequential:
        layers = []
        for i in range(blocks):
            last = i == blocks - 1
            layers.append(self.BLOCK(self.inplanes, planes, self._bn_momentum, final_relu=final_relu or not last))
            self.inplanes = planes * self.BLOCK.expansion
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        # reference initialisation: Kaiming-normal kernels (fan_out, ReLU), BN as identity
        for mod in self.modules():
            if isinstance(mod, (ME.MinkowskiConvolution, ME.MinkowskiConvolutionTranspose)):
                nn.init.kaiming_normal_(mod.kernel, mode="fan_out", nonlinearity="relu")
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)
            elif isinstance(mod, ME.MinkowskiBatchNorm):
                nn.init.ones_(mod.bn.weight)
                nn.init.zeros_(mod.bn.bias)

    def forward(self, x):
        """Sparse tensor in, sparse tensor of ``out_channels`` on the input's coordinates out."""
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
        out = self.block5(ME.cat(out, out_b3p8))
        out = self.relu(self.bntr5(self.convtr5p8s2(out)))
        out = self.block6(ME.cat(out, out_b2p4))
        out = self.relu(self.bntr6(self.convtr6p4s2(out)))
        out = self.block7(ME.cat(out, out_b1p2))
        out = self.relu(self.bntr7(self.convtr7p2s2(out)))
        out = self.block8(ME.cat(out, out_p1))
        return self.projection(out) if self.projection is not None else out


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

    def __init__(self, backbone: Res16UNetBase, num_classes: int | None = None) -> None:
        super().__init__()
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
            raise ValueError(f"num_classes must be a positive int or None, not {num_classes!r}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.classifier = _conv(backbone.out_channels, num_classes, 1, bias=True) if num_classes else None
        if self.classifier is not None:  # initialised like every conv of the reference model
            nn.init.kaiming_normal_(self.classifier.kernel, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(self.classifier.bias)

    @property
    def feature_dim(self) -> int:
        return self.backbone.out_channels

    @property
    def arch(self) -> str:
        return type(self.backbone).__name__

    def forward(self, coords: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        """(M, num_classes) logits, or (M, feature_dim) features without a classifier."""
        return self._run(coords, feats, head=True)

    def features(self, coords: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        """(M, feature_dim) backbone features, whether or not a classifier exists."""
        return self._run(coords, feats, head=False)

    def _run(self, coords: torch.Tensor, feats: torch.Tensor, head: bool) -> torch.Tensor:
        _check_inputs(coords, feats, self.backbone.in_channels)
        # RANDOM_SUBSAMPLE: a plain gather (unique coordinates need no averaging), while
        # UNWEIGHTED_AVERAGE would add a sparse matmul in forward and backward
        x = ME.SparseTensor(feats, coordinates=coords.to(feats.device, torch.int32), device=feats.device,
                            quantization_mode=ME.SparseTensorQuantizationMode.RANDOM_SUBSAMPLE)
        out = self.backbone(x)
        if head and self.classifier is not None:
            out = self.classifier(out)
        # The U-Net ends on the input's own coordinate map, so out.F rows are the unique voxels
        # in x's order; inverse_mapping sends every input row to its voxel.
        if out.coordinate_map_key != x.coordinate_map_key:
            raise RuntimeError("backbone output is not on the input coordinates")
        return out.F[x.inverse_mapping.long()]


def _check_inputs(coords: torch.Tensor, feats: torch.Tensor, in_channels: int) -> None:
    if coords.ndim != 2 or coords.shape[1] != D + 1:
        raise ValueError(f"coords must be (M, 4) = (batch, x, y, z), not {tuple(coords.shape)}")
    if coords.dtype.is_floating_point:
        raise ValueError(f"coords must be integer voxel coordinates, not {coords.dtype}")
    if feats.ndim != 2 or feats.shape != (coords.shape[0], in_channels):
        raise ValueError(f"feats must be (M, {in_channels}) with M = {coords.shape[0]}, not {tuple(feats.shape)}")


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


VARIANTS: Sequence[type[Res16UNetBase]] = (Res16UNet34C, Res16UNet34D, Res16UNet14A, Res16UNet14S)
