"""Contrastive Scene Contexts (CSC, Hou et al. CVPR 2021): the paper's principal pretraining baseline.

CSC is PointContrast's PointInfoNCE computed separately inside each spatial partition of a shape
context around every anchor. Given two views a and b of one scene, matched voxels (same physical
point), and per scene at most ``num_matches`` sampled matches i = 1..n with features
``q_i = f_a[a_i] / |f_a[a_i]|`` and ``k_i = f_b[b_i] / |f_b[b_i]|``::

    s_ij      = q_i . k_j / T                                 (T: temperature)
    part(i,j) = partition of point j's position relative to anchor i (or none), j != i
    N_p(i)    = { j != i : part(i, j) = p }                   (negatives of i in partition p)
    loss_ip   = -log( exp(s_ii) / (exp(s_ii) + sum_{j in N_p(i)} exp(s_ij)) )
    loss_scene = 1/P * sum_p w_p * 1/n * sum_i loss_ip        (w_p = 2 for inner p if weight_inner, else 1)
    loss       = mean of loss_scene over the scenes of the batch

The positive (i's own match) is in every partition's softmax; an anchor without negatives in p adds
log(1) = 0 to p's mean but still counts in its denominator n; every partition counts in P, empty or
not. Negatives of an anchor are only the sampled matched points of its own scene.

Partitions (positions ``coord`` in metres; rel = x_j - x_i, d = |rel|):

- ``"up_down"`` (CSC's ``fast_partition``, the shipped script's), P = 4: 0 = inner above
  (inner_radius < d <= outer_radius, rel_z > 0), 1 = inner below (rel_z < 0), 2 = outer above
  (d > outer_radius, rel_z > 0), 3 = outer below. Pairs with d <= inner_radius or rel_z == 0: none.
- ``"shape_context"`` (CSC's ``compute_partitions``), P = 2 * nbins_xy * nbins_zy: distance bin
  0 (inner_radius <= d < outer_radius) or 1 (d >= outer_radius), none if d < inner_radius; angle
  bins ``a_xy = atan2(rel_y, rel_x) mod 2pi`` in nbins_xy bins of 2pi / nbins_xy and
  ``a_zy = atan2(rel_y, rel_z) mod pi`` in nbins_zy bins of pi / nbins_zy (CSC's formulas, kept as
  they are: with 2 x 2 bins, xy_bin is 0 iff rel_y > 0 and zy_bin is 0 iff rel_y * rel_z > 0, so the
  four angle bins are the quadrants of the (rel_y, rel_z) plane and rel_x plays no part); partition
  = dist_bin * nbins_xy * nbins_zy + xy_bin * nbins_zy + zy_bin. P = 8 with 2 x 2 bins: most
  likely the released "partition8" checkpoints (README.md:149-157, ``partition8_4096_60k``).

Frame: ``coord`` must be the matched points' positions in the ORIGINAL (un-augmented, z-up) scene
frame. The partitions are directional (above / below, angle bins), so they need one frame that both
views share: when each view is rotated / flipped / scaled independently neither augmented frame
is it, the original frame is. CSC's shipped script does the same in effect: with
``data.world_space=True`` it maps view 0's voxel coordinates back through view 0's augmentation T0
(z-rotation, x/y tilt, centring; lib/ddp_data_loaders.py:138-155, 274-282) to the scan's world
frame (ScanNet's z-up frame: pretrain/scannet_pair/point_cloud_extractor.py:83) before partitioning
(lib/ddp_trainer.py:39-47, 373-375); without it, CSC would use view 0's augmented frame.

Sampling (``sample_anchors``): first one match per view-a voxel (a voxel with several matches keeps
one, uniformly at random, as CSC does), then per scene at most ``num_matches`` of them uniformly
without replacement (all if fewer), from ``generator`` or the global torch RNG.

Facts and their sources (facebookresearch/ContrastiveSceneContexts@83515bef4754b3d90fc3b3a437fa939e0e861af8,
paths under pretrain/contrastive_scene_contexts/):

- lib/ddp_trainer.py:343-348: one match per unique view-0 voxel, a uniform random one of its matches.
- lib/ddp_trainer.py:350-362: loss per scene of the batch (batch id of view 0's coordinates); at most
  misc.npos matches per scene by ``np.random.choice(..., replace=False)``, all if fewer.
- lib/ddp_trainer.py:364-375: anchors q from view 0, candidates k from view 1 (the same sampled
  matches); partitions from the sampled view-0 positions, mapped to world space if data.world_space.
- lib/ddp_trainer.py:382-388: loop over partitions; ``mask_q = partition == p`` with the diagonal
  forced True (the positive is always included, whatever its partition); factor 2 for
  ``p < P / 2`` if shape_context.weight_inner; ``loss += factor * CE / (P * batch_size)``.
- lib/ddp_trainer.py:205-215 and lib/criterion.py:9-18: logits ``q @ k.T / T``, entries outside the
  mask get -1e9, ``nn.CrossEntropyLoss`` with labels arange(n): mean over all n anchors (an anchor
  with no negative in p has loss 0 and still counts).
- lib/shape_context.py:28-30: rel[i, j] = x_j - x_i (candidate minus anchor); :24-26 distance
  sqrt(|rel|^2 + 1e-7) (here sqrt(|rel|^2): the 1e-7 voxel^2 only matters for coincident points,
  which are below any inner radius > 0 either way); :57-77 ``compute_partitions`` (shape context
  bins, above); :80-103 ``compute_partitions_fast`` (up_down, above; it sets P = 4).
- scripts/pretrain_sparseconv.sh:18-36: voxel 0.025 m, world_space True, r1 2.0, r2 20.0 (voxels),
  nbins_xy 2, nbins_zy 2, weight_inner False, fast_partition True, npos 4096, nceT 0.4.
- config/defaults.yaml:30-32, 50-56, 67-69: 32-d output, normalize_feature True (features are
  L2-normalised, model/res16unet.py:260-264); shape_context defaults r1 -1e9, r2 1e9, 1 x 1 bins,
  not fast; nceT 0.07; npos 4096.

Default = the shipped script (the only configuration the repository gives in full): ``up_down``,
4 partitions, inner_radius 0.05 m and outer_radius 0.5 m (CSC's r1 = 2 and r2 = 20 are in 2.5 cm
voxels; here radii are metres), temperature 0.4 (the script's, not defaults.yaml's 0.07),
num_matches 4096, weight_inner False. The released "partition8" checkpoints are most likely the
same script with fast_partition False, i.e. ``partition="shape_context"`` with 2 x 2 angle bins;
the repository gives no configuration for them (radii, iterations) beyond that name.

Differences from CSC, on purpose: the batch mean divides by the scenes that have matches (CSC
divides by the configured batch size, and pads a scene without matches with one dummy match); the
two agree whenever every scene has at least two matches. With a single match in a scene CSC's code
crashes, where here that scene's loss is 0 (its anchor has no negative; a warning says so when a
whole batch is such scenes, or num_matches is 1). Positions: CSC partitions the voxel grid's
coordinates (view 0's voxels, mapped to world space), lgseg the matched points' exact positions.
Measured on the demo's train scenes (512 random points each, up_down, the default radii), exact
positions against their voxel centres: at 8 cm voxels 7.3 % of pairs are in a partition under one
rule and in none under the other (mostly pairs in one layer of voxels, whose height difference is 0
on the grid, which up_down puts in no partition; at 2.5 cm, CSC's size, 2.6 %), and 0.2 % (0.07 %)
change partition. Duplicates among view-b
voxels are kept as CSC keeps them (two anchors matched to one b voxel see each other's positive as
a negative).

Cost per scene: one n x n similarity matrix (linear in D), its exponentials, and one n x n boolean
mask per partition kept for backward (n = 4096: 64 MiB + P x 16 MiB; about 0.5 GiB at the peak).
"""

from __future__ import annotations

import logging
import math
import numbers

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lgseg.losses.registry import LOSSES

PARTITIONS = ("up_down", "shape_context")
MAX_PARTITIONS = 32767  # partition ids are int16 (an n x n matrix of them per scene)
log = logging.getLogger(__name__)


def _zero_with_grad(*xs: Tensor) -> Tensor:
    """A scalar 0 whose grad_fn reaches every ``x`` (summing empty slices: no 0 * inf = nan risk)."""
    return sum(x.reshape(-1)[:0].sum() for x in xs)


def _randperm(n: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
    gen_device = generator.device if generator is not None else "cpu"
    return torch.randperm(n, generator=generator, device=gen_device).to(device)


def num_partitions(partition: str = "up_down", nbins_xy: int = 2, nbins_zy: int = 2) -> int:
    """P: 4 for ``up_down``, 2 * nbins_xy * nbins_zy for ``shape_context``."""
    if partition not in PARTITIONS:
        raise ValueError(f"partition must be one of {', '.join(PARTITIONS)}, not {partition!r}")
    return 4 if partition == "up_down" else 2 * nbins_xy * nbins_zy


@torch.no_grad()
def csc_partitions(
    coord: Tensor,
    inner_radius: float = 0.05,
    outer_radius: float = 0.5,
    partition: str = "up_down",
    nbins_xy: int = 2,
    nbins_zy: int = 2,
) -> Tensor:
    """(n, n) int16: entry [i, j] is the partition (0..P-1) of point j relative to anchor i, -1 for
    none; the diagonal is -1 (the positive joins every partition in the loss). ``coord`` (n, 3) in
    metres; rules in the module docstring. Computed in ``coord``'s dtype (at least float32), one
    (n, n) component at a time (no (n, n, 3) temporary)."""
    if coord.dim() != 2 or coord.shape[1] != 3:
        raise ValueError(f"coord must be (n, 3), got {tuple(coord.shape)}")
    if num_partitions(partition, nbins_xy, nbins_zy) > MAX_PARTITIONS:
        raise ValueError(f"2 * nbins_xy * nbins_zy must be <= {MAX_PARTITIONS}, got {2 * nbins_xy * nbins_zy}")
    x = coord.to(torch.promote_types(coord.dtype, torch.float32))
    dx, dy, dz = (x[:, c].unsqueeze(0) - x[:, c].unsqueeze(1) for c in range(3))  # rel = x_j - x_i
    d = (dx * dx).addcmul_(dy, dy).addcmul_(dz, dz).sqrt_()
    i16 = torch.int16
    if partition == "up_down":
        side = (dz < 0).to(i16)  # 0 above, 1 below
        level = dz != 0
        inner = (d > inner_radius) & (d <= outer_radius) & level
        outer = (d > outer_radius) & level
        part = torch.where(inner, side, torch.where(outer, side + 2, -1))
    else:
        dist_bin = torch.where(d >= outer_radius, 1, 0).to(i16)
        dist_bin.masked_fill_(d < inner_radius, -1)
        del d
        a_xy = torch.fmod(torch.atan2(dy, dx).add_(2 * math.pi), 2 * math.pi)
        b_xy = torch.floor(a_xy.div_(2 * math.pi / nbins_xy)).clamp_(0, nbins_xy - 1).to(i16)
        del a_xy
        a_zy = torch.fmod(torch.atan2(dy, dz).add_(2 * math.pi), math.pi)
        b_zy = torch.floor(a_zy.div_(math.pi / nbins_zy)).clamp_(0, nbins_zy - 1).to(i16)
        del a_zy
        part = (dist_bin * (nbins_xy * nbins_zy)).add_(b_xy * nbins_zy).add_(b_zy)
        part.masked_fill_(dist_bin < 0, -1)
    part.fill_diagonal_(-1)
    return part


def sample_anchors(
    matches: Tensor,
    match_scene: Tensor | None = None,
    num_matches: int = 4096,
    generator: torch.Generator | None = None,
) -> list[Tensor]:
    """Per scene (ascending scene id), the rows of ``matches`` used as anchors: one row per view-a
    voxel (uniformly among its rows), then at most ``num_matches`` per scene uniformly without
    replacement. Scenes without matches are absent."""
    k = matches.shape[0]
    device = matches.device
    a_idx = matches[:, 0]
    if torch.unique(a_idx).numel() == k:
        keep = torch.arange(k, device=device)
    else:  # first of each view-a voxel's rows in a random order: a uniform pick among them
        perm = _randperm(k, generator, device)
        sorted_a, order = torch.sort(a_idx[perm], stable=True)
        first = torch.ones_like(sorted_a, dtype=torch.bool)
        first[1:] = sorted_a[1:] != sorted_a[:-1]
        keep = perm[order[first]]
    if match_scene is None:
        groups = [keep] if keep.numel() else []
    else:
        scene = match_scene[keep]
        groups = [keep[scene == s] for s in torch.unique(scene)]
    out = []
    for rows in groups:
        if rows.numel() > num_matches:
            rows = rows[_randperm(rows.numel(), generator, device)[:num_matches]]
        out.append(rows)
    return out


class CSCLoss(nn.Module):
    """Contrastive Scene Contexts loss; formulas, sources and defaults in the module docstring.

    Called as ``loss(feats_a, feats_b, matches, coord, match_scene=None, generator=None)``:

    - ``feats_a`` (Ma, D), ``feats_b`` (Mb, D): per-voxel features of views a and b (any scale:
      L2-normalised here); a batch of scenes is concatenated along the first axis.
    - ``matches`` (K, 2) integer: row k pairs voxel ``matches[k, 0]`` of view a (the anchor) with
      voxel ``matches[k, 1]`` of view b (the same physical point).
    - ``coord`` (K, 3): row k's point in metres in the original (un-augmented) scene frame, which
      both views share; the partitions are computed from it.
    - ``match_scene`` (K,) integer, optional: scene of each match (any ids); partitions and
      negatives never mix scenes. None: all matches are one scene.
    - ``generator``: random source of the sampling (None: the global torch RNG).

    Returns a scalar: the mean over scenes of the per-scene CSC loss (0 with a grad_fn if K = 0).
    """

    def __init__(
        self,
        temperature: float = 0.4,
        num_matches: int = 4096,
        inner_radius: float = 0.05,
        outer_radius: float = 0.5,
        partition: str = "up_down",
        nbins_xy: int = 2,
        nbins_zy: int = 2,
        weight_inner: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not temperature > 0:
            raise ValueError(f"temperature must be a number > 0, not {temperature!r}")
        if isinstance(num_matches, bool) or not isinstance(num_matches, numbers.Integral) or num_matches < 1:
            raise ValueError(f"num_matches must be an integer >= 1, not {num_matches!r}")
        if isinstance(inner_radius, bool) or not isinstance(inner_radius, numbers.Real) or not inner_radius >= 0:
            raise ValueError(f"inner_radius must be a number >= 0 (metres), not {inner_radius!r}")
        if (isinstance(outer_radius, bool) or not isinstance(outer_radius, numbers.Real)
                or not outer_radius > inner_radius):
            raise ValueError(f"outer_radius must be a number > inner_radius ({inner_radius!r}) (metres), "
                             f"not {outer_radius!r}")
        if partition not in PARTITIONS:
            raise ValueError(f"partition must be one of {', '.join(PARTITIONS)}, not {partition!r}")
        for name, value in (("nbins_xy", nbins_xy), ("nbins_zy", nbins_zy)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, not {value!r}")
        if not isinstance(weight_inner, bool):
            raise ValueError(f"weight_inner must be true or false, not {weight_inner!r}")
        if num_partitions(partition, nbins_xy, nbins_zy) > MAX_PARTITIONS:
            raise ValueError(f"nbins_xy, nbins_zy: 2 * nbins_xy * nbins_zy must be <= {MAX_PARTITIONS}, got "
                             f"{2 * nbins_xy * nbins_zy}")
        if num_matches < 2:
            log.warning("CSC with num_matches %d: an anchor's negatives are the other sampled matches of its scene, "
                        "so there are none, the loss is exactly 0 and pretraining learns nothing; use >= 2 "
                        "(CSC: 4096)", num_matches)
        self._warned_no_negatives = False
        self.temperature, self.num_matches = float(temperature), int(num_matches)
        self.inner_radius, self.outer_radius = float(inner_radius), float(outer_radius)
        self.partition, self.nbins_xy, self.nbins_zy = partition, int(nbins_xy), int(nbins_zy)
        self.weight_inner = weight_inner

    @property
    def num_partitions(self) -> int:
        return num_partitions(self.partition, self.nbins_xy, self.nbins_zy)

    def extra_repr(self) -> str:
        bins = f", nbins_xy={self.nbins_xy}, nbins_zy={self.nbins_zy}" if self.partition == "shape_context" else ""
        return (f"temperature={self.temperature}, num_matches={self.num_matches}, "
                f"inner_radius={self.inner_radius}, outer_radius={self.outer_radius}, "
                f"partition={self.partition!r}{bins}, weight_inner={self.weight_inner}")

    def partitions(self, coord: Tensor) -> Tensor:
        """``csc_partitions`` with this loss's options."""
        return csc_partitions(coord, self.inner_radius, self.outer_radius, self.partition,
                              self.nbins_xy, self.nbins_zy)

    def scene_loss(self, q: Tensor, k: Tensor, coord: Tensor) -> Tensor:
        """The CSC loss of one scene's n sampled matches, no sampling: anchors' features ``q`` (n, D),
        their matches' ``k`` (n, D), positions ``coord`` (n, 3)."""
        dtype = torch.promote_types(torch.promote_types(q.dtype, k.dtype), torch.float32)
        q, k = F.normalize(q.to(dtype), dim=1), F.normalize(k.to(dtype), dim=1)
        t = self.temperature
        pos = (q * k).sum(dim=1) / t  # s_ii
        sims = (q @ k.T) / t
        # exp(s_ij - c_i) <= 1 with c_i the row max: no overflow at any temperature
        c = sims.detach().amax(dim=1)
        e = torch.exp(sims - c.unsqueeze(1))
        del sims
        big = self.num_partitions
        # every partition's sum of negatives in one pass: column p + 1 of anchor i's row sums the
        # exp(s_ij) of its partition p, column 0 the pairs in none (the diagonal among them)
        index = self.partitions(coord).to(torch.int64).add_(1)
        s_neg = e.new_zeros(len(e), big + 1).scatter_add(1, index, e)[:, 1:]
        del index
        has = s_neg > 0
        log_neg = torch.where(has, torch.log(torch.where(has, s_neg, 1.0)) + c.unsqueeze(1), float("-inf"))
        ce = torch.logaddexp(log_neg, pos.unsqueeze(1)) - pos.unsqueeze(1)  # (n, P); 0 where no negative in p
        factor = torch.ones(big, dtype=ce.dtype, device=ce.device)
        if self.weight_inner:
            factor[: big // 2] = 2.0
        return (ce.mean(dim=0) * factor).sum() / big

    def forward(
        self,
        feats_a: Tensor,
        feats_b: Tensor,
        matches: Tensor,
        coord: Tensor,
        match_scene: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        if feats_a.dim() != 2 or feats_b.dim() != 2 or feats_a.shape[1] != feats_b.shape[1]:
            raise ValueError(f"feats_a must be (Ma, D) and feats_b (Mb, D) with the same D, got "
                             f"{tuple(feats_a.shape)} and {tuple(feats_b.shape)}")
        if matches.dim() != 2 or matches.shape[1] != 2 or matches.dtype.is_floating_point:
            raise ValueError(f"matches must be (K, 2) integer, got {tuple(matches.shape)} {matches.dtype}")
        k = matches.shape[0]
        if coord.shape != (k, 3):
            raise ValueError(f"coord must be (K, 3) = ({k}, 3), got {tuple(coord.shape)}")
        if match_scene is not None and (match_scene.shape != (k,) or match_scene.dtype.is_floating_point):
            raise ValueError(f"match_scene must be (K,) = ({k},) integer, got {tuple(match_scene.shape)} "
                             f"{match_scene.dtype}")
        if k == 0:
            return _zero_with_grad(feats_a, feats_b)
        matches = matches.long()
        for col, n, name in ((0, feats_a.shape[0], "feats_a"), (1, feats_b.shape[0], "feats_b")):
            lo, hi = int(matches[:, col].min()), int(matches[:, col].max())
            if lo < 0 or hi >= n:
                raise ValueError(f"matches[:, {col}] must index {name}'s {n} rows, got {lo}..{hi}")
        groups = sample_anchors(matches, match_scene, self.num_matches, generator)
        if not groups:
            return _zero_with_grad(feats_a, feats_b)
        # one gather for all scenes (and both views when they are one tensor): its backward zero-fills
        # the whole feature tensor once, which costs more than a scene's loss when done per scene
        rows = torch.cat(groups)
        m, sizes = matches[rows], [len(g) for g in groups]
        if max(sizes) < 2 and not self._warned_no_negatives:  # sizes are host ints: no device sync
            self._warned_no_negatives = True
            log.warning("CSC: every scene of a batch has a single matched voxel, so no anchor has a negative and "
                        "the loss is exactly 0 (one-point scenes, or num_matches 1); such batches teach nothing")
        if feats_a is feats_b:
            q, k = feats_a[torch.cat([m[:, 0], m[:, 1]])].split([len(m), len(m)])
        else:
            q, k = feats_a[m[:, 0]], feats_b[m[:, 1]]
        losses = [self.scene_loss(qs, ks, cs) for qs, ks, cs in zip(q.split(sizes), k.split(sizes), coord[rows].split(sizes))]
        return torch.stack(losses).mean()


@LOSSES.register("csc")
def _build_csc(temperature: float = 0.4, num_matches: int = 4096, inner_radius: float = 0.05,
               outer_radius: float = 0.5, partition: str = "up_down", nbins_xy: int = 2,
               nbins_zy: int = 2, weight_inner: bool = False) -> CSCLoss:
    """CSC pretraining (called with feats_a, feats_b, matches, coord[, match_scene]): the CSC baseline."""
    return CSCLoss(temperature=temperature, num_matches=num_matches, inner_radius=inner_radius,
                   outer_radius=outer_radius, partition=partition, nbins_xy=nbins_xy,
                   nbins_zy=nbins_zy, weight_inner=weight_inner)
