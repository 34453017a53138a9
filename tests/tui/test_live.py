"""The figures the widgets show, computed by tui.live, checked without the app."""

from pathlib import Path

import numpy as np
import pytest

from nnsim.tui import live
from nnsim.tui.live.classify import classify
from nnsim.tui.live.network import train_mlp

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"


def test_layer_forward_is_f_of_wx_plus_b():
    weights, bias, x = np.array([[0.5, -1.0], [2.0, 0.25]]), np.array([0.1, -3.0]), np.array([1.0, 2.0])
    z, y = live.layer_forward(weights, bias, x, "relu")
    np.testing.assert_allclose(z, weights @ x + bias, rtol=1e-12)
    np.testing.assert_allclose(y, np.maximum(weights @ x + bias, 0), rtol=1e-12)


@pytest.mark.parametrize(
    "name,formula",
    [
        ("relu", lambda z: np.maximum(z, 0)),
        ("sigmoid", lambda z: 1 / (1 + np.exp(-z))),
        ("tanh", np.tanh),
        ("linear", lambda z: z),
        ("gelu", lambda z: 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3)))),
    ],
)
def test_activate_is_the_formula(name, formula):
    z = np.linspace(-4, 4, 17)
    np.testing.assert_allclose(live.activate(name, z), formula(z), rtol=1e-12, atol=1e-15)


def test_dense_layer_init_is_the_engines_linear_initialisation():
    weights, bias, _ = live.dense_layer_init(4, 3, seed=2)
    assert weights.shape == (3, 4) and bias.shape == (3,)
    bound = 1 / np.sqrt(4)  # U(−1/√fan_in, 1/√fan_in)
    assert np.abs(weights).max() <= bound and np.abs(bias).max() <= bound
    again, _, _ = live.dense_layer_init(4, 3, seed=2)
    np.testing.assert_array_equal(weights, again)


def test_classify_reads_a_sample_digit():
    result = classify(SAMPLES / "digits" / "3.png", top=3)
    assert result.input_shape == (1, 28, 28) and result.picture.shape == (28, 28)
    assert result.top[0][0] == "3" and result.top[0][1] > 0.9
    assert len(result.top) == 3 and sum(p for _, p in result.top) <= 1 + 1e-9


@pytest.mark.slow
def test_train_mlp_learns_and_its_activations_are_its_weights_at_work():
    trained = train_mlp((8,), 60, 0)
    assert trained.steps == 60 and trained.test_accuracy > 0.5
    pixels = (trained.images[0].reshape(-1) - trained.mean) / trained.std
    hidden = np.maximum(trained.weights[0] @ pixels + trained.biases[0], 0)
    np.testing.assert_allclose(trained.activations[0][1], hidden, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(trained.probabilities.sum(axis=1), 1.0, rtol=1e-6)


def test_the_shipped_digit_networks_begin_with_normalize_by_their_training_digits():
    """Lesson 2: the CNN and ViT nnsim ships normalise first, with mnist-mini's own mean and std."""
    from nnsim.data.datasets import load_dataset
    from nnsim.engine import layers as L
    from nnsim.tui.live.classify import lesson_cnn
    from nnsim.tui.live.vit import lesson_vit

    (mean,), (std,) = load_dataset("mnist-mini").channel_stats()
    for model, _ in (lesson_cnn(), lesson_vit()):
        assert isinstance(model.layers[0], L.Normalize)
        assert model.config.mean == pytest.approx([mean]) and model.config.std == pytest.approx([std])
        assert not any(name.startswith("layers.0.") for name, _ in model.named_parameters())  # nothing in it is learned


def test_classify_counts_the_cnns_parameters():
    from nnsim.tui.live.classify import lesson_cnn

    model, _ = lesson_cnn()
    expected = sum(value.size for value in model.state_dict().values())
    assert classify(SAMPLES / "digits" / "3.png", top=1).parameters == expected > 10_000


def test_the_learning_loops_gradients_match_finite_differences():
    from nnsim.tui.live.learning_loop import PHASES, LearningLoop

    loop = LearningLoop(lr=0.5, seed=2)
    assert [loop.step() for _ in PHASES] == list(PHASES)
    assert len(loop.state.gradients) == 4  # two weight matrices, two bias vectors
    for gradient in loop.state.gradients:
        assert gradient.error < 1e-6, gradient.name  # float64: backprop equals (L(θ+h) − L(θ−h)) / 2h
        np.testing.assert_allclose(gradient.analytic, gradient.numeric, rtol=1e-5, atol=1e-8)
    grads = {g.name: g.analytic for g in loop.state.gradients}
    for name, after in loop.state.after.items():  # the update is exactly θ − η ∇θ L
        np.testing.assert_allclose(after, loop.state.before[name] - 0.5 * grads[name], rtol=1e-12)
    first = loop.state.loss
    loop.step()  # forward with the new weights
    loop.step()
    assert loop.state.loss < first


def test_the_learning_loop_stops_early_or_says_it_diverged():
    from nnsim.tui.live.learning_loop import LearningLoop

    calm = LearningLoop(lr=0.5, patience=1)
    while calm.epoch() is not None:
        assert len(calm.state.history) < 500
    assert calm.state.stopped.startswith("early stop")
    wild = LearningLoop(lr=16.0)
    while wild.epoch() is not None:
        assert len(wild.state.history) < 50
    assert "diverged" in wild.state.stopped and "too large" in wild.state.stopped
