"""`nnsim export --to pytorch`: the files it writes run in PyTorch and give nnsim's logits."""

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnsim.data.dataset import Dataset
from nnsim.data.datasets import load_dataset
from nnsim.engine.checkpoint import load_checkpoint
from nnsim.engine.config import TrainConfig
from nnsim.engine.trainer import Trainer
from nnsim.export import export_pytorch
from tests.test_cli import ROOT, assert_one_line_error, nnsim

CASES = {  # name: (model, data, sizes): grey and colour images, every kind of layer nnsim has
    "mlp": ("mlp", "mnist-mini", {"hidden": [48, 24], "activation": "tanh"}),
    "cnn": ("cnn", "mnist-mini", {"channels": [6, 8], "kernel": 5, "hidden": 24}),
    "vit": ("vit", "shapes", {"dim": 32, "heads": 4, "depth": 2, "mlp_dim": 48}),
}


def _small(dataset: Dataset) -> Dataset:
    """300 training and 100 test images: enough for a few steps and the comparison."""
    return Dataset(
        dataset.name,
        dataset.x_train[:300],
        dataset.y_train[:300],
        dataset.x_test[:100],
        dataset.y_test[:100],
        dataset.class_names,
    )


@pytest.fixture(scope="module", params=list(CASES))
def trained(request, tmp_path_factory):
    """(checkpoint, the 100 test images) of a network trained for a few steps."""
    model, data, sizes = CASES[request.param]
    dataset = _small(load_dataset(data))
    path = tmp_path_factory.mktemp("export") / f"{model}.npz"
    config = TrainConfig(
        model=model,
        data=data,
        backend="reference",
        max_steps=6,
        batch_size=32,
        lr=0.05,
        sizes=sizes,
        checkpoint=str(path),
    )
    for _ in Trainer(config, dataset=dataset).run():
        pass
    return path, dataset.x_test


NO_TORCH = "PyTorch is not installed (pip install 'torch==2.13.0')"
needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason=NO_TORCH)


def _run(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """Python in `folder`, as a user runs the files there: PyTorch in its own process (never beside Numba)."""
    result = subprocess.run([sys.executable, *args], cwd=folder, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


RUN_MODEL = """
import json, sys
import numpy as np, torch
from model import load
net = load()
with torch.no_grad():
    np.save(sys.argv[2], net(torch.from_numpy(np.load(sys.argv[1]))).numpy())
print(json.dumps({"training": net.training, "class_names": net.class_names}))
"""


@needs_torch
def test_the_exported_model_gives_nnsims_logits(trained, tmp_path):
    checkpoint, images = trained
    export_pytorch(checkpoint, tmp_path / "out")
    np.save(tmp_path / "images.npy", images)
    result = _run(tmp_path / "out", "-c", RUN_MODEL, str(tmp_path / "images.npy"), str(tmp_path / "logits.npy"))
    model, meta = load_checkpoint(checkpoint)
    assert len(images) == 100 and images.dtype == np.float32
    ours, theirs = model.forward(images), np.load(tmp_path / "logits.npy")
    assert theirs.shape == ours.shape == (100, model.config.classes)
    np.testing.assert_allclose(theirs, ours, atol=1e-4, rtol=0)
    assert json.loads(result.stdout) == {"training": False, "class_names": meta["class_names"]}
    assert model.config.mean != [0.0] * len(model.config.mean)  # the Normalize step is really tested


@needs_torch
def test_the_example_runs_and_prints_class_names(trained, tmp_path):
    checkpoint, _ = trained
    export_pytorch(checkpoint, tmp_path / "out")
    lines = (tmp_path / "out" / "example.py").read_text().splitlines()
    assert len([line for line in lines if line and not line.startswith(("import", "from", '"""'))]) == 3
    result = _run(tmp_path / "out", "example.py")
    names = load_checkpoint(checkpoint)[1]["class_names"]
    printed = json.loads(result.stdout.replace("'", '"'))
    assert len(printed) == 4 and set(printed) <= set(names)


def test_the_exported_files_pass_ruff(trained, tmp_path):
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (the test extra installs it)")
    export_pytorch(trained[0], tmp_path / "out")
    files = [tmp_path / "out" / "model.py", tmp_path / "out" / "example.py"]
    for settings in (["--isolated"], ["--config", str(ROOT / "pyproject.toml")]):  # ruff's defaults, and ours
        result = subprocess.run([ruff, "check", *settings, *map(str, files)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_weights_file_is_safetensors(trained, tmp_path):
    """The layout the format defines, read with the standard library: any safetensors reader opens it."""
    checkpoint, _ = trained
    export_pytorch(checkpoint, tmp_path / "out")
    data = (tmp_path / "out" / "model.safetensors").read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    metadata = header.pop("__metadata__")
    assert all(isinstance(value, str) for value in metadata.values())
    assert json.loads(metadata["nnsim_config"]) == load_checkpoint(checkpoint)[0].config.to_dict()
    end = 0
    for entry in header.values():
        start, stop = entry["data_offsets"]
        assert entry["dtype"] == "F32" and start == end and stop - start == 4 * int(np.prod(entry["shape"]))
        end = stop
    assert 8 + size + end == len(data)


def test_export_on_the_command_line(trained, tmp_path):
    result = nnsim("export", trained[0], "--to", "pytorch", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["example.py", "model.py", "model.safetensors"]
    assert "pip install torch" in result.stdout
    assert (tmp_path / "out" / "model.py").read_text() == (ROOT / "nnsim" / "torch_models.py").read_text()


def test_export_into_an_empty_folder_the_current_one_too(trained, tmp_path):
    (tmp_path / "out").mkdir()
    export_pytorch(trained[0], tmp_path / "out")
    assert (tmp_path / "out" / "model.safetensors").is_file()
    (tmp_path / "here").mkdir()
    inode = (tmp_path / "here").stat().st_ino
    assert nnsim("export", trained[0], "--to", "pytorch", ".", cwd=tmp_path / "here").returncode == 0
    assert (tmp_path / "here").stat().st_ino == inode  # filled, not replaced under the shell that stands in it
    assert sorted(p.name for p in (tmp_path / "here").iterdir()) == ["example.py", "model.py", "model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here", "out"]  # no temporary folder left


def _damaged(tmp_path: Path) -> Path:
    path = tmp_path / "damaged.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    return path


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda tmp: [tmp / "missing.npz", "--to", "pytorch", tmp / "out"], "no such checkpoint"),
        (lambda tmp: [_damaged(tmp), "--to", "pytorch", tmp / "out"], "not a readable checkpoint"),
        (lambda tmp: [ROOT / "pyproject.toml", "--to", "pytorch", tmp / "out"], "not a readable checkpoint"),
        (lambda tmp: [tmp / "missing.npz", "--to", "onnx", tmp / "out"], "invalid choice: 'onnx'"),
        (lambda tmp: [tmp / "missing.npz", tmp / "out"], "--to"),
    ],
)
def test_bad_input_is_one_line(tmp_path, make, fragment):
    assert_one_line_error(nnsim("export", *make(tmp_path)), fragment)
    assert not (tmp_path / "out").exists()


def test_a_folder_with_files_is_refused_and_left_alone(trained, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.py").write_text("mine")
    assert_one_line_error(nnsim("export", trained[0], "--to", "pytorch", tmp_path / "out"), "is not empty")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["model.py"]
    assert (tmp_path / "out" / "model.py").read_text() == "mine"
    (tmp_path / "file").write_text("mine")
    assert_one_line_error(nnsim("export", trained[0], "--to", "pytorch", tmp_path / "file"), "is a file")


def test_help_names_the_files_and_the_format():
    result = nnsim("export", "--help")
    assert result.returncode == 0 and "pytorch" in result.stdout and "model.safetensors" in result.stdout
