"""A picture of one RGB-D frame beside what the image side made of it: its colour, ScanNet's 2D label
image, the 2D teacher's per-pixel readout through the text anchors and the lifted features of the
points the frame sees, read out the same way (``lgseg render --frame``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lgseg.render import label_colors


def render_frame(frames_dir: str | Path, index: int, coord: np.ndarray, lifted: str | Path, anchors: np.ndarray,
                 out: str | Path, teacher=None, title: str = "", lift: dict | None = None) -> Path:
    """One RGB-D frame of a scene beside what the image side made of it: its colour, ScanNet's 2D label
    image (where the frame folder has one), the teacher's per-pixel readout through the text anchors
    (with ``teacher``), and the lifted features of the scene's points (``lifted``: the scene's
    folder of ``lgseg.engine.lift``) read out the same way and drawn where the points project into
    the frame (the points this frame sees; ``lift``: lgseg.lifting's visibility options)."""
    from lgseg.frames.layout import FrameFolder
    from lgseg.lifting import View, load_fused, visible
    from lgseg.plots import pyplot, save_png

    folder = FrameFolder.from_dir(frames_dir)
    frame = folder.frame(index)
    t = anchors / np.linalg.norm(anchors, axis=1, keepdims=True)
    h, w = frame.depth.shape
    panels = [("colour", frame.color)]
    if frame.label is not None:
        from lgseg.scannet.constants import raw_to_index

        panels.append(("ScanNet 2D labels", label_colors(raw_to_index(frame.label.astype(np.int64)).ravel())
                       .reshape(*frame.label.shape, 3)))
    if teacher is not None:
        feats = teacher.features(frame.color)
        classes = (feats.reshape(-1, feats.shape[-1]) @ t.T).argmax(1)
        panels.append(("teacher, nearest text anchor", label_colors(classes).reshape(*feats.shape[:2], 3)))
    feat, seen = load_fused(lifted, num_points=len(coord), dense=True)
    opts = {k: v for k, v in (lift or {}).items() if k in ("border", "occlusion", "occlusion_mode")}
    mask, u, v = visible(coord, View(frame.pose, folder.intrinsic_depth, frame.depth),
                         axis_alignment=folder.axis_alignment, **opts)
    mask &= seen
    image = np.ones((h, w, 3))
    classes = (feat[mask].astype(np.float32) @ t.T).argmax(1)
    image[v[mask], u[mask]] = label_colors(classes)
    panels.append((f"lifted features of the {int(mask.sum())} points seen, nearest text anchor", image))
    fig, axes = pyplot().subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6))
    for ax, (name, img) in zip(np.atleast_1d(axes), panels):
        ax.imshow(img if img.dtype == np.uint8 else np.clip(img, 0, 1), interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title or f"{Path(frames_dir).name}, frame {index}")
    fig.tight_layout()
    save_png(fig, out)
    return Path(out)
