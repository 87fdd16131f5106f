"""How structured a learned feature space is (the paper's Fig. 7): a class-balanced sample of val
voxels, the same for every model, their features' k-NN class accuracy and silhouette, and a t-SNE
projection to look at.

``balanced_sample`` picks the voxels from the labels alone (never from a model), so every pretrained
model is judged on the same ones: ``per_group`` voxels from each of head, common and tail, spread
evenly over the group's classes present (a class with fewer voxels gives all it has, the rest go to
the others), at random within a class. The scores are computed on the L2-normalised features with
cosine similarity, the geometry every objective here trains (the language objective's anchors,
SupCon's and CSC's contrast):

- ``knn_accuracy``: leave-one-out k-nearest-neighbour classification, each voxel labelled by the
  majority class of its k most cosine-similar other sampled voxels (a tie goes to the class whose
  members rank nearer); overall and per class group. Chance is about one in the number of sampled
  classes.
- ``silhouette``: scikit-learn's mean silhouette with cosine distance, classes as clusters (1: tight,
  separated classes; 0: overlapping; below 0: mixed).

The t-SNE is scikit-learn's (cosine metric, PCA initialisation, a fixed seed): a picture of the
same space, not a score (its distances are not the features').
"""

from __future__ import annotations

import numpy as np

from lgseg.scannet.constants import CLASS_SPLIT, IGNORE_INDEX, NUM_CLASSES, SPLITS


def balanced_sample(labels: list[np.ndarray], per_group: int, seed: int = 0) -> list[np.ndarray]:
    """Which voxels of each scene to take (``labels[s]``: each voxel's class, -1 ignore): for every
    scene the sorted indices of its sampled voxels, ``per_group`` per class group in all (fewer if
    the group has fewer labelled voxels)."""
    rng = np.random.default_rng(seed)
    scene_of = np.concatenate([np.full(len(lab), s) for s, lab in enumerate(labels)]) if labels else np.zeros(0, int)
    index_in = np.concatenate([np.arange(len(lab)) for lab in labels]) if labels else np.zeros(0, int)
    flat = np.concatenate(labels).astype(np.int64) if labels else np.zeros(0, np.int64)
    taken = []
    group = np.array([CLASS_SPLIT[c] for c in range(NUM_CLASSES)])
    for split in SPLITS:
        classes = [c for c in np.flatnonzero(group == split) if np.any(flat == c)]
        members = {c: rng.permutation(np.flatnonzero(flat == c)) for c in classes}
        quota = _even_quota([len(members[c]) for c in classes], per_group)
        taken += [members[c][:q] for c, q in zip(classes, quota)]
    picked = np.concatenate(taken) if taken else np.zeros(0, int)
    return [np.sort(index_in[picked[scene_of[picked] == s]]) for s in range(len(labels))]


def _even_quota(sizes: list[int], total: int) -> list[int]:
    """Split ``total`` over bins of ``sizes`` as evenly as they allow (water filling)."""
    quota, left = [0] * len(sizes), total
    open_bins = [i for i, n in enumerate(sizes) if n > 0]
    while left > 0 and open_bins:
        share = max(left // len(open_bins), 1)
        for i in list(open_bins):
            add = min(share, sizes[i] - quota[i], left)
            quota[i] += add
            left -= add
            if quota[i] == sizes[i]:
                open_bins.remove(i)
            if left == 0:
                break
    return quota


def _normalized(feats: np.ndarray) -> np.ndarray:
    feats = np.asarray(feats, dtype=np.float64)
    return feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)


def knn_predictions(feats: np.ndarray, labels: np.ndarray, k: int = 10) -> np.ndarray:
    """Leave-one-out k-NN class of every row (cosine similarity; ties: the class ranked nearer)."""
    labels = np.asarray(labels)
    n = len(labels)
    if n < 2:
        raise ValueError(f"k-NN accuracy needs at least 2 samples, got {n}")
    k = min(k, n - 1)
    sim = _normalized(feats) @ _normalized(feats).T
    np.fill_diagonal(sim, -np.inf)
    nearest = np.argsort(-sim, axis=1, kind="stable")[:, :k]  # (n, k), nearest first
    neighbour_class = labels[nearest]
    classes, dense = np.unique(neighbour_class, return_inverse=True)
    dense = dense.reshape(n, k)
    votes = np.zeros((n, len(classes)))
    rows = np.repeat(np.arange(n), k)
    # one vote each, plus a tie-break below one vote that prefers the class met first (the nearest)
    np.add.at(votes, (rows, dense.ravel()), 1.0 + (k - np.tile(np.arange(k), n)) / (k * (k + 1)))
    return classes[votes.argmax(axis=1)]


def structure_scores(feats: np.ndarray, labels: np.ndarray, k: int = 10) -> dict:
    """``knn_accuracy`` (percent, overall and per class group present) and ``silhouette`` of
    ``feats`` (n, D) with classes ``labels`` (n,), as the module docstring defines them."""
    from sklearn.metrics import silhouette_score

    labels = np.asarray(labels, dtype=np.int64)
    if (labels == IGNORE_INDEX).any():
        raise ValueError("labels must be classes, not ignore")
    right = knn_predictions(feats, labels, k) == labels
    group = np.array([CLASS_SPLIT[c] for c in labels])
    accuracy = {"all": float(100 * right.mean())}
    accuracy |= {s: float(100 * right[group == s].mean()) for s in SPLITS if (group == s).any()}
    silhouette = float(silhouette_score(_normalized(feats), labels, metric="cosine")) \
        if 2 <= len(np.unique(labels)) < len(labels) else None
    return {"knn_accuracy": accuracy, "silhouette": silhouette, "k": int(min(k, len(labels) - 1)),
            "samples": int(len(labels)), "classes": int(len(np.unique(labels)))}


def tsne(feats: np.ndarray, perplexity: float = 30.0, seed: int = 0) -> np.ndarray:
    """(n, 2) t-SNE coordinates of the L2-normalised features (scikit-learn, cosine metric)."""
    from sklearn.manifold import TSNE

    feats = _normalized(feats)
    perplexity = min(float(perplexity), max((len(feats) - 1) / 3.0, 1.0))  # sklearn needs perplexity < n
    return TSNE(n_components=2, perplexity=perplexity, metric="cosine", init="pca", random_state=seed,
                n_jobs=1).fit_transform(feats).astype(np.float32)
