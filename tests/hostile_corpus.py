"""A corpus of hostile inputs, generated on demand: every kind of file an archive or a scraped folder holds
that a careless tool would crash on, hang on, or damage.

`build_corpus(root)` writes every kind under `root` and returns {kind: [paths]}. A kind is a named case
(a kind may need several files: the eight EXIF orientations, a pair of looping links). Photos are small
(48 x 64) and coloured, so that `evaluate` and `prep-dataset` can use the good ones too.

The permission kinds (`unreadable_file`, `unreadable_folder`) get mode 000 only inside `denied()`, so that the
corpus can be hashed before and after. A process run as root ignores file modes unless it drops
CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: `permission_prefix()` gives the command prefix that does.
"""

import contextlib
import hashlib
import io
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import numpy as np
import tifffile
from PIL import ExifTags, Image, ImageCms

SIZE = (48, 64)  # (H, W) of every ordinary photo of the corpus
BOMB_SIZE = (16_000, 20_000)  # 320 MP: above colorize's 300 MP and Pillow's 89 MP limits
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
# Linux's limit on a file name is 255 bytes; an output temp file adds ~15 to the name.
LONG_NAME = "long-" + "x" * 241 + ".png"
DROP_DAC = "-dac_override,-dac_read_search"
PERMISSION_KINDS = ("unreadable_file", "unreadable_folder")


def photo(seed=0, size=SIZE):
    """A smooth, strongly coloured uint8 (H, W, 3) image, different for every seed."""
    grid = (np.random.default_rng(seed).random((4, 5, 3)) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(grid).resize((size[1], size[0]), Image.Resampling.BICUBIC))


def encoded(pixels_or_image, format, **options):
    image = pixels_or_image if isinstance(pixels_or_image, Image.Image) else Image.fromarray(pixels_or_image)
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bytes(width, height, bit_depth, colour_type, rows, extra=b""):
    """A PNG written by hand (for what Pillow will not write: 16-bit RGB, a bomb, a bad chunk)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + extra + png_chunk(b"IDAT", rows)
            + png_chunk(b"IEND", b""))


def bomb_png():
    """A valid 1-bit PNG of BOMB_SIZE, all black: ~40 KB on disk, 320 MP (1.3 GB as float) decoded."""
    height, width = BOMB_SIZE
    packer = zlib.compressobj(9)
    row = b"\0" * (1 + width // 8)
    rows = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return png_bytes(width, height, 1, 0, rows)


def exif_jpeg(**tags):
    exif = Image.Exif()
    for name, value in tags.items():
        exif[ExifTags.Base[name]] = value
    return encoded(photo(3), "JPEG", quality=90, exif=exif.tobytes())


def jpeg_with_app1(payload):
    """A JPEG whose EXIF segment (APP1) is `payload`, whatever it holds."""
    plain = encoded(photo(4), "JPEG", quality=90)
    return plain[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + plain[2:]


def png(seed):
    return encoded(photo(seed), "PNG")


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _frames(count, mode="RGB"):
    return [Image.fromarray(photo(10 + i)).convert(mode) for i in range(count)]


def _kinds():
    """{kind: [(relative name, bytes)]} for every kind that is a plain file."""
    good_jpeg = encoded(photo(1), "JPEG", quality=90)
    good_png = png(2)
    sof = good_jpeg.index(b"\xff\xc0")  # baseline frame header: length, precision, height, width
    plain_tiff = io.BytesIO()
    tifffile.imwrite(plain_tiff, photo(5), photometric="rgb")
    plain_tiff = plain_tiff.getvalue()
    deflate_tiff = io.BytesIO()
    tifffile.imwrite(deflate_tiff, photo(6), photometric="rgb", compression="zlib")
    deflate_tiff = deflate_tiff.getvalue()
    with tifffile.TiffFile(io.BytesIO(deflate_tiff)) as tif:
        strip = tif.pages[0].dataoffsets[0]
    idat = good_png.index(b"IDAT")
    multipage = io.BytesIO()
    with tifffile.TiffWriter(multipage) as tif:
        for i in range(3):
            tif.write(photo(20 + i), photometric="rgb")
    gif = io.BytesIO()
    first, *rest = _frames(3, "P")
    first.save(gif, "GIF", save_all=True, append_images=rest, duration=100, loop=0)
    webp = io.BytesIO()
    first, *rest = _frames(3)
    first.save(webp, "WEBP", save_all=True, append_images=rest, duration=100, lossless=True)
    gray16 = (photo(7)[..., 1].astype(np.uint16) * 257) ^ 0x00FF  # low bytes that 8 bits would lose
    rgb16 = photo(8).astype(">u2") * 257
    float_tiff = io.BytesIO()
    tifffile.imwrite(float_tiff, photo(9)[..., 0].astype(np.float32) / 255)
    gray16_tiff = io.BytesIO()
    tifffile.imwrite(gray16_tiff, gray16)
    rgba = np.dstack([photo(11), np.tile(np.linspace(0, 255, SIZE[1], dtype=np.uint8), (SIZE[0], 1))])
    la = np.dstack([photo(12)[..., 0], rgba[..., 3]])
    palette = Image.fromarray(photo(13)).quantize(16)
    text_bomb = png_chunk(b"zTXt", b"bomb\0\0" + zlib.compress(b"A" * (64 << 20), 9))
    return {
        "jpeg_truncated": [("truncated.jpg", good_jpeg[: len(good_jpeg) // 2])],
        "jpeg_corrupt": [("corrupt.jpg", good_jpeg[:400] + b"\xff\xd9" + good_jpeg[402:])],
        "png_truncated": [("truncated.png", good_png[: len(good_png) // 2])],
        "png_bad_crc": [("bad_crc.png", good_png[: idat + 40] + bytes([good_png[idat + 40] ^ 0xFF]) + good_png[idat + 41 :])],
        "tiff_truncated": [("truncated.tif", plain_tiff[: len(plain_tiff) // 2])],
        "tiff_corrupt": [("corrupt.tif", deflate_tiff[:strip] + bytes(64) + deflate_tiff[strip + 64 :])],
        "zero_byte": [("empty.jpg", b"")],
        "wrong_extension": [("really_a_png.jpg", png(30)), ("really_a_jpeg.tif", good_jpeg)],
        "text_named_jpg": [("notes.jpg", b"Shopping list:\n- eggs\n- film\n")],
        "one_by_one": [("1x1.png", encoded(photo(14)[:1, :1], "PNG"))],
        "one_by_n": [("1x300.png", encoded(photo(15, (1, 300)), "PNG")),
                     ("300x1.png", encoded(photo(16, (300, 1)), "PNG"))],
        "extreme_aspect": [("strip_8x4000.png", encoded(photo(17, (8, 4000)), "PNG"))],
        "decompression_bomb": [("bomb.png", bomb_png())],
        "bomb_header": [("bomb_header.jpg", good_jpeg[: sof + 5] + struct.pack(">HH", 65500, 65500) + good_jpeg[sof + 9 :])],
        "png_text_bomb": [("text_bomb.png", png_bytes(*SIZE[::-1], 8, 2, zlib.compress(b"\0" * (SIZE[0] * (1 + 3 * SIZE[1]))), text_bomb))],
        "png_zero_width": [("zero_width.png", png_bytes(0, 10, 8, 0, zlib.compress(b"\0" * 10)))],
        "gray_16bit": [("gray16.png", encoded(Image.fromarray(gray16), "PNG")), ("gray16.tif", gray16_tiff.getvalue())],
        "rgb_16bit_png": [("rgb16.png", png_bytes(SIZE[1], SIZE[0], 16, 2, zlib.compress(b"".join(b"\0" + r.tobytes() for r in rgb16))))],
        "float32_tiff": [("float32.tif", float_tiff.getvalue())],
        "one_bit": [("bilevel.png", encoded(Image.fromarray(photo(18)[..., 0] > 128), "PNG"))],
        "cmyk": [("cmyk.jpg", encoded(Image.fromarray(photo(19)).convert("CMYK"), "JPEG", quality=90))],
        "palette": [("palette.png", encoded(palette, "PNG")), ("palette_gif.gif", encoded(palette, "GIF"))],
        "alpha": [("rgba.png", encoded(Image.fromarray(rgba, "RGBA"), "PNG")),
                  ("la.png", encoded(Image.fromarray(la, "LA"), "PNG"))],
        "multipage_tiff": [("multipage.tif", multipage.getvalue())],
        "animated": [("animated.gif", gif.getvalue()), ("animated_webp.webp", webp.getvalue())],
        "exif_orientations": [(f"orientation_{n}.jpg", exif_jpeg(Orientation=n, Make="Leica")) for n in range(1, 9)],
        "exif_broken": [
            ("exif_garbage.jpg", jpeg_with_app1(b"Exif\0\0" + b"\x17" * 300)),
            ("exif_bad_offset.jpg", jpeg_with_app1(b"Exif\0\0II*\0" + struct.pack("<I", 0xFFFFFFF0))),
            ("exif_orientation_99.jpg", exif_jpeg(Orientation=99)),
        ],
        "icc_profiles": [("icc_srgb.jpg", encoded(photo(21), "JPEG", quality=90, icc_profile=SRGB_ICC)),
                         ("icc_garbage.png", encoded(photo(22), "PNG", icc_profile=b"not a profile" * 20))],
        "names_unicode_spaces": [("фото 日本 ☃.png", png(31)), ("  leading and trailing spaces  .png", png(32))],
        "name_with_newline": [("new\nline.png", png(33)), ("bad\nname.jpg", b"not a photo")],
        "name_too_long": [(LONG_NAME, png(34))],
        "folder_named_like_an_image": [("album.jpg/inside.png", png(35))],
    }


def build_corpus(root):
    """Write every kind under `root`; return {kind: [paths]}."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    kinds = {}
    for kind, files in _kinds().items():
        kinds[kind] = [_write(root / name, data) for name, data in files]
    kinds["name_not_utf8"] = []
    for name, data in ((b"latin1-\xe9t\xe9.png", png(23)), (b"bad-\xff.jpg", b"not a photo.")):
        path = Path(os.fsdecode(os.path.join(os.fsencode(root), name)))  # not UTF-8: surrogates in the str
        kinds["name_not_utf8"].append(_write(path, data))

    links = root / "links"
    links.mkdir()
    (links / "target.png").write_bytes(png(24))
    os.symlink("target.png", links / "link_to_file.png")
    os.symlink("missing.png", links / "dangling.png")
    os.symlink("loop_b.png", links / "loop_a.png")
    os.symlink("loop_a.png", links / "loop_b.png")
    os.symlink("..", links / "loop_folder")
    kinds["symlink_to_file"] = [links / "link_to_file.png", links / "target.png"]
    kinds["symlink_dangling"] = [links / "dangling.png"]
    kinds["symlink_loop_files"] = [links / "loop_a.png", links / "loop_b.png"]
    kinds["symlink_loop_folder"] = [links / "loop_folder"]

    os.mkfifo(root / "fifo.jpg")  # reading it would wait for a writer forever
    os.symlink("/dev/zero", root / "device.png")  # reading it would never end
    kinds["fifo"] = [root / "fifo.jpg"]
    kinds["device"] = [root / "device.png"]

    kinds["unreadable_file"] = [_write(root / "secret.png", png(25))]
    private = root / "private"
    _write(private / "inside.png", png(26))
    kinds["unreadable_folder"] = [private]
    return kinds


@contextlib.contextmanager
def denied(kinds):
    """The permission kinds made unreadable (mode 000) for the duration, so that the corpus can be hashed after."""
    paths = [path for kind in PERMISSION_KINDS for path in kinds.get(kind, [])]
    modes = [path.stat().st_mode for path in paths]
    for path in paths:
        path.chmod(0)
    try:
        yield
    finally:
        for path, mode in zip(paths, modes):
            path.chmod(mode)


def drop_permission_kinds(kinds):
    """Remove the permission kinds, for a machine where no mechanism can deny a read (see permission_prefix)."""
    for kind in PERMISSION_KINDS:
        for path in kinds.pop(kind, []):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def permission_prefix():
    """Command prefix under which mode 000 really denies access, or None when none can be had.

    An ordinary user needs none. Root ignores file modes; `setpriv` can drop the two capabilities that
    let it, for the command it runs, which then meets permissions as any other owner would.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, f"--inh-caps={DROP_DAC}", f"--bounding-set={DROP_DAC}"]
    with tempfile.NamedTemporaryFile() as probe:
        os.chmod(probe.name, 0)
        works = subprocess.run([*prefix, "true"], capture_output=True).returncode == 0
        denied = subprocess.run([*prefix, "test", "-r", probe.name], capture_output=True).returncode != 0
    return prefix if works and denied else None


def tree_hashes(root):
    """{path: sha256} of every regular file under `root` (links not followed: a FIFO would hang)."""
    hashes = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                hashes[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes
