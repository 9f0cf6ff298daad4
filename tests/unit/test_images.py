"""Decoding untrusted bytes: every format and mode the API promises, and every way it must refuse."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from core.errors import ImageTooLarge, InvalidInput
from core.model.images import decode_image

LIMIT = 10_000_000


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def gradient(w=64, h=48) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.uint8)
    rgb = np.stack([np.tile(x, (h, 1)), np.tile(x[::-1], (h, 1)), np.full((h, w), 128, np.uint8)], axis=-1)
    return Image.fromarray(rgb, "RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF"])
def test_every_promised_format_decodes_to_rgb(fmt):
    out = decode_image(encode(gradient(), fmt), LIMIT)
    assert out.image.mode == "RGB" and out.size == (64, 48) and out.format == fmt
    assert out.to_array().shape == (48, 64, 3)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "1"])
def test_every_mode_becomes_rgb(mode):
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    out = decode_image(encode(gradient().convert(mode), fmt), LIMIT)
    assert out.image.mode == "RGB"


def test_transparent_pixels_become_white_not_black():
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    out = decode_image(encode(img, "PNG"), LIMIT)
    assert out.to_array().min() == 255


def test_sixteen_bit_grey_is_scaled_not_clipped():
    arr = np.linspace(0, 65535, 64 * 8, dtype=np.uint16).reshape(8, 64)
    data = encode(Image.fromarray(arr), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    out = decode_image(data, LIMIT).to_array()
    assert out.min() == 0 and out.max() == 255
    assert 100 < out[..., 0].mean() < 155  # a clip to 255 would make most pixels white


def test_animated_gif_uses_the_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    out = decode_image(buf.getvalue(), LIMIT).to_array()
    assert tuple(out[0, 0]) == (255, 0, 0)


@pytest.mark.parametrize("orientation, upright_size", [(1, (64, 48)), (3, (64, 48)), (6, (48, 64)), (8, (48, 64))])
def test_exif_orientation_is_applied(orientation, upright_size):
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = decode_image(encode(gradient(), "JPEG", exif=exif), LIMIT)
    assert out.size == upright_size


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a huge canvas but holds almost no data: a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    )


def test_pixel_bomb_is_refused_from_the_header():
    with pytest.raises(ImageTooLarge, match="too large"):
        decode_image(png_header_only(50_000, 50_000), LIMIT)
    with pytest.raises(ImageTooLarge, match="too large: 5000x4000"):
        decode_image(png_header_only(5_000, 4_000), LIMIT)


def test_pixel_limit_is_configurable():
    with pytest.raises(ImageTooLarge):
        decode_image(encode(gradient(), "PNG"), max_pixels=1000)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"GIF89a but not really", "truncated or corrupt|not an image"),
        (np.random.default_rng(0).bytes(5000), "not an image"),
        (b"%PDF-1.4 a document", "not an image"),
    ],
)
def test_garbage_is_invalid_input(data, message):
    with pytest.raises(InvalidInput, match=message):
        decode_image(data, LIMIT)


def test_truncated_jpeg_is_invalid_input():
    data = encode(gradient(640, 480), "JPEG")
    with pytest.raises(InvalidInput, match="truncated"):
        decode_image(data[: len(data) // 2], LIMIT)


def test_large_jpeg_is_drafted_but_never_below_the_model_input():
    big = encode(gradient(2400, 1800), "JPEG")
    full = decode_image(big, LIMIT)
    drafted = decode_image(big, LIMIT, min_size=(300, 300))
    assert full.size == (2400, 1800)
    assert drafted.size[0] < 2400 and min(drafted.size) >= 300
    assert drafted.original_size == (2400, 1800)


# Headers of every supported format that declare a canvas and carry (almost) no pixels.
def gif_header_only(width: int, height: int) -> bytes:
    screen = b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00"
    return screen + b"\x2c" + struct.pack("<HHHH", 0, 0, width, height) + b"\x00\x02\x02\x44\x01\x00\x3b"


def bmp_header_only(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 4, 0, 0, 0, 0)
    return b"BM" + struct.pack("<IHHI", 58, 0, 0, 54) + info + b"\0\0\0\0"


def tiff_header_only(width: int, height: int) -> bytes:
    tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 8), (277, 3, 1)]
    tags += [(278, 4, height), (279, 4, 1)]
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", tag, kind, 1, v) for tag, kind, v in tags)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)


def webp_header_only(width: int, height: int) -> bytes:
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes(4) + (width - 1).to_bytes(3, "little")
    vp8x += (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


HEADER_ONLY = {
    "png": png_header_only,
    "gif": gif_header_only,
    "bmp": bmp_header_only,
    "tiff": tiff_header_only,
    "webp": webp_header_only,
}


@pytest.mark.parametrize("fmt", HEADER_ONLY)
@pytest.mark.parametrize("side", [16_000, 5_000])  # over twice Pillow's own limit (179 M pixels), and under it
def test_too_many_pixels_gets_one_message_in_every_format(fmt, side):
    """Pillow refuses canvases over twice its limit with its own text ("decompression bomb DOS attack",
    its limit); the client must get ours, with our limit, whatever the format and size."""
    with pytest.raises(ImageTooLarge) as refused:
        decode_image(HEADER_ONLY[fmt](side, side), LIMIT)
    assert str(refused.value) == f"image is too large: {side}x{side} = {side * side} pixels; the limit is {LIMIT}"


@pytest.mark.parametrize("options", [{"lossless": True}, {"lossless": False}, {"save_all": True}])
def test_webp_size_is_read_from_every_kind_of_header(options):
    """WebP's canvas is checked before Pillow opens it (its plugin allocates the canvas on open)."""
    data = encode(gradient(37, 21), "WEBP", **options)
    with pytest.raises(ImageTooLarge, match="37x21 = 777 pixels"):
        decode_image(data, 776)
    assert decode_image(data, 777).size == (37, 21)
