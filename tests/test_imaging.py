"""Decoding untrusted bytes: conversions that must work, inputs that must be refused clearly."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from workshop.imaging import ImageError, ImageTooLargeError, decode_base64, decode_image, encode_image

MB = 1024 * 1024


def _encode(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def _decode(data: bytes, max_pixels: int = 10_000_000):
    return decode_image(data, max_bytes=10 * MB, max_pixels=max_pixels)


def _bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming a huge size, with a tiny compressed body: a decompression bomb."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    body = zlib.compress(b"\x00" * 1024, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


@pytest.mark.parametrize("format", ["PNG", "JPEG", "WEBP", "TIFF", "BMP"])
def test_common_formats_decode_to_rgb(format: str) -> None:
    image = Image.new("RGB", (40, 30), (200, 10, 10))
    decoded = _decode(_encode(image, format))
    assert decoded.image.mode == "RGB"
    assert (decoded.width, decoded.height) == (40, 30)
    assert decoded.original_format == format
    assert np.abs(np.asarray(decoded.image)[15, 20].astype(int) - (200, 10, 10)).max() < 12


@pytest.mark.parametrize("mode", ["L", "1", "P", "CMYK", "LA"])
def test_other_colour_modes_are_converted(mode: str) -> None:
    image = Image.new("RGB", (16, 16), (120, 120, 120)).convert(mode)
    format = "JPEG" if mode == "CMYK" else "PNG"
    decoded = _decode(_encode(image, format))
    assert decoded.image.mode == "RGB" and decoded.original_mode == mode


def test_transparent_pixels_become_white_not_black() -> None:
    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    decoded = _decode(_encode(image, "PNG"))
    assert tuple(np.asarray(decoded.image)[5, 5]) == (255, 255, 255)


def test_16_bit_grayscale_is_scaled_not_clipped() -> None:
    pixels = np.full((8, 8), 32768, dtype=np.uint16)  # half of full scale
    decoded = _decode(_encode(Image.fromarray(pixels), "PNG"))
    value = np.asarray(decoded.image)[0, 0, 0]
    assert 120 <= value <= 135  # about half of 255, not 255 (clipped)


def test_exif_orientation_is_respected() -> None:
    image = Image.new("RGB", (60, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    decoded = _decode(_encode(image, "JPEG", exif=exif.tobytes()))
    assert (decoded.width, decoded.height) == (20, 60)


def test_empty_bytes_are_refused() -> None:
    with pytest.raises(ImageError, match="empty"):
        _decode(b"")


def test_not_an_image_is_refused() -> None:
    with pytest.raises(ImageError, match="not an image"):
        _decode(b"hello, this is text")


def test_truncated_image_is_refused() -> None:
    data = _encode(Image.effect_noise((200, 200), 50).convert("RGB"), "PNG")
    with pytest.raises(ImageError, match="truncated or corrupt"):
        _decode(data[: len(data) // 2])


def test_animated_image_is_refused() -> None:
    frames = [Image.new("RGB", (10, 10), colour) for colour in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError, match="2 frames"):
        _decode(buffer.getvalue())


def test_decompression_bomb_is_refused_before_decoding() -> None:
    data = _bomb_png(100_000, 100_000)  # 10 gigapixels in a few hundred bytes
    assert len(data) < 1000
    with pytest.raises(ImageTooLargeError) as caught:
        _decode(data)
    assert caught.value.status_code == 413


def test_pixel_limit_is_checked_on_the_header() -> None:
    data = _encode(Image.new("RGB", (200, 100)), "PNG")
    with pytest.raises(ImageTooLargeError, match="20000 pixels, over the limit of 10000"):
        _decode(data, max_pixels=10_000)


def test_byte_limit() -> None:
    with pytest.raises(ImageTooLargeError):
        decode_image(b"x" * 101, max_bytes=100, max_pixels=10)


def test_one_pixel_image_is_fine() -> None:
    decoded = _decode(_encode(Image.new("RGB", (1, 1), "green"), "PNG"))
    assert (decoded.width, decoded.height) == (1, 1)


def test_bgr_array_has_channels_reversed() -> None:
    decoded = _decode(_encode(Image.new("RGB", (2, 2), (255, 0, 0)), "PNG"))
    array = decoded.to_bgr_array()
    assert array.shape == (2, 2, 3) and tuple(array[0, 0]) == (0, 0, 255)
    assert array.flags["C_CONTIGUOUS"]


class TestBase64:
    def test_plain_and_data_url_and_line_breaks(self) -> None:
        raw = encode_image(Image.new("RGB", (3, 3)))
        text = base64.b64encode(raw).decode()
        assert decode_base64(text, MB) == raw
        assert decode_base64("data:image/png;base64," + text, MB) == raw
        assert decode_base64("\n".join(text[i : i + 76] for i in range(0, len(text), 76)), MB) == raw

    @pytest.mark.parametrize("bad", ["", "   ", "not base64!!", "abc", "YQ", "é"])
    def test_invalid_base64_is_refused(self, bad: str) -> None:
        with pytest.raises(ImageError):
            decode_base64(bad, MB)

    def test_size_checked_before_decoding(self) -> None:
        with pytest.raises(ImageTooLargeError):
            decode_base64("A" * 4000, max_bytes=1000)


def test_unknown_bytes_never_trigger_an_install_after_ultralytics_is_imported() -> None:
    from workshop.yolo_env import import_yolo

    import_yolo()  # patches PIL.Image.open
    with pytest.raises(ImageError, match="not an image"):
        _decode(b"definitely not an image")
