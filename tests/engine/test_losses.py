"""Softmax, cross-entropy and focal loss: the workshop's figures, stability, and gradients."""

import numpy as np
import pytest

from nnsim.engine.gradcheck import numerical_gradient, relative_error
from nnsim.engine.losses import cross_entropy, focal_loss, softmax, squared_error
from nnsim.errors import NnsimError

GOOD = [0.01, 0.95, 0.04]  # cat, dog, car; the true class is dog
BAD = [0.80, 0.10, 0.10]
DOG = np.array([1])


def logits_for(probs):
    """Logits whose softmax is exactly ``probs`` (softmax is invariant to a shift)."""
    return np.log(np.array([probs]))


def test_seed_softmax_figures():
    probs = softmax([2.0, 1.0, 0.1])
    assert np.round(probs, 2).tolist() == [0.66, 0.24, 0.10]
    assert probs.sum() == pytest.approx(1.0)
    assert probs.argmax() == 0  # cat


def test_seed_cross_entropy_figures():
    good, _ = cross_entropy(logits_for(GOOD), DOG)
    bad, _ = cross_entropy(logits_for(BAD), DOG)
    assert good == pytest.approx(-np.log(0.95)) and round(good, 2) == 0.05
    assert bad == pytest.approx(-np.log(0.10)) and round(bad, 2) == 2.30


def test_seed_focal_figures():
    good, _ = focal_loss(logits_for(GOOD), DOG, alpha=1.0, gamma=2.0)
    bad, _ = focal_loss(logits_for(BAD), DOG, alpha=1.0, gamma=2.0)
    assert good == pytest.approx(0.05**2 * -np.log(0.95)) and round(good, 5) == 0.00013
    # the workshop's "≈ 1.86" is 0.81 × 2.302 = 1.8651, truncated
    assert bad == pytest.approx(0.9**2 * -np.log(0.10)) and bad == pytest.approx(1.86, abs=0.01)


def test_focal_with_gamma_zero_is_cross_entropy(rng):
    logits = rng.standard_normal((6, 4))
    labels = rng.integers(0, 4, 6)
    ce, dce = cross_entropy(logits, labels)
    fl, dfl = focal_loss(logits, labels, alpha=1.0, gamma=0.0)
    assert fl == pytest.approx(ce)
    np.testing.assert_allclose(dfl, dce, atol=1e-12)


def test_per_class_alpha_weights_each_sample_by_its_class(rng):
    logits = rng.standard_normal((4, 3))
    labels = np.array([0, 1, 2, 1])
    weighted, _ = focal_loss(logits, labels, alpha=[1.0, 3.0, 0.5], gamma=1.0)
    per_sample = [focal_loss(logits[i : i + 1], labels[i : i + 1], gamma=1.0)[0] for i in range(4)]
    expected = np.mean(np.array(per_sample) * np.array([1.0, 3.0, 0.5, 3.0]))
    assert weighted == pytest.approx(expected)


def test_stable_for_huge_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [-1000.0, 1000.0, 0.0]])
    probs = softmax(logits)
    assert np.isfinite(probs).all()
    loss, grad = cross_entropy(logits, np.array([2, 1]))
    assert np.isfinite(loss) and np.isfinite(grad).all()
    assert loss == pytest.approx(1000.0)  # -log p for p = e^-2000 / ... is about 2000 / 2 samples
    loss, grad = focal_loss(logits, np.array([0, 1]), gamma=0.5)
    assert loss == pytest.approx(0.0, abs=1e-12) and np.isfinite(grad).all()


@pytest.mark.parametrize(
    "alpha,gamma", [(1.0, 0.0), (1.0, 2.0), (0.25, 2.0), (1.0, 0.5), (1.0, 5.0), ([0.5, 2.0, 1.0, 0.1], 1.5)]
)
def test_focal_gradient(rng, alpha, gamma):
    logits = rng.standard_normal((5, 4)) * 2
    labels = rng.integers(0, 4, 5)
    _, analytic = focal_loss(logits, labels, alpha=alpha, gamma=gamma)
    _, numeric = numerical_gradient(lambda: focal_loss(logits, labels, alpha=alpha, gamma=gamma)[0], logits)
    assert relative_error(analytic, numeric) < 1e-6


def test_cross_entropy_gradient(rng):
    logits = rng.standard_normal((5, 4)) * 2
    labels = rng.integers(0, 4, 5)
    _, analytic = cross_entropy(logits, labels)
    _, numeric = numerical_gradient(lambda: cross_entropy(logits, labels)[0], logits)
    assert relative_error(analytic, numeric) < 1e-6


def test_squared_error_and_its_gradient(rng):
    loss, _ = squared_error(logits_for(BAD), DOG)
    assert loss == pytest.approx(0.8**2 + 0.9**2 + 0.1**2)
    logits = rng.standard_normal((5, 4)) * 2
    labels = rng.integers(0, 4, 5)
    _, analytic = squared_error(logits, labels)
    _, numeric = numerical_gradient(lambda: squared_error(logits, labels)[0], logits)
    assert relative_error(analytic, numeric) < 1e-6


def test_squared_errors_gradient_fades_when_confidently_wrong_and_cross_entropys_does_not():
    """Why classifiers train on cross-entropy: the pull on the true class's logit as p(true) → 0."""
    for p_true in (0.1, 0.01, 0.001):
        logits = logits_for([1 - p_true, p_true])
        _, ce = cross_entropy(logits, np.array([1]))
        _, se = squared_error(logits, np.array([1]))
        assert ce[0, 1] == pytest.approx(p_true - 1)  # p − y: stays near −1
        assert se[0, 1] == pytest.approx(-4 * p_true * (1 - p_true) ** 2)  # → 0 with p_true


def test_user_errors_are_clear():
    with pytest.raises(NnsimError, match="gamma"):
        focal_loss(np.zeros((1, 3)), np.array([0]), gamma=-1)
    with pytest.raises(NnsimError, match="one weight per class"):
        focal_loss(np.zeros((1, 3)), np.array([0]), alpha=[1.0, 2.0])
    with pytest.raises(NnsimError, match="labels must lie"):
        cross_entropy(np.zeros((1, 3)), np.array([3]))
