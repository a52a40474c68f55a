"""sensor_msgs/Image and CompressedImage fields -> RGB uint8 arrays, without ROS imports: numpy and
OpenCV's colour conversions. rhas_node uses cv_bridge instead where it is installed (a ROS 2
distro; rhas_ros.conversions), test_image_codec checks both agree; hopadiff reads bags with it.
Every failure raises ImageDecodeError with a message naming the encoding / sizes.
"""

from __future__ import annotations

import re
import zlib

import cv2
import numpy as np

# encoding -> (channels, dtype, cv2 conversion to RGB or None)
ENCODINGS = {
    "rgb8": (3, np.uint8, None),
    "bgr8": (3, np.uint8, cv2.COLOR_BGR2RGB),
    "rgba8": (4, np.uint8, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, np.uint8, cv2.COLOR_BGRA2RGB),
    "mono8": (1, np.uint8, cv2.COLOR_GRAY2RGB),
    "mono16": (1, np.uint16, cv2.COLOR_GRAY2RGB),
    "yuv422_yuy2": (2, np.uint8, cv2.COLOR_YUV2RGB_YUY2),
    "yuyv": (2, np.uint8, cv2.COLOR_YUV2RGB_YUY2),
    "yuv422": (2, np.uint8, cv2.COLOR_YUV2RGB_UYVY),  # ROS "yuv422" is UYVY byte order
    "uyvy": (2, np.uint8, cv2.COLOR_YUV2RGB_UYVY),
}
SUPPORTED = tuple(ENCODINGS)
# OpenCV-style type names (8UC1, 16UC1, 32FC1, 64FC3, ...): depth maps (REP-118: 16UC1 in mm,
# 32FC1 in m), disparity, masks, point data. Not camera pictures: refused by name, never shown to
# the detector as a dark grey frame.
NON_COLOUR = re.compile(r"^(8|16|32|64)(u|s|f)c[1-4]$")


class ImageDecodeError(ValueError):
    """The image cannot be decoded; the message names the encoding or size problem."""


def decode_raw(
    encoding: str, height: int, width: int, step: int, data, is_bigendian: bool = False, max_pixels: int = 4096 * 4096
) -> np.ndarray:
    """Fields of a sensor_msgs/Image -> (H, W, 3) RGB uint8."""
    enc = encoding.lower()
    if enc not in ENCODINGS:
        shown = repr(encoding[:32]) + ("..." if len(encoding) > 32 else "")  # the field is untrusted
        if NON_COLOUR.match(enc):
            raise ImageDecodeError(
                f"encoding {shown} is not a camera picture (depth, disparity or other data): the image topic needs "
                f"one of {', '.join(SUPPORTED)}"
            )
        raise ImageDecodeError(f"unsupported encoding {shown}; supported: {', '.join(SUPPORTED)}")
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"empty image: {width}x{height} ({encoding})")
    if height * width > max_pixels:
        raise ImageDecodeError(f"image {width}x{height} has more than max_image_pixels={max_pixels} pixels")
    channels, dtype, conversion = ENCODINGS[enc]
    if channels == 2 and width % 2:
        raise ImageDecodeError(f"{encoding} packs two pixels per 4 bytes: width {width} must be even")
    row = width * channels * np.dtype(dtype).itemsize
    if step < row:
        raise ImageDecodeError(f"step {step} < {row} bytes needed for a {width}-pixel {encoding} row")
    buf = np.frombuffer(memoryview(data), dtype=np.uint8)
    if buf.size < step * height:
        raise ImageDecodeError(
            f"data has {buf.size} bytes, {encoding} {width}x{height} with step {step} needs {step * height}"
        )
    rows = buf[: step * height].reshape(height, step)[:, :row]
    pixels = rows.view(np.dtype(dtype).newbyteorder(">" if is_bigendian else "<")) if dtype != np.uint8 else rows
    img = pixels.reshape(height, width, channels)
    if dtype == np.uint16:
        img = (img.astype(np.uint32) >> 8).astype(np.uint8)  # keep the 8 most significant bits
    if conversion is None:
        return np.ascontiguousarray(img)
    return cv2.cvtColor(img if channels > 1 else img[:, :, 0], conversion)


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def compressed_size(buf: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG IHDR or a JPEG start-of-frame header, without decoding; None
    when the header is of another format or cannot be read."""
    if buf[:8] == b"\x89PNG\r\n\x1a\n":
        # IHDR: length 13, type, 13 data bytes, CRC over type + data (a damaged header is left to the decoder)
        if (
            len(buf) < 33
            or buf[8:16] != b"\x00\x00\x00\x0dIHDR"
            or zlib.crc32(buf[12:29]) != int.from_bytes(buf[29:33], "big")
        ):
            return None
        return int.from_bytes(buf[16:20], "big"), int.from_bytes(buf[20:24], "big")
    if buf[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 <= len(buf):
        if buf[i] != 0xFF:
            return None
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        length = int.from_bytes(buf[i + 2 : i + 4], "big")
        if marker in _JPEG_SOF:
            return int.from_bytes(buf[i + 7 : i + 9], "big"), int.from_bytes(buf[i + 5 : i + 7], "big")
        i += 2 + length
    return None


def decode_compressed(data, fmt: str = "", max_pixels: int = 4096 * 4096) -> np.ndarray:
    """JPEG / PNG bytes of a sensor_msgs/CompressedImage -> (H, W, 3) RGB uint8.

    The size in the PNG/JPEG header is checked against ``max_pixels`` before anything is
    decoded, so a small file that would decode to gigabytes (a decompression bomb) is refused."""
    buf = np.frombuffer(memoryview(data), dtype=np.uint8)
    if buf.size == 0:
        raise ImageDecodeError(f"empty compressed image (format {fmt!r})")
    size = compressed_size(bytes(buf[: min(buf.size, 65536)]))
    if size is not None and size[0] * size[1] > max_pixels:
        raise ImageDecodeError(
            f"compressed image declares {size[0]}x{size[1]}: more than max_image_pixels={max_pixels} (not decoded)"
        )
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageDecodeError(f"corrupt or unsupported compressed image ({buf.size} bytes, format {fmt!r})")
    if bgr.shape[0] * bgr.shape[1] > max_pixels:
        raise ImageDecodeError(f"image {bgr.shape[1]}x{bgr.shape[0]} has more than max_image_pixels={max_pixels}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def encode_raw(rgb: np.ndarray, encoding: str = "rgb8") -> tuple[bytes, int]:
    """RGB uint8 -> (data, step) in ``encoding`` (rgb8/bgr8/mono8); used by the demo player and tests."""
    if encoding == "rgb8":
        out = rgb
    elif encoding == "bgr8":
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    elif encoding == "mono8":
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    else:
        raise ValueError(f"encode_raw supports rgb8, bgr8, mono8, not {encoding!r}")
    out = np.ascontiguousarray(out)
    return out.tobytes(), out.shape[1] * (out.shape[2] if out.ndim == 3 else 1)
