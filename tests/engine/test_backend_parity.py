"""Parity: every op of every fast backend equals the reference backend (float32, 1e-4).

One helper, `check`, in the manner of tinygrad's `helper_test_op`: it makes random inputs of the
given shapes, runs the same function on the reference backend and on the backend under test, and
compares every output. Each case below is one line; a new op (or a new backend in BACKENDS) is
checked everywhere at once.

Shapes are awkward on purpose: odd sizes, stride 2, padding 0/1/2, batch 1, one channel, token
counts that are multiples of nothing, edges of the 4×4 matrix blocks. The CUDA backend runs in
Numba's simulator here (each GPU thread as Python), so cases whose inputs hold more than
SIMULATOR_LIMIT numbers run on cpu only; on a machine with a GPU,
`NUMBA_ENABLE_CUDASIM=0 pytest tests/engine/test_backend_parity.py` runs every case on it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import pytest

from nnsim.engine.backends import get_backend
from nnsim.engine.backends.rowmath import conv_output_size
from nnsim.errors import NnsimError

BACKENDS = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda_sim)]
RTOL = 1e-4
SIMULATOR_LIMIT = 1500


@pytest.fixture(scope="module", params=BACKENDS)
def fast(request):
    if request.param == "cuda":
        pytest.importorskip("numba.cuda", reason="the cuda extra (numba-cuda) is not installed")
    else:
        pytest.importorskip("numba")
    try:
        return get_backend(request.param)
    except NnsimError as error:
        if request.param == "cuda" and os.environ.get("NUMBA_ENABLE_CUDASIM") == "0":
            pytest.fail(f"a GPU run was asked for (NUMBA_ENABLE_CUDASIM=0) but the cuda backend is unusable: {error}")
        pytest.skip(str(error))


# ------------------------------------------------------------------------------------ the helper
@dataclass
class Case:
    id: str
    shapes: list[tuple]
    fn: object  # fn(backend, *arrays) -> an array, a number, None, or a tuple of them
    scale: float = 1.0
    shift: float = 0.0
    rtol: float = RTOL
    simulate: bool | None = None  # run in the CUDA simulator: None decides by size, True always

    def param(self):
        return pytest.param(self, id=self.id)


def check(be, case: Case) -> None:
    """Run case.fn on the reference backend and on `be` with the same random inputs; compare all."""
    small = sum(math.prod(s) for s in case.shapes) <= SIMULATOR_LIMIT
    if getattr(be, "simulated", False) and not (case.simulate or (case.simulate is None and small)):
        pytest.skip("too large for the CUDA simulator (runs on a real GPU)")
    rng = np.random.default_rng(0)
    arrays = [(case.scale * rng.standard_normal(s) + case.shift).astype(np.float32) for s in case.shapes]
    expected = case.fn(get_backend("reference"), *arrays)
    actual = case.fn(be, *[be.asarray(a) for a in arrays])
    compare(be, actual, expected, case.rtol)


def compare(be, actual, expected, rtol, where="output"):
    if isinstance(expected, tuple | list):
        assert isinstance(actual, tuple | list) and len(actual) == len(expected), where
        for index, (mine, theirs) in enumerate(zip(actual, expected, strict=True)):
            compare(be, mine, theirs, rtol, f"{where}[{index}]")
    elif expected is None:
        assert actual is None, f"{where}: expected None"
    elif isinstance(expected, int | np.integer):
        assert actual == expected, where
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=rtol), where
    else:
        close(be.to_numpy(actual), expected, rtol, where)


def close(actual, expected, rtol=RTOL, where="output"):
    """Relative to the size of the expected values, so that near-zero entries don't dominate."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{where}: shape {actual.shape} is not {expected.shape}"
    scale = max(np.abs(expected).max(), 1e-30) if expected.size else 1.0
    error = np.abs(actual - expected).max() / scale if expected.size else 0.0
    assert error <= rtol, f"{where}: relative error {error:.2e}"


# ------------------------------------------------------------------------------------ chains
def linear(be, x, w, b, dy):
    return be.linear_forward(x, w, b), be.linear_backward(x, w, dy), be.linear_backward(x, w, dy, input_grad=False)


def conv(relu, stride, padding):
    def run(be, x, w, b, dy):
        y = be.conv2d_forward(x, w, b, stride, padding, relu=relu)
        mask = y if relu else None
        grads = be.conv2d_backward(x, w, dy, stride, padding, relu_output=mask)
        skipped = be.conv2d_backward(x, w, dy, stride, padding, relu_output=mask, input_grad=False)
        return y, grads, skipped

    return run


def conv_positional(be, x, w, b, dy):
    """The contract's positional form: (x, w, b, stride, padding) and (x, w, dy, stride, padding)."""
    return be.conv2d_forward(x, w, b, 2, 1), be.conv2d_backward(x, w, dy, 2, 1)


def conv_block(stride, padding):
    def run(be, x, w, b, dpooled):
        pooled, argmax = be.conv_block_forward(x, w, b, stride, padding, 2)
        grads = [
            be.conv_block_backward(x, w, dpooled, pooled, argmax, stride, padding, 2, input_grad=input_grad)
            for input_grad in (True, False)
        ]
        return pooled, grads

    return run


def maxpool(be, x, dy):
    y, argmax = be.maxpool2d_forward(x, 2)
    return y, be.maxpool2d_backward(dy, argmax, x.shape, 2)


def activation(name):
    return lambda be, z, dy: (be.activation_forward(name, z), be.activation_backward(name, z, dy))


def layernorm(be, x, gamma, beta, dy):
    y, xhat, rstd = be.layernorm_forward(x, gamma, beta)
    return y, be.layernorm_backward(dy, xhat, rstd, gamma)


def attention(be, q, k, v, dout):
    out, probs = be.attention_forward(q, k, v)
    return out, probs, be.attention_backward(q, k, v, probs, dout)


def heads(count):
    def run(be, qkv, dq, dk, dv, dy):
        return (
            be.split_heads(qkv, count),
            be.split_heads_backward(dq, dk, dv),
            be.merge_heads(dq),
            be.merge_heads_backward(dy, count),
        )

    return run


def patches(be, x, dpatches):
    return be.patchify(x, 4), be.patchify_backward(dpatches, x.shape, 4)


def tokens(be, tokens_, cls, positions, dy, dcls_token):
    return (
        be.add_tokens(tokens_, cls, positions),
        be.add_tokens_backward(dy),
        be.take_token(dy),
        be.take_token_backward(dcls_token, dy.shape),
    )


def loss(kind, alpha, gamma):
    labels = np.array([0, 1, 2, 2, 1, 0])
    return lambda be, logits: be.classification_loss(logits, be.asarray(labels), kind, alpha, gamma)


def loss_rows(kind):
    labels = np.arange(300) % 3
    return lambda be, logits: be.classification_loss(logits, be.asarray(labels), kind, 1.0, 2.0)


def sgd(be, param, *grads):
    param, velocity = be.copy(param), be.zeros_like(param)
    for grad in grads:
        be.sgd_update(param, grad, velocity, 0.1, 0.9, 0.01)
    return param, velocity


def adam(weight_decay):
    def run(be, param, *grads):
        param, m, v = be.copy(param), be.zeros_like(param), be.zeros_like(param)
        for step, grad in enumerate(grads, start=1):
            be.adam_update(param, grad, m, v, 0.01, 0.9, 0.999, 1e-8, weight_decay, step)
        return param, m, v

    return run


def arrays(be, x, mean, std):
    copy = be.copy(x)
    return copy, be.add(copy, copy), be.normalize(x, mean, std + 2.0), be.reshape(x, (x.shape[0], -1))


def conv_shapes(n, c_in, height, width, c_out, k, stride, padding, pool=1):
    h_out = conv_output_size(height, k, stride, padding) // pool
    w_out = conv_output_size(width, k, stride, padding) // pool
    return [(n, c_in, height, width), (c_out, c_in, k, k), (c_out,), (n, c_out, h_out, w_out)]


CONV = [  # (N, Ci, H, W, Co, k, stride, padding)
    (1, 1, 5, 5, 1, 3, 1, 0),
    (2, 1, 28, 28, 16, 3, 1, 1),
    (3, 16, 14, 14, 32, 3, 1, 1),
    (2, 3, 9, 7, 5, 3, 2, 0),
    (1, 2, 8, 11, 6, 3, 2, 1),
    (2, 4, 7, 7, 3, 5, 1, 2),
    (2, 3, 10, 9, 7, 5, 2, 2),
    (5, 2, 6, 6, 4, 1, 1, 0),
    (2, 2, 6, 5, 3, 3, 1, 1),
    (2, 2, 6, 5, 3, 3, 2, 0),
    (2, 2, 6, 5, 3, 3, 2, 2),
    # one input channel, stride 1 (the cpu backend's direct routes) with kernels other than 3×3
    (2, 1, 9, 8, 3, 5, 1, 2),
    (2, 1, 6, 7, 2, 2, 1, 0),
    # several input channels, 3×3, stride 1 (cpu: the direct weight gradient, output channels
    # four at a time and then one by one)
    (2, 3, 7, 9, 6, 3, 1, 0),
]
CONV_BLOCK = [CONV[i] for i in (0, 1, 2, 3)] + [
    (3, 16, 15, 13, 8, 3, 1, 1),
    (2, 1, 7, 6, 3, 3, 1, 1),
    (2, 1, 9, 9, 3, 5, 1, 2),
    (2, 5, 9, 8, 7, 3, 1, 1),
]

# One line a case: Case(id, input shapes, function of (backend, *inputs)).
CASES = [
    *[
        Case(f"matmul {m}x{k}x{n}", [(m, k), (k, n)], lambda be, a, b: be.matmul(a, b))
        for m, k, n in [(1, 1, 1), (3, 5, 7), (4, 4, 4), (5, 19, 7), (13, 33, 9), (64, 150, 65), (130, 70, 17)]
    ],
    Case("matmul batched", [(3, 7, 5), (3, 5, 6)], lambda be, a, b: be.matmul(a, b)),
    *[Case(f"linear {s}", [s, (6, s[-1]), (6,), (*s[:-1], 6)], linear) for s in [(1, 7), (5, 3, 9), (2, 17, 33)]],
    Case("linear 2x3x5->4", [(2, 3, 5), (4, 5), (4,), (2, 3, 4)], linear),
    # wide inputs: the gradients as sums of rows (cpu), with two column blocks and ragged edges
    Case("linear wide 13x600->9", [(13, 600), (9, 600), (9,), (13, 9)], linear),
    Case("linear wide 2x32x520->16", [(2, 32, 520), (16, 520), (16,), (2, 32, 16)], linear),
    # many rows, few inputs: the weight gradient by transposes and long dot products (cpu)
    Case("linear tall 3x200x9->6", [(3, 200, 9), (6, 9), (6,), (3, 200, 6)], linear),
    *[Case(f"conv {c} relu={relu}", conv_shapes(*c), conv(relu, c[6], c[7])) for c in CONV for relu in (False, True)],
    Case("conv positional", conv_shapes(2, 3, 8, 8, 4, 3, 2, 1), conv_positional),
    *[Case(f"conv block {c}", conv_shapes(*c, pool=2), conv_block(c[6], c[7])) for c in CONV_BLOCK],
    *[
        Case(f"maxpool {s}", [s, (*s[:2], s[2] // 2, s[3] // 2)], maxpool)
        for s in [(1, 1, 4, 4), (2, 3, 7, 9), (3, 16, 28, 28)]
    ],
    *[
        Case(f"{name} {s}", [s, s], activation(name), scale=3.0)
        for name in ("relu", "sigmoid", "tanh", "linear", "gelu")
        for s in [(5, 17, 13), (3, 7)]
    ],
    *[
        Case(f"layernorm {s}", [s, s[-1:], s[-1:], s], layernorm, scale=2.0, shift=1.0)
        for s in [(1, 1, 8), (3, 17, 64), (2, 5, 7), (2, 3, 6)]
    ],
    *[
        Case(f"attention {s}", [s] * 4, attention)
        for s in [(1, 1, 1, 4), (2, 4, 17, 16), (3, 2, 7, 5), (1, 3, 50, 8), (2, 2, 5, 4)]
    ],
    *[
        Case(f"heads {h}x{t}x{d}", [(2, t, 3 * d), *[(2, h, t, d // h)] * 3, (2, t, d)], heads(h))
        for h, t, d in [(4, 17, 64), (1, 3, 6), (3, 5, 9), (2, 5, 8)]
    ],
    Case("patchify 9x8 by 4", [(2, 1, 9, 8), (2, 4, 16)], patches),  # the last row is in no patch
    Case("tokens", [(2, 4, 3), (1, 3), (5, 3), (2, 5, 3), (2, 3)], tokens),
    Case("cross-entropy", [(6, 3)], loss("ce", 1.0, 2.0), scale=3.0),
    Case("focal", [(6, 3)], loss("focal", 1.0, 2.0), scale=3.0),
    Case("focal per-class alpha", [(6, 3)], loss("focal", [0.5, 2.0, 1.0], 0.5), scale=3.0),
    # logits so far apart that some p_y round to 1: (1 − p)^(γ−1) must give 0, not nan
    Case("focal, certain rows", [(6, 3)], loss("focal", 1.0, 1.5), scale=60.0),
    Case("sgd 3 steps", [(7, 5)] * 4, sgd),
    Case("adam 3 steps", [(7, 5)] * 4, adam(0.01)),
    Case("adam 1 step", [(7,)] * 2, adam(0.0)),
    Case("copy, add, normalize, reshape", [(2, 2, 3, 3), (2,), (2,)], arrays),
    # Several blocks and tiles on a GPU (256 threads a block, 16×16 tiles): sizes just past them.
    *[Case(f"{name} 2 blocks", [(300,), (300,)], activation(name), scale=3.0) for name in ("relu", "gelu")],
    Case("matmul 2x3 tiles", [(17, 19), (19, 33)], lambda be, a, b: be.matmul(a, b)),
    Case("linear 2x3 tiles", [(17, 20), (33, 20), (33,), (17, 33)], linear, simulate=True),
    Case(
        "conv 625 rows: 2 weight-gradient shares",
        conv_shapes(1, 1, 25, 25, 2, 3, 1, 1),
        conv(False, 1, 1),
        simulate=True,
    ),
    Case("maxpool 2 blocks", [(2, 3, 17, 16), (2, 3, 8, 8)], maxpool, simulate=True),
    Case("layernorm 2 blocks of rows", [(300, 3), (3,), (3,), (300, 3)], layernorm, simulate=True),
    Case("attention 40 tokens", [(1, 1, 40, 4)] * 4, attention),
    # cpu: blocks of 64 samples along the vector lanes, the last one ragged; scores far apart
    # (exp of −hundreds, clamped at −87) and a head's softmax near one-hot
    Case("attention 67 samples", [(67, 2, 17, 16)] * 4, attention),
    Case("attention 67 samples, peaked", [(67, 2, 17, 16)] * 4, attention, scale=8.0),
    Case("conv+relu 625 rows", conv_shapes(1, 1, 25, 25, 2, 3, 1, 1), conv(True, 1, 1), simulate=True),
    Case("heads 3 blocks", [(2, 40, 24), *[(2, 2, 40, 4)] * 3, (2, 40, 8)], heads(2), simulate=True),
    Case("patchify 28x28 by 4", [(2, 1, 28, 28), (2, 49, 16)], patches, simulate=True),
    Case("tokens 3 blocks", [(2, 40, 8), (1, 8), (41, 8), (2, 41, 8), (2, 8)], tokens, simulate=True),
    Case("cross-entropy 300 rows", [(300, 3)], loss_rows("ce"), scale=3.0, simulate=True),
    Case("focal 300 rows", [(300, 3)], loss_rows("focal"), scale=3.0),
    # more than 4 · 16,384 numbers: the cpu backend normalises them in parallel chunks of samples
    Case("normalize 90 images", [(90, 1, 28, 28), (1,), (1,)], arrays),
    Case("sgd 2 blocks", [(300,)] * 3, sgd),
    Case("adam 2 blocks, weight decay", [(300,)] * 3, adam(0.01)),
    # more than 16,384 numbers: the cpu backend's activations run in parallel chunks, the last ragged
    *[
        Case(f"{name} in parallel chunks", [(2, 16390), (2, 16390)], activation(name), scale=3.0)
        for name in ("relu", "gelu")
    ],
    # more than 524,288 weights: the cpu backend updates them in parallel chunks, the last ragged
    Case("sgd in parallel chunks", [(524_291,)] * 4, sgd),
    Case("adam in parallel chunks", [(524_291,)] * 4, adam(0.01)),
]


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_op(fast, case):
    check(fast, case)


@pytest.mark.parametrize(
    "labels,kind,alpha,gamma,message",
    [
        ([0, 3], "ce", 1.0, 2.0, "labels must lie in 0..2"),
        ([0] * 140 + [3] + [0] * 9, "ce", 1.0, 2.0, "labels must lie in 0..2"),  # late in a long batch
        ([0, -1], "focal", 1.0, 2.0, "labels must lie in 0..2"),
        ([0, 1], "focal", [1.0, 2.0], 2.0, "alpha needs one weight per class"),
        ([0, 1], "focal", 1.0, -1.0, "gamma >= 0"),
    ],
)
def test_the_loss_refuses_what_the_reference_refuses(fast, labels, kind, alpha, gamma, message):
    logits = fast.asarray(np.zeros((len(labels), 3), dtype=np.float32))
    with pytest.raises(NnsimError, match=message):
        fast.classification_loss(logits, fast.asarray(np.array(labels)), kind, alpha, gamma)


# ------------------------------------------------------------------------------------ whole steps
STEPS = [
    # model, input (N, C, H, W), sizes, optimizer: a few steps must give the reference's losses
    ("mlp", (5, 1, 28, 28), {}, "sgd"),
    ("cnn", (5, 1, 28, 28), {}, "sgd"),
    ("vit", (5, 1, 28, 28), {}, "sgd"),
    ("mlp", (2, 1, 8, 8), {"hidden": [6]}, "adam"),
    ("cnn", (2, 1, 8, 8), {"channels": [2, 3], "hidden": 5}, "adam"),
    ("vit", (2, 1, 8, 8), {"patch": 4, "dim": 8, "heads": 2, "depth": 1, "mlp_dim": 8}, "adam"),
]


@pytest.mark.parametrize("model,shape,sizes,optimizer", STEPS, ids=[f"{s[0]} {s[1][2]}px {s[3]}" for s in STEPS])
def test_training_steps_give_the_reference_losses(fast, model, shape, sizes, optimizer):
    from nnsim.engine.models import build_model
    from nnsim.engine.optim import make_optimizer

    if getattr(fast, "simulated", False) and shape[2] > 8:
        pytest.skip("too large for the CUDA simulator (runs on a real GPU)")
    rng = np.random.default_rng(0)
    x = rng.random(shape, dtype=np.float32)
    labels = np.array([0, 2, 1, 2, 1][: shape[0]])
    seen = {}
    for be in (fast, get_backend("reference")):
        net = build_model(model, shape[1:], 3, backend=be, seed=1, mean=[0.5], std=[0.3], **sizes)
        # SGD for the full-size nets: Adam magnifies float noise in gradients that are about 0
        lr = 0.05 if optimizer == "sgd" else 0.01
        opt = make_optimizer(optimizer, net.parameters(), be, lr=lr, momentum=0.9, weight_decay=0.0)
        losses = []
        for _ in range(3):
            loss_value, dlogits, _ = be.classification_loss(net.forward(be.asarray(x)), be.asarray(labels))
            net.backward(dlogits)
            opt.step()
            losses.append(loss_value)
        seen[be.name] = (losses, {k: be.to_numpy(v) for k, v in net.state_dict().items()})
    assert seen[fast.name][0] == pytest.approx(seen["reference"][0], rel=1e-4)
    if optimizer == "adam":
        return  # Adam divides by √v: a gradient of about 0 turns float noise into whole steps
    for name, value in seen["reference"][1].items():
        close(seen[fast.name][1][name], value, rtol=1e-3, where=name)
