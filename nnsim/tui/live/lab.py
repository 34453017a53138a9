"""The lab's training run: the engine's Trainer driven from a worker thread, its figures gathered
for the screen (curves, confusion matrix, sample predictions), and the controls a learner uses
(pause, one step, stop, a new learning rate) applied between steps.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from nnsim.engine.trainer import TrainConfig, Trainer

SMOOTHING = 0.9  # the smoothed loss curve is an exponential moving average: s ← 0.9·s + 0.1·loss
SAMPLES = 8  # validation images shown with their prediction


@dataclass
class LabFigures:
    """Everything the lab screen draws, as plain numbers (a copy, safe to hand to the UI thread)."""

    step: int = 0
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    losses: list[float] = field(default_factory=list)  # every step's training loss
    smoothed: list[float] = field(default_factory=list)  # their moving average
    accuracies: list[float] = field(default_factory=list)  # every step's training accuracy
    val_losses: list[float] = field(default_factory=list)  # per epoch
    val_accuracies: list[float] = field(default_factory=list)
    samples_per_s: float = 0.0
    eta_s: float | None = None
    confusion: np.ndarray | None = None  # (classes, classes): rows true, columns predicted
    samples: list[tuple[np.ndarray, int, int, float]] = field(default_factory=list)  # image, true, predicted, p
    log: list[str] = field(default_factory=list)  # every milestone's words (Event.describe)
    state: str = "ready"  # ready, running, paused, finished
    last_update: str = ""  # the one-step view: what the last step changed


class LabRun:
    """One training run for the lab. Build it (loads the data, builds the network), then call
    `run(publish)` from a worker thread; the control methods are safe from any thread."""

    def __init__(self, config: TrainConfig):
        self.trainer = Trainer(config)
        self.figures = LabFigures(epochs=self.trainer.config.epochs)
        self.figures.log.extend(self.trainer.describe())
        self._lock = threading.Lock()
        self._one_step = False
        rng = np.random.default_rng(0)
        count = min(SAMPLES, len(self.trainer.x_val))
        self._sample_index = np.sort(rng.choice(len(self.trainer.x_val), size=count, replace=False))

    # ---------------------------------------------------------------- controls (any thread)
    def pause(self) -> None:
        self.trainer.pause()
        self.figures.state = "paused"

    def resume(self) -> None:
        self.figures.state = "running"
        self.trainer.resume()

    def step_once(self) -> None:
        """Run exactly one more step, then pause again."""
        self._one_step = True
        self.trainer.resume()

    def stop(self) -> None:
        self.trainer.stop()

    def set_lr(self, lr: float) -> None:
        """A new learning rate from the next step on."""
        self.trainer.optimizer.lr = lr
        self.trainer.config.lr = lr
        with self._lock:
            self.figures.log.append(f"learning rate set to {lr:g} at step {self.trainer.steps}")

    @property
    def classes(self) -> list[str]:
        return self.trainer.dataset.class_names

    # ---------------------------------------------------------------- the run (worker thread)
    def run(self, publish, every: float = 0.1) -> LabFigures:
        """Train to the end, calling publish(figures) at most every `every` seconds and at milestones."""
        figures, last = self.figures, 0.0
        figures.state = "running"
        started = time.perf_counter()
        for event in self.trainer.run():
            with self._lock:
                self._record(event, started)
            if event.event == "step" and self._one_step:
                self._one_step = False
                self.trainer.pause()
                figures.state = "paused"
                publish(self.snapshot())
                continue
            now = time.perf_counter()
            if event.event != "step" or now - last >= every:
                publish(self.snapshot())
                last = now
        figures.state = "finished"
        publish(self.snapshot())
        return figures

    def _record(self, event, started: float) -> None:
        figures, kind = self.figures, event.event
        if kind == "step":
            figures.step, figures.epoch, figures.batch, figures.batches = (
                event.step,
                event.epoch,
                event.batch,
                event.batches,
            )
            figures.losses.append(event.loss)
            previous = figures.smoothed[-1] if figures.smoothed else event.loss
            figures.smoothed.append(SMOOTHING * previous + (1 - SMOOTHING) * event.loss)
            figures.accuracies.append(event.accuracy)
            elapsed = time.perf_counter() - started
            figures.samples_per_s = event.step * self.trainer.config.batch_size / max(elapsed, 1e-9)
            total = figures.epochs * event.batches
            figures.eta_s = (total - event.step) / max(event.step / max(elapsed, 1e-9), 1e-9)
            figures.last_update = self._update_summary()
            return
        if kind == "validation":
            figures.val_losses.append(event.val_loss)
            figures.val_accuracies.append(event.val_accuracy)
            figures.confusion, figures.samples = self._validation_figures()
        figures.log.append(event.describe())

    def _update_summary(self) -> str:
        """What the last update did, in one line: the size of the step against the weights."""
        grads = [p.grad for p in self.trainer.model.parameters() if p.grad is not None]
        norm = math.sqrt(sum(float(np.sum(np.square(self.trainer.be.to_numpy(g)))) for g in grads))
        return f"step {self.trainer.steps}: ‖∇θ L‖ = {norm:.4f}, θ ← θ − {self.trainer.optimizer.lr:g}·(update)"

    def _validation_figures(self):
        trainer = self.trainer
        classes = trainer.dataset.classes
        predicted = []
        for start in range(0, len(trainer.x_val), 500):
            logits = trainer.be.to_numpy(trainer.forward(trainer.x_val[start : start + 500]))
            predicted.append(np.asarray(logits, dtype=np.float64))
        logits = np.concatenate(predicted) if predicted else np.zeros((0, classes))
        confusion = np.zeros((classes, classes), dtype=np.int64)
        np.add.at(confusion, (trainer.y_val, logits.argmax(axis=1)), 1)
        from nnsim.engine.losses import softmax

        probs = softmax(logits[self._sample_index]) if len(logits) else np.zeros((0, classes))
        samples = [
            (trainer.x_val[i], int(trainer.y_val[i]), int(p.argmax()), float(p.max()))
            for i, p in zip(self._sample_index, probs, strict=True)
        ]
        return confusion, samples

    def snapshot(self) -> LabFigures:
        with self._lock:
            f = self.figures
            return LabFigures(
                f.step,
                f.epoch,
                f.epochs,
                f.batch,
                f.batches,
                list(f.losses),
                list(f.smoothed),
                list(f.accuracies),
                list(f.val_losses),
                list(f.val_accuracies),
                f.samples_per_s,
                f.eta_s,
                None if f.confusion is None else f.confusion.copy(),
                list(f.samples),
                list(f.log),
                f.state,
                f.last_update,
            )
