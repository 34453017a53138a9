"""SGD and Adam against their update rules written out by hand."""

import numpy as np
import pytest

from nnsim.engine.layers import Parameter
from nnsim.engine.optim import SGD, Adam, make_optimizer
from nnsim.errors import NnsimError


def param(values, grad):
    p = Parameter(np.array(values, dtype=np.float64))
    p.grad = np.array(grad, dtype=np.float64)
    return p


def test_plain_sgd_is_theta_minus_lr_grad(ref):
    p = param([1.0, -2.0], [0.5, 0.25])
    SGD([p], ref, lr=0.1, momentum=0.0, weight_decay=0.0).step()
    np.testing.assert_allclose(p.value, [0.95, -2.025])


def test_sgd_momentum_and_weight_decay_follow_pytorch(ref):
    p = param([1.0], [0.5])
    opt = SGD([p], ref, lr=0.1, momentum=0.9, weight_decay=0.01)
    opt.step()  # g = 0.5 + 0.01·1 = 0.51; v = 0.51; θ = 1 − 0.051
    assert p.value[0] == pytest.approx(0.949)
    opt.step()  # g = 0.5 + 0.00949 = 0.50949; v = 0.9·0.51 + 0.50949 = 0.96849
    assert p.value[0] == pytest.approx(0.949 - 0.1 * 0.96849)


def test_adam_first_steps(ref):
    p = param([1.0], [0.5])
    opt = Adam([p], ref, lr=0.1, weight_decay=0.0)
    opt.step()  # bias-corrected: m̂ = g, v̂ = g², step = lr · g/|g| = 0.1
    assert p.value[0] == pytest.approx(0.9, abs=1e-6)
    p.grad = np.array([-0.5])
    opt.step()
    m = 0.9 * 0.05 + 0.1 * -0.5
    v = 0.999 * 0.00025 + 0.001 * 0.25
    expected = 0.9 - 0.1 * (m / (1 - 0.81)) / (np.sqrt(v / (1 - 0.999**2)) + 1e-8)
    assert p.value[0] == pytest.approx(expected)


def test_an_unknown_optimizer_is_refused(ref):
    # (the learning rate, momentum and weight decay are checked once, by TrainConfig: tests/engine/test_config.py)
    with pytest.raises(NnsimError, match="unknown optimizer"):
        make_optimizer("rmsprop", [], ref, lr=0.1, momentum=0.0, weight_decay=0.0)


def test_the_learning_rate_and_momentum_have_no_default_here(ref):
    with pytest.raises(TypeError):
        SGD([], ref, lr=0.1, weight_decay=0.0)  # momentum: TrainConfig's to choose
    with pytest.raises(TypeError):
        Adam([], ref, weight_decay=0.0)
