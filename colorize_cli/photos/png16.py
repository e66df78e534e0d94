"""16-bit PNGs in and out through imagecodecs (libpng): Pillow reads their colour with 8 bits and cannot write it."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import imagecodecs
import numpy as np

_HEADER_END = 8 + 25  # the signature, then the IHDR chunk (length, type, 13 bytes, CRC): libpng writes it first
_PIXEL_CHUNKS = frozenset({b"IHDR", b"IDAT", b"IEND"})


def bit_depth(path: str | os.PathLike) -> int:
    """Bits per sample that the PNG at `path` stores (from its IHDR chunk)."""
    with open(path, "rb") as f:
        return f.read(25)[24]


def read(path: str | os.PathLike) -> tuple[np.ndarray, bytes | None]:
    """Samples (H, W, C) uint16 of a 16-bit PNG (a transparent colour, tRNS, comes as alpha) and its raw EXIF.

    The EXIF is looked for after the pixels too, where PNG allows it (Pillow would decode them again to look).
    """
    png = Path(path).read_bytes()
    samples = imagecodecs.png_decode(png)
    exif = next((bytes(chunk[8:-4]) for kind, chunk in _chunks(png) if kind == b"eXIf"), None)
    return (samples if samples.ndim == 3 else samples[..., None]), exif


def write(path: Path, rgb: np.ndarray, metadata: bytes) -> None:
    """Write (H, W, 3) uint16 as a 48-bit PNG carrying the metadata chunks of `metadata`, a PNG Pillow wrote."""
    # Level 1, RLE, Sub filter: a 4 MP photo in 0.26 s rather than 1.8 s at level 6, for a 4 % larger file.
    pixels = imagecodecs.png_encode(
        rgb, level=imagecodecs.PNG.COMPRESSION.SPEED, strategy=imagecodecs.PNG.STRATEGY.RLE,
        filter=imagecodecs.PNG.FILTER.SUB,
    )
    with open(path, "wb") as f:
        f.write(pixels[:_HEADER_END])
        f.writelines(_metadata_chunks(metadata))
        f.write(memoryview(pixels)[_HEADER_END:])


def _metadata_chunks(png: bytes) -> list[memoryview]:
    """The chunks of `png`, whole, other than its header, pixels and end (ICC, EXIF, resolution...)."""
    return [chunk for kind, chunk in _chunks(png) if kind not in _PIXEL_CHUNKS]


def _chunks(png: bytes) -> Iterator[tuple[bytes, memoryview]]:
    """(type, the whole chunk: length, type, body, CRC) for each chunk of `png`, without copying."""
    view, offset = memoryview(png), 8
    while offset + 8 <= len(png):
        length, kind = struct.unpack_from(">I4s", png, offset)
        yield kind, view[offset : offset + 12 + length]
        offset += 12 + length
