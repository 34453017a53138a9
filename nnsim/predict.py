"""Classify image files with a checkpoint, adapting each image to what the network expects."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnsim.data.images import load_image
from nnsim.engine.checkpoint import load_checkpoint
from nnsim.engine.losses import softmax
from nnsim.errors import NnsimError


@dataclass
class Prediction:
    path: str
    notes: list[str]
    top: list[tuple[str, float]]  # (class name, probability), most likely first


def prepare_image(path, input_shape: tuple[int, int, int], background: float | None = None):
    """The image as the network's input (C, H, W), and what was done to it, in words."""
    channels, height, width = input_shape
    loaded = load_image(path, mode="L" if channels == 1 else "RGB", size=(width, height))
    tensor = loaded.tensor[None] if loaded.tensor.ndim == 2 else loaded.tensor
    notes = list(loaded.notes)
    if background is not None and channels == 1:
        edge = np.concatenate([tensor[0, 0], tensor[0, -1], tensor[0, :, 0], tensor[0, :, -1]]).mean()
        if (edge > 0.5) != (background > 0.5):
            tensor = 1.0 - tensor
            notes.append("inverted light and dark to match the training images' background")
    return tensor.astype(np.float32), notes


def top_classes(tensor: np.ndarray, model, meta: dict, top: int = 3) -> list[tuple[str, float]]:
    """The network's `top` most likely classes for one prepared input (C, H, W), most likely first."""
    names = meta.get("class_names") or [str(i) for i in range(model.config.classes)]
    logits = model.be.to_numpy(model.forward(model.be.asarray(tensor[None])))
    probs = softmax(logits.astype(np.float64))[0]
    return [(names[i], float(probs[i])) for i in np.argsort(-probs)[:top]]


def predict_paths(paths, model, meta: dict, top: int = 3):
    """Yield a Prediction or an NnsimError for each path, in order."""
    for path in paths:
        try:
            tensor, notes = prepare_image(path, model.config.input_shape, meta.get("background"))
        except NnsimError as error:
            yield error
            continue
        yield Prediction(str(path), notes, top_classes(tensor, model, meta, top))


def predict_files(
    paths: list[Path], checkpoint: Path, top: int = 3, backend: str = "reference", as_json: bool = False
) -> int:
    """The `nnsim predict` command: prints each result; exit 1 if any image failed."""
    from nnsim.engine.backends import get_backend

    model, meta = load_checkpoint(checkpoint, backend=get_backend(backend))
    failed = 0
    for result in predict_paths(paths, model, meta, top):
        if isinstance(result, NnsimError):
            failed += 1
            print(f"nnsim: error: {result}", file=sys.stderr)
            continue
        if as_json:
            print(
                json.dumps(
                    {
                        "image": result.path,
                        "notes": result.notes,
                        "top": [{"class": c, "probability": p} for c, p in result.top],
                    }
                ),
                flush=True,
            )
        else:
            _print_prediction(result)
    return 1 if failed else 0


def _print_prediction(result: Prediction) -> None:
    from rich.console import Console

    console = Console()
    best, p_best = result.top[0]
    console.print(f"[bold]{result.path}[/]: [green]{best}[/] ({p_best:.1%})")
    for note in result.notes:
        console.print(f"  [dim]· {note}[/]")
    for name, p in result.top:
        bar = "█" * int(round(p * 30))
        console.print(f"  {name:>12} {p:7.2%} {bar}")
