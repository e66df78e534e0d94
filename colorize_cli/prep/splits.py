"""The train/val split rule shared by prep-dataset and the plain-folder reader: a hash of the content."""

import hashlib

DEFAULT_VAL_FRACTION = 0.05


def content_hash(data):
    """Hex SHA-256 of an image file's bytes: its identity in manifests and in the split."""
    return hashlib.sha256(data).hexdigest()


def split_for(digest, val_fraction=DEFAULT_VAL_FRACTION):
    """'val' or 'train' from the content hash alone, so adding images never moves old ones."""
    # The first 8 hex digits are a uniform 32-bit number; comparing it to a threshold is stable.
    return "val" if int(digest[:8], 16) < val_fraction * 2**32 else "train"


def in_share(digest, share):
    """Whether a photo belongs to the first `share` of its split, from the content hash alone.

    Digits 8-16 are a second uniform number, independent of the split's, so a smaller share is always
    part of a larger one (nested subsets for a learning curve) and adding photos never moves old ones.
    """
    return share >= 1 or int(digest[8:16], 16) < share * 2**32
