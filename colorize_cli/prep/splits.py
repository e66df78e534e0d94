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
