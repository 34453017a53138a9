"""Parity: every kernel of the Numba CPU backend equals the reference backend (float32, 1e-4).

Shapes are chosen to be awkward: odd sizes, stride 2, padding 0/1/2, batch 1, one channel, token
counts that are multiples of nothing, edges of the 4×4 matrix blocks.
"""

import numpy as np
import pytest

from nnsim.engine.backends import get_backend

pytest.importorskip("numba")

RTOL = 1e-4


@pytest.fixture(scope="module")
def cpu():
    return get_backend("cpu")


def close(actual, expected, rtol=RTOL):
    """Relative to the size of the expected values, so that near-zero entries don't dominate."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    scale = max(np.abs(expected).max(), 1e-30)
    assert np.abs(actual - expected).max() <= rtol * scale, np.abs(actual - expected).max() / scale


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 5, 7), (4, 4, 4), (13, 33, 9), (64, 150, 65), (130, 70, 17)])
def test_matmul(cpu, ref, rng, m, k, n):
    a, b = rand(rng, m, k), rand(rng, k, n)
    close(cpu.matmul(a, b), ref.matmul(a, b))


def test_batched_matmul(cpu, ref, rng):
    a, b = rand(rng, 3, 7, 5), rand(rng, 3, 5, 6)
    close(cpu.matmul(a, b), ref.matmul(a, b))


@pytest.mark.parametrize("shape", [(1, 7), (5, 3, 9), (2, 17, 33)])
def test_linear(cpu, ref, rng, shape):
    x, w, b = rand(rng, *shape), rand(rng, 6, shape[-1]), rand(rng, 6)
    close(cpu.linear_forward(x, w, b), ref.linear_forward(x, w, b))
    dy = rand(rng, *shape[:-1], 6)
    for mine, theirs in zip(cpu.linear_backward(x, w, dy), ref.linear_backward(x, w, dy), strict=True):
        close(mine, theirs)
    assert cpu.linear_backward(x, w, dy, input_grad=False)[0] is None


CONV_CASES = [
    # (N, Ci, H, W, Co, k, stride, padding)
    (1, 1, 5, 5, 1, 3, 1, 0),
    (2, 1, 28, 28, 16, 3, 1, 1),
    (3, 16, 14, 14, 32, 3, 1, 1),
    (2, 3, 9, 7, 5, 3, 2, 0),
    (1, 2, 8, 11, 6, 3, 2, 1),
    (2, 4, 7, 7, 3, 5, 1, 2),
    (2, 3, 10, 9, 7, 5, 2, 2),
    (5, 2, 6, 6, 4, 1, 1, 0),
]


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("relu", [False, True])
def test_conv(cpu, ref, rng, case, relu):
    n, c_in, height, width, c_out, k, stride, padding = case
    x, w, b = rand(rng, n, c_in, height, width), rand(rng, c_out, c_in, k, k), rand(rng, c_out)
    y = cpu.conv2d_forward(x, w, b, stride, padding, relu=relu)
    expected = ref.conv2d_forward(x, w, b, stride, padding, relu=relu)
    close(y, expected)
    dy = rand(rng, *y.shape)
    mask = expected if relu else None
    mine = cpu.conv2d_backward(x, w, dy, stride, padding, relu_output=mask)
    theirs = ref.conv2d_backward(x, w, dy, stride, padding, relu_output=mask)
    for a, b_ in zip(mine, theirs, strict=True):
        close(a, b_)
    skipped = cpu.conv2d_backward(x, w, dy, stride, padding, relu_output=mask, input_grad=False)
    assert skipped[0] is None
    close(skipped[1], theirs[1])


@pytest.mark.parametrize("case", CONV_CASES[:4] + [(3, 16, 15, 13, 8, 3, 1, 1)])
def test_conv_block(cpu, ref, rng, case):
    n, c_in, height, width, c_out, k, stride, padding = case
    x, w, b = rand(rng, n, c_in, height, width), rand(rng, c_out, c_in, k, k), rand(rng, c_out)
    pooled, argmax = cpu.conv_block_forward(x, w, b, stride, padding, 2)
    pooled_ref, argmax_ref = ref.conv_block_forward(x, w, b, stride, padding, 2)
    close(pooled, pooled_ref)
    dpooled = rand(rng, *pooled.shape)
    for input_grad in (True, False):
        mine = cpu.conv_block_backward(x, w, dpooled, pooled, argmax, stride, padding, 2, input_grad=input_grad)
        theirs = ref.conv_block_backward(
            x, w, dpooled, pooled_ref, argmax_ref, stride, padding, 2, input_grad=input_grad
        )
        for a, b_ in zip(mine, theirs, strict=True):
            if b_ is None:
                assert a is None
            else:
                close(a, b_)


def test_conv_contract_signature(cpu, ref, rng):
    """The kernel API of DESIGN.md, positional: (x, w, b, stride, padding) and (x, w, dy, stride, padding)."""
    x, w, b = rand(rng, 2, 3, 8, 8), rand(rng, 4, 3, 3, 3), rand(rng, 4)
    close(cpu.conv2d_forward(x, w, b, 2, 1), ref.conv2d_forward(x, w, b, 2, 1))
    dy = rand(rng, 2, 4, 4, 4)
    dx, dw, db = cpu.conv2d_backward(x, w, dy, 2, 1)
    close(dx, ref.conv2d_backward(x, w, dy, 2, 1)[0])


@pytest.mark.parametrize("shape", [(1, 1, 4, 4), (2, 3, 7, 9), (3, 16, 28, 28)])
def test_maxpool(cpu, ref, rng, shape):
    x = rand(rng, *shape)
    y, argmax = cpu.maxpool2d_forward(x, 2)
    y_ref, argmax_ref = ref.maxpool2d_forward(x, 2)
    close(y, y_ref)
    dy = rand(rng, *y.shape)
    close(cpu.maxpool2d_backward(dy, argmax, x.shape, 2), ref.maxpool2d_backward(dy, argmax_ref, x.shape, 2))


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "linear", "gelu"])
def test_activations(cpu, ref, rng, name):
    z = 3 * rand(rng, 5, 17, 13)
    close(cpu.activation_forward(name, z), ref.activation_forward(name, z))
    dy = rand(rng, *z.shape)
    close(cpu.activation_backward(name, z, dy), ref.activation_backward(name, z, dy))


@pytest.mark.parametrize("shape", [(1, 1, 8), (3, 17, 64), (2, 5, 7)])
def test_layernorm(cpu, ref, rng, shape):
    x, gamma, beta = 2 * rand(rng, *shape) + 1, rand(rng, shape[-1]), rand(rng, shape[-1])
    y, xhat, rstd = cpu.layernorm_forward(x, gamma, beta)
    y_ref, xhat_ref, rstd_ref = ref.layernorm_forward(x, gamma, beta)
    close(y, y_ref)
    dy = rand(rng, *shape)
    for mine, theirs in zip(
        cpu.layernorm_backward(dy, xhat, rstd, gamma),
        ref.layernorm_backward(dy, xhat_ref, rstd_ref, gamma),
        strict=True,
    ):
        close(mine, theirs)


@pytest.mark.parametrize("shape", [(1, 1, 1, 4), (2, 4, 17, 16), (3, 2, 7, 5), (1, 3, 50, 8)])
def test_attention(cpu, ref, rng, shape):
    q, k, v = (rand(rng, *shape) for _ in range(3))
    out, probs = cpu.attention_forward(q, k, v)
    out_ref, probs_ref = ref.attention_forward(q, k, v)
    close(out, out_ref)
    close(probs, probs_ref)
    dout = rand(rng, *shape)
    for mine, theirs in zip(
        cpu.attention_backward(q, k, v, probs, dout), ref.attention_backward(q, k, v, probs_ref, dout), strict=True
    ):
        close(mine, theirs)


@pytest.mark.parametrize("heads,tokens,dim", [(4, 17, 64), (1, 3, 6), (3, 5, 9)])
def test_heads_split_and_merge(cpu, ref, rng, heads, tokens, dim):
    qkv = rand(rng, 2, tokens, 3 * dim)
    for mine, theirs in zip(cpu.split_heads(qkv, heads), ref.split_heads(qkv, heads), strict=True):
        close(mine, theirs)
    dq, dk, dv = (rand(rng, 2, heads, tokens, dim // heads) for _ in range(3))
    close(cpu.split_heads_backward(dq, dk, dv), ref.split_heads_backward(dq, dk, dv))
    close(cpu.merge_heads(dq), ref.merge_heads(dq))
    dy = rand(rng, 2, tokens, dim)
    close(cpu.merge_heads_backward(dy, heads), ref.merge_heads_backward(dy, heads))


def test_optimizer_updates(cpu, ref, rng):
    for update in ("sgd", "adam"):
        p_cpu, p_ref = rand(rng, 7, 5), None
        p_ref = p_cpu.copy()
        state_cpu = [np.zeros_like(p_cpu) for _ in range(2)]
        state_ref = [np.zeros_like(p_cpu) for _ in range(2)]
        for step in range(1, 4):
            g = rand(rng, 7, 5)
            if update == "sgd":
                cpu.sgd_update(p_cpu, g, state_cpu[0], 0.1, 0.9, 0.01)
                ref.sgd_update(p_ref, g, state_ref[0], 0.1, 0.9, 0.01)
            else:
                cpu.adam_update(p_cpu, g, *state_cpu, 0.01, 0.9, 0.999, 1e-8, 0.01, step)
                ref.adam_update(p_ref, g, *state_ref, 0.01, 0.9, 0.999, 1e-8, 0.01, step)
        close(p_cpu, p_ref)


@pytest.mark.parametrize("model", ["mlp", "cnn", "vit"])
def test_a_training_step_matches(cpu, ref, rng, model):
    from nnsim.engine.models import build_model
    from nnsim.engine.optim import make_optimizer

    x = rng.random((5, 1, 28, 28), dtype=np.float32)
    labels = np.array([0, 3, 9, 3, 1])
    losses = {}
    for be in (cpu, ref):
        net = build_model(model, backend=be, seed=4, mean=[0.13], std=[0.31])
        opt = make_optimizer(
            "sgd", net.parameters(), be, 0.05, momentum=0.9
        )  # Adam magnifies float noise in ~0 gradients
        for _ in range(3):
            loss, dlogits, _ = be.classification_loss(net.forward(be.asarray(x)), labels)
            net.backward(dlogits)
            opt.step()
        losses[be.name] = (loss, net.state_dict())
    assert losses["cpu"][0] == pytest.approx(losses["reference"][0], rel=1e-4)
    for name, value in losses["reference"][1].items():
        close(losses["cpu"][1][name], value, rtol=1e-3)


def test_auto_picks_cpu_without_a_gpu(cpu):
    assert get_backend("auto").name in ("cpu", "cuda")
    if get_backend("auto").name == "cpu":
        assert get_backend("auto") is cpu


def test_warm_up_reports_every_kernel(cpu):
    seen = []
    cpu.warm_up(lambda name, done, total: seen.append((name, done, total)))
    assert seen[0][1] == 0 and seen[-1] == ("ready", seen[-1][2], seen[-1][2])
    assert {"matrix product", "conv block", "attention"} <= {name for name, _, _ in seen}


def test_kernels_release_the_gil(cpu, rng):
    """The training worker runs kernels while the UI thread keeps running Python."""
    import threading

    a, b = rand(rng, 700, 700), rand(rng, 700, 700)
    cpu.matmul(a, b)
    done = threading.Event()
    ticks = 0

    def work():
        for _ in range(20):
            cpu.matmul(a, b)
        done.set()

    worker = threading.Thread(target=work)
    worker.start()
    while not done.is_set():
        ticks += 1
    worker.join()
    assert ticks > 1000  # the main thread ran thousands of loop turns meanwhile
