"""The same three networks in PyTorch, for `nnsim bench --compare torch` (extra `torch`).

Architectures match nnsim.engine.models exactly (GELU in its tanh form, pre-LN blocks, CLS token,
learned positions, final LayerNorm), so that a step does the same arithmetic in both.
"""

from __future__ import annotations

import torch
from torch import nn


class Normalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


def cnn(input_shape=(1, 28, 28), classes=10, channels=(16, 32), hidden=64):
    c, h, w = input_shape
    layers = [Normalize([0.0] * c, [1.0] * c)]
    for out in channels:
        layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        c, h, w = out, h // 2, w // 2
    layers += [nn.Flatten(), nn.Linear(c * h * w, hidden), nn.ReLU(), nn.Linear(hidden, classes)]
    return nn.Sequential(*layers)


def mlp(input_shape=(1, 28, 28), classes=10, hidden=(128, 64)):
    features = input_shape[0] * input_shape[1] * input_shape[2]
    layers = [nn.Flatten()]
    for size in hidden:
        layers += [nn.Linear(features, size), nn.ReLU()]
        features = size
    return nn.Sequential(*layers, nn.Linear(features, classes))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(approximate="tanh"), nn.Linear(mlp_dim, dim))

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    def __init__(self, input_shape=(1, 28, 28), classes=10, patch=7, dim=64, heads=4, depth=2, mlp_dim=128):
        super().__init__()
        c, h, w = input_shape
        self.patch = patch
        tokens = (h // patch) * (w // patch)
        self.embed = nn.Linear(c * patch * patch, dim)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.positions = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp_dim) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        n, c, _, _ = x.shape
        p = self.patch
        patches = x.unfold(2, p, p).unfold(3, p, p)  # (N, C, rows, cols, p, p)
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(n, -1, c * p * p)
        z = torch.cat([self.cls.expand(n, -1, -1), self.embed(patches)], dim=1) + self.positions
        return self.head(self.norm(self.blocks(z))[:, 0])


def build(name: str, input_shape=(1, 28, 28), classes=10):
    if name == "cnn":
        return cnn(input_shape, classes)
    if name == "mlp":
        return mlp(input_shape, classes)
    return ViT(input_shape, classes, patch=8 if input_shape[1] >= 32 else 7)
