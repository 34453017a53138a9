"""Data sets by name or path: built-in, found on disk, or read from a file or folder.

Every loader returns a ``Dataset`` whose images are (N, C, H, W) float32 in 0..1 and whose labels
are int64 class indices. Names: ``mnist-mini``, ``shapes``, ``shapes-imbalanced`` (built in),
``mnist`` and ``fashion-mnist`` (found where Keras, torchvision or ``nnsim data download`` put
them). Paths: a Keras-layout ``.npz``, a folder of MNIST IDX files, or an ImageFolder.
"""

from __future__ import annotations

import gzip
import os
from collections import Counter
from pathlib import Path

import numpy as np

from nnsim.data.dataset import Dataset
from nnsim.errors import NnsimError
from nnsim.resources import builtin_data_path
from nnsim.safe_npz import read_npz

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}


# --------------------------------------------------------------------------- by name or path
BUILTIN_NAMES = ("mnist-mini", "shapes", "shapes-imbalanced")
FINDABLE_NAMES = ("mnist", "fashion-mnist")


DESCRIPTIONS = {
    "mnist-mini": "10,000 + 2,000 real MNIST digits, 1×28×28",
    "shapes": "procedural colour shapes, 3×32×32, 5 classes",
    "shapes-imbalanced": "the same with rare classes (for focal loss)",
    "mnist": "60,000 + 10,000 handwritten digits, 1×28×28",
    "fashion-mnist": "60,000 + 10,000 clothing images, 1×28×28",
}


def load_dataset(name_or_path: str | os.PathLike, seed: int = 0) -> Dataset:
    """A data set by built-in name, by the name of one found on disk, or by path; checked."""
    dataset = _load(str(name_or_path), seed)
    dataset.check()
    return dataset


def _load(key: str, seed: int) -> Dataset:
    if key == "mnist-mini":
        return load_mnist_mini()
    if key in ("shapes", "shapes-imbalanced"):
        from nnsim.data.synthetic import make_shapes_dataset

        return make_shapes_dataset(imbalanced=key == "shapes-imbalanced", seed=seed)
    if key in FINDABLE_NAMES:
        return load_findable(key)
    path = Path(key).expanduser()
    if not path.exists():
        names = ", ".join(BUILTIN_NAMES + FINDABLE_NAMES)
        raise NnsimError(f"{key}: no such file or folder, and not a data set name ({names})")
    if not path.is_file() and not path.is_dir():
        raise NnsimError(f"{key}: not a data set: a device or a pipe, not a file or a folder")
    if path.is_file():
        if path.suffix.lower() == ".npz":
            return load_npz(path)
        raise NnsimError(f"{path}: not a data set; give a .npz file, a folder of MNIST IDX files or an ImageFolder")
    if find_idx_files(path) is not None:
        return load_idx_folder(path)
    return load_image_folder(path, seed=seed)


def load_mnist_mini() -> Dataset:
    path = builtin_data_path("mnist-mini.npz")
    dataset = load_npz(path, name="mnist-mini", class_names=MNIST_CLASSES)
    dataset.source = "built-in subset of MNIST (LeCun, Cortes, Burges; CC BY-SA 3.0)"
    return dataset


# --------------------------------------------------------------------------- Keras .npz
def load_npz(path: Path, name: str | None = None, class_names: list[str] | None = None) -> Dataset:
    """A Keras-layout .npz: x_train, y_train, x_test, y_test (images NHW, NHWC or NCHW)."""
    archive = read_npz(path, "data set .npz")
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in archive]
    if missing:
        found = ", ".join(archive) or "nothing"
        raise NnsimError(
            f"{path}: a data set .npz needs x_train, y_train, x_test, y_test; "
            f"missing {', '.join(missing)} (found {found})"
        )
    arrays = {k: archive[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    return _from_arrays(name or Path(path).stem, arrays, class_names, source=str(path))


def _from_arrays(name, arrays: dict, class_names, source: str) -> Dataset:
    x_train, x_test = (images_to_nchw(arrays[k], f"{source}: {k}") for k in ("x_train", "x_test"))
    y_train, y_test = (labels_to_int(arrays[k], f"{source}: {k}") for k in ("y_train", "y_test"))
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if len(x) != len(y):
            raise NnsimError(f"{source}: {len(x)} {split} images but {len(y)} labels")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise NnsimError(f"{source}: train images are {x_train.shape[1:]} but test images {x_test.shape[1:]}")
    if len(x_train) == 0:
        raise NnsimError(f"{source}: the training set is empty")
    classes = int(max(y_train.max(), y_test.max() if len(y_test) else 0)) + 1
    if class_names is None:
        class_names = [str(i) for i in range(classes)]
    return Dataset(name, x_train, y_train, x_test, y_test, list(class_names), source=source)


def images_to_nchw(x: np.ndarray, what: str) -> np.ndarray:
    """Images in any usual layout and dtype to (N, C, H, W) float32 in 0..1."""
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise NnsimError(f"{what}: images must be numbers, got {x.dtype}")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        if x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.transpose(0, 3, 1, 2)
        elif x.shape[1] not in (1, 3):
            raise NnsimError(f"{what}: cannot tell the channels of images shaped {x.shape}")
    else:
        raise NnsimError(f"{what}: images must be (N,H,W), (N,H,W,C) or (N,C,H,W), got shape {x.shape}")
    if np.issubdtype(x.dtype, np.integer):
        top = 255.0 if x.size == 0 or x.max() <= 255 else float(np.iinfo(x.dtype).max)
        return np.ascontiguousarray(x, dtype=np.float32) / np.float32(top)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        bad = int(np.size(x) - np.isfinite(x).sum())
        raise NnsimError(f"{what}: {bad:,} pixel values are NaN or infinite; images must be finite numbers")
    if x.size and x.max() > 1.0:
        x /= np.float32(255.0)
    return x


def labels_to_int(y: np.ndarray, what: str) -> np.ndarray:
    y = np.asarray(y).reshape(len(y), -1) if np.ndim(y) > 1 else np.asarray(y)
    if y.ndim > 1:
        if y.shape[1] != 1:
            raise NnsimError(f"{what}: labels must be one class index per image, got shape {y.shape}")
        y = y[:, 0]
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise NnsimError(f"{what}: labels must be whole class indices, got {y.dtype}")
    if y.size and y.min() < 0:
        raise NnsimError(f"{what}: labels must be >= 0")
    return y.astype(np.int64)


# --------------------------------------------------------------------------- MNIST IDX files
def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format), gzip-compressed or not, as a uint8 array."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise NnsimError(f"{path}: cannot read ({error})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise NnsimError(f"{path}: not an MNIST IDX file of bytes (bad magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise NnsimError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise NnsimError(f"{path}: IDX header says {shape} ({expected} bytes) but the file has {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def find_idx_files(folder: Path) -> dict[str, Path] | None:
    """The four MNIST files in ``folder`` (.gz or not, "-" or "." before idx), or None."""
    found = {}
    for key, stem in IDX_FILES.items():
        for candidate in (stem, stem.replace("-idx", ".idx")):
            for suffix in ("", ".gz"):
                path = folder / (candidate + suffix)
                if path.is_file():
                    found[key] = path
                    break
            if key in found:
                break
    if not found:
        return None
    if len(found) < 4:
        missing = ", ".join(IDX_FILES[k] for k in IDX_FILES if k not in found)
        raise NnsimError(f"{folder}: has some MNIST IDX files but not {missing}")
    return found


def load_idx_folder(folder: Path, name: str | None = None, class_names=None) -> Dataset:
    files = find_idx_files(Path(folder))
    if files is None:
        raise NnsimError(f"{folder}: no MNIST IDX files (train-images-idx3-ubyte[.gz] …) here")
    arrays = {key: read_idx(path) for key, path in files.items()}
    for key in ("x_train", "x_test"):
        if arrays[key].ndim != 3:
            raise NnsimError(f"{files[key]}: images must be 3-dimensional IDX, got {arrays[key].ndim}")
    return _from_arrays(name or Path(folder).name, arrays, class_names, source=str(folder))


# --------------------------------------------------------------------------- findable: mnist, fashion-mnist
def data_home() -> Path:
    """Where `nnsim data download` keeps data sets: $NNSIM_DATA, else the user's data folder."""
    if os.environ.get("NNSIM_DATA"):
        return Path(os.environ["NNSIM_DATA"]).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("nnsim")) / "datasets"


def candidate_locations(name: str) -> list[Path]:
    """Where a user may already have ``name``: ours, Keras' and torchvision's usual places."""
    home = Path.home()
    keras = home / ".keras" / "datasets"
    torch_folder = "MNIST" if name == "mnist" else "FashionMNIST"
    places = [data_home() / name, data_home() / f"{name}.npz"]
    if name == "mnist":
        places.append(keras / "mnist.npz")
    else:
        places.append(keras / "fashion-mnist")
    for root in (Path.cwd() / "data", home / "data", home / ".cache" / "torchvision"):
        places.append(root / torch_folder / "raw")
    return places


def find_on_disk(name: str) -> Path | None:
    """The first place where `name` (mnist or fashion-mnist) is found on this computer, if any."""
    for place in candidate_locations(name):
        try:
            if (place.is_file() and place.suffix == ".npz") or (place.is_dir() and find_idx_files(place)):
                return place
        except NnsimError:
            continue
    return None


def load_findable(name: str) -> Dataset:
    class_names = MNIST_CLASSES if name == "mnist" else FASHION_CLASSES
    place = find_on_disk(name)
    if place is None:
        raise NnsimError(
            f"{name} is not on this computer; get it with `nnsim data download {name}` "
            f"(or set NNSIM_DATA to a folder that holds it)"
        )
    if place.is_file():
        return load_npz(place, name=name, class_names=class_names)
    return load_idx_folder(place, name=name, class_names=class_names)


# --------------------------------------------------------------------------- ImageFolder
def load_image_folder(folder: Path, seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """One sub-folder per class. With train/ and test/ sub-folders those are the splits; otherwise
    a test split is carved with the seed. Unreadable files are skipped with a warning."""
    folder = Path(folder)
    split_dirs = {s: folder / s for s in ("train", "test")}
    roots = split_dirs if all(d.is_dir() for d in split_dirs.values()) else {"all": folder}
    class_names = sorted(
        d.name for d in next(iter(roots.values())).iterdir() if d.is_dir() and not d.name.startswith(".")
    )
    if not class_names:
        raise NnsimError(f"{folder}: not a data set; an ImageFolder needs one sub-folder per class")
    warnings: list[str] = []
    loaded = {split: _read_class_folders(root, class_names, warnings) for split, root in roots.items()}
    counts = Counter(label for items in loaded.values() for _, label in items)
    warnings += [
        f"class {name!r} has no images: the network can never answer it"
        for label, name in enumerate(class_names)
        if not counts[label]
    ]
    everything = [item for items in loaded.values() for item in items]
    if not everything:
        raise NnsimError(f"{folder}: no readable images in its class folders")
    # the most common size wins; the rest are resized to it
    size = Counter(img.tensor.shape[-2:] for img, _ in everything).most_common(1)[0][0]
    gray = all(img.tensor.ndim == 2 for img, _ in everything)
    if "all" in loaded:
        x, y = _stack(loaded["all"], size, gray)
        order = np.random.default_rng(seed).permutation(len(x))
        n_test = int(round(len(x) * test_fraction)) if len(x) > 1 else 0
        test, train = order[:n_test], order[n_test:]
        x_train, y_train, x_test, y_test = x[train], y[train], x[test], y[test]
    else:
        x_train, y_train = _stack(loaded["train"], size, gray)
        x_test, y_test = _stack(loaded["test"], size, gray)
    return Dataset(folder.name, x_train, y_train, x_test, y_test, class_names, source=str(folder), warnings=warnings)


def _read_class_folders(root: Path, class_names: list[str], warnings: list[str]) -> list:
    """(image, label) for every readable image in root/CLASS/; each unreadable one adds a warning."""
    from nnsim.data.images import load_image

    items = []
    for label, class_name in enumerate(class_names):
        class_dir = root / class_name
        if not class_dir.is_dir():
            continue
        for path in sorted(class_dir.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                items.append((load_image(path), label))
            except NnsimError as error:
                warnings.append(f"skipped {error}")
    return items


def _stack(items: list, size: tuple[int, int], gray: bool) -> tuple[np.ndarray, np.ndarray]:
    """The images as one (N, C, H, W) float32 array (each made the common size and mode) and their labels."""
    height, width = size
    tensors = []
    for img, _ in items:
        t = img.tensor
        if t.shape[-2:] != (height, width) or (t.ndim == 2) != gray:
            t = _conform(t, "L" if gray else "RGB", (width, height))
        tensors.append(t[None] if t.ndim == 2 else t)
    x = np.stack(tensors).astype(np.float32) if tensors else np.zeros((0, 1 if gray else 3, height, width), np.float32)
    y = np.array([label for _, label in items], dtype=np.int64)
    return x, y


def _conform(tensor: np.ndarray, mode: str, size: tuple[int, int]) -> np.ndarray:
    """Resize/convert an already-loaded tensor to the folder's common size and mode."""
    from PIL import Image

    from nnsim.data.images import image_to_pixels

    image = Image.fromarray(image_to_pixels(tensor)).convert(mode).resize(size, Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    return pixels if mode == "L" else pixels.transpose(2, 0, 1)
