"""Near-duplicate detection: a 128-bit difference hash (dHash) and an index of hashes close to a new one."""

from collections import defaultdict
from itertools import pairwise

import numpy as np
from PIL import Image

HASH_BITS = 128


def dhash(rgb):
    """128-bit dHash of a uint8 (H, W, 3) image: signs of horizontal and vertical grey-level steps.

    Both directions on 8x8 grids: on real photo collections, 64 horizontal bits alone let unrelated
    photos with similar layouts (a bright centre, a horizon) collide.
    """
    grey = Image.fromarray(rgb).convert("L")
    wide = np.asarray(grey.resize((9, 8), Image.Resampling.BOX), dtype=np.int16)
    tall = np.asarray(grey.resize((8, 9), Image.Resampling.BOX), dtype=np.int16)
    bits = np.concatenate([(wide[:, 1:] > wide[:, :-1]).ravel(), (tall[1:] > tall[:-1]).ravel()])
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


class NearDuplicateIndex:
    """Hashes seen so far; `add` reports whether a new hash lies within `max_distance` bits of one of them.

    Pigeonhole lookup (multi-index hashing): split the hash into max_distance + 1 bands; two hashes within
    the distance agree exactly on at least one band, so only hashes sharing a band are compared.
    """

    def __init__(self, max_distance=6):
        self.max_distance = max_distance
        bands = max_distance + 1
        edges = [round(i * HASH_BITS / bands) for i in range(bands + 1)]
        self._bands = [(lo, (1 << (hi - lo)) - 1) for lo, hi in pairwise(edges)]
        self._buckets = defaultdict(list)

    def _keys(self, value):
        return [(i, (value >> shift) & mask) for i, (shift, mask) in enumerate(self._bands)]

    def add(self, value):
        """Record `value`; True (and not recorded) when a recorded hash is within max_distance bits."""
        keys = self._keys(value)
        for key in keys:
            if any((value ^ other).bit_count() <= self.max_distance for other in self._buckets.get(key, ())):
                return True
        for key in keys:
            self._buckets[key].append(value)
        return False
