"""The learning-loop widget's figures: a tiny network trained phase by phase by the engine's Trainer.

Two inputs, a hidden layer of a few neurons, two classes, a handful of points: small enough that
every number fits on screen, in float64 so that backpropagation can be checked against finite
differences (nnsim.engine.gradcheck) to the last digits. The two classes overlap, so a network
that fits every training point has fitted accidents of that sample: the validation loss turns up
and the Trainer's early stopping puts the best epoch's weights back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from nnsim.data.dataset import Dataset
from nnsim.engine.config import TrainConfig
from nnsim.engine.events import DivergedEvent, EarlyStopEvent, EpochEvent, ValidationEvent
from nnsim.engine.gradcheck import numerical_gradient, relative_error
from nnsim.engine.losses import softmax
from nnsim.engine.models import model_from_config
from nnsim.engine.trainer import Trainer

PHASES = ("forward", "loss", "backward", "update")
STEP_H = 1e-6  # the finite difference's nudge h
SPREAD = 1.2  # how far the points scatter around their class's centre: enough for the clouds to overlap


def two_blobs(points: int, seed: int) -> Dataset:
    """Two overlapping classes of 2-D points (as 1×1×2 "images"): class 0 around (−1, −1), class 1
    around (1, 1), each coordinate scattered by a normal of standard deviation SPREAD."""
    rng = np.random.default_rng(seed)
    labels = np.arange(points) % 2
    centres = np.where(labels[:, None] == 1, 1.0, -1.0)
    x = (centres + SPREAD * rng.standard_normal((points, 2)))[:, None, None, :]
    return Dataset("two blobs", x, labels, x[:0], labels[:0], ["blue", "red"], source="generated")


@dataclass
class Gradient:
    name: str  # as the lesson writes it: W₁, b₁ (hidden layer), W₂, b₂ (output layer)
    analytic: np.ndarray  # ∇θ L by backpropagation
    numeric: np.ndarray  # by central differences
    error: float  # relative error between them


@dataclass
class Epoch:
    train_loss: float  # over the training points, before this epoch's update
    val_loss: float  # over the validation points, after it
    train_right: int  # training points classified right, before the update
    val_right: int  # validation points classified right, after it


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
    epochs: list[Epoch] = field(default_factory=list)
    best_epoch: int = 0  # 1-based epoch of the lowest validation loss so far (0: none yet)
    restored: bool = False  # early stopping put the best epoch's weights back
    stopped: str = ""  # why epochs stopped: early stopping, or divergence

    @property
    def history(self) -> list[tuple[float, float]]:
        """(train loss, validation loss) per epoch."""
        return [(e.train_loss, e.val_loss) for e in self.epochs]


class LearningLoop:
    """One tiny network, its data, and where it is in the loop."""

    def __init__(self, lr: float = 0.5, hidden: int = 3, points: int = 16, seed: int = 2, patience: int = 10):
        config = TrainConfig(
            model="mlp",
            data="two blobs",
            batch_size=points // 2,  # all the training points in one batch: one update per epoch
            epochs=1,
            optimizer="sgd",
            momentum=0.0,
            lr=lr,
            backend="reference",
            seed=seed,
            val_fraction=0.5,
            precision="float64",
            patience=patience,  # the Trainer's own early stopping, which restores the best weights
            sizes={"hidden": [hidden], "activation": "relu"},
        )
        self.trainer = Trainer(config, two_blobs(points, seed))
        self.x, self.y = self.trainer.x_train, self.trainer.y_train
        self.patience = patience
        self.names = _lesson_names([name for name, _ in self.trainer.model.named_parameters()])
        self.state = LoopState()
        model = self.trainer.model  # a twin draws the map, so the network's own layers keep their values for backward
        self._twin = model_from_config(model.config, backend=model.be, dtype=np.float64)

    @property
    def lr(self) -> float:
        return self.trainer.optimizer.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.trainer.set_lr(value)

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
            state.before = self._weights()
            trainer.update()
            state.after = self._weights()
        state.phase = (state.phase + 1) % len(PHASES)
        return phase

    def map_extent(self) -> tuple[float, float, float, float]:
        """(x₁ from, x₁ to, x₂ from, x₂ to): every point, training and validation, with a margin."""
        points = np.concatenate([self.x, self.trainer.x_val])[:, 0, 0]
        low, high = points.min(axis=0) - 0.5, points.max(axis=0) + 0.5
        return float(low[0]), float(high[0]), float(low[1]), float(high[1])

    def red_map(self, columns: int, rows: int) -> np.ndarray:
        """p(red) the network gives the centre of each cell of a rows × columns grid over map_extent(),
        row 0 at the top (largest x₂); computed by the engine, with the network's current weights."""
        x1_from, x1_to, x2_from, x2_to = self.map_extent()
        x1 = x1_from + (np.arange(columns) + 0.5) * (x1_to - x1_from) / columns
        x2 = x2_to - (np.arange(rows) + 0.5) * (x2_to - x2_from) / rows
        grid = np.stack(np.meshgrid(x1, x2), axis=-1).reshape(-1, 1, 1, 2)
        self._twin.load_state_dict(self.trainer.model.state_dict())
        with np.errstate(over="ignore", invalid="ignore"):
            probabilities = softmax(np.asarray(self._twin.forward(grid)))
        return probabilities[:, 1].reshape(rows, columns)

    def _weights(self) -> dict[str, np.ndarray]:
        return {self.names[name]: value for name, value in self.trainer.model.state_dict().items()}

    def _checked(self, name: str, grad) -> Gradient:
        params = dict(self.trainer.model.named_parameters())

        def loss() -> float:
            return self.trainer.loss(self.trainer.forward(self.x), self.y)[0]

        _, numeric = numerical_gradient(loss, params[name].value, h=STEP_H)
        analytic = np.array(grad, copy=True)
        self.trainer.forward(self.x)  # the layers keep this forward's values again, as backward left them
        error = relative_error(analytic, numeric)
        return Gradient(self.names[name], analytic, numeric.reshape(analytic.shape), error)

    def epoch(self) -> Epoch | None:
        """One pass over the training points, then the validation loss, by the Trainer; None once stopped.

        The Trainer stops after `patience` epochs without a better validation loss and loads the
        weights of the best epoch back into the network."""
        state, trainer = self.state, self.trainer
        if state.stopped:
            return None
        number = len(state.epochs) + 1
        current = Epoch(math.nan, math.nan, 0, 0)
        n_train, n_val = len(self.y), len(trainer.y_val)
        with np.errstate(over="ignore", invalid="ignore"):
            for event in trainer.run_epoch(number):
                if isinstance(event, EpochEvent):
                    current.train_loss, current.train_right = event.train_loss, round(event.train_accuracy * n_train)
                elif isinstance(event, ValidationEvent):
                    current.val_loss, current.val_right = event.val_loss, round(event.val_accuracy * n_val)
                    state.best_epoch = number if event.improved else state.best_epoch
                elif isinstance(event, EarlyStopEvent):
                    state.restored = True
                elif isinstance(event, DivergedEvent):  # the Trainer kept the last weights whose loss was finite
                    current.train_loss = event.loss
        state.phase = 0
        state.epochs.append(current)
        state.stopped = self._why_stopped(current)
        return current

    def _why_stopped(self, current: Epoch) -> str:
        epochs, first = self.state.epochs, self.state.epochs[0].train_loss
        if not (math.isfinite(current.train_loss) and math.isfinite(current.val_loss)) or (
            current.train_loss > 10 * max(first, 1e-9)
        ):
            return (
                f"diverged at epoch {len(epochs)}: the loss grew to {current.train_loss:.3g}. η = {self.lr:g} is too "
                "large: each step jumps past the valley's floor and lands higher up the other side."
            )
        if not self.state.restored:
            return ""
        best = epochs[self.state.best_epoch - 1]
        said = (
            f"early stop at epoch {len(epochs)}: no better validation loss for {self.patience} epochs. "
            f"The weights of epoch {self.state.best_epoch} (validation loss {best.val_loss:.4f}, {best.val_right}/"
            f"{len(self.trainer.y_val)} right) are put back."
        )
        if overfitted(epochs[self.state.best_epoch - 1 :]):
            said += (
                f" Since then the training loss fell ({best.train_loss:.4f} → {current.train_loss:.4f}) while the "
                f"validation loss rose ({best.val_loss:.4f} → {current.val_loss:.4f}): the network was fitting its "
                "training points, not the task."
            )
        return said


def overfitted(since_best: list[Epoch]) -> bool:
    """From the best epoch on, the training loss never went above the best epoch's and ended clearly
    (5 %) lower, while the validation loss ended clearly higher: not a plateau, not a jumpy η."""
    best, last = since_best[0], since_best[-1]
    steady = all(e.train_loss <= best.train_loss for e in since_best)
    return steady and last.train_loss < 0.95 * best.train_loss and last.val_loss > 1.05 * best.val_loss


def _lesson_names(engine_names: list[str]) -> dict[str, str]:
    """The engine's parameter names (layers.2.weight …) as the lesson writes them: W₁, b₁, W₂, b₂."""
    subscripts = "₁₂₃₄₅₆₇₈₉"
    names, layer = {}, 0
    for name in engine_names:
        if name.endswith(".weight"):
            layer += 1
        names[name] = ("W" if name.endswith(".weight") else "b") + subscripts[layer - 1]
    return names
