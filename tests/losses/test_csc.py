"""CSCLoss (Contrastive Scene Contexts) against a hand-computed value, a brute-force partition loop,
and its invariances (point order, scenes of a batch)."""

from __future__ import annotations

import math

import pytest
import torch

from lgseg.config import build_loss
from lgseg.losses import LOSSES, CSCLoss, csc_partitions, sample_anchors

# ---------------------------------------------------------------------------------------------
# Hand-computed scene: 6 physical points on a vertical line (x, y fixed), so for every pair the
# distance is |dz| and the side is the sign of dz. Partitions (up_down, radii 0.05 / 0.5 m):
# 0 = 5-50 cm above, 1 = 5-50 cm below, 2 = > 50 cm above, 3 = > 50 cm below.
Z = [0.0, 0.2, -0.2, 1.0, -1.0, 0.01]
# anchor i -> {partition: negatives j}, read off Z by hand (point 5 is 1 cm above point 0: none)
HAND_PARTS = {
    0: {0: [1], 1: [2], 2: [3], 3: [4]},
    1: {1: [0, 2, 5], 2: [3], 3: [4]},
    2: {0: [0, 1, 5], 2: [3], 3: [4]},
    3: {3: [0, 1, 2, 4, 5]},
    4: {2: [0, 1, 2, 3, 5]},
    5: {0: [1], 1: [2], 2: [3], 3: [4]},
}
A_IDX = [2, 5, 0, 7, 1, 4]  # view-a voxel of physical point i (8 voxels, 3 and 6 unmatched)
B_IDX = [3, 0, 6, 1, 5, 2]  # view-b voxel of physical point i (7 voxels, 4 unmatched)
ROW_ORDER = [3, 0, 5, 1, 4, 2]  # the matches' rows list the points in this order


def hand_scene():
    """Features: f_b of point j = (any scale) e_j; f_a of point i = e_i, but point 0's = e_0 + e_1.
    With T = 0.5: s_ii = 2 for i != 0, s_ij = 0 otherwise, except s_00 = s_01 = 1/sqrt(2) / 0.5."""
    g = torch.Generator().manual_seed(0)
    feats_a, feats_b = torch.randn(8, 6, generator=g), torch.randn(7, 6, generator=g)
    eye = torch.eye(6)
    for i in range(6):
        feats_a[A_IDX[i]] = (i + 1.0) * eye[i]
        feats_b[B_IDX[i]] = 0.5 * (i + 2.0) * eye[i]
    feats_a[A_IDX[0]] = 3.0 * (eye[0] + eye[1])
    matches = torch.tensor([[A_IDX[i], B_IDX[i]] for i in ROW_ORDER])
    coord = torch.tensor([[1.5, -2.0, Z[i] + 0.3] for i in ROW_ORDER])
    return feats_a, feats_b, matches, coord


def test_partitions_of_hand_scene():
    part = csc_partitions(torch.tensor([[1.5, -2.0, z + 0.3] for z in Z]))
    for i in range(6):
        for j in range(6):
            expected = next((p for p, js in HAND_PARTS[i].items() if j in js), -1)
            assert int(part[i, j]) == expected, (i, j)


def test_hand_computed_value():
    feats_a, feats_b, matches, coord = hand_scene()
    r = math.sqrt(2)  # s_00 = s_01
    # anchor 0: partition 0 holds point 1 (s = s_00): -log(e^r / (e^r + e^r)) = log 2; partitions
    # 1-3 hold one point with s = 0: log(1 + e^-r). Anchors 1-5: s_ii = 2, negatives s = 0, so a
    # partition with m negatives gives log(1 + m e^-2), an empty one log(1) = 0.
    one, three, five = math.log(1 + math.exp(-2)), math.log(1 + 3 * math.exp(-2)), math.log(1 + 5 * math.exp(-2))
    per_anchor_inner = [math.log(2) + math.log(1 + math.exp(-r)), three, three, 0.0, 0.0, 2 * one]
    per_anchor_outer = [2 * math.log(1 + math.exp(-r)), 2 * one, 2 * one, five, five, 2 * one]
    # mean over the 6 anchors, then over the 4 partitions
    expected = (sum(per_anchor_inner) + sum(per_anchor_outer)) / (6 * 4)
    assert expected == pytest.approx(0.169857, abs=1e-6)
    loss = CSCLoss(temperature=0.5, num_matches=6)
    assert loss(feats_a, feats_b, matches, coord).item() == pytest.approx(expected, abs=1e-6)
    # CSC's weight_inner: the two inner partitions count twice (still divided by 4)
    weighted = (2 * sum(per_anchor_inner) + sum(per_anchor_outer)) / (6 * 4)
    loss = CSCLoss(temperature=0.5, weight_inner=True)
    assert loss(feats_a, feats_b, matches, coord).item() == pytest.approx(weighted, abs=1e-6)


# ---------------------------------------------------------------------------------------------
def brute_force_partitions(coord, r1, r2, partition, nbins_xy, nbins_zy):
    """The module docstring's rules, pair by pair in Python floats."""
    n = len(coord)
    out = [[-1] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            rx, ry, rz = (float(coord[j][c]) - float(coord[i][c]) for c in range(3))
            d = math.sqrt(rx * rx + ry * ry + rz * rz)
            if partition == "up_down":
                dist = 1 if d > r2 else (0 if d > r1 else -1)
                side = 0 if rz > 0 else (1 if rz < 0 else -1)
                if dist >= 0 and side >= 0:
                    out[i][j] = 2 * dist + side
            else:
                dist = 1 if d >= r2 else (0 if d >= r1 else -1)
                a_xy = math.fmod(math.atan2(ry, rx) + 2 * math.pi, 2 * math.pi)
                a_zy = math.fmod(math.atan2(ry, rz) + 2 * math.pi, math.pi)
                b_xy = min(int(a_xy // (2 * math.pi / nbins_xy)), nbins_xy - 1)
                b_zy = min(int(a_zy // (math.pi / nbins_zy)), nbins_zy - 1)
                if dist >= 0:
                    out[i][j] = dist * nbins_xy * nbins_zy + b_xy * nbins_zy + b_zy
    return out


@pytest.mark.parametrize(
    "partition, nbins_xy, nbins_zy",
    [("up_down", 2, 2), ("shape_context", 2, 2), ("shape_context", 3, 1), ("shape_context", 4, 3)],
)
def test_partitions_match_brute_force(partition, nbins_xy, nbins_zy):
    g = torch.Generator().manual_seed(1)
    coord = torch.rand(40, 3, generator=g, dtype=torch.float64) * 1.2 - 0.6
    coord[5] = coord[4] + 0.01  # a pair closer than the inner radius
    part = csc_partitions(coord, 0.05, 0.5, partition, nbins_xy, nbins_zy)
    assert part.tolist() == brute_force_partitions(coord.tolist(), 0.05, 0.5, partition, nbins_xy, nbins_zy)
    assert int(part[4, 5]) == -1 and int(part[5, 4]) == -1
    num = 4 if partition == "up_down" else 2 * nbins_xy * nbins_zy
    assert set(part.unique().tolist()) == {-1, *range(num)}  # every partition occurs
    if (partition, nbins_xy, nbins_zy) == ("shape_context", 2, 2):
        # CSC's 2 x 2 angle bins are the quadrants of (sign rel_y, sign rel_y * rel_z)
        rel = coord.unsqueeze(0) - coord.unsqueeze(1)
        valid = part >= 0
        assert torch.equal(((part % 4) // 2 == 0)[valid], (rel[..., 1] > 0)[valid])
        assert torch.equal((part % 2 == 0)[valid], (rel[..., 1] * rel[..., 2] > 0)[valid])


def masked_cross_entropy_reference(feats_a, feats_b, matches, coord, loss):
    """CSC's formulation on one scene: logits q k^T / T, entries outside partition p (diagonal kept)
    pushed down by 1e9, cross entropy with labels 0..n-1 averaged over anchors; sum over p / P."""
    q = torch.nn.functional.normalize(feats_a[matches[:, 0]].double(), dim=1)
    k = torch.nn.functional.normalize(feats_b[matches[:, 1]].double(), dim=1)
    logits = q @ k.T / loss.temperature
    part = torch.tensor(brute_force_partitions(coord.tolist(), loss.inner_radius, loss.outer_radius,
                                               loss.partition, loss.nbins_xy, loss.nbins_zy))
    num = loss.num_partitions
    total = 0.0
    for p in range(num):
        keep = part == p
        keep.fill_diagonal_(True)
        ce = torch.nn.functional.cross_entropy(logits - 1e9 * (~keep).double(), torch.arange(len(q)))
        total += (2.0 if loss.weight_inner and p < num // 2 else 1.0) * ce.item()
    return total / num


@pytest.mark.parametrize("cfg", [{}, {"partition": "shape_context", "weight_inner": True},
                                 {"temperature": 0.07, "inner_radius": 0.1, "outer_radius": 0.8}])
def test_matches_csc_masked_cross_entropy(cfg):
    feats_a, feats_b, matches, coord = random_batch(n=40, d=8, seed=11)
    loss = CSCLoss(**cfg)
    expected = masked_cross_entropy_reference(feats_a, feats_b, matches, coord, loss)
    assert loss(feats_a, feats_b, matches, coord).item() == pytest.approx(expected, rel=1e-5)


# ---------------------------------------------------------------------------------------------
def random_batch(n=50, d=8, seed=0, extra=5):
    g = torch.Generator().manual_seed(seed)
    feats_a = torch.randn(n + extra, d, generator=g)
    feats_b = torch.randn(n + extra + 2, d, generator=g)
    matches = torch.stack([torch.randperm(n + extra, generator=g)[:n],
                           torch.randperm(n + extra + 2, generator=g)[:n]], dim=1)
    coord = torch.rand(n, 3, generator=g) * 2.0
    return feats_a, feats_b, matches, coord


@pytest.mark.parametrize("partition", ["up_down", "shape_context"])
def test_permuting_points_and_rows_changes_nothing(partition):
    feats_a, feats_b, matches, coord = random_batch()
    scene = torch.arange(matches.shape[0]) % 2
    loss = CSCLoss(num_matches=1000, partition=partition)
    ref = loss(feats_a, feats_b, matches, coord, scene)
    g = torch.Generator().manual_seed(7)
    pa, pb = torch.randperm(feats_a.shape[0], generator=g), torch.randperm(feats_b.shape[0], generator=g)
    rows = torch.randperm(matches.shape[0], generator=g)
    # new voxel v of view a is old voxel pa[v]: old index u becomes inv_a[u]
    inv_a, inv_b = torch.argsort(pa), torch.argsort(pb)
    new_matches = torch.stack([inv_a[matches[:, 0]], inv_b[matches[:, 1]]], dim=1)[rows]
    out = loss(feats_a[pa], feats_b[pb], new_matches, coord[rows], scene[rows])
    assert out.item() == pytest.approx(ref.item(), abs=1e-6)


def test_gradients_reach_both_views_and_are_finite():
    feats_a, feats_b, matches, coord = random_batch(n=30)
    for temperature in (0.4, 0.01):  # 0.01: logits up to 100, anchors with empty partitions
        fa, fb = feats_a.clone().requires_grad_(), feats_b.clone().requires_grad_()
        loss = CSCLoss(temperature=temperature)(fa, fb, matches, coord)
        loss.backward()
        assert torch.isfinite(loss)
        for f, idx in ((fa, matches[:, 0]), (fb, matches[:, 1])):
            assert torch.isfinite(f.grad).all()
            assert (f.grad[idx].abs().sum(dim=1) > 0).any()
            unmatched = torch.ones(f.shape[0], dtype=torch.bool)
            unmatched[idx] = False
            assert torch.equal(f.grad[unmatched], torch.zeros_like(f.grad[unmatched]))


def test_no_matches_is_zero_with_grad():
    fa, fb = torch.randn(4, 3, requires_grad=True), torch.randn(5, 3, requires_grad=True)
    loss = CSCLoss()(fa, fb, torch.zeros((0, 2), dtype=torch.long), torch.zeros((0, 3)))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(fa.grad, torch.zeros_like(fa)) and torch.equal(fb.grad, torch.zeros_like(fb))


def test_aligned_features_beat_random_ones():
    feats_a, feats_b, matches, coord = random_batch(n=100, d=16)
    aligned_b = feats_b.clone()
    aligned_b[matches[:, 1]] = 2.0 * feats_a[matches[:, 0]]
    loss = CSCLoss()
    good, bad = loss(feats_a, aligned_b, matches, coord), loss(feats_a, feats_b, matches, coord)
    assert good.item() < bad.item() - 0.5


# ---------------------------------------------------------------------------------------------
def test_registry_builds_csc_and_refuses_unknown_keys():
    default = LOSSES.build({"type": "csc"})
    assert isinstance(default, CSCLoss)
    assert (default.temperature, default.num_matches, default.inner_radius, default.outer_radius,
            default.partition, default.weight_inner, default.num_partitions) == (
        0.4, 4096, 0.05, 0.5, "up_down", False, 4)
    cfg = {"type": "csc", "temperature": 0.07, "num_matches": 1024, "inner_radius": 0.1,
           "outer_radius": 1.0, "partition": "shape_context", "nbins_xy": 2, "nbins_zy": 2,
           "weight_inner": True}
    c = build_loss(cfg)
    assert (c.temperature, c.num_matches, c.inner_radius, c.outer_radius, c.partition,
            c.weight_inner, c.num_partitions) == (0.07, 1024, 0.1, 1.0, "shape_context", True, 8)
    assert cfg["type"] == "csc"
    with pytest.raises(ValueError) as e:
        LOSSES.build({"type": "csc", "radius": 0.5})
    assert str(e.value) == (
        "loss.radius is not a key of loss type 'csc'; allowed keys: type, temperature, num_matches, "
        "inner_radius, outer_radius, partition, nbins_xy, nbins_zy, weight_inner"
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"temperature": 0}, "temperature must be a number > 0"),
        ({"num_matches": 0}, "num_matches must be an integer >= 1"),
        ({"num_matches": 2.5}, "num_matches must be an integer >= 1"),
        ({"inner_radius": -0.1}, "inner_radius must be a number >= 0"),
        ({"inner_radius": 0.5, "outer_radius": 0.5}, "outer_radius must be a number > inner_radius"),
        ({"partition": "cube"}, "partition must be one of up_down, shape_context, not 'cube'"),
        ({"nbins_xy": 0}, "nbins_xy must be an integer >= 1"),
        ({"nbins_zy": True}, "nbins_zy must be an integer >= 1"),
        ({"weight_inner": 1}, "weight_inner must be true or false"),
    ],
)
def test_bad_options_name_the_arg(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LOSSES.build({"type": "csc", **kwargs})


def test_bad_inputs():
    feats_a, feats_b, matches, coord = random_batch(n=10)
    loss = CSCLoss()
    with pytest.raises(ValueError, match="matches\\[:, 1\\] must index feats_b"):
        loss(feats_a, feats_b, matches + torch.tensor([0, 100]), coord)
    with pytest.raises(ValueError, match="coord must be \\(K, 3\\)"):
        loss(feats_a, feats_b, matches, coord[:5])
    with pytest.raises(ValueError, match="matches must be \\(K, 2\\) integer"):
        loss(feats_a, feats_b, matches.float(), coord)
    with pytest.raises(ValueError, match="same D"):
        loss(feats_a, feats_b[:, :3], matches, coord)


# ---------------------------------------------------------------------------------------------
def test_scenes_never_mix():
    # two scenes at the SAME positions: mixing would put scene 0's points in scene 1's partitions
    fa0, fb0, m0, c0 = random_batch(n=30, seed=3)
    fa1, fb1, m1, _ = random_batch(n=30, seed=4)
    loss = CSCLoss(num_matches=100)
    per_scene = [loss(fa0, fb0, m0, c0).item(), loss(fa1, fb1, m1, c0).item()]
    feats_a, feats_b = torch.cat([fa0, fa1]), torch.cat([fb0, fb1])
    matches = torch.cat([m0, m1 + torch.tensor([fa0.shape[0], fb0.shape[0]])])
    coord = torch.cat([c0, c0])
    scene = torch.tensor([3] * 30 + [7] * 30)  # any ids
    rows = torch.randperm(60, generator=torch.Generator().manual_seed(0))  # interleave the scenes
    batch = loss(feats_a, feats_b, matches[rows], coord[rows], scene[rows])
    assert batch.item() == pytest.approx(sum(per_scene) / 2, abs=1e-6)
    # one scene of all 60 is a different loss (the check above can see mixing)
    assert abs(loss(feats_a, feats_b, matches, coord).item() - batch.item()) > 1e-3


def test_sampling_per_scene_without_replacement_and_deterministic():
    matches = torch.stack([torch.arange(40), torch.arange(40)], dim=1)
    scene = torch.tensor([0] * 25 + [1] * 10 + [2] * 5)
    groups = sample_anchors(matches, scene, 8, torch.Generator().manual_seed(0))
    assert [len(r) for r in groups] == [8, 8, 5]
    for s, rows in enumerate(groups):
        assert len(set(rows.tolist())) == len(rows) and bool((scene[rows] == s).all())
    again = sample_anchors(matches, scene, 8, torch.Generator().manual_seed(0))
    assert all(torch.equal(x, y) for x, y in zip(groups, again))
    torch.manual_seed(5)
    g1 = sample_anchors(matches, scene, 8)
    torch.manual_seed(5)
    assert all(torch.equal(x, y) for x, y in zip(g1, sample_anchors(matches, scene, 8)))
    # every match is drawn sometime (uniform, not a fixed prefix)
    seen = set()
    for seed in range(30):
        seen |= set(sample_anchors(matches, scene, 8, torch.Generator().manual_seed(seed))[0].tolist())
    assert seen == set(range(25))
    # the loss with the same generator seed is the same number
    feats_a, feats_b, m, coord = random_batch(n=50)
    loss = CSCLoss(num_matches=20)
    one = loss(feats_a, feats_b, m, coord, generator=torch.Generator().manual_seed(1))
    two = loss(feats_a, feats_b, m, coord, generator=torch.Generator().manual_seed(1))
    assert one.item() == two.item()


def test_one_match_per_view_a_voxel():
    # voxel 0 of view a has three matches: CSC keeps one of them, uniformly at random
    matches = torch.tensor([[0, 0], [1, 3], [0, 1], [2, 2], [0, 4]])
    picked = set()
    for seed in range(40):
        (rows,) = sample_anchors(matches, None, 100, torch.Generator().manual_seed(seed))
        kept = matches[rows]
        assert sorted(kept[:, 0].tolist()) == [0, 1, 2]
        picked.add(int(kept[kept[:, 0] == 0, 1]))
    assert picked == {0, 1, 4}


def test_one_match_per_scene_is_zero_and_warned(caplog):
    """CSC's own code crashes on a scene with a single match; here its anchor has no negative, the
    loss is exactly 0, and a batch of such scenes is warned of once (issue 26, item 11)."""
    fa = torch.randn(2, 3, requires_grad=True)
    matches = torch.tensor([[0, 0], [1, 1]])
    coord, scene = torch.tensor([[0.0, 0, 0], [1.0, 0, 1]]), torch.tensor([0, 1])
    loss_fn = CSCLoss()
    with caplog.at_level("WARNING", logger="lgseg.losses.csc"):
        assert loss_fn(fa, fa, matches, coord, scene).item() == 0.0
        loss_fn(fa, fa, matches, coord, scene)
    assert [r.message for r in caplog.records].count(
        "CSC: every scene of a batch has a single matched voxel, so no anchor has a negative and the loss is exactly "
        "0 (one-point scenes, or num_matches 1); such batches teach nothing") == 1
    caplog.clear()
    with caplog.at_level("WARNING", logger="lgseg.losses.csc"):
        CSCLoss(num_matches=1)
    assert "CSC with num_matches 1" in caplog.text and "loss is exactly 0" in caplog.text


def test_too_many_shape_context_partitions_are_refused_when_built():
    with pytest.raises(ValueError, match="2 \\* nbins_xy \\* nbins_zy must be <= 32767, got 40000"):
        CSCLoss(partition="shape_context", nbins_xy=200, nbins_zy=100)
