"""The .sens reader and writer: the byte layout of ScanNet's sensorData.h, round trips, and one-line
errors for truncated, foreign and undecodable files. ``write_test_sens`` is shared with the layout and
export tests."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from lgseg.errors import InputError
from lgseg.frames.sens import (SENS_VERSION, SensFrame, SensHeader, decode_color, decode_depth, iter_frames,
                               read_header, write_sens)

W, H, DW, DH = 16, 12, 8, 6  # colour and depth sizes of the test streams
K_COLOR = np.array([[20.5, 0, 7.75, 0], [0, 21.25, 5.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
K_DEPTH = np.array([[10.25, 0, 3.75, 0], [0, 10.5, 2.75, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
E_COLOR = np.eye(4)
E_DEPTH = np.array([[1, 0, 0, 0.025], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
NAME = "StructureSensor"


def make_header(**changes) -> SensHeader:
    fields = dict(sensor_name=NAME, intrinsic_color=K_COLOR, extrinsic_color=E_COLOR, intrinsic_depth=K_DEPTH,
                  extrinsic_depth=E_DEPTH, color_compression="jpeg", depth_compression="zlib_ushort",
                  color_width=W, color_height=H, depth_width=DW, depth_height=DH, depth_shift=1000.0, num_frames=0)
    fields.update(changes)
    return SensHeader(**fields)


def frame_arrays(i: int, header: SensHeader | None = None, invalid: bool = False):
    """Frame i: a smooth colour ramp (JPEG keeps it close), depth with values past 255, a rotation
    about z by 0.1*i (cosines no float32 holds exactly), timestamps 1000*i and 1000*i + 3."""
    h = header or make_header()
    yy, xx = np.mgrid[0:h.color_height, 0:h.color_width]
    color = np.stack([xx * 12 + 3 * i, yy * 16, np.full_like(xx, 100 + 10 * i)], axis=-1).astype(np.uint8)
    depth = (500 + 37 * i + np.arange(h.depth_height * h.depth_width).reshape(h.depth_height, h.depth_width) * 11)
    depth = depth.astype(np.uint16)
    depth[0, 0] = 0  # no depth there
    c, s = np.cos(0.1 * i), np.sin(0.1 * i)
    pose = np.array([[c, -s, 0, 0.5 * i], [s, c, 0, 1.25], [0, 0, 1, -0.75], [0, 0, 0, 1]])
    if invalid:
        pose = np.full((4, 4), -np.inf)
    return pose, color, depth, 1000 * i, 1000 * i + 3


def write_test_sens(path, n: int = 3, invalid=(), **header_changes):
    """A .sens of ``n`` frames (``invalid``: indices whose pose is all -inf); returns (header, frames)."""
    header = make_header(**header_changes)
    frames = [frame_arrays(i, header, i in invalid) for i in range(n)]
    assert write_sens(path, header, iter(frames)) == n
    return header, frames


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_the_bytes_follow_sensordata_h(tmp_path):
    path = tmp_path / "scene0000_00.sens"
    header, frames = write_test_sens(path, n=2)
    data = path.read_bytes()
    L = len(NAME)
    assert struct.unpack_from("<IQ", data, 0) == (SENS_VERSION, L)
    assert data[12:12 + L] == NAME.encode()
    for k, m in enumerate((K_COLOR, E_COLOR, K_DEPTH, E_DEPTH)):  # 16 float32 row-major each
        stored = np.array(struct.unpack_from("<16f", data, 12 + L + 64 * k)).reshape(4, 4)
        np.testing.assert_array_equal(stored, m.astype(np.float32))
    assert struct.unpack_from("<ii", data, 268 + L) == (2, 1)  # jpeg, zlib_ushort
    assert struct.unpack_from("<4I", data, 276 + L) == (W, H, DW, DH)
    assert struct.unpack_from("<f", data, 292 + L) == (1000.0,)
    assert struct.unpack_from("<Q", data, 296 + L) == (2,)  # the header is 296 + L bytes before the count
    pos = 304 + L  # ... and the first frame follows the uint64 count
    for pose, color, depth, t_color, t_depth in frames:
        np.testing.assert_array_equal(np.array(struct.unpack_from("<16f", data, pos)).reshape(4, 4),
                                      pose.astype(np.float32))
        tc, td, cs, ds = struct.unpack_from("<4Q", data, pos + 64)
        assert (tc, td) == (t_color, t_depth)
        jpeg = data[pos + 96:pos + 96 + cs]
        assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"  # JPEG start and end markers
        raw = zlib.decompress(data[pos + 96 + cs:pos + 96 + cs + ds])
        np.testing.assert_array_equal(np.frombuffer(raw, "<u2").reshape(DH, DW), depth)
        pos += 96 + cs + ds
    assert data[pos:] == struct.pack("<Q", 0)  # numIMU = 0, then the end of the file


def test_round_trip(tmp_path):
    path = tmp_path / "s.sens"
    write_test_sens(path, n=3)
    header = read_header(path)
    assert (header.sensor_name, header.color_compression, header.depth_compression) == (NAME, "jpeg", "zlib_ushort")
    assert (header.color_width, header.color_height, header.depth_width, header.depth_height) == (W, H, DW, DH)
    assert header.depth_shift == 1000.0 and header.num_frames == 3 and header.path == path
    for got, want in ((header.intrinsic_color, K_COLOR), (header.extrinsic_color, E_COLOR),
                      (header.intrinsic_depth, K_DEPTH), (header.extrinsic_depth, E_DEPTH)):
        assert got.dtype == np.float64 and got.shape == (4, 4)
        np.testing.assert_array_equal(got, want.astype(np.float32))
    frames = list(iter_frames(path))
    assert [f.index for f in frames] == [0, 1, 2]
    for f in frames:
        pose, color, depth, t_color, t_depth = frame_arrays(f.index)
        assert f.valid_pose and (f.timestamp_color, f.timestamp_depth) == (t_color, t_depth)
        np.testing.assert_array_equal(f.camera_to_world, pose.astype(np.float32).astype(np.float64))
        got_depth = decode_depth(f, header)
        assert got_depth.dtype == np.uint16
        np.testing.assert_array_equal(got_depth, depth)
        got_color = decode_color(f, header)
        assert got_color.dtype == np.uint8 and got_color.shape == (H, W, 3)
        np.testing.assert_array_equal(got_color, np.asarray(Image.open(io.BytesIO(f.color_data))))
        assert np.abs(got_color.astype(int) - color).mean() < 4  # JPEG at quality 90 of a smooth ramp


def test_png_colour_and_raw_depth_round_trip_exactly(tmp_path):
    path = tmp_path / "s.sens"
    write_test_sens(path, n=2, color_compression="png", depth_compression="raw_ushort")
    header = read_header(path)
    assert (header.color_compression, header.depth_compression) == ("png", "raw_ushort")
    for f in iter_frames(path):
        _, color, depth, _, _ = frame_arrays(f.index)
        assert len(f.depth_data) == DW * DH * 2
        np.testing.assert_array_equal(decode_color(f, header), color)
        np.testing.assert_array_equal(decode_depth(f, header), depth)


def test_raw_colour_decodes():
    header = make_header(color_compression="raw")
    _, color, _, _, _ = frame_arrays(0)
    frame = SensFrame(0, np.eye(4), 0, 0, color.tobytes(), b"")
    np.testing.assert_array_equal(decode_color(frame, header), color)


def test_invalid_poses_are_read_as_they_are(tmp_path):
    path = tmp_path / "s.sens"
    write_test_sens(path, n=3, invalid={1})
    frames = list(iter_frames(path))
    assert [f.valid_pose for f in frames] == [True, False, True]
    assert np.isneginf(frames[1].camera_to_world).all()
    assert decode_depth(frames[1], read_header(path))[2, 3] == 500 + 37 + (2 * DW + 3) * 11  # its images still read


def test_frame_step_seeks_over_the_others(tmp_path):
    path = tmp_path / "s.sens"
    write_test_sens(path, n=5)
    header = read_header(path)
    frames = list(iter_frames(path, frame_step=2))
    assert [f.index for f in frames] == [0, 2, 4]
    np.testing.assert_array_equal(decode_depth(frames[1], header), frame_arrays(2)[2])


def test_the_count_written_is_the_frames_given_lazily(tmp_path):
    path = tmp_path / "s.sens"
    header = make_header(num_frames=99)  # not used: the writer counts
    assert write_sens(path, header, (frame_arrays(i) for i in range(4))) == 4
    assert read_header(path).num_frames == 4 and len(list(iter_frames(path))) == 4


def _frame_offsets(data: bytes) -> list[int]:
    L = struct.unpack_from("<Q", data, 4)[0]
    n = struct.unpack_from("<Q", data, 296 + L)[0]
    pos, out = 304 + L, []
    for _ in range(n):
        out.append(pos)
        cs, ds = struct.unpack_from("<QQ", data, pos + 80)
        pos += 96 + cs + ds
    return out


def test_a_truncated_file_names_the_file_and_frame(tmp_path):
    path = tmp_path / "s.sens"
    write_test_sens(path, n=3)
    data = path.read_bytes()
    start = _frame_offsets(data)[1]
    cut = tmp_path / "cut.sens"
    cut.write_bytes(data[:start + 96 + 10])  # frame 1's colour cut after 10 bytes
    frames = iter_frames(cut)
    assert next(frames).index == 0  # frames before the cut still stream
    with pytest.raises(InputError) as e:
        next(frames)
    msg = one_line(e)
    assert str(cut) in msg and "frame 1 of 3 is truncated" in msg and "10 bytes are left" in msg
    cut.write_bytes(data[:start + 40])  # inside frame 1's fixed 96 bytes
    with pytest.raises(InputError, match=r"frame 1 of 3 is truncated: 40 of the 96 bytes"):
        list(iter_frames(cut))
    cut.write_bytes(data[:100])  # inside the header
    with pytest.raises(InputError, match="truncated header"):
        read_header(cut)


def _patched(tmp_path, data: bytes, offset: int, fmt: str, *values):
    b = bytearray(data)
    struct.pack_into(fmt, b, offset, *values)
    out = tmp_path / "patched.sens"
    out.write_bytes(bytes(b))
    return out


def test_a_wrong_version_is_refused_naming_it(tmp_path):
    path = tmp_path / "s.sens"
    write_test_sens(path, n=1)
    bad = _patched(tmp_path, path.read_bytes(), 0, "<I", 3)
    with pytest.raises(InputError) as e:
        read_header(bad)
    msg = one_line(e)
    assert str(bad) in msg and "version 3" in msg and "lgseg reads version 4" in msg
    with pytest.raises(InputError, match="version 3"):
        list(iter_frames(bad))


@pytest.mark.parametrize("offset, code, found", [(268, -1, "colour compression code -1 ('unknown'"),
                                                 (268, 7, "colour compression code 7 (no known"),
                                                 (272, 2, "depth compression code 2 ('occi_ushort'"),
                                                 (272, -1, "depth compression code -1 ('unknown'")])
def test_unsupported_compression_is_refused(tmp_path, offset, code, found):
    path = tmp_path / "s.sens"
    write_test_sens(path, n=1)
    bad = _patched(tmp_path, path.read_bytes(), offset + len(NAME), "<i", code)
    with pytest.raises(InputError) as e:
        read_header(bad)
    assert found in one_line(e)


def test_declared_sizes_are_bounded(tmp_path):
    path = tmp_path / "s.sens"
    write_test_sens(path, n=2)
    data = path.read_bytes()
    with pytest.raises(InputError, match=r"sensor name of 1099511627776 bytes"):
        read_header(_patched(tmp_path, data, 4, "<Q", 1 << 40))
    with pytest.raises(InputError, match=r"declares 100000000 frames"):
        read_header(_patched(tmp_path, data, 296 + len(NAME), "<Q", 10**8))
    bad = _patched(tmp_path, data, _frame_offsets(data)[1] + 80, "<Q", 1 << 30)  # frame 1 claims 1 GiB of colour
    with pytest.raises(InputError, match=r"frame 1 of 2 declares 1073741824 bytes of colour"):
        list(iter_frames(bad))
    with pytest.raises(InputError, match="colour width 0"):
        read_header(_patched(tmp_path, data, 276 + len(NAME), "<I", 0))


def test_an_undecodable_frame_names_file_and_frame(tmp_path):
    path = tmp_path / "s.sens"
    header, _ = write_test_sens(path, n=2)
    header = read_header(path)
    good = list(iter_frames(path))[1]
    bad_jpeg = SensFrame(1, good.camera_to_world, 0, 0, good.color_data[:20] + b"\x00" * 50, good.depth_data)
    with pytest.raises(InputError) as e:
        decode_color(bad_jpeg, header)
    msg = one_line(e)
    assert str(path) in msg and "frame 1 of 2" in msg and "colour JPEG does not decode" in msg
    bad_zlib = SensFrame(1, good.camera_to_world, 0, 0, good.color_data, b"not zlib at all")
    with pytest.raises(InputError) as e:
        decode_depth(bad_zlib, header)
    msg = one_line(e)
    assert str(path) in msg and "frame 1 of 2" in msg and "zlib depth does not decompress" in msg
    short = SensFrame(1, good.camera_to_world, 0, 0, good.color_data, zlib.compress(b"\x00" * 10))
    with pytest.raises(InputError, match=r"frame 1 of 2: the zlib depth decompresses to 10 bytes; 8x6 uint16 is 96"):
        decode_depth(short, header)
    long = SensFrame(1, good.camera_to_world, 0, 0, good.color_data, zlib.compress(b"\x00" * 200))
    with pytest.raises(InputError, match="holds more than 8x6 uint16"):
        decode_depth(long, header)
    cut = SensFrame(1, good.camera_to_world, 0, 0, good.color_data, good.depth_data[:-3])  # checksum cut
    with pytest.raises(InputError, match="cut short"):
        decode_depth(cut, header)


def test_a_frame_of_the_wrong_size_is_refused(tmp_path):
    header = make_header()
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, "JPEG")
    frame = SensFrame(4, np.eye(4), 0, 0, buf.getvalue(), b"")
    with pytest.raises(InputError, match=r"frame 4 of 0: colour JPEG is 8x8 RGB, the header says 16x12 RGB"):
        decode_color(frame, header)


def test_only_regular_files_are_read(tmp_path):
    with pytest.raises(InputError, match="not a regular file"):
        read_header(tmp_path)
    with pytest.raises(InputError, match="is missing"):
        read_header(tmp_path / "absent.sens")


def test_the_writer_refuses_what_the_header_does_not_say(tmp_path):
    path = tmp_path / "s.sens"
    pose, color, depth, tc, td = frame_arrays(0)
    with pytest.raises(ValueError, match=r"frame 0: colour is uint8 \(6, 8, 3\)"):
        write_sens(path, make_header(), [(pose, color[:6, :8], depth, tc, td)])
    with pytest.raises(ValueError, match="depth is int32"):
        write_sens(path, make_header(), [(pose, color, depth.astype(np.int32), tc, td)])
    with pytest.raises(ValueError, match="encodes colour as jpeg or png, not 'raw'"):
        write_sens(path, make_header(color_compression="raw"), [])
    assert not path.exists() and list(tmp_path.iterdir()) == []  # nothing written, no temporary left
