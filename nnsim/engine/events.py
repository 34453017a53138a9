"""What the trainer tells as it trains: one event after every step and at every milestone.

Each event is a dataclass: `to_dict()` is the JSON line `nnsim train --json` prints, `describe()`
the line the CLI prints and the lab shows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# Why a run ended, in the learner's words (DoneEvent.reason is the name a program reads).
REASONS = {
    "finished": "finished",
    "max_steps": "reached its step limit",
    "early_stop": "stopped early",
    "diverged": "diverged",
    "stopped": "stopped",
}


@dataclass
class Event:
    """Something the trainer did. ``describe()`` is the line the CLI prints and the lab shows."""

    def to_dict(self) -> dict:
        return {"event": self.event, **asdict(self)}

    def describe(self) -> str:
        return self.event


@dataclass
class StepEvent(Event):
    step: int
    epoch: int
    batch: int
    batches: int
    loss: float
    accuracy: float
    samples_per_s: float
    event = "step"

    def describe(self) -> str:
        return (
            f"step {self.step} (epoch {self.epoch}, batch {self.batch}/{self.batches}): loss {self.loss:.4f}, "
            f"accuracy {self.accuracy:.1%}, {self.samples_per_s:,.0f} images/s"
        )


@dataclass
class EpochEvent(Event):
    epoch: int
    epochs: int
    train_loss: float
    train_accuracy: float
    seconds: float
    event = "epoch"

    def describe(self) -> str:
        return (
            f"epoch {self.epoch}/{self.epochs}: train loss {self.train_loss:.4f}, "
            f"accuracy {self.train_accuracy:.2%} ({self.seconds:.1f} s)"
        )


@dataclass
class ValidationEvent(Event):
    epoch: int
    val_loss: float
    val_accuracy: float
    improved: bool
    event = "validation"

    def describe(self) -> str:
        best = " best so far" if self.improved else ""
        return f"validation: loss {self.val_loss:.4f}, accuracy {self.val_accuracy:.2%}{best}"


@dataclass
class EarlyStopEvent(Event):
    epoch: int
    best_epoch: int
    best_val_loss: float
    event = "early_stop"

    def describe(self) -> str:
        return f"early stop: no better validation loss since epoch {self.best_epoch}; kept that epoch's weights"


@dataclass
class DivergedEvent(Event):
    step: int
    loss: float
    message: str
    event = "diverged"

    def describe(self) -> str:
        return f"diverged: {self.message}"


@dataclass
class CheckpointEvent(Event):
    path: str
    step: int
    epoch: int
    event = "checkpoint"

    def describe(self) -> str:
        return f"saved {self.path}"


@dataclass
class SaveFailedEvent(Event):
    path: str
    reason: str
    step: int
    final: bool  # the run's last save: nothing tries again
    event = "save_failed"

    def describe(self) -> str:
        after = "its last weights were not written" if self.final else "training goes on, the next epoch tries again"
        return f"could not save {self.path} ({self.reason}); {after}"


@dataclass
class DoneEvent(Event):
    train_loss: float | None
    val_accuracy: float | None
    test_accuracy: float | None
    test_loss: float | None
    steps: int
    epochs: int
    samples_per_s: float
    seconds: float
    checkpoint: str | None
    backend: str
    reason: str  # "finished", "max_steps", "early_stop", "diverged", "stopped"
    event = "done"

    def describe(self) -> str:
        if self.test_accuracy is None:
            why = REASONS.get(self.reason, self.reason)
            return f"{why} after {self.steps} steps, {self.samples_per_s:,.0f} images/s, {self.seconds:.1f} s"
        return (
            f"test accuracy {self.test_accuracy:.2%} (loss {self.test_loss:.4f}) after "
            f"{self.steps} steps, {self.samples_per_s:,.0f} images/s, {self.seconds:.1f} s"
        )
