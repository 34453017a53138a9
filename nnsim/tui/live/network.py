"""The network widget's figures: a small MLP trained on real digits, and what flows through it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TrainedMLP:
    weights: list[np.ndarray]  # (out, in) per Linear layer
    biases: list[np.ndarray]
    hidden: tuple[int, ...]
    test_accuracy: float  # the share of the data set's test digits it names right
    test_digits: int  # how many test digits that share is of
    steps: int
    images: np.ndarray  # a few test images (N, 1, 28, 28)
    labels: np.ndarray
    activations: list[list[np.ndarray]]  # per image: each layer's output, input pixels first
    probabilities: np.ndarray  # (N, 10)
    mean: float  # the first layer normalises pixels: (x − mean) / std, the training set's statistics
    std: float


_TRAINED: dict[tuple, TrainedMLP] = {}  # a network trained once is kept for the rest of the run


def train_mlp(hidden: tuple[int, ...], steps: int, seed: int, cancelled=lambda: False) -> TrainedMLP | None:
    """Train 784 → hidden → 10 on mnist-mini with the engine's Trainer (reference backend).

    Between steps it asks ``cancelled()``; if that says yes (the learner left the step or quit),
    it stops and returns None.
    """
    key = (tuple(hidden), steps, seed)
    if key not in _TRAINED:
        trained = _train(hidden, steps, seed, cancelled)
        if trained is None:
            return None
        _TRAINED[key] = trained
    return _TRAINED[key]


def _train(hidden, steps, seed, cancelled) -> TrainedMLP | None:
    from nnsim.engine import layers as L
    from nnsim.engine.config import TrainConfig
    from nnsim.engine.events import DoneEvent
    from nnsim.engine.losses import softmax
    from nnsim.engine.trainer import Trainer

    config = TrainConfig(
        model="mlp",
        data="mnist-mini",
        max_steps=steps,
        epochs=100,
        batch_size=64,
        optimizer="adam",
        backend="reference",
        seed=seed,
        sizes={"hidden": list(hidden), "activation": "relu"},
    )
    trainer = Trainer(config)
    accuracy = 0.0
    for event in trainer.run():
        if cancelled():
            return None
        if isinstance(event, DoneEvent):
            accuracy = event.test_accuracy or 0.0
    model = trainer.model
    linears = [layer for layer in model.layers if isinstance(layer, L.Linear)]
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(trainer.dataset.y_test), size=12, replace=False)
    images, labels = trainer.dataset.x_test[pick], trainer.dataset.y_test[pick]
    activations = []
    for image in images:
        x = model.be.asarray(image[None])
        outputs = [np.asarray(image).reshape(-1)]
        for layer in model.layers:
            x = layer.forward(x)
            if isinstance(layer, L.Activation) or layer is linears[-1]:
                outputs.append(np.asarray(x)[0].astype(np.float64))
        activations.append(outputs)
    logits = model.be.to_numpy(model.forward(model.be.asarray(images)))
    return TrainedMLP(
        hidden=tuple(hidden),
        test_digits=len(trainer.dataset.y_test),
        weights=[np.asarray(layer.weight.value, dtype=np.float64) for layer in linears],
        biases=[np.asarray(layer.bias.value, dtype=np.float64) for layer in linears],
        test_accuracy=accuracy,
        steps=trainer.steps,
        images=images,
        labels=labels,
        activations=activations,
        probabilities=softmax(logits.astype(np.float64)),
        mean=float(model.config.mean[0]),
        std=float(model.config.std[0]),
    )
