"""The reference kernels against the formulas written out as plain loops."""

import math

import numpy as np
import pytest

from nnsim.engine.backends import available_backends, get_backend
from nnsim.errors import NnsimError


def naive_conv(x, w, b, stride, padding):
    """Y[n,co,h,w] = b[co] + Σ_ci Σ_m Σ_k K[co,ci,m,k] X[n,ci,h·s+m,w·s+k], as loops."""
    n, c_in, height, width = x.shape
    c_out, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    h_out = (height + 2 * padding - kh) // stride + 1
    w_out = (width + 2 * padding - kw) // stride + 1
    y = np.zeros((n, c_out, h_out, w_out))
    for i in range(n):
        for co in range(c_out):
            for h in range(h_out):
                for col in range(w_out):
                    patch = xp[i, :, h * stride : h * stride + kh, col * stride : col * stride + kw]
                    y[i, co, h, col] = b[co] + np.sum(w[co] * patch)
    return y


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 0), (2, 1), (1, 2), (2, 2)])
def test_conv_forward_matches_the_formula(ref, rng, stride, padding):
    x = rng.standard_normal((2, 3, 7, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    y = ref.conv2d_forward(x, w, b, stride, padding)
    np.testing.assert_allclose(y, naive_conv(x, w, b, stride, padding), rtol=1e-12, atol=1e-12)


def test_conv_backward_matches_finite_differences_of_the_formula(ref, rng):
    x = rng.standard_normal((2, 2, 5, 5))
    w = rng.standard_normal((3, 2, 3, 3))
    b = rng.standard_normal(3)
    dy = rng.standard_normal(ref.conv2d_forward(x, w, b, 2, 1).shape)
    dx, dw, db = ref.conv2d_backward(x, w, dy, 2, 1)
    h = 1e-6
    for array, grad in ((x, dx), (w, dw), (b, db)):
        flat, gflat = array.reshape(-1), grad.reshape(-1)
        for i in range(0, flat.size, 7):
            old = flat[i]
            flat[i] = old + h
            plus = np.sum(dy * naive_conv(x, w, b, 2, 1))
            flat[i] = old - h
            minus = np.sum(dy * naive_conv(x, w, b, 2, 1))
            flat[i] = old
            assert gflat[i] == pytest.approx((plus - minus) / (2 * h), rel=1e-6, abs=1e-8)


def test_matmul_plain_and_batched(ref, rng):
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 4))
    np.testing.assert_allclose(ref.matmul(a, b), a @ b)
    a, b = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 3, 4))
    np.testing.assert_allclose(ref.matmul(a, b)[1], a[1] @ b[1])


def test_attention_forward_matches_the_formula(ref, rng):
    q, k, v = (rng.standard_normal((2, 3, 5, 4)) for _ in range(3))
    out, probs = ref.attention_forward(q, k, v)
    for n in range(2):
        for head in range(3):
            scores = q[n, head] @ k[n, head].T / math.sqrt(4)
            p = np.exp(scores - scores.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            np.testing.assert_allclose(probs[n, head], p, rtol=1e-12)
            np.testing.assert_allclose(out[n, head], p @ v[n, head], rtol=1e-12)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0)


def test_attention_backward_against_finite_differences(ref, rng):
    q, k, v = (rng.standard_normal((1, 2, 3, 4)) for _ in range(3))
    dout = rng.standard_normal((1, 2, 3, 4))
    _, probs = ref.attention_forward(q, k, v)
    grads = ref.attention_backward(q, k, v, probs, dout)
    h = 1e-6
    for array, grad in zip((q, k, v), grads, strict=True):
        flat, gflat = array.reshape(-1), grad.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + h
            plus = np.sum(dout * ref.attention_forward(q, k, v)[0])
            flat[i] = old - h
            minus = np.sum(dout * ref.attention_forward(q, k, v)[0])
            flat[i] = old
            assert gflat[i] == pytest.approx((plus - minus) / (2 * h), rel=1e-5, abs=1e-8)


def test_maxpool_picks_the_window_maximum(ref):
    x = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)
    y, argmax = ref.maxpool2d_forward(x, 2)
    np.testing.assert_array_equal(y[0, 0], [[5, 7], [13, 15]])
    dx = ref.maxpool2d_backward(np.ones_like(y), argmax, x.shape, 2)
    assert dx.sum() == y.size and dx[0, 0, 1, 1] == 1 and dx[0, 0, 0, 0] == 0


def test_patchify_round_trip_in_reading_order(ref, rng):
    x = rng.standard_normal((2, 3, 8, 8))
    patches = ref.patchify(x, 4)
    assert patches.shape == (2, 4, 48)
    np.testing.assert_array_equal(patches[0, 1], x[0, :, 0:4, 4:8].reshape(-1))
    np.testing.assert_array_equal(ref.patchify_backward(patches, x.shape, 4), x)


def test_float32_stays_float32(ref, rng):
    x = rng.standard_normal((2, 1, 5, 5)).astype(np.float32)
    w = rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    b = np.zeros(2, np.float32)
    assert ref.conv2d_forward(x, w, b, 1, 1).dtype == np.float32
    assert all(g.dtype == np.float32 for g in ref.conv2d_backward(x, w, np.ones((2, 2, 5, 5), np.float32), 1, 1))
    for name in ("relu", "sigmoid", "tanh", "linear", "gelu"):
        assert ref.activation_forward(name, x).dtype == np.float32


def test_activations_match_the_table(ref):
    z = np.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(ref.activation_forward("relu", z), [0, 0, 0, 0.5, 3])
    np.testing.assert_allclose(ref.activation_forward("sigmoid", z), 1 / (1 + np.exp(-z)))
    np.testing.assert_allclose(ref.activation_forward("tanh", z), np.tanh(z))
    np.testing.assert_allclose(ref.activation_forward("linear", z), z)
    big = np.array([-1000.0, 1000.0])
    np.testing.assert_allclose(ref.activation_forward("sigmoid", big), [0, 1])


def test_backend_registry(ref):
    assert get_backend("reference") is ref
    assert "reference" in available_backends()
    # no GPU here (the CUDA simulator is never picked): auto is the Numba cpu backend, or the
    # reference where Numba is missing
    expected = "cpu" if "cpu" in available_backends() else "reference"
    assert get_backend("auto").name == expected
    with pytest.raises(NnsimError, match="unknown backend"):
        get_backend("tpu")


def test_gelu_and_layer_norm_are_their_formulas(ref, rng):
    """The reference itself against the written formulas (the fast backends are checked against it)."""
    import math

    z = np.linspace(-5, 5, 41)
    gelu = np.array([0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3))) for v in z])
    np.testing.assert_allclose(ref.activation_forward("gelu", z), gelu, rtol=1e-12, atol=1e-15)
    x, gamma, beta = rng.standard_normal((3, 5)), rng.standard_normal(5), rng.standard_normal(5)
    y, _, _ = ref.layernorm_forward(x, gamma, beta, eps=1e-5)
    for row, out in zip(x, y, strict=True):
        mean = sum(row) / len(row)
        var = sum((v - mean) ** 2 for v in row) / len(row)  # the biased variance, as PyTorch's LayerNorm
        expected = [(v - mean) / math.sqrt(var + 1e-5) * g + b for v, g, b in zip(row, gamma, beta, strict=True)]
        np.testing.assert_allclose(out, expected, rtol=1e-10)
