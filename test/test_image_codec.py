"""Image decoding: the numpy fallback against OpenCV's conversions (and cv_bridge where installed)."""

from __future__ import annotations

import zlib

import cv2
import numpy as np
import pytest

from hopadiff.image_codec import ImageDecodeError, compressed_size, decode_compressed, decode_raw
from rhas_ros.conversions import cv_bridge_available

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (6, 8, 3), dtype=np.uint8)


def _raw(encoding):
    """(data, step, expected RGB) built with OpenCV, independently of the decoder."""
    if encoding == "rgb8":
        return RGB.tobytes(), 24, RGB
    if encoding == "bgr8":
        return cv2.cvtColor(RGB, cv2.COLOR_RGB2BGR).tobytes(), 24, RGB
    if encoding == "rgba8":
        return cv2.cvtColor(RGB, cv2.COLOR_RGB2RGBA).tobytes(), 32, RGB
    if encoding == "bgra8":
        return cv2.cvtColor(RGB, cv2.COLOR_RGB2BGRA).tobytes(), 32, RGB
    gray = cv2.cvtColor(RGB, cv2.COLOR_RGB2GRAY)
    if encoding == "mono8":
        return gray.tobytes(), 8, cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    if encoding == "mono16":
        g16 = gray.astype(np.uint16) * 257
        return g16.tobytes(), 16, cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    if encoding == "yuv422_yuy2":
        yuv = RNG.integers(16, 235, (6, 16), dtype=np.uint8)
        return yuv.tobytes(), 16, cv2.cvtColor(yuv.reshape(6, 8, 2), cv2.COLOR_YUV2RGB_YUY2)
    raise AssertionError(encoding)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "yuv422_yuy2"])
def test_fallback_matches_opencv(encoding):
    data, step, expected = _raw(encoding)
    out = decode_raw(encoding, 6, 8, step, data)
    assert out.dtype == np.uint8 and out.shape == (6, 8, 3)
    np.testing.assert_array_equal(out, expected)


def test_row_padding_and_big_endian_mono16():
    data, _step, expected = _raw("rgb8")
    padded = b"".join(data[r * 24 : (r + 1) * 24] + b"\xff" * 8 for r in range(6))
    np.testing.assert_array_equal(decode_raw("rgb8", 6, 8, 32, padded), expected)
    g16 = (np.arange(48, dtype=np.uint16).reshape(6, 8) * 1000).astype(">u2")
    out = decode_raw("mono16", 6, 8, 16, g16.tobytes(), is_bigendian=True)
    np.testing.assert_array_equal(out[..., 0], (g16.astype(np.uint32) >> 8).astype(np.uint8))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("bayer_rggb8", 6, 8, 8, bytes(48)), "unsupported encoding 'bayer_rggb8'"),
        (("16UC1", 6, 8, 16, bytes(96)), "encoding '16UC1' is not a camera picture"),  # a depth image
        (("32FC1", 6, 8, 32, bytes(192)), "encoding '32FC1' is not a camera picture"),
        (("8UC1", 6, 8, 8, bytes(48)), "encoding '8UC1' is not a camera picture"),  # a mask
        (("rgb8", 6, 8, 10, bytes(60)), "step 10 < 24"),
        (("rgb8", 0, 0, 0, b""), "empty image: 0x0"),
        (("rgb8", 6, 8, 24, bytes(100)), "data has 100 bytes"),
        (("mono8", 4320, 7680, 7680, b""), "more than max_image_pixels"),
    ],
)
def test_bad_images_name_the_problem(args, match):
    with pytest.raises(ImageDecodeError, match=match):
        decode_raw(*args)


def test_compressed_roundtrip_and_corruption():
    ok, png = cv2.imencode(".png", cv2.cvtColor(RGB, cv2.COLOR_RGB2BGR))
    assert ok
    np.testing.assert_array_equal(decode_compressed(png.tobytes(), "png"), RGB)
    with pytest.raises(ImageDecodeError, match="corrupt"):
        decode_compressed(png.tobytes()[:20] + b"junk", "png")
    with pytest.raises(ImageDecodeError, match="empty compressed"):
        decode_compressed(b"", "jpeg")


@pytest.mark.skipif(not cv_bridge_available(), reason="ROS 2 cv_bridge not installed (PyPI venv)")
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"])
def test_cv_bridge_and_fallback_agree(encoding):
    from cv_bridge import CvBridge
    from sensor_msgs.msg import Image

    data, step, _ = _raw(encoding)
    msg = Image(height=6, width=8, encoding=encoding, step=step, data=data)
    np.testing.assert_array_equal(CvBridge().imgmsg_to_cv2(msg, "rgb8"), decode_raw(encoding, 6, 8, step, data))


def _with_declared_size(data: bytes, fmt: str, width: int, height: int) -> bytes:
    """A real PNG/JPEG whose header claims another size (what a decompression bomb looks like)."""
    b = bytearray(data)
    if fmt == "png":
        b[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
        b[29:33] = zlib.crc32(bytes(b[12:29])).to_bytes(4, "big")
    else:
        i = 2
        while b[i + 1] not in (0xC0, 0xC2):
            i += 2 + int.from_bytes(b[i + 2 : i + 4], "big")
        b[i + 5 : i + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(b)


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_decompression_bomb_is_refused_from_the_header(fmt):
    ok, enc = cv2.imencode(f".{fmt}", cv2.cvtColor(RGB, cv2.COLOR_RGB2BGR))
    assert ok and compressed_size(enc.tobytes()) == (RGB.shape[1], RGB.shape[0])
    bomb = _with_declared_size(enc.tobytes(), fmt, 20000, 20000)
    assert compressed_size(bomb) == (20000, 20000)
    with pytest.raises(ImageDecodeError, match="declares 20000x20000: more than max_image_pixels"):
        decode_compressed(bomb, fmt, max_pixels=4096 * 4096)


@pytest.mark.parametrize("encoding", ["yuv422", "yuyv", "uyvy", "yuv422_yuy2"])
def test_packed_yuv_with_odd_width_is_a_decode_error(encoding):
    """OpenCV raises cv2.error (not a ValueError) on these: it must never reach a callback."""
    with pytest.raises(ImageDecodeError, match="width 5 must be even"):
        decode_raw(encoding, 4, 5, 10, bytes(40))
