"""The wheel carries what nnsim needs and works from any folder (not only from the checkout)."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Build the wheel, install it (no deps: the test environment has them) into a folder of its own."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(work), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(work.glob("nnsim-*.whl"))
    site = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    return wheel, site, elsewhere


def run(installed, *args):
    _, site, elsewhere = installed
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, "-m", "nnsim", *map(str, args)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_wheel_contents(installed):
    wheel, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert "nnsim/data/builtin/mnist-mini.npz" in names
    assert "nnsim/data/builtin/NOTICE.md" in names
    assert "nnsim/_shipped/sample_images/NOTICE.md" in names
    assert "nnsim/_shipped/sample_images/digits/7.png" in names
    assert "nnsim/_shipped/lessons/01-why-it-matters.md" in names
    assert "nnsim/data/builtin/lesson-cnn.npz" in names
    assert "nnsim/tui/nnsim.tcss" in names
    assert sum(zipfile.ZipFile(wheel).getinfo(n).file_size for n in names) < 8_000_000


def test_runs_from_another_folder(installed, tmp_path):
    _, site, elsewhere = installed
    where = subprocess.run(
        [sys.executable, "-c", "import nnsim; print(nnsim.__file__)"],
        cwd=elsewhere,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
    )
    assert where.stdout.startswith(str(site))
    assert run(installed, "data", "list").returncode == 0
    checkpoint = tmp_path / "m.npz"
    trained = run(
        installed,
        "train",
        "--model",
        "mlp",
        "--data",
        "mnist-mini",
        "--epochs",
        "1",
        "--json",
        "--backend",
        "reference",
        "--checkpoint",
        checkpoint,
    )
    assert trained.returncode == 0, trained.stderr
    done = json.loads(trained.stdout.splitlines()[-1])
    assert done["event"] == "done" and done["test_accuracy"] > 0.8
    digit = site / "nnsim" / "_shipped" / "sample_images" / "digits" / "4.png"
    predicted = run(installed, "predict", digit, "--checkpoint", checkpoint, "--json")
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)["top"][0]["class"] == "4"
    lessons = run(installed, "lessons", "check")
    assert lessons.returncode == 0, lessons.stdout + lessons.stderr
    shipped = len(list((Path(__file__).resolve().parents[1] / "lessons").glob("[0-9][0-9]-*.md")))
    assert shipped >= 5 and f"checked {shipped} lesson files: 0 problems" in lessons.stderr
