"""Every layer's backward against finite differences, in float64 (relative error < 1e-6)."""

import numpy as np
import pytest

from nnsim.engine import layers as L
from nnsim.engine.gradcheck import check_module, relative_error

F64 = np.float64


def cases(be, rng):
    return {
        "linear": (L.Linear(be, 5, 3, rng, F64), rng.standard_normal((4, 5))),
        "linear_on_tokens": (L.Linear(be, 5, 3, rng, F64), rng.standard_normal((2, 3, 5))),
        "conv_s1_p1": (L.Conv2d(be, 2, 3, 3, rng, stride=1, padding=1, dtype=F64), rng.standard_normal((2, 2, 5, 6))),
        "conv_s2_p0": (L.Conv2d(be, 1, 2, 3, rng, stride=2, padding=0, dtype=F64), rng.standard_normal((1, 1, 7, 7))),
        "conv_s2_p2": (L.Conv2d(be, 3, 2, 5, rng, stride=2, padding=2, dtype=F64), rng.standard_normal((2, 3, 6, 5))),
        "conv_relu": (
            L.Conv2d(be, 2, 3, 3, rng, padding=1, dtype=F64, activation="relu"),
            rng.standard_normal((2, 2, 5, 5)),
        ),
        "conv_block": (L.ConvBlock(be, 2, 3, 3, rng, padding=1, dtype=F64), rng.standard_normal((2, 2, 6, 7))),
        "maxpool": (L.MaxPool2d(be, 2), rng.standard_normal((2, 3, 5, 6))),
        "relu": (L.ReLU(be), rng.standard_normal((3, 7))),
        "sigmoid": (L.Sigmoid(be), 4 * rng.standard_normal((3, 7))),
        "tanh": (L.Tanh(be), 2 * rng.standard_normal((3, 7))),
        "identity": (L.Identity(be), rng.standard_normal((3, 7))),
        "gelu": (L.GELU(be), 2 * rng.standard_normal((3, 7))),
        "flatten": (L.Flatten(be), rng.standard_normal((2, 3, 4, 4))),
        "normalize": (L.Normalize(be, [0.2, 0.5], [0.3, 2.0], F64), rng.standard_normal((2, 2, 3, 3))),
        "layernorm": (L.LayerNorm(be, 6, F64), rng.standard_normal((2, 4, 6))),
        "patch_embed": (L.PatchEmbed(be, (2, 8, 8), 4, 6, rng, F64), rng.standard_normal((2, 2, 8, 8))),
        "attention": (L.MultiHeadSelfAttention(be, 8, 2, rng, F64), rng.standard_normal((2, 5, 8))),
        "transformer_block": (L.TransformerBlock(be, 8, 2, 16, rng, F64), rng.standard_normal((2, 5, 8))),
        "take_token": (L.TakeToken(be), rng.standard_normal((2, 5, 8))),
    }


@pytest.mark.parametrize(
    "name",
    [
        "linear",
        "linear_on_tokens",
        "conv_s1_p1",
        "conv_s2_p0",
        "conv_s2_p2",
        "conv_relu",
        "conv_block",
        "maxpool",
        "relu",
        "sigmoid",
        "tanh",
        "identity",
        "gelu",
        "flatten",
        "normalize",
        "layernorm",
        "patch_embed",
        "attention",
        "transformer_block",
        "take_token",
    ],
)
def test_layer_gradients(ref, name):
    rng = np.random.default_rng(1)
    module, x = cases(ref, rng)[name]
    errors = check_module(module, x, rng)
    assert max(errors.values()) < 1e-6, errors
    assert "input" in errors


def test_gradcheck_catches_a_wrong_backward(ref, rng):
    class OffByOnePercent(L.Linear):
        def backward(self, dy):
            return super().backward(dy) * 1.01

    errors = check_module(OffByOnePercent(ref, 4, 3, rng, F64), rng.standard_normal((2, 4)), rng)
    assert errors["input"] > 1e-3
    assert errors["weight"] < 1e-6


def test_relative_error_is_zero_for_equal_and_large_for_different():
    assert relative_error(np.ones(3), np.ones(3)) == 0
    assert relative_error(np.zeros(3), np.zeros(3)) == 0
    assert relative_error(np.ones(3), -np.ones(3)) == 1


def test_parameters_are_found_in_order(ref, rng):
    block = L.TransformerBlock(ref, 8, 2, 16, rng)
    names = [name for name, _ in block.named_parameters()]
    assert names[:2] == ["norm1.weight", "norm1.bias"]
    assert "mlp.layers.0.weight" in names and "attn.qkv.weight" in names
    assert len(names) == 12


def test_pytorch_style_initialisation_bounds(ref, rng):
    layer = L.Linear(ref, 100, 50, rng)
    assert layer.weight.value.dtype == np.float32
    assert np.abs(layer.weight.value).max() <= 0.1
    assert np.abs(layer.weight.value).max() > 0.09


def test_feature_maps_and_attention_are_exposed(ref, rng):
    conv = L.Conv2d(ref, 1, 4, 3, rng, padding=1)
    y = conv.forward(rng.random((2, 1, 6, 6)).astype(np.float32))
    assert conv.feature_map is y and y.shape == (2, 4, 6, 6)
    attn = L.MultiHeadSelfAttention(ref, 8, 2, rng)
    attn.forward(rng.random((3, 5, 8)).astype(np.float32))
    assert attn.attention.shape == (3, 2, 5, 5)
    np.testing.assert_allclose(attn.attention.sum(-1), 1, rtol=1e-5)
