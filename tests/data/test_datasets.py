"""Data sets: built-ins, .npz, IDX folders, ImageFolders, the validation split, and bad input."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nnsim.data.dataset import STATS_CHUNK, Dataset, split_validation
from nnsim.data.datasets import load_dataset, read_idx
from nnsim.errors import NnsimError

SHARED_MNIST = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "mnist"


def test_mnist_mini_is_real_balanced_mnist():
    data = load_dataset("mnist-mini")
    assert data.x_train.shape == (10_000, 1, 28, 28) and data.x_test.shape == (2_000, 1, 28, 28)
    assert data.x_train.dtype == np.float32 and 0 <= data.x_train.min() and data.x_train.max() == 1.0
    assert np.bincount(data.y_train).tolist() == [1000] * 10
    assert np.bincount(data.y_test).tolist() == [200] * 10
    mean, std = data.channel_stats()
    assert mean[0] == pytest.approx(0.1307, abs=0.005) and std[0] == pytest.approx(0.3081, abs=0.005)
    assert "CC BY-SA" in data.source


def test_channel_stats_are_numpys_mean_and_std_per_channel_over_several_chunks():
    rng = np.random.default_rng(0)
    x = rng.random((2 * STATS_CHUNK + 7, 3, 5, 6), dtype=np.float32) * np.float32([1, 4, 9])[:, None, None] + 2
    mean, std = Dataset("colours", x, np.zeros(len(x), int), x[:1], np.zeros(1, int), ["a", "b"]).channel_stats()
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3), dtype=np.float64), rtol=1e-12)
    np.testing.assert_allclose(std, x.std(axis=(0, 2, 3), dtype=np.float64), rtol=1e-10)


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="shared MNIST files not beside the checkout")
def test_mnist_mini_images_are_taken_from_the_real_files():
    mini = load_dataset("mnist-mini")
    test = read_idx(SHARED_MNIST / "t10k-images-idx3-ubyte.gz")
    first = (mini.x_test[0, 0] * 255).round().astype(np.uint8)
    assert any(np.array_equal(first, image) for image in test)


def test_shapes_are_rgb_and_imbalanced_is_imbalanced():
    shapes = load_dataset("shapes")
    assert shapes.input_shape == (3, 32, 32) and shapes.classes == 5
    assert len(set(np.bincount(shapes.y_train))) == 1
    rare = load_dataset("shapes-imbalanced")
    counts = np.bincount(rare.y_train)
    assert counts[0] > 10 * counts[-1]
    assert len(set(np.bincount(rare.y_test))) == 1  # measured on a balanced test set
    again = load_dataset("shapes")
    np.testing.assert_array_equal(shapes.x_train[:5], again.x_train[:5])  # procedural, but fixed


def test_shapes_are_drawn_once_and_each_load_gets_its_own_arrays():
    from nnsim.data import synthetic

    first = load_dataset("shapes", seed=3)
    drawn = synthetic._shapes_arrays.cache_info().misses
    first.x_train[0] = 7.0  # a run that changed its images in place
    first.y_train[0] = -1
    second = load_dataset("shapes", seed=3)
    assert synthetic._shapes_arrays.cache_info().misses == drawn  # from the cache, not drawn again
    assert second.x_train.max() <= 1.0 and second.y_train.min() >= 0
    assert not np.shares_memory(first.x_train, second.x_train)
    assert not np.array_equal(load_dataset("shapes", seed=4).x_train[:5], second.x_train[:5])  # the seed still counts


def test_validation_split_is_fixed_by_the_seed():
    x = np.arange(100).reshape(100, 1, 1, 1).astype(np.float32)
    y = np.arange(100)
    a = split_validation(x, y, 0.1, seed=1)
    b = split_validation(x, y, 0.1, seed=1)
    c = split_validation(x, y, 0.1, seed=2)
    assert len(a[2]) == 10 and len(a[0]) == 90
    np.testing.assert_array_equal(a[3], b[3])
    assert not np.array_equal(a[3], c[3])
    assert not set(a[1]) & set(a[3])


# ------------------------------------------------------------------------------------ .npz
def test_keras_npz_in_every_layout(tmp_path):
    rng = np.random.default_rng(0)
    for name, shape, expected in [
        ("nhw", (5, 6, 7), (1, 6, 7)),
        ("nhwc", (5, 6, 7, 3), (3, 6, 7)),
        ("nchw", (5, 3, 6, 7), (3, 6, 7)),
    ]:
        x = rng.integers(0, 256, shape, dtype=np.uint8)
        np.savez(
            tmp_path / f"{name}.npz", x_train=x, y_train=np.arange(5) % 2, x_test=x[:2], y_test=np.array([[0], [1]])
        )
        data = load_dataset(tmp_path / f"{name}.npz")
        assert data.input_shape == expected and data.classes == 2
        as_nchw = x[:, None] if name == "nhw" else x.transpose(0, 3, 1, 2) if name == "nhwc" else x
        np.testing.assert_array_equal(data.x_train, as_nchw.astype(np.float32) / np.float32(255))


def test_npz_with_wrong_keys(tmp_path):
    np.savez(tmp_path / "bad.npz", images=np.zeros((2, 3, 3)), labels=np.zeros(2))
    with pytest.raises(NnsimError, match="needs x_train, y_train, x_test, y_test"):
        load_dataset(tmp_path / "bad.npz")


def test_npz_with_pickled_objects(tmp_path):
    np.savez(
        tmp_path / "evil.npz",
        x_train=np.array([object()], dtype=object),
        y_train=np.zeros(1),
        x_test=np.zeros((1, 2, 2)),
        y_test=np.zeros(1),
    )
    with pytest.raises(NnsimError, match="pickled"):
        load_dataset(tmp_path / "evil.npz")


def test_npz_that_is_not_a_zip(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(NnsimError, match="not a readable"):
        load_dataset(tmp_path / "text.npz")


def test_npz_with_mismatched_lengths(tmp_path):
    np.savez(
        tmp_path / "m.npz",
        x_train=np.zeros((3, 4, 4)),
        y_train=np.zeros(2, int),
        x_test=np.zeros((1, 4, 4)),
        y_test=np.zeros(1, int),
    )
    with pytest.raises(NnsimError, match="3 train images but 2 labels"):
        load_dataset(tmp_path / "m.npz")


# ------------------------------------------------------------------------------------ IDX
def write_idx(path, array, magic_type=0x08, compress=False):
    header = bytes([0, 0, magic_type, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


def make_idx_folder(folder, compress=False):
    folder.mkdir()
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", rng.integers(0, 256, (6, 28, 28)), compress=compress)
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", np.arange(6) % 3, compress=compress)
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", rng.integers(0, 256, (2, 28, 28)), compress=compress)
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", np.array([0, 2]), compress=compress)
    return folder


@pytest.mark.parametrize("compress", [False, True])
def test_idx_folder(tmp_path, compress):
    data = load_dataset(make_idx_folder(tmp_path / "idx", compress))
    assert data.x_train.shape == (6, 1, 28, 28) and data.y_test.tolist() == [0, 2] and data.classes == 3


def test_idx_with_a_bad_magic(tmp_path):
    folder = make_idx_folder(tmp_path / "idx")
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(6), magic_type=0x0D)
    with pytest.raises(NnsimError, match="bad magic"):
        load_dataset(folder)


def test_idx_truncated(tmp_path):
    folder = make_idx_folder(tmp_path / "idx")
    path = folder / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(NnsimError, match="header says"):
        load_dataset(folder)


def test_idx_folder_missing_files(tmp_path):
    folder = make_idx_folder(tmp_path / "idx")
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(NnsimError, match="but not t10k-labels"):
        load_dataset(folder)


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="shared MNIST files not beside the checkout")
def test_the_real_mnist_folder():
    data = load_dataset(SHARED_MNIST)
    assert len(data.x_train) == 60_000 and len(data.x_test) == 10_000
    assert np.bincount(data.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ------------------------------------------------------------------------------------ ImageFolder
def make_image_folder(root, per_class=5):
    rng = np.random.default_rng(0)
    for name, value in (("cats", 30), ("dogs", 220)):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(value, 10, (8, 8, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_image_folder_with_an_unreadable_file(tmp_path):
    root = make_image_folder(tmp_path / "pets")
    (root / "dogs" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (root / "dogs" / "notes.txt").write_text("ignored: not an image suffix")
    data = load_dataset(root)
    assert data.class_names == ["cats", "dogs"]
    assert len(data.x_train) + len(data.x_test) == 10 and data.input_shape == (3, 8, 8)
    assert len(data.warnings) == 1 and "broken.jpg" in data.warnings[0]


def test_image_folder_with_train_and_test_and_mixed_sizes(tmp_path):
    make_image_folder(tmp_path / "set" / "train")
    make_image_folder(tmp_path / "set" / "test", per_class=2)
    Image.new("L", (16, 12), 0).save(tmp_path / "set" / "train" / "cats" / "odd.png")
    data = load_dataset(tmp_path / "set")
    assert len(data.x_train) == 11 and len(data.x_test) == 4
    assert data.x_train.shape[1:] == (3, 8, 8)


def test_empty_folder_and_missing_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(NnsimError, match="one sub-folder per class"):
        load_dataset(tmp_path / "empty")
    with pytest.raises(NnsimError, match="no such file or folder"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "a.csv").write_text("1,2")
    with pytest.raises(NnsimError, match="not a data set"):
        load_dataset(tmp_path / "a.csv")


def test_an_empty_class_folder_is_reported(tmp_path):
    root = make_image_folder(tmp_path / "pets")
    (root / "birds").mkdir()
    data = load_dataset(root)
    assert data.class_names == ["birds", "cats", "dogs"]
    assert data.warnings == ["class 'birds' has no images: the network can never answer it"]


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_device_or_a_fifo_is_not_a_data_set(tmp_path, kind):
    import os

    path = Path("/dev/zero") if kind == "device" else tmp_path / "pipe.npz"
    if kind == "fifo":
        os.mkfifo(path)
    with pytest.raises(NnsimError, match="not a data set: a device or a pipe"):
        load_dataset(path)


def test_findable_dataset_not_present_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("NNSIM_DATA", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NnsimError, match="nnsim data download fashion-mnist"):
        load_dataset("fashion-mnist")


def test_findable_dataset_in_the_keras_place(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NNSIM_DATA", str(tmp_path / "nnsim"))
    keras = tmp_path / ".keras" / "datasets"
    keras.mkdir(parents=True)
    np.savez(
        keras / "mnist.npz",
        x_train=np.zeros((4, 28, 28), np.uint8),
        y_train=np.arange(4),
        x_test=np.zeros((2, 28, 28), np.uint8),
        y_test=np.arange(2),
    )
    data = load_dataset("mnist")
    assert data.name == "mnist" and data.class_names[3] == "3" and len(data.x_train) == 4
