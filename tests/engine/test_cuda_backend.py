"""Parity of every CUDA kernel with the reference backend, in Numba's CUDA simulator.

Shapes are tiny because the simulator runs each GPU thread as Python. On a machine with a GPU,
`NUMBA_ENABLE_CUDASIM=0 pytest tests/engine/test_cuda_backend.py` runs the same checks for real.
"""

import numpy as np
import pytest

from nnsim.errors import NnsimError

cuda = pytest.importorskip("numba.cuda", reason="the cuda extra (numba-cuda) is not installed")
pytestmark = pytest.mark.cuda_sim

RTOL = 1e-4


@pytest.fixture(scope="module")
def gpu():
    from nnsim.engine.backends import get_backend

    try:
        return get_backend("cuda")
    except NnsimError as error:
        pytest.skip(str(error))


def close(backend, actual, expected, rtol=RTOL):
    actual = backend.to_numpy(actual).astype(np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape
    scale = max(np.abs(expected).max(), 1e-30)
    assert np.abs(actual - expected).max() <= rtol * scale


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def test_matmul_and_linear(gpu, ref, rng):
    a, b = rand(rng, 5, 19), rand(rng, 19, 7)
    close(gpu, gpu.matmul(a, b), a @ b)
    x, w, bias, dy = rand(rng, 2, 3, 5), rand(rng, 4, 5), rand(rng, 4), rand(rng, 2, 3, 4)
    close(gpu, gpu.linear_forward(*map(gpu.asarray, (x, w, bias))), ref.linear_forward(x, w, bias))
    for mine, theirs in zip(
        gpu.linear_backward(*map(gpu.asarray, (x, w, dy))), ref.linear_backward(x, w, dy), strict=True
    ):
        close(gpu, mine, theirs)


@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 0), (2, 2)])
def test_conv(gpu, ref, rng, stride, padding):
    x, w, b = rand(rng, 2, 2, 6, 5), rand(rng, 3, 2, 3, 3), rand(rng, 3)
    y = ref.conv2d_forward(x, w, b, stride, padding, relu=True)
    close(gpu, gpu.conv2d_forward(*map(gpu.asarray, (x, w, b)), stride, padding, relu=True), y)
    dy = rand(rng, *y.shape)
    mine = gpu.conv2d_backward(*map(gpu.asarray, (x, w, dy)), stride, padding, relu_output=gpu.asarray(y))
    for a, b_ in zip(mine, ref.conv2d_backward(x, w, dy, stride, padding, relu_output=y), strict=True):
        close(gpu, a, b_)


def test_conv_block_and_pool(gpu, ref, rng):
    x, w, b = rand(rng, 2, 1, 7, 6), rand(rng, 3, 1, 3, 3), rand(rng, 3)
    pooled, argmax = ref.conv_block_forward(x, w, b, 1, 1, 2)
    pooled_gpu, argmax_gpu = gpu.conv_block_forward(*map(gpu.asarray, (x, w, b)), 1, 1, 2)
    close(gpu, pooled_gpu, pooled)
    dp = rand(rng, *pooled.shape)
    mine = gpu.conv_block_backward(gpu.asarray(x), gpu.asarray(w), gpu.asarray(dp), pooled_gpu, argmax_gpu, 1, 1, 2)
    for a, b_ in zip(mine, ref.conv_block_backward(x, w, dp, pooled, argmax, 1, 1, 2), strict=True):
        close(gpu, a, b_)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "linear", "gelu"])
def test_activations(gpu, ref, rng, name):
    z, dy = 3 * rand(rng, 3, 7), rand(rng, 3, 7)
    close(gpu, gpu.activation_forward(name, gpu.asarray(z)), ref.activation_forward(name, z))
    close(gpu, gpu.activation_backward(name, gpu.asarray(z), gpu.asarray(dy)), ref.activation_backward(name, z, dy))


def test_layernorm(gpu, ref, rng):
    x, gamma, beta, dy = rand(rng, 2, 3, 6), rand(rng, 6), rand(rng, 6), rand(rng, 2, 3, 6)
    y, xhat, rstd = gpu.layernorm_forward(*map(gpu.asarray, (x, gamma, beta)))
    y_ref, xhat_ref, rstd_ref = ref.layernorm_forward(x, gamma, beta)
    close(gpu, y, y_ref)
    for a, b_ in zip(
        gpu.layernorm_backward(gpu.asarray(dy), xhat, rstd, gpu.asarray(gamma)),
        ref.layernorm_backward(dy, xhat_ref, rstd_ref, gamma),
        strict=True,
    ):
        close(gpu, a, b_)


def test_attention_and_heads(gpu, ref, rng):
    q, k, v, dout = (rand(rng, 2, 2, 5, 4) for _ in range(4))
    out, probs = gpu.attention_forward(*map(gpu.asarray, (q, k, v)))
    out_ref, probs_ref = ref.attention_forward(q, k, v)
    close(gpu, out, out_ref)
    close(gpu, probs, probs_ref)
    mine = gpu.attention_backward(*map(gpu.asarray, (q, k, v)), probs, gpu.asarray(dout))
    for a, b_ in zip(mine, ref.attention_backward(q, k, v, probs_ref, dout), strict=True):
        close(gpu, a, b_)
    qkv = rand(rng, 2, 5, 24)
    for a, b_ in zip(gpu.split_heads(gpu.asarray(qkv), 2), ref.split_heads(qkv, 2), strict=True):
        close(gpu, a, b_)
    close(gpu, gpu.split_heads_backward(*map(gpu.asarray, (q, k, v))), ref.split_heads_backward(q, k, v))
    close(gpu, gpu.merge_heads(gpu.asarray(q)), ref.merge_heads(q))
    dy = rand(rng, 2, 5, 8)
    close(gpu, gpu.merge_heads_backward(gpu.asarray(dy), 2), ref.merge_heads_backward(dy, 2))


def test_patches_and_tokens(gpu, ref, rng):
    x = rand(rng, 2, 1, 9, 8)  # 9 rows: the last row belongs to no 4×4 patch
    close(gpu, gpu.patchify(gpu.asarray(x), 4), ref.patchify(x, 4))
    dpatches = rand(rng, 2, 4, 16)
    close(gpu, gpu.patchify_backward(gpu.asarray(dpatches), x.shape, 4), ref.patchify_backward(dpatches, x.shape, 4))
    tokens, cls, positions = rand(rng, 2, 4, 3), rand(rng, 1, 3), rand(rng, 5, 3)
    close(gpu, gpu.add_tokens(*map(gpu.asarray, (tokens, cls, positions))), ref.add_tokens(tokens, cls, positions))
    dy = rand(rng, 2, 5, 3)
    for a, b_ in zip(gpu.add_tokens_backward(gpu.asarray(dy)), ref.add_tokens_backward(dy), strict=True):
        close(gpu, a, b_)
    close(gpu, gpu.take_token(gpu.asarray(dy)), ref.take_token(dy))
    d = rand(rng, 2, 3)
    close(gpu, gpu.take_token_backward(gpu.asarray(d), dy.shape), ref.take_token_backward(d, dy.shape))


@pytest.mark.parametrize("kind,alpha,gamma", [("ce", 1.0, 2.0), ("focal", 1.0, 2.0), ("focal", [0.5, 2.0, 1.0], 0.5)])
def test_loss(gpu, ref, rng, kind, alpha, gamma):
    logits, labels = 3 * rand(rng, 6, 3), np.array([0, 1, 2, 2, 1, 0])
    loss, dlogits, correct = gpu.classification_loss(gpu.asarray(logits), gpu.asarray(labels), kind, alpha, gamma)
    loss_ref, dlogits_ref, correct_ref = ref.classification_loss(logits, labels, kind, alpha, gamma)
    assert loss == pytest.approx(loss_ref, rel=RTOL) and correct == correct_ref
    close(gpu, dlogits, dlogits_ref)


def test_optimizers_and_arrays(gpu, ref, rng):
    p, g = rand(rng, 7), rand(rng, 7)
    for update in ("sgd", "adam"):
        p_gpu, p_ref = gpu.asarray(p), p.copy()
        s_gpu = [gpu.zeros_like(p_gpu) for _ in range(2)]
        s_ref = [np.zeros_like(p) for _ in range(2)]
        if update == "sgd":
            gpu.sgd_update(p_gpu, gpu.asarray(g), s_gpu[0], 0.1, 0.9, 0.01)
            ref.sgd_update(p_ref, g, s_ref[0], 0.1, 0.9, 0.01)
        else:
            gpu.adam_update(p_gpu, gpu.asarray(g), *s_gpu, 0.01, 0.9, 0.999, 1e-8, 0.0, 1)
            ref.adam_update(p_ref, g, *s_ref, 0.01, 0.9, 0.999, 1e-8, 0.0, 1)
        close(gpu, p_gpu, p_ref)
    copy = gpu.copy(gpu.asarray(p))
    close(gpu, copy, p)
    close(gpu, gpu.add(copy, copy), 2 * p)
    x = rand(rng, 2, 2, 3, 3)
    mean, std = np.array([0.5, -1.0], np.float32), np.array([2.0, 0.5], np.float32)
    close(gpu, gpu.normalize(*map(gpu.asarray, (x, mean, std))), ref.normalize(x, mean, std))


@pytest.mark.parametrize(
    "model,sizes",
    [
        ("mlp", {"hidden": [6]}),
        ("cnn", {"channels": [2, 3], "hidden": 5}),
        ("vit", {"patch": 4, "dim": 8, "heads": 2, "depth": 1, "mlp_dim": 8}),
    ],
)
def test_training_steps_give_the_same_loss(gpu, ref, rng, model, sizes):
    """A few steps of each network on the GPU give the reference's losses to 1e-4."""
    from nnsim.engine.models import build_model
    from nnsim.engine.optim import make_optimizer

    x, labels = rng.random((2, 1, 8, 8), dtype=np.float32), np.array([0, 2])
    seen = {}
    for be in (gpu, ref):
        net = build_model(model, (1, 8, 8), 3, backend=be, seed=1, mean=[0.5], std=[0.3], **sizes)
        opt = make_optimizer("adam", net.parameters(), be, 0.01)
        steps = []
        for _ in range(3):
            loss, dlogits, _ = be.classification_loss(net.forward(be.asarray(x)), be.asarray(labels))
            net.backward(dlogits)
            opt.step()
            steps.append(loss)
        seen[be.name] = steps
    assert seen["cuda"] == pytest.approx(seen["reference"], rel=1e-4)


def test_simulator_is_never_picked_by_auto(gpu):
    from nnsim.engine.backends import get_backend

    if gpu.simulated:
        assert get_backend("auto").name != "cuda"
