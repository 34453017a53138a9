"""nnsim's three networks (MLP, CNN, ViT) in PyTorch, layer for layer as nnsim builds them.

`nnsim export CHECKPOINT --to pytorch DIR` copies this file to DIR/model.py, beside the weights
(model.safetensors), so a network trained in nnsim runs in PyTorch:

    from model import load
    net = load()                    # the trained network, in eval mode
    logits = net(pixels)            # pixels: N×C×H×W float32 in [0, 1]

`nnsim bench --compare torch` times the same classes. This file needs PyTorch alone (no nnsim).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

WEIGHTS = Path(__file__).with_name("model.safetensors")
ACTIVATIONS = {  # nnsim's names; GELU in its tanh form, as nnsim computes it
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "linear": nn.Identity,
    "gelu": lambda: nn.GELU(approximate="tanh"),
}


class Normalize(nn.Module):
    """(x − mean) / std per channel, with the training set's statistics (fixed, not learned)."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


class MLP(nn.Sequential):
    """Normalize, Flatten, then Linear + activation for each hidden layer, then Linear to logits."""

    def __init__(self, input_shape, classes, mean, std, hidden=(128, 64), activation="relu"):
        features = input_shape[0] * input_shape[1] * input_shape[2]
        layers = [Normalize(mean, std), nn.Flatten()]
        for size in hidden:
            layers += [nn.Linear(features, size), ACTIVATIONS[activation]()]
            features = size
        super().__init__(*layers, nn.Linear(features, classes))


class CNN(nn.Sequential):
    """Normalize, then Conv2d + ReLU + MaxPool2d for each block, Flatten, Linear, ReLU, Linear."""

    def __init__(self, input_shape, classes, mean, std, channels=(16, 32), kernel=3, hidden=64):
        c, h, w = input_shape
        layers = [Normalize(mean, std)]
        for out in channels:
            layers += [nn.Conv2d(c, out, kernel, padding=kernel // 2), nn.ReLU(), nn.MaxPool2d(2)]
            c, h, w = out, h // 2, w // 2
        layers += [nn.Flatten(), nn.Linear(c * h * w, hidden), nn.ReLU(), nn.Linear(hidden, classes)]
        super().__init__(*layers)


class PatchEmbed(nn.Module):
    """Cut the image into patch×patch squares, project each (E), prepend CLS, add positions."""

    def __init__(self, input_shape, patch, dim):
        super().__init__()
        c, h, w = input_shape
        self.patch = patch
        tokens = (h // patch) * (w // patch)
        self.projection = nn.Linear(c * patch * patch, dim)
        self.cls = nn.Parameter(0.02 * torch.randn(1, dim))
        self.positions = nn.Parameter(0.02 * torch.randn(tokens + 1, dim))

    def forward(self, x):
        n, c, _, _ = x.shape
        p = self.patch
        patches = x.unfold(2, p, p).unfold(3, p, p)  # (N, C, rows, cols, p, p)
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(n, -1, c * p * p)  # reading order
        cls = self.cls.expand(n, 1, -1)
        return torch.cat([cls, self.projection(patches)], dim=1) + self.positions


class SelfAttention(nn.Module):
    """Every token looks at every token: softmax(Q Kᵀ / √d) V in each head, heads concatenated."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):
        n, t, d = x.shape
        qkv = self.qkv(x).view(n, t, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (N, heads, T, d/heads)
        mixed = F.scaled_dot_product_attention(q, k, v)  # scaled by 1/√(d/heads)
        return self.out(mixed.transpose(1, 2).reshape(n, t, d))


class TransformerBlock(nn.Module):
    """Pre-LN: x + Attention(LayerNorm(x)), then x + MLP(LayerNorm(x)), MLP = Linear-GELU-Linear."""

    def __init__(self, dim, heads, mlp_dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(approximate="tanh"), nn.Linear(mlp_dim, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TakeToken(nn.Module):
    """Keeps the CLS token of each sequence, which summarises the image."""

    def forward(self, x):
        return x[:, 0]


class ViT(nn.Sequential):
    """Normalize, PatchEmbed, TransformerBlocks, LayerNorm, the CLS token, Linear to logits."""

    def __init__(self, input_shape, classes, mean, std, patch=7, dim=64, heads=4, depth=2, mlp_dim=128):
        blocks = [TransformerBlock(dim, heads, mlp_dim) for _ in range(depth)]
        head = [nn.LayerNorm(dim, eps=1e-5), TakeToken(), nn.Linear(dim, classes)]
        super().__init__(Normalize(mean, std), PatchEmbed(input_shape, patch, dim), *blocks, *head)


NETWORKS = {"mlp": MLP, "cnn": CNN, "vit": ViT}


def build(config: dict) -> nn.Module:
    """The network an nnsim model config describes (model, input_shape, classes, sizes, mean, std)."""
    network = NETWORKS[config["model"]]
    return network(config["input_shape"], config["classes"], config["mean"], config["std"], **config["sizes"])


def read_safetensors(path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a .safetensors file: 8 bytes of header length, a JSON header, the
    raw little-endian arrays. Read here so that the safetensors package is not needed."""
    data = Path(path).read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        if entry["dtype"] != "F32":
            raise ValueError(f"{path}: {name} is {entry['dtype']}; this reader knows F32 only")
        start, end = (8 + size + offset for offset in entry["data_offsets"])
        flat = torch.frombuffer(bytearray(data[start:end]), dtype=torch.float32)  # a little-endian CPU's order
        tensors[name] = flat.reshape(entry["shape"])
    return tensors, metadata


def load(path=WEIGHTS) -> nn.Module:
    """The network saved in `path`, with its weights, in eval mode; `.class_names` names its outputs."""
    weights, metadata = read_safetensors(path)
    net = build(json.loads(metadata["nnsim_config"]))
    net.load_state_dict(weights)
    net.class_names = json.loads(metadata["class_names"])
    return net.eval()
