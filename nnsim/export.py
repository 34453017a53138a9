"""`nnsim export CHECKPOINT --to pytorch DIR`: a trained network, as files PyTorch runs.

DIR receives model.py (nnsim/torch_models.py: the three networks as `torch.nn.Module`s and a
`load()`), model.safetensors (the weights under the module's own names, with the network's config
and class names in the header's metadata) and example.py (load and predict in three lines).
Writing them needs NumPy and the standard library only: torch is needed to run them, not to make them.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

import numpy as np

from nnsim import __version__
from nnsim.engine import layers as L
from nnsim.errors import NnsimError
from nnsim.resources import PACKAGE_DIR

FORMATS = ("pytorch",)
INSTALL_TORCH = (
    "pip install torch  (CPU only, smaller: pip install torch --index-url https://download.pytorch.org/whl/cpu)"
)


def add_parser(sub) -> None:
    export = sub.add_parser(
        "export",
        help="write a checkpoint's network as files another framework runs (PyTorch)",
        description="Write DIR/model.py (the network as a torch.nn.Module, with load()), DIR/model.safetensors "
        "(its weights) and DIR/example.py. Needs no PyTorch to write; running the files needs it. "
        "DIR must be new or empty: nothing is overwritten.",
    )
    export.add_argument("checkpoint", type=Path, metavar="CHECKPOINT", help="a checkpoint from train or the lab")
    export.add_argument("--to", choices=FORMATS, required=True, help="the framework to export to")
    export.add_argument("folder", type=Path, metavar="DIR", help="a new (or empty) folder for the files")
    export.set_defaults(handler=cmd_export)


def cmd_export(args) -> int:
    files = export_pytorch(args.checkpoint, args.folder)
    print(f"wrote {', '.join(str(path) for path in files)}")
    print(f"to run them: {INSTALL_TORCH}; then, in {args.folder}: python example.py")
    return 0


def export_pytorch(checkpoint, folder) -> list[Path]:
    """Write model.py, model.safetensors and example.py into `folder` (new or empty); their paths."""
    from nnsim.engine.checkpoint import load_checkpoint

    folder = Path(folder).expanduser()
    _check_folder(folder)
    model, meta = load_checkpoint(checkpoint)
    config = model.config.to_dict()
    class_names = meta.get("class_names") or [str(i) for i in range(model.config.classes)]
    metadata = {
        "format": "pt",
        "nnsim": __version__,
        "nnsim_config": json.dumps(config),
        "class_names": json.dumps(class_names),
    }
    files = {
        "model.py": (PACKAGE_DIR / "torch_models.py").read_bytes(),
        "model.safetensors": safetensors_bytes(torch_state(model), metadata),
        "example.py": example(model.config.input_shape).encode(),
    }
    _write_folder(folder, files)
    return [folder / name for name in files]


def torch_state(model) -> dict[str, np.ndarray]:
    """The state_dict of torch_models' twin of `model`: the same arrays under PyTorch's names.

    The twin has the same layers in the same order, except that nnsim's ConvBlock (one fused
    layer) is three there (Conv2d, ReLU, MaxPool2d), and a Sequential is indexed directly.
    """
    state: dict[str, np.ndarray] = {}
    index = 0  # the layer's place in the twin
    for layer_number, layer in enumerate(model.layers):
        if isinstance(layer, L.Normalize):
            channels = len(model.config.mean)
            state[f"{index}.mean"] = np.asarray(model.config.mean, dtype=np.float32).reshape(1, channels, 1, 1)
            state[f"{index}.std"] = np.asarray(model.config.std, dtype=np.float32).reshape(1, channels, 1, 1)
        prefix = f"layers.{layer_number}."
        for name, param in layer.named_parameters(prefix):
            own = name[len(prefix) :].replace("mlp.layers.", "mlp.")
            state[f"{index}.{own}"] = np.asarray(model.be.to_numpy(param.value), dtype=np.float32)
        index += 3 if isinstance(layer, L.ConvBlock) else 1
    return state


def safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """A .safetensors file: header length (u64, little-endian), a JSON header naming each array's
    dtype, shape and byte range, then the raw little-endian float32 arrays, one after another."""
    header: dict = {"__metadata__": metadata}
    chunks, offset = [], 0
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # the arrays start 8-byte aligned
    return len(text).to_bytes(8, "little") + text + b"".join(chunks)


def example(input_shape) -> str:
    c, h, w = input_shape
    return f'''"""Load the network nnsim exported beside this file and classify a batch of images."""

import torch
from model import load

net = load()  # the trained network, in eval mode, with its weights
pixels = torch.rand(4, {c}, {h}, {w})  # N×C×H×W float32 in [0, 1]: put your images here
print([net.class_names[i] for i in net(pixels).argmax(dim=1)])
'''


def _check_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise NnsimError(f"{folder}: is a file, not a folder; choose a new folder for the export")
    if folder.is_dir() and any(folder.iterdir()):
        raise NnsimError(f"{folder}: is not empty; choose a new folder (nothing was overwritten)")


def _write_folder(folder: Path, files: dict[str, bytes]) -> None:
    """All the files or none. A new folder is written as a temporary one beside it, then renamed;
    an empty folder that exists (perhaps the shell's current one) keeps its place and is filled."""
    if folder.is_dir():
        _fill(folder, files)
        return
    staging = folder.absolute().with_name(f".{folder.absolute().name}.{secrets.token_hex(4)}.part")
    try:
        staging.mkdir(parents=True)
        _fill(staging, files)
        os.rename(staging, folder)
    except OSError as error:
        raise NnsimError(f"{folder}: cannot write here ({error.strerror or error})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fill(folder: Path, files: dict[str, bytes]) -> None:
    try:
        for name, data in files.items():
            (folder / name).write_bytes(data)
    except OSError as error:
        for name in files:
            (folder / name).unlink(missing_ok=True)
        raise NnsimError(f"{folder}: cannot write here ({error.strerror or error})") from None
