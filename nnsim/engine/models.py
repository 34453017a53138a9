"""The three networks the lab trains: an MLP, a small CNN and a small ViT.

``build_model(name, input_shape, classes, ...)`` gives a ``Model``: a ``Sequential`` that also
carries its config (everything needed to build it again, for checkpoints).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnsim.engine import layers as L
from nnsim.engine.backends import get_backend
from nnsim.errors import NnsimError

MODEL_NAMES = ("mlp", "cnn", "vit")

DEFAULT_SIZES = {
    "mlp": {"hidden": [128, 64], "activation": "relu"},
    "cnn": {"channels": [16, 32], "kernel": 3, "hidden": 64},
    "vit": {"patch": None, "dim": 64, "heads": 4, "depth": 2, "mlp_dim": 128},
}


@dataclass
class ModelConfig:
    """What a model is: enough to build it again, weights aside."""

    model: str
    input_shape: tuple[int, int, int]
    classes: int
    sizes: dict
    mean: list[float]
    std: list[float]

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "input_shape": list(self.input_shape),
            "classes": self.classes,
            "sizes": self.sizes,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        return cls(
            model=data["model"],
            input_shape=tuple(int(v) for v in data["input_shape"]),
            classes=int(data["classes"]),
            sizes=dict(data["sizes"]),
            mean=[float(v) for v in data["mean"]],
            std=[float(v) for v in data["std"]],
        )


class Model(L.Sequential):
    """A network: normalisation, then its layers. ``forward`` maps images to logits."""

    def __init__(self, backend, config: ModelConfig, layers: list[L.Module]):
        super().__init__(backend, layers)
        self.config = config
        # nothing learns from the image's own gradient: stop backprop at the first learned layer
        for layer in layers:
            layer.needs_input_grad = False
            if layer.parameters():
                break

    def parameter_count(self) -> int:
        return int(sum(np.prod(p.value.shape) for p in self.parameters()))

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every weight, by name, as NumPy arrays (later updates leave it alone)."""
        return {name: np.array(self.be.to_numpy(p.value), copy=True) for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for name, param in self.named_parameters():
            value = np.asarray(state[name])
            if value.shape != tuple(param.value.shape):
                raise NnsimError(f"weight {name} has shape {value.shape}, the model needs {param.value.shape}")
            param.value = self.be.asarray(value.astype(self.be.to_numpy(param.value).dtype))

    def conv_layers(self) -> list[L.Conv2d]:
        return [layer for layer in self.layers if isinstance(layer, L.Conv2d)]

    def attention_layers(self) -> list[L.MultiHeadSelfAttention]:
        return [layer.attn for layer in self.layers if isinstance(layer, L.TransformerBlock)]


def build_model(
    name: str,
    input_shape=(1, 28, 28),
    classes: int = 10,
    *,
    backend=None,
    seed: int = 0,
    dtype=np.float32,
    mean=None,
    std=None,
    **sizes,
) -> Model:
    """Build "mlp", "cnn" or "vit" for images of ``input_shape`` (C, H, W) and ``classes`` classes.

    ``sizes`` override the defaults of DEFAULT_SIZES (e.g. ``channels=[8, 16]`` for the CNN).
    ``mean``/``std`` are the per-channel statistics the first layer normalises with.
    """
    if name not in MODEL_NAMES:
        raise NnsimError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    backend = backend if backend is not None else get_backend("reference")
    channels = int(input_shape[0])
    merged = {**DEFAULT_SIZES[name], **{k: v for k, v in sizes.items() if v is not None}}
    if name == "vit" and merged["patch"] is None:
        merged["patch"] = 8 if input_shape[1] % 8 == 0 and input_shape[1] >= 32 else 7
    config = ModelConfig(
        model=name,
        input_shape=tuple(int(v) for v in input_shape),
        classes=int(classes),
        sizes=merged,
        mean=list(mean) if mean is not None else [0.0] * channels,
        std=list(std) if std is not None else [1.0] * channels,
    )
    return model_from_config(config, backend=backend, seed=seed, dtype=dtype)


def model_from_config(config: ModelConfig, *, backend=None, seed: int = 0, dtype=np.float32) -> Model:
    backend = backend if backend is not None else get_backend("reference")
    rng = np.random.default_rng(seed)
    builder = {"mlp": _mlp, "cnn": _cnn, "vit": _vit}[config.model]
    body = builder(backend, config, rng, dtype)
    normalize = L.Normalize(backend, config.mean, config.std, dtype)
    return Model(backend, config, [normalize, *body])


def _mlp(be, config: ModelConfig, rng, dtype) -> list[L.Module]:
    sizes = config.sizes
    features = int(np.prod(config.input_shape))
    body: list[L.Module] = [L.Flatten(be)]
    for hidden in sizes["hidden"]:
        body += [L.Linear(be, features, hidden, rng, dtype), L.Activation(be, sizes["activation"])]
        features = hidden
    return body + [L.Linear(be, features, config.classes, rng, dtype)]


def _cnn(be, config: ModelConfig, rng, dtype) -> list[L.Module]:
    sizes = config.sizes
    in_channels, height, width = config.input_shape
    kernel = sizes["kernel"]
    body: list[L.Module] = []
    for out_channels in sizes["channels"]:
        body.append(L.ConvBlock(be, in_channels, out_channels, kernel, rng, padding=kernel // 2, pool=2, dtype=dtype))
        in_channels, height, width = out_channels, height // 2, width // 2
    if height < 1 or width < 1:
        raise NnsimError(f"images of {config.input_shape} are too small for {len(sizes['channels'])} pooling steps")
    return body + [
        L.Flatten(be),
        L.Linear(be, in_channels * height * width, sizes["hidden"], rng, dtype),
        L.ReLU(be),
        L.Linear(be, sizes["hidden"], config.classes, rng, dtype),
    ]


def _vit(be, config: ModelConfig, rng, dtype) -> list[L.Module]:
    sizes = config.sizes
    patch, dim = sizes["patch"], sizes["dim"]
    if config.input_shape[1] < patch or config.input_shape[2] < patch:
        raise NnsimError(f"images of {config.input_shape} are smaller than one {patch}×{patch} patch")
    body: list[L.Module] = [L.PatchEmbed(be, config.input_shape, patch, dim, rng, dtype)]
    body += [L.TransformerBlock(be, dim, sizes["heads"], sizes["mlp_dim"], rng, dtype) for _ in range(sizes["depth"])]
    return body + [L.LayerNorm(be, dim, dtype), L.TakeToken(be, 0), L.Linear(be, dim, config.classes, rng, dtype)]
