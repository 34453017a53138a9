"""The learning-loop widget's figures: a tiny network trained phase by phase by the engine's Trainer.

Two inputs, a hidden layer of a few neurons, two classes, a handful of points: small enough that
every number fits on screen, in float64 so that backpropagation can be checked against finite
differences (nnsim.engine.gradcheck) to the last digits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from nnsim.data.dataset import Dataset
from nnsim.engine.gradcheck import numerical_gradient, relative_error
from nnsim.engine.losses import softmax
from nnsim.engine.trainer import TrainConfig, Trainer

PHASES = ("forward", "loss", "backward", "update")


def two_blobs(points: int, seed: int) -> Dataset:
    """Two classes of 2-D points (as 1×1×2 "images"): class 0 around (−1, −1), class 1 around (1, 1)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(points) % 2
    centres = np.where(labels[:, None] == 1, 1.0, -1.0)
    x = (centres + 0.9 * rng.standard_normal((points, 2)))[:, None, None, :]
    return Dataset("two blobs", x, labels, x[:0], labels[:0], ["blue", "red"], source="generated")


@dataclass
class Gradient:
    name: str
    analytic: np.ndarray  # ∇θ L by backpropagation
    numeric: np.ndarray  # by central differences
    error: float  # relative error between them


@dataclass
class LoopState:
    phase: int = 0  # index into PHASES of the next phase to run
    logits: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    loss: float | None = None
    dlogits: np.ndarray | None = None
    gradients: list[Gradient] = field(default_factory=list)
    before: dict[str, np.ndarray] = field(default_factory=dict)  # the weights before the last update
    after: dict[str, np.ndarray] = field(default_factory=dict)
    history: list[tuple[float, float]] = field(default_factory=list)  # (train loss, validation loss) per epoch
    stopped: str = ""  # why epochs stopped: early stopping, or divergence


class LearningLoop:
    """One tiny network, its data, and where it is in the loop."""

    def __init__(self, lr: float = 0.5, hidden: int = 3, points: int = 16, seed: int = 0, patience: int = 3):
        config = TrainConfig(
            model="mlp",
            data="two blobs",
            batch_size=points // 2,
            epochs=1,
            optimizer="sgd",
            momentum=0.0,
            lr=lr,
            backend="reference",
            seed=seed,
            val_fraction=0.5,
            precision="float64",
            sizes={"hidden": [hidden], "activation": "relu"},
        )
        self.trainer = Trainer(config, two_blobs(points, seed))
        self.x, self.y = self.trainer.x_train, self.trainer.y_train
        self.patience = patience
        self.state = LoopState()

    @property
    def lr(self) -> float:
        return self.trainer.optimizer.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.trainer.optimizer.lr = value
        self.trainer.config.lr = value

    def step(self) -> str:
        """Run the next phase of one training step on all training points; returns its name."""
        state, trainer = self.state, self.trainer
        phase = PHASES[state.phase]
        if phase == "forward":
            state.logits = np.asarray(trainer.forward(self.x))
            state.probabilities = softmax(state.logits)
        elif phase == "loss":
            state.loss, state.dlogits, _ = trainer.loss(state.logits, self.y)
        elif phase == "backward":
            grads = trainer.backward(state.dlogits)
            state.gradients = [self._checked(name, grad) for name, grad in grads.items()]
        else:
            state.before = trainer.model.state_dict()
            trainer.update()
            state.after = trainer.model.state_dict()
        state.phase = (state.phase + 1) % len(PHASES)
        return phase

    def _checked(self, name: str, grad) -> Gradient:
        params = dict(self.trainer.model.named_parameters())

        def loss() -> float:
            return self.trainer.loss(self.trainer.forward(self.x), self.y)[0]

        _, numeric = numerical_gradient(loss, params[name].value)
        analytic = np.array(grad, copy=True)
        self.trainer.forward(self.x)  # the layers keep this forward's values again, as backward left them
        return Gradient(name, analytic, numeric.reshape(analytic.shape), relative_error(analytic, numeric))

    def epoch(self) -> tuple[float, float] | None:
        """One pass over the training points, then the validation loss; None once stopped."""
        state, trainer = self.state, self.trainer
        if state.stopped:
            return None
        with np.errstate(over="ignore", invalid="ignore"):
            train_loss, _ = trainer.train_step(self.x, self.y)
            val_loss, _ = trainer.evaluate(trainer.x_val, trainer.y_val)
        state.phase = 0
        state.history.append((train_loss, val_loss))
        losses = [t for t, _ in state.history]
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)) or train_loss > 10 * max(losses[0], 1e-9):
            state.stopped = (
                f"diverged at epoch {len(losses)}: the loss grew to {train_loss:.3g}. η = {self.lr:g} is too large: "
                "each step jumps past the valley's floor and lands higher up the other side."
            )
        elif _epochs_without_improvement([v for _, v in state.history]) >= self.patience:
            best = int(np.argmin([v for _, v in state.history])) + 1
            state.stopped = (
                f"early stop at epoch {len(losses)}: the validation loss has not improved for {self.patience} "
                f"epochs (best at epoch {best}); more training would fit the training points, not the task."
            )
        return state.history[-1]


def _epochs_without_improvement(values: list[float]) -> int:
    best = int(np.argmin(values))
    return len(values) - 1 - best
