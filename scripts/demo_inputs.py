"""Write the demo's gray photos: public-domain samples that scikit-image ships, turned to gray.

Usage: python scripts/demo_inputs.py DIR
"""

import sys
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image
from skimage import color, data

# scikit-image's bundled samples (public domain or CC0, see skimage.data's documentation).
SAMPLES = ("astronaut", "chelsea", "coffee", "rocket", "camera")


def write_demo_inputs(folder):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in SAMPLES:
        image = getattr(data, name)()
        gray = image if image.ndim == 2 else color.rgb2gray(image) * 255
        Image.fromarray(np.round(gray).astype(np.uint8)).save(folder / f"{name}.jpg", quality=95)
    # One 16-bit scan-like TIFF: the result is a 16-bit colour TIFF.
    gray16 = np.round(color.rgb2gray(data.astronaut()) * 65535).astype(np.uint16)
    tifffile.imwrite(folder / "astronaut_16bit.tif", gray16)


if __name__ == "__main__":
    write_demo_inputs(sys.argv[1] if len(sys.argv) > 1 else "demo_in")
