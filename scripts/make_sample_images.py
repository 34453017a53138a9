"""Make sample_images/: MNIST digits, procedural shapes and four free photos.

Run from the repository root:
    python scripts/make_sample_images.py ../shared/datasets/mnist PATH/TO/skimage/data
The photos come from scikit-image's data folder (see sample_images/NOTICE.md for each licence) and
are shrunk so that the package stays small.
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from nnsim.data.datasets import read_idx
from nnsim.data.images import save_image
from nnsim.data.synthetic import SHAPE_CLASSES, draw_shape

OUT = Path("sample_images")
PHOTOS = {
    "chelsea.png": "cat.jpg",
    "coffee.png": "coffee.jpg",
    "astronaut.png": "astronaut.jpg",
    "rocket.jpg": "rocket.jpg",
}


def typical(images: np.ndarray, labels: np.ndarray, digit: int) -> int:
    """The test image of ``digit`` closest to that digit's mean image: a clear, ordinary example."""
    members = np.flatnonzero(labels == digit)
    pixels = images[members].reshape(len(members), -1).astype(np.float64)
    return int(members[np.argmin(((pixels - pixels.mean(axis=0)) ** 2).sum(axis=1))])


def main() -> None:
    mnist, skimage_data = Path(sys.argv[1]), Path(sys.argv[2])
    (OUT / "digits").mkdir(parents=True, exist_ok=True)
    (OUT / "shapes").mkdir(exist_ok=True)
    (OUT / "photos").mkdir(exist_ok=True)
    images = read_idx(mnist / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(mnist / "t10k-labels-idx1-ubyte.gz")
    for digit in range(10):
        Image.fromarray(images[typical(images, labels, digit)]).save(OUT / "digits" / f"{digit}.png")
    # a digit as a phone photo of paper would show it: dark ink on light, larger, in colour
    seven = Image.fromarray(255 - images[int(np.flatnonzero(labels == 7)[1])]).resize((112, 112), Image.BILINEAR)
    Image.merge("RGB", [seven, seven, seven.point(lambda v: int(v * 0.9))]).save(OUT / "digits" / "7-on-paper.png")
    rng = np.random.default_rng(7)
    for kind in SHAPE_CLASSES[:3]:
        save_image(draw_shape(kind, rng), OUT / "shapes" / f"{kind}.png")
    for source, target in PHOTOS.items():
        photo = Image.open(skimage_data / source).convert("RGB")
        photo.thumbnail((320, 320))
        photo.save(OUT / "photos" / target, quality=88)
    print(f"wrote {sum(1 for p in OUT.rglob('*') if p.is_file())} files under {OUT}/")


if __name__ == "__main__":
    main()
