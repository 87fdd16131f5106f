"""ScanNet's RGB-D stream, ``<scene>.sens`` (version 4): the one reader and writer of its bytes.

A ``.sens`` file is the scan as the sensor recorded it: a header (sensor name, colour and depth
intrinsics and extrinsics, compression codes, image sizes, the depth shift, the frame count), then
each frame (camera-to-world pose, two timestamps, the colour bytes, normally JPEG, and the depth
bytes, normally zlib of H*W uint16 millimetres), then ``uint64 numIMU`` and the IMU records, which
lgseg does not read. Everything is little-endian and packed (every field is a separate write in
ScanNet's C++ ``sensorData.h``)::

    offset   field                                     type
    0        version (4)                               uint32
    4        L = length of the sensor name             uint64
    12       sensor name                               L bytes
    12+L     intrinsic_color, extrinsic_color,
             intrinsic_depth, extrinsic_depth          4 x 16 float32, row-major 4x4
    268+L    colour compression (-1 unknown, 0 raw, 1 png, 2 jpeg)                 int32
    272+L    depth compression (-1 unknown, 0 raw_ushort, 1 zlib_ushort, 2 occi)   int32
    276+L    colour width, height, depth width, height uint32 x 4
    292+L    depth shift (1000.0: depth in mm)         float32
    296+L    number of frames                          uint64
    304+L    frames: camera_to_world 16 float32, timestamp_color, timestamp_depth,
             colour size, depth size (uint64 each): 96 bytes, then the colour and depth bytes

A scene's file can pass 5 GB, so frames are streamed (``iter_frames``), never read whole; every size
a file declares is bounded and checked against the bytes left in it, so a truncated or corrupt file
is a one-line :class:`InputError` naming the file and the frame, not a MemoryError or a short read
decoded as garbage. Invalid poses (ScanNet stores them as all ``-inf``) are read as they are:
``SensFrame.valid_pose`` tells them apart. Only regular files are read (``lgseg.fileio``).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import numpy as np
from PIL import Image

from lgseg.errors import InputError, one_line
from lgseg.fileio import atomic_file, open_regular

SENS_VERSION = 4
COLOR_COMPRESSION = {-1: "unknown", 0: "raw", 1: "png", 2: "jpeg"}
DEPTH_COMPRESSION = {-1: "unknown", 0: "raw_ushort", 1: "zlib_ushort", 2: "occi_ushort"}
COLOR_READ = ("raw", "png", "jpeg")  # the compressions lgseg decodes
DEPTH_READ = ("raw_ushort", "zlib_ushort")
COLOR_WRITE = ("jpeg", "png")  # ... and writes
DEPTH_WRITE = ("zlib_ushort", "raw_ushort")
_CODE = {**{v: k for k, v in COLOR_COMPRESSION.items()}, **{v: k for k, v in DEPTH_COMPRESSION.items()}}

MiB = 1 << 20
NAME_LIMIT = MiB  # the sensor name ("StructureSensor" in ScanNet): a larger length is a corrupt file
FRAME_DATA_LIMIT = 64 * MiB  # colour or depth bytes of one frame (ScanNet's: ~0.2 MB JPEG, ~0.3 MB zlib)
NUM_FRAMES_LIMIT = 10**7  # ScanNet's longest scans hold ~10**4 frames
SIDE_LIMIT = 1 << 14  # image width or height (ScanNet: 1296x968 colour, 640x480 depth)

_START = struct.Struct("<IQ")  # version, sensor-name length
_CAMERA = struct.Struct("<64f2i4IfQ")  # 4 matrices, 2 compression codes, 4 sizes, depth shift, frame count
_FRAME = struct.Struct("<16f4Q")  # pose, timestamp colour, timestamp depth, colour size, depth size
_COUNT = struct.Struct("<Q")
HEADER_FIXED = _START.size + _CAMERA.size  # 304: the header is this plus the sensor name
NUM_FRAMES_OFFSET = HEADER_FIXED - _COUNT.size  # 296: where the frame count sits (plus the name)
FRAME_FIXED = _FRAME.size  # 96 bytes before each frame's colour and depth bytes

FIX = "re-download the scene's .sens file (ScanNet's download script, --type .sens)"
WHAT = "RGB-D stream (.sens)"


def _matrix(values, name: str) -> np.ndarray:
    m = np.array(values, dtype=np.float64)
    if m.size != 16:
        raise ValueError(f"{name} must be a 4x4 matrix, got shape {m.shape}")
    m = m.reshape(4, 4)
    m.setflags(write=False)
    return m


@dataclass(frozen=True, eq=False)
class SensHeader:
    """A ``.sens`` file's header; the matrices are (4, 4) float64 (stored as float32)."""

    sensor_name: str
    intrinsic_color: np.ndarray
    extrinsic_color: np.ndarray
    intrinsic_depth: np.ndarray
    extrinsic_depth: np.ndarray
    color_compression: str  # "raw" | "png" | "jpeg"
    depth_compression: str  # "raw_ushort" | "zlib_ushort"
    color_width: int
    color_height: int
    depth_width: int
    depth_height: int
    depth_shift: float  # stored depth / depth_shift = metres (1000.0: millimetres)
    num_frames: int
    path: Path | None = field(default=None)  # the file it was read from (named in errors), None when built

    def __post_init__(self):
        for name in ("intrinsic_color", "extrinsic_color", "intrinsic_depth", "extrinsic_depth"):
            object.__setattr__(self, name, _matrix(getattr(self, name), name))


@dataclass(frozen=True, eq=False)
class SensFrame:
    """One RGB-D frame as stored: its pose, timestamps (microseconds) and compressed images."""

    index: int
    camera_to_world: np.ndarray  # (4, 4) float64, the raw scan's frame (not axis-aligned)
    timestamp_color: int
    timestamp_depth: int
    color_data: bytes
    depth_data: bytes

    @property
    def valid_pose(self) -> bool:
        """All 16 entries finite (ScanNet stores a pose it lost as all -inf)."""
        return bool(np.isfinite(self.camera_to_world).all())


def _read_header(f: BinaryIO, path: Path, size: int) -> SensHeader:
    start = f.read(_START.size)
    if len(start) < _START.size:
        raise InputError(path, f"{size} bytes: too short for a .sens header (at least {HEADER_FIXED} bytes)", FIX)
    version, name_len = _START.unpack(start)
    if version != SENS_VERSION:
        raise InputError(path, f"version {version} of the .sens format: lgseg reads version {SENS_VERSION} "
                         "(ScanNet v2's), or this is not a .sens file", FIX)
    if name_len > NAME_LIMIT:
        raise InputError(path, f"declares a sensor name of {name_len} bytes (at most {NAME_LIMIT}): corrupt "
                         "or not a .sens file", FIX)
    if size < HEADER_FIXED + name_len:
        raise InputError(path, f"truncated header: {size} bytes, the header alone needs {HEADER_FIXED + name_len}", FIX)
    name = f.read(name_len).decode("utf-8", errors="replace")
    values = _CAMERA.unpack(f.read(_CAMERA.size))
    mats = [values[16 * k:16 * (k + 1)] for k in range(4)]
    color_code, depth_code, cw, ch, dw, dh, shift, num_frames = values[64:]
    color = COLOR_COMPRESSION.get(color_code)
    if color not in COLOR_READ:
        found = f"'{color}'" if color else "no known"
        raise InputError(path, f"colour compression code {color_code} ({found} compression): lgseg reads "
                         f"{', '.join(COLOR_READ)}", FIX)
    depth = DEPTH_COMPRESSION.get(depth_code)
    if depth not in DEPTH_READ:
        found = f"'{depth}'" if depth else "no known"
        raise InputError(path, f"depth compression code {depth_code} ({found} compression): lgseg reads "
                         f"{', '.join(DEPTH_READ)}", FIX)
    for what, n in (("colour width", cw), ("colour height", ch), ("depth width", dw), ("depth height", dh)):
        if not 1 <= n <= SIDE_LIMIT:
            raise InputError(path, f"{what} {n}: must be 1..{SIDE_LIMIT}", FIX)
    if not (np.isfinite(shift) and shift > 0):
        raise InputError(path, f"depth shift {shift}: must be a positive number (1000 for millimetres)", FIX)
    if num_frames > NUM_FRAMES_LIMIT:
        raise InputError(path, f"declares {num_frames} frames (at most {NUM_FRAMES_LIMIT}): corrupt", FIX)
    return SensHeader(name, *mats, color, depth, cw, ch, dw, dh, float(shift), num_frames, Path(path))


def read_header(path: str | Path) -> SensHeader:
    """The header of a ``.sens`` file, checked (version, compressions, sizes); frames are not read."""
    with open_regular(path, WHAT, FIX) as f:
        return _read_header(f, Path(path), os.fstat(f.fileno()).st_size)


def iter_frames(path: str | Path, frame_step: int = 1) -> Iterator[SensFrame]:
    """Stream the frames of a ``.sens`` file, one in memory at a time.

    ``frame_step``: yield frames 0, step, 2*step, ... only; the others are seeked over (their declared
    sizes still checked), so a 5 GB file read every 10th frame reads a tenth of it.
    """
    if frame_step < 1:
        raise ValueError(f"frame_step must be >= 1, got {frame_step}")
    path = Path(path)
    with open_regular(path, WHAT, FIX) as f:
        size = os.fstat(f.fileno()).st_size
        header = _read_header(f, path, size)
        n = header.num_frames
        pos = f.tell()
        for i in range(n):
            fixed = f.read(FRAME_FIXED)
            if len(fixed) < FRAME_FIXED:
                raise InputError(path, f"frame {i} of {n} is truncated: {len(fixed)} of the {FRAME_FIXED} bytes of "
                                 "its pose, timestamps and sizes are in the file", FIX)
            values = _FRAME.unpack(fixed)
            t_color, t_depth, color_size, depth_size = values[16:]
            for what, s in (("colour", color_size), ("depth", depth_size)):
                if s > FRAME_DATA_LIMIT:
                    raise InputError(path, f"frame {i} of {n} declares {s} bytes of {what} (at most "
                                     f"{FRAME_DATA_LIMIT}): corrupt", FIX)
            pos += FRAME_FIXED
            left = size - pos
            if color_size + depth_size > left:
                raise InputError(path, f"frame {i} of {n} is truncated: it declares {color_size} bytes of colour "
                                 f"and {depth_size} of depth, {left} bytes are left in the file", FIX)
            pos += color_size + depth_size
            if i % frame_step:
                f.seek(pos)
                continue
            color_data, depth_data = f.read(color_size), f.read(depth_size)
            if len(color_data) + len(depth_data) < color_size + depth_size:  # the file shrank while read
                raise InputError(path, f"frame {i} of {n} is truncated: the file ended while it was read", FIX)
            pose = np.array(values[:16], dtype=np.float64).reshape(4, 4)
            pose.setflags(write=False)
            yield SensFrame(i, pose, t_color, t_depth, color_data, depth_data)


def _frame_error(frame: SensFrame, header: SensHeader, problem: str) -> InputError:
    return InputError(header.path, f"frame {frame.index} of {header.num_frames}: {problem}", FIX)


def decode_color(frame: SensFrame, header: SensHeader) -> np.ndarray:
    """The frame's colour image, (H, W, 3) uint8 at the header's colour size."""
    w, h = header.color_width, header.color_height
    data = frame.color_data
    if header.color_compression == "raw":
        if len(data) != w * h * 3:
            raise _frame_error(frame, header, f"raw colour of {len(data)} bytes, not {w}x{h}x3 = {w * h * 3}")
        return np.frombuffer(data, dtype=np.uint8).reshape(h, w, 3).copy()
    fmt = {"jpeg": "JPEG", "png": "PNG"}[header.color_compression]
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            if im.size != (w, h) or im.mode != "RGB":
                raise _frame_error(frame, header, f"colour {fmt} is {im.size[0]}x{im.size[1]} {im.mode}, the header "
                                   f"says {w}x{h} RGB")
            return np.array(im)
    except InputError:
        raise
    except Exception as e:  # Pillow raises OSError, ValueError, SyntaxError, struct.error, ... on bad bytes
        raise _frame_error(frame, header, f"the colour {fmt} does not decode ({one_line(e)})") from None


def decode_depth(frame: SensFrame, header: SensHeader) -> np.ndarray:
    """The frame's depth image, (H, W) uint16 in the header's unit (``depth_shift`` per metre)."""
    w, h = header.depth_width, header.depth_height
    expected = w * h * 2
    data = frame.depth_data
    if header.depth_compression == "zlib_ushort":
        z = zlib.decompressobj()
        try:
            raw = z.decompress(data, expected + 1)
        except zlib.error as e:
            raise _frame_error(frame, header, f"the zlib depth does not decompress ({e})") from None
        if len(raw) < expected or not (z.eof or z.unconsumed_tail):
            cut = "" if z.eof else ", the stream is cut short"
            raise _frame_error(frame, header, f"the zlib depth decompresses to {len(raw)} bytes{cut}; {w}x{h} "
                               f"uint16 is {expected}")
        if len(raw) > expected or not z.eof or z.unused_data:
            raise _frame_error(frame, header, f"the zlib depth holds more than {w}x{h} uint16 ({expected} bytes)")
        data = raw
    elif len(data) != expected:
        raise _frame_error(frame, header, f"raw depth of {len(data)} bytes, not {w}x{h}x2 = {expected}")
    return np.frombuffer(data, dtype="<u2").reshape(h, w).astype(np.uint16)


def _check_header_for_writing(header: SensHeader) -> bytes:
    if header.color_compression not in COLOR_WRITE:
        raise ValueError(f"write_sens encodes colour as {' or '.join(COLOR_WRITE)}, not {header.color_compression!r}")
    if header.depth_compression not in DEPTH_WRITE:
        raise ValueError(f"write_sens encodes depth as {' or '.join(DEPTH_WRITE)}, not {header.depth_compression!r}")
    for name in ("color_width", "color_height", "depth_width", "depth_height"):
        if not 1 <= getattr(header, name) <= SIDE_LIMIT:
            raise ValueError(f"{name} must be 1..{SIDE_LIMIT}, got {getattr(header, name)}")
    if not (np.isfinite(header.depth_shift) and header.depth_shift > 0):
        raise ValueError(f"depth_shift must be positive, got {header.depth_shift}")
    name = header.sensor_name.encode("utf-8")
    if len(name) > NAME_LIMIT:
        raise ValueError(f"sensor_name is {len(name)} bytes, at most {NAME_LIMIT}")
    return name


def _encode_frame(i: int, item, header: SensHeader, jpeg_quality: int) -> bytes:
    try:
        pose, color, depth, t_color, t_depth = item
    except (TypeError, ValueError):
        raise ValueError(f"frame {i}: expected (camera_to_world, color, depth, timestamp_color, "
                         "timestamp_depth)") from None
    pose, color, depth = np.asarray(pose), np.asarray(color), np.asarray(depth)
    if pose.shape != (4, 4):
        raise ValueError(f"frame {i}: camera_to_world has shape {pose.shape}, not (4, 4)")
    want = (header.color_height, header.color_width, 3)
    if color.dtype != np.uint8 or color.shape != want:
        raise ValueError(f"frame {i}: colour is {color.dtype} {color.shape}, the header says uint8 {want}")
    want = (header.depth_height, header.depth_width)
    if depth.dtype != np.uint16 or depth.shape != want:
        raise ValueError(f"frame {i}: depth is {depth.dtype} {depth.shape}, the header says uint16 {want}")
    for name, t in (("timestamp_color", t_color), ("timestamp_depth", t_depth)):
        if not (isinstance(t, (int, np.integer)) and 0 <= t < 2**64):
            raise ValueError(f"frame {i}: {name} must be an integer in 0..2**64-1, got {t!r}")
    buf = io.BytesIO()
    if header.color_compression == "jpeg":
        Image.fromarray(np.ascontiguousarray(color)).save(buf, "JPEG", quality=jpeg_quality)
    else:
        Image.fromarray(np.ascontiguousarray(color)).save(buf, "PNG")
    color_data = buf.getvalue()
    depth_data = np.ascontiguousarray(depth, dtype="<u2").tobytes()
    if header.depth_compression == "zlib_ushort":
        depth_data = zlib.compress(depth_data)
    fixed = _FRAME.pack(*pose.astype(np.float32).ravel(), int(t_color), int(t_depth), len(color_data), len(depth_data))
    return fixed + color_data + depth_data


def write_sens(path: str | Path, header: SensHeader, frames: Iterable, jpeg_quality: int = 90) -> int:
    """Write a version-4 ``.sens`` file, atomically; returns the number of frames written.

    ``frames``: (camera_to_world (4, 4), color (H, W, 3) uint8, depth (H, W) uint16, timestamp_color,
    timestamp_depth) tuples, consumed lazily; colour is encoded as the header's ``color_compression``
    (jpeg at ``jpeg_quality``, or png), depth as its ``depth_compression`` (zlib_ushort or raw_ushort).
    The frame count written is the number of frames given (``header.num_frames`` is not used); the file
    ends with ``numIMU = 0``. Images of another size than the header's are a ValueError.
    """
    name = _check_header_for_writing(header)
    mats = [m.astype(np.float32).ravel() for m in (header.intrinsic_color, header.extrinsic_color,
                                                    header.intrinsic_depth, header.extrinsic_depth)]
    count = 0
    with atomic_file(path, "wb") as f:
        f.write(_START.pack(SENS_VERSION, len(name)) + name)
        f.write(_CAMERA.pack(*np.concatenate(mats), _CODE[header.color_compression], _CODE[header.depth_compression],
                             header.color_width, header.color_height, header.depth_width, header.depth_height,
                             header.depth_shift, 0))
        for item in frames:
            f.write(_encode_frame(count, item, header, jpeg_quality))
            count += 1
        f.write(_COUNT.pack(0))  # numIMU: no IMU records
        f.seek(NUM_FRAMES_OFFSET + len(name))
        f.write(_COUNT.pack(count))
    return count
