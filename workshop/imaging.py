"""Turn untrusted bytes into an RGB picture, or a clear reason why not.

Everything a client sends goes through :func:`decode_image`. It checks sizes
*before* decoding pixels (a 100 KB PNG can expand to gigabytes: a
"decompression bomb"), refuses what is not a single still image, respects the
camera's EXIF orientation, and converts every colour mode (grayscale, palette,
RGBA, 16-bit, CMYK) to 8-bit RGB rather than failing on it.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import sys
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

_DATA_URL_PREFIX = re.compile(r"^data:[\w.+/-]*(;[\w=.+-]+)*;base64,", re.IGNORECASE)
_HIGH_BIT_DEPTH_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


class ImageError(ValueError):
    """The bytes are not an image this server accepts. ``status_code`` is the HTTP answer."""

    status_code = 422


class ImageTooLargeError(ImageError):
    """The file, or the picture inside it, is larger than the configured limit."""

    status_code = 413


@dataclass(frozen=True)
class DecodedImage:
    """An 8-bit RGB picture and what it was before conversion."""

    image: Image.Image
    original_format: str | None
    original_mode: str

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height

    def to_bgr_array(self) -> np.ndarray:
        return to_bgr_array(self.image)


def to_bgr_array(image: Image.Image) -> np.ndarray:
    """An RGB picture as a contiguous ``(h, w, 3)`` BGR array, the channel order Ultralytics expects of NumPy input."""
    return np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])


def decode_base64(data: str, max_bytes: int) -> bytes:
    """Decode a base64 string (``data:image/...;base64,`` prefix allowed) and check its size."""
    if not isinstance(data, str) or not data.strip():
        raise ImageError("The image is empty: send the image file's bytes, base64-encoded.")
    payload = _DATA_URL_PREFIX.sub("", data.strip(), count=1)
    payload = "".join(payload.split())  # line breaks from `base64` command-line tools are fine
    # Checked before decoding: base64 is 4 characters for every 3 bytes.
    if len(payload) * 3 // 4 > max_bytes:
        raise ImageTooLargeError(f"The image is larger than the limit of {max_bytes} bytes.")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError(
            "The 'image' field is not valid base64. Encode the file's bytes, e.g. "
            "base64.b64encode(open('cat.jpg', 'rb').read()).decode()."
        ) from None
    if not raw:
        raise ImageError("The image is empty: send the image file's bytes, base64-encoded.")
    return raw


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, scaling high bit depths instead of clipping them."""
    if image.mode == "RGB":
        return image
    if image.mode in _HIGH_BIT_DEPTH_MODES:
        pixels = np.asarray(image, dtype=np.float64)
        low, high = float(pixels.min()), float(pixels.max())
        if image.mode != "F" and high <= 255 and low >= 0:
            scaled = pixels  # already in 8-bit range (e.g. a 32-bit image of 8-bit values)
        elif image.mode != "F" and low >= 0:
            scaled = pixels / 65535.0 * 255.0  # 16-bit full scale
        else:
            scaled = (pixels - low) / max(high - low, 1e-12) * 255.0
        return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8), mode="L").convert("RGB")
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        # Transparent areas become white, as a viewer shows them, not black.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV, ...


def _pillow_open(data: bytes) -> Image.Image:
    """Pillow's own ``Image.open``, even after Ultralytics has replaced it.

    Ultralytics swaps ``PIL.Image.open`` for a wrapper that, when a file is not
    recognised, tries to pip-install a HEIF plugin and retry. An upload from
    the internet must never make the server install packages.
    """
    patches = sys.modules.get("ultralytics.utils.patches")
    opener = getattr(patches, "_image_open", Image.open)
    return opener(io.BytesIO(data))


def decode_image(data: bytes, max_bytes: int, max_pixels: int) -> DecodedImage:
    """Decode image file bytes into 8-bit RGB, or raise :class:`ImageError` with a clear message."""
    if not data:
        raise ImageError("The image is empty (0 bytes).")
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"The image is {len(data)} bytes, over the limit of {max_bytes} bytes.")
    try:
        # Opening reads only the header: the pixel count is known before any pixel is decoded.
        image = _pillow_open(data)
    except UnidentifiedImageError:
        raise ImageError("The file is not an image this server can read (png, jpeg, webp, tiff, bmp, gif).") from None
    except Image.DecompressionBombError:
        raise ImageTooLargeError(f"The image has more pixels than the limit of {max_pixels}.") from None
    except Exception as error:  # noqa: BLE001 - Pillow raises many types on malformed headers
        raise ImageError(f"The image header could not be read: {error}.") from None

    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError(f"The image has no pixels ({width}x{height}).")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"The image is {width}x{height} = {width * height} pixels, over the limit of {max_pixels} pixels."
        )
    if getattr(image, "n_frames", 1) > 1:
        raise ImageError(
            f"The image has {image.n_frames} frames (animated or multi-page); send a single still image."
        )
    original_format, original_mode = image.format, image.mode
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLargeError(f"The image has more pixels than the limit of {max_pixels}.") from None
    except Exception as error:  # noqa: BLE001 - truncated or corrupt data, whatever the codec says
        raise ImageError(f"The image data is truncated or corrupt ({error}).") from None

    try:
        image = ImageOps.exif_transpose(image) or image  # photos taken sideways come out upright
    except Exception:  # noqa: BLE001 - a broken EXIF block should not cost the user their picture
        pass
    return DecodedImage(image=_to_rgb(image), original_format=original_format, original_mode=original_mode)


def encode_image(image: Image.Image, format: str = "PNG") -> bytes:
    """An image as file bytes (PNG by default, lossless)."""
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return buffer.getvalue()


def to_base64(data: bytes) -> str:
    """File bytes as the base64 text ``POST /predict`` expects."""
    return base64.b64encode(data).decode("ascii")
