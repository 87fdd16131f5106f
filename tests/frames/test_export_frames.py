"""export_frames: a .sens (written by write_sens) and ScanNet-style 2D projection zips to the frame
folder, read back through lgseg.frames.layout; and nothing half-written when it fails."""

from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
import pytest
from PIL import Image

from lgseg.errors import InputError
from lgseg.fileio import PRODUCT_MARK
from lgseg.frames import layout
from lgseg.frames.export import export_frames, resize_nearest, scale_intrinsic
from lgseg.frames.layout import FrameFolder, frame_ids, read_depth, read_intrinsic, read_pose
from lgseg.frames.sens import decode_color, iter_frames, read_header
from test_sens import DH, DW, E_DEPTH, H, K_COLOR, K_DEPTH, NAME, W, frame_arrays, write_test_sens


def png(image) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return buf.getvalue()


def label_of(i: int) -> np.ndarray:
    return (np.arange(H * W, dtype=np.uint16).reshape(H, W) * 300 + i)  # ScanNet ids past 255


def instance_of(i: int) -> np.ndarray:
    return ((np.arange(H * W).reshape(H, W) + i) % 7).astype(np.uint8)


def write_zip(path, folder: str, ids, image_of, extra=()) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(folder + "/", b"")  # the folder's own entry, as `zip -r` writes it
        for i in ids:
            z.writestr(f"{folder}/{i}.png", png(image_of(i)))
        for name in extra:
            z.writestr(name, png(image_of(0)))


def no_temporaries(parent) -> bool:
    return not [p for p in parent.iterdir() if ".tmp-" in p.name]


def test_export_writes_sensreaders_layout(tmp_path):
    sens = tmp_path / "scene0000_00.sens"
    write_test_sens(sens, n=3)
    out = tmp_path / "frames" / "scene0000_00"
    summary = export_frames(sens, out)  # with the progress bar
    assert summary["frames_written"] == 3 and summary["frames_skipped_invalid_pose"] == 0
    assert summary["color_size"] == [W, H] and summary["depth_size"] == [DW, DH] and not summary["labels"]
    assert sorted(p.name for p in out.iterdir()) == sorted([PRODUCT_MARK, "color", "depth", "intrinsic", "pose"])
    assert frame_ids(out) == [0, 1, 2]
    stored = {f.index: f for f in iter_frames(sens)}
    for i in range(3):
        pose, color, depth, _, _ = frame_arrays(i)
        assert layout.color_path(out, i).read_bytes() == stored[i].color_data  # the JPEG as stored
        png_bytes = layout.depth_path(out, i).read_bytes()
        assert png_bytes[:8] == b"\x89PNG\r\n\x1a\n" and png_bytes[24:26] == bytes([16, 0])  # 16-bit greyscale
        np.testing.assert_array_equal(read_depth(layout.depth_path(out, i)), depth)
        pose_read = read_pose(layout.pose_path(out, i))  # the float32 stored, as its shortest text
        np.testing.assert_array_equal(pose_read.astype(np.float32), pose.astype(np.float32))
        assert np.abs(pose_read - pose).max() < 1e-7
    np.testing.assert_array_equal(read_intrinsic(layout.matrix_path(out, "intrinsic_color")), K_COLOR)
    np.testing.assert_array_equal(read_intrinsic(layout.matrix_path(out, "intrinsic_depth")), K_DEPTH)
    np.testing.assert_array_equal(layout.read_extrinsic(layout.matrix_path(out, "extrinsic_depth")).astype(np.float32),
                                  E_DEPTH.astype(np.float32))
    f = FrameFolder.from_dir(out).frame(1)
    assert f.depth[2, 3] == np.float32((500 + 37 + (2 * DW + 3) * 11) / 1000)


def test_frame_step_and_invalid_poses(tmp_path):
    sens = tmp_path / "s.sens"
    write_test_sens(sens, n=7, invalid={2, 3})
    out = tmp_path / "f" / "s"
    summary = export_frames(sens, out, frame_step=2, progress=False)
    assert summary["frames_selected"] == 4  # 0, 2, 4, 6
    assert summary["frames_written"] == 3 and summary["frames_skipped_invalid_pose"] == 1  # 2 skipped, 3 not selected
    assert frame_ids(out) == [0, 4, 6]
    np.testing.assert_array_equal(read_pose(layout.pose_path(out, 6)).astype(np.float32),
                                  frame_arrays(6)[0].astype(np.float32))


def test_image_size_resizes_nearest_and_scales_the_intrinsics(tmp_path):
    sens = tmp_path / "s.sens"
    write_test_sens(sens, n=2)
    labels, instances = tmp_path / "s_2d-label-filt.zip", tmp_path / "s_2d-instance-filt.zip"
    write_zip(labels, "label-filt", range(2), label_of)
    write_zip(instances, "instance-filt", range(2), instance_of)
    out = tmp_path / "f" / "s"
    summary = export_frames(sens, out, image_size=(4, 3), label_zip=labels, instance_zip=instances, progress=False)
    assert summary["color_size"] == [4, 3] and summary["depth_size"] == [4, 3]
    K = read_intrinsic(layout.matrix_path(out, "intrinsic_color"))  # 16x12 -> 4x3: a quarter each way
    kc = K_COLOR.astype(np.float32).astype(np.float64)
    assert (K[0, 0], K[0, 2], K[1, 1], K[1, 2]) == (kc[0, 0] * 0.25, kc[0, 2] * 0.25, kc[1, 1] * 0.25, kc[1, 2] * 0.25)
    assert K[0, 0] == 20.5 / 4 and K[1, 2] == 5.5 / 4 and (K[2:] == [[0, 0, 1, 0], [0, 0, 0, 1]]).all()
    Kd = read_intrinsic(layout.matrix_path(out, "intrinsic_depth"))  # 8x6 -> 4x3: a half
    assert (Kd[0, 0], Kd[0, 2], Kd[1, 1], Kd[1, 2]) == (10.25 / 2, 3.75 / 2, 10.5 / 2, 2.75 / 2)
    np.testing.assert_array_equal(scale_intrinsic(K_DEPTH, (DW, DH), (4, 3)), Kd)
    folder = FrameFolder.from_dir(out)
    header, frames = read_header(sens), list(iter_frames(sens))
    for i in range(2):
        f = folder.frame(i)
        _, _, depth, _, _ = frame_arrays(i)
        stored = decode_color(frames[i], header)
        # nearest neighbour at each output pixel's centre: source pixels 1, 3, 5, ... (half) and 2, 6, 10 (quarter)
        np.testing.assert_array_equal(read_depth(layout.depth_path(out, i)), depth[1::2, 1::2])
        np.testing.assert_array_equal(f.label, label_of(i)[2::4, 2::4])
        np.testing.assert_array_equal(f.instance, instance_of(i)[2::4, 2::4])
        assert f.label.dtype == np.uint16 and f.instance.dtype == np.uint8 and f.color.shape == (3, 4, 3)
        err = np.abs(f.color.astype(int) - stored[2::4, 2::4])  # re-coded at quality 95, 4:4:4
        assert err.max() <= 6 and err.mean() < 2


def test_resize_nearest_upsamples_and_downsamples():
    a = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(resize_nearest(a, (6, 4)), np.repeat(np.repeat(a, 2, axis=0), 2, axis=1))
    np.testing.assert_array_equal(resize_nearest(np.arange(10)[None], (5, 1)), [[1, 3, 5, 7, 9]])


def test_depth_is_written_in_millimetres(tmp_path):
    sens = tmp_path / "s.sens"
    write_test_sens(sens, n=1, depth_shift=5000.0)  # a stream in fifths of a millimetre
    out = tmp_path / "f" / "s"
    export_frames(sens, out, progress=False)
    depth = frame_arrays(0)[2]
    np.testing.assert_array_equal(read_depth(layout.depth_path(out, 0)), np.rint(depth / 5).astype(np.uint16))


def test_projection_zips_extract_the_exported_frames_only(tmp_path):
    sens = tmp_path / "s.sens"
    write_test_sens(sens, n=4, invalid={2})
    labels, instances = tmp_path / "l.zip", tmp_path / "i.zip"
    write_zip(labels, "label-filt", [0, 1, 3], label_of)  # frame 2's pose is invalid: not needed
    write_zip(instances, "instance-filt", range(4), instance_of)
    out = tmp_path / "f" / "s"
    summary = export_frames(sens, out, label_zip=labels, instance_zip=instances, progress=False)
    assert summary["labels"] and summary["instances"] and summary["frames_written"] == 3
    assert sorted(p.name for p in (out / "label-filt").iterdir()) == ["0.png", "1.png", "3.png"]
    assert sorted(p.name for p in (out / "instance-filt").iterdir()) == ["0.png", "1.png", "3.png"]
    f = FrameFolder.from_dir(out).frame(3)
    np.testing.assert_array_equal(f.label, label_of(3))
    np.testing.assert_array_equal(f.instance, instance_of(3))


@pytest.mark.parametrize("member", ["label-filt/../evil.png", "/abs/0.png", "other/0.png", "label-filt/007.png",
                                    "label-filt/sub/0.png"])
def test_a_zip_member_outside_the_layout_is_refused(tmp_path, member):
    sens = tmp_path / "s.sens"
    write_test_sens(sens, n=1)
    labels = tmp_path / "l.zip"
    write_zip(labels, "label-filt", [0], label_of, extra=[member])
    out = tmp_path / "f" / "s"
    with pytest.raises(InputError) as e:
        export_frames(sens, out, label_zip=labels, progress=False)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{labels}: holds the member {member!r}") and "not extracted" in msg
    assert not out.exists() and not (tmp_path / "evil.png").exists() and not (tmp_path / "f" / "evil.png").exists()


def test_a_missing_member_is_named_and_nothing_is_written(tmp_path):
    sens = tmp_path / "s.sens"
    write_test_sens(sens, n=3)
    labels = tmp_path / "l.zip"
    write_zip(labels, "label-filt", [0, 2], label_of)
    out = tmp_path / "f" / "s"
    with pytest.raises(InputError) as e:
        export_frames(sens, out, label_zip=labels, progress=False)
    assert str(e.value).startswith(f"{labels}: has no label-filt/1.png: frame 1 is exported")
    assert not out.exists() and no_temporaries(out.parent)


def test_zip_members_are_bounded_in_size(tmp_path, monkeypatch):
    sens = tmp_path / "s.sens"
    write_test_sens(sens, n=1)
    labels = tmp_path / "l.zip"
    write_zip(labels, "label-filt", [0], label_of)
    size = len(png(label_of(0)))
    monkeypatch.setattr(layout, "IMAGE_LIMIT", size - 1)
    with pytest.raises(InputError, match=rf"label-filt/0.png is {size} bytes, more than the {size - 1}"):
        export_frames(sens, tmp_path / "f" / "s", label_zip=labels, progress=False)
    assert not (tmp_path / "f" / "s").exists()


def test_a_corrupt_zip_or_member_is_one_line(tmp_path):
    sens = tmp_path / "s.sens"
    write_test_sens(sens, n=1)
    bad = tmp_path / "l.zip"
    bad.write_bytes(b"PK not really a zip")
    with pytest.raises(InputError, match="not a readable zip"):
        export_frames(sens, tmp_path / "f" / "s", label_zip=bad, progress=False)
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("label-filt/0.png", b"garbage, not a png")
    with pytest.raises(InputError) as e:
        export_frames(sens, tmp_path / "f" / "s", label_zip=bad, progress=False)
    assert str(e.value).startswith(f"{bad}:label-filt/0.png: the label image does not decode as PNG")


def test_a_failure_mid_stream_leaves_nothing_half_written(tmp_path):
    sens = tmp_path / "s.sens"
    write_test_sens(sens, n=4)
    data = bytearray(sens.read_bytes())
    pos = 304 + len(NAME)
    for _ in range(2):  # to frame 2
        cs, ds = struct.unpack_from("<QQ", data, pos + 80)
        pos += 96 + cs + ds
    data[pos + 96 + 2:pos + 96 + 40] = b"\x00" * 38  # frame 2's JPEG broken past its start marker
    sens.write_bytes(bytes(data))
    out = tmp_path / "f" / "s"
    with pytest.raises(InputError) as e:
        export_frames(sens, out, progress=False)
    assert str(e.value).startswith(f"{sens}: frame 2 of 4: the colour JPEG does not decode")
    assert not out.exists() and list((tmp_path / "f").iterdir()) == []  # no temporaries either


def test_a_truncated_stream_leaves_an_earlier_export_as_it_was(tmp_path):
    sens = tmp_path / "s.sens"
    write_test_sens(sens, n=3)
    out = tmp_path / "f" / "s"
    export_frames(sens, out, progress=False)
    export_frames(sens, out, frame_step=2, progress=False)  # an earlier export is replaced
    assert frame_ids(out) == [0, 2]
    cut = tmp_path / "cut.sens"
    cut.write_bytes(sens.read_bytes()[:-200])
    with pytest.raises(InputError, match="frame 2 of 3 is truncated"):
        export_frames(cut, out, progress=False)
    assert frame_ids(out) == [0, 2] and no_temporaries(out.parent)


def test_a_folder_lgseg_did_not_write_is_not_replaced(tmp_path):
    sens = tmp_path / "s.sens"
    write_test_sens(sens, n=1)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="holds files lgseg did not write"):
        export_frames(sens, out, progress=False)
    assert (out / "notes.txt").read_text() == "keep me"
    with pytest.raises(InputError, match="an input of this command"):
        export_frames(sens, tmp_path, progress=False)


def test_every_pose_invalid_is_an_error(tmp_path):
    sens = tmp_path / "s.sens"
    write_test_sens(sens, n=2, invalid={0, 1})
    with pytest.raises(InputError, match="none of the 2 frames selected .* has a valid pose"):
        export_frames(sens, tmp_path / "f" / "s", progress=False)
    assert not (tmp_path / "f" / "s").exists()


def test_bad_options_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match="frame_step"):
        export_frames(tmp_path / "s.sens", tmp_path / "o", frame_step=0)
    with pytest.raises(ValueError, match="image_size"):
        export_frames(tmp_path / "s.sens", tmp_path / "o", image_size=(0, 3))
