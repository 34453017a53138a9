"""Whole networks: shapes, default architectures, and float64 gradient checks end to end."""

import numpy as np
import pytest

from nnsim.engine.gradcheck import numerical_gradient, relative_error
from nnsim.engine.losses import cross_entropy
from nnsim.engine.models import build_model
from nnsim.errors import NnsimError

SMALL = {
    "mlp": {"hidden": [6, 5], "activation": "tanh"},
    "cnn": {"channels": [2, 3], "hidden": 5},
    "vit": {"patch": 4, "dim": 8, "heads": 2, "depth": 2, "mlp_dim": 12},
}


@pytest.mark.parametrize("name", ["mlp", "cnn", "vit"])
def test_whole_model_gradient_check(ref, name):
    rng = np.random.default_rng(3)
    model = build_model(
        name, (2, 8, 8), 3, backend=ref, seed=1, dtype=np.float64, mean=[0.1, 0.2], std=[0.5, 2.0], **SMALL[name]
    )
    x = rng.random((3, 2, 8, 8))
    labels = np.array([0, 2, 1])

    def loss():
        return cross_entropy(model.forward(x), labels)[0]

    _, dlogits = cross_entropy(model.forward(x), labels)
    model.backward(dlogits)
    worst = 0.0
    for _, param in model.named_parameters():
        analytic = param.grad.copy().reshape(-1)
        idx, numeric = numerical_gradient(loss, param.value, max_entries=25, rng=rng)
        worst = max(worst, relative_error(analytic[idx], numeric))
    assert worst < 1e-6


def test_default_architectures_match_the_issue(ref):
    cnn = build_model("cnn", (1, 28, 28), 10, backend=ref)
    described = [layer.describe() for layer in cnn.layers[1:]]
    assert described == [
        "Conv2d(1→16, 3×3, stride 1, pad 1) + ReLU + MaxPool2d(2×2)",
        "Conv2d(16→32, 3×3, stride 1, pad 1) + ReLU + MaxPool2d(2×2)",
        "Flatten",
        "Linear(1568→64)",
        "ReLU",
        "Linear(64→10)",
    ]
    assert cnn.parameter_count() == 160 + 4640 + 1568 * 64 + 64 + 650
    assert not cnn.layers[1].needs_input_grad and cnn.layers[2].needs_input_grad  # no gradient for the image
    vit = build_model("vit", (1, 28, 28), 10, backend=ref)
    assert vit.config.sizes == {"patch": 7, "dim": 64, "heads": 4, "depth": 2, "mlp_dim": 128}
    assert vit.layers[1].tokens == 16
    assert build_model("vit", (3, 32, 32), 5, backend=ref).config.sizes["patch"] == 8
    logits = vit.forward(np.zeros((2, 1, 28, 28), np.float32))
    assert logits.shape == (2, 10) and logits.dtype == np.float32


def test_same_seed_same_weights(ref):
    a = build_model("cnn", backend=ref, seed=5).state_dict()
    b = build_model("cnn", backend=ref, seed=5).state_dict()
    c = build_model("cnn", backend=ref, seed=6).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["layers.1.weight"], c["layers.1.weight"])


def test_bad_model_requests(ref):
    with pytest.raises(NnsimError, match="unknown model"):
        build_model("rnn", backend=ref)
    with pytest.raises(NnsimError, match="too small"):
        build_model("cnn", (1, 2, 2), 3, backend=ref, channels=[4, 4, 4])
    with pytest.raises(NnsimError, match="smaller than one"):
        build_model("vit", (1, 5, 5), 3, backend=ref, patch=7)
