"""Checkpoints: a model's weights in a .npz file, with its JSON config inside, written atomically.

No pickle anywhere: the file is read with ``allow_pickle=False``, so opening a checkpoint from
someone else cannot run code. Writing goes to a temporary file that is renamed into place, so an
interrupted save never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nnsim import __version__
from nnsim.atomic import write_atomically
from nnsim.engine.models import Model, ModelConfig, model_from_config
from nnsim.errors import NnsimError
from nnsim.safe_npz import read_npz

FORMAT = "nnsim-checkpoint-1"
_PARAM_PREFIX = "param/"
_EXTRA_PREFIX = "extra/"


def save_checkpoint(path, model: Model, meta: dict | None = None, extra: dict[str, np.ndarray] | None = None) -> Path:
    """Write ``model``'s weights and config (plus ``meta``: class names, figures) to ``path``.

    ``extra`` holds further arrays by name (the optimizer's buffers, the best weights so far), for
    a resume that continues exactly where training stopped; `read_checkpoint` returns them too.
    """
    path = Path(path)
    header = {"format": FORMAT, "nnsim": __version__, "config": model.config.to_dict(), "meta": meta or {}}
    arrays = {_PARAM_PREFIX + name: value for name, value in model.state_dict().items()}
    arrays.update({_EXTRA_PREFIX + name: value for name, value in (extra or {}).items()})
    arrays["__header__"] = np.array(json.dumps(header))
    return write_atomically(path, lambda handle: np.savez(handle, **arrays))


def read_checkpoint(path) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, weights) from a checkpoint file, with every problem as one NnsimError."""
    arrays = read_npz(path, "checkpoint")
    if "__header__" not in arrays:
        raise NnsimError(f"{path}: not an nnsim checkpoint (no header)")
    try:
        header = json.loads(str(arrays["__header__"]))
    except json.JSONDecodeError as error:
        raise NnsimError(f"{path}: the checkpoint's header is damaged ({error})") from None
    weights = {k[len(_PARAM_PREFIX) :]: v for k, v in arrays.items() if k.startswith(_PARAM_PREFIX)}
    if header.get("format") != FORMAT:
        raise NnsimError(f"{path}: unknown checkpoint format {header.get('format')!r}")
    return header, weights


def load_checkpoint(path, backend=None, dtype=np.float32) -> tuple[Model, dict]:
    """Build the model a checkpoint describes and load its weights: (model, meta)."""
    header, weights = read_checkpoint(path)
    try:
        config = ModelConfig.from_dict(header["config"])
        model = model_from_config(config, backend=backend, dtype=dtype)
    except (KeyError, TypeError, ValueError) as error:
        raise NnsimError(f"{path}: the checkpoint's model config is damaged ({error})") from None
    _load_weights(model, weights, path)
    return model, header.get("meta", {})


def read_extra(path) -> dict[str, np.ndarray]:
    """The extra arrays a checkpoint was saved with (see save_checkpoint), by name."""
    arrays = read_npz(path, "checkpoint")
    return {k[len(_EXTRA_PREFIX) :]: v for k, v in arrays.items() if k.startswith(_EXTRA_PREFIX)}


def load_weights(model: Model, path) -> dict:
    """Load a checkpoint's weights into an existing model, refusing a different architecture."""
    header, weights = read_checkpoint(path)
    theirs = header.get("config", {})
    ours = model.config.to_dict()
    for key in ("model", "input_shape", "classes", "sizes"):
        if theirs.get(key) != ours[key]:
            raise NnsimError(
                f"{path}: the checkpoint holds a different network ({key}: {theirs.get(key)!r}, "
                f"this model has {ours[key]!r})"
            )
    _load_weights(model, weights, path)
    return header.get("meta", {})


def _load_weights(model: Model, weights: dict, path) -> None:
    expected = {name for name, _ in model.named_parameters()}
    if set(weights) != expected:
        missing = sorted(expected - set(weights))[:3]
        extra = sorted(set(weights) - expected)[:3]
        raise NnsimError(f"{path}: the weights do not match a {model.config.model} (missing {missing}, extra {extra})")
    for name, value in weights.items():
        if not np.isfinite(value).all():
            raise NnsimError(f"{path}: weight {name} holds NaN or infinity")
    model.load_state_dict(weights)
