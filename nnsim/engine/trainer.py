"""The learning loop, as a generator of events.

Each step is the workshop's five steps: forward pass, loss, backpropagation, update; repeat. The
trainer yields an event after every step and at every milestone, so that the CLI can print them
and the app can draw them, and it checks between steps whether it was asked to pause or stop.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from nnsim.atomic import check_writable
from nnsim.data.dataset import Dataset, split_validation
from nnsim.data.datasets import load_dataset
from nnsim.engine.backends import BACKEND_NAMES, get_backend
from nnsim.engine.checkpoint import load_weights, read_extra, save_checkpoint
from nnsim.engine.memory import check_fits
from nnsim.engine.models import MODEL_NAMES, build_model
from nnsim.engine.optim import OPTIMIZER_NAMES, make_optimizer
from nnsim.engine.runfiles import check_targets, save_failure
from nnsim.errors import NnsimError, SettingError

DEFAULT_EPOCHS = {"mlp": 5, "cnn": 5, "vit": 10}
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.05}


LOSS_NAMES = ("ce", "focal")
# Why a run ended, in the learner's words (DoneEvent.reason is the name a program reads).
REASONS = {
    "finished": "finished",
    "max_steps": "reached its step limit",
    "early_stop": "stopped early",
    "diverged": "diverged",
    "stopped": "stopped",
}


def flag(help: str, *, parse: str = "text", metavar: str | None = None, choices: tuple | None = None) -> dict:
    """A TrainConfig field that is also a command-line flag (`nnsim train`, `nnsim lab`).

    parse names how the CLI reads the text: text, int, count (≥ 1), number, rate (> 0), alpha (one
    number or one per class), nonnegative, path, choice.
    """
    return {"flag": {"help": help, "parse": "choice" if choices else parse, "metavar": metavar, "choices": choices}}


@dataclass
class TrainConfig:
    """Everything a run depends on. None means "the default for this model or optimizer"."""

    model: str = field(default="cnn", metadata=flag("the network to train", choices=MODEL_NAMES))
    data: str = field(
        default="mnist-mini",
        metadata=flag(
            "a built-in name (mnist-mini, shapes, shapes-imbalanced), mnist or fashion-mnist, "
            "or a path to a Keras .npz, a folder of MNIST IDX files or an ImageFolder",
            metavar="NAME|PATH",
        ),
    )
    epochs: int | None = field(
        default=None,
        metadata=flag("passes over the training set (default: 5 for mlp and cnn, 10 for vit)", parse="count"),
    )
    max_steps: int | None = field(
        default=None, metadata=flag("stop after N optimizer steps, then evaluate", parse="count", metavar="N")
    )
    batch_size: int = field(default=64, metadata=flag("images per step", parse="count", metavar="B"))
    lr: float | None = field(
        default=None, metadata=flag("learning rate η (default: 0.001 for adam, 0.05 for sgd)", parse="rate")
    )
    optimizer: str = field(default="adam", metadata=flag("how the weights are updated", choices=OPTIMIZER_NAMES))
    momentum: float = field(default=0.9, metadata=flag("SGD momentum", parse="number", metavar="M"))
    weight_decay: float = field(default=0.0, metadata=flag("L2 weight decay", parse="number", metavar="L2"))
    loss: str = field(default="ce", metadata=flag("cross-entropy or focal loss", choices=LOSS_NAMES))
    alpha: float | list[float] = field(
        default=1.0,
        metadata=flag("focal loss class weight: one number, or one per class", parse="alpha", metavar="A|a0,a1,…"),
    )
    gamma: float = field(
        default=2.0, metadata=flag("focal loss focusing factor γ ≥ 0", parse="nonnegative", metavar="G")
    )
    backend: str = field(
        default="auto",
        metadata=flag("which engine runs the kernels (auto: cuda, else cpu, else reference)", choices=BACKEND_NAMES),
    )
    seed: int = field(default=0, metadata=flag("seed for weights, shuffling and the split", parse="int", metavar="S"))
    patience: int | None = field(
        default=None,
        metadata=flag("stop early after P epochs without a better validation loss", parse="count", metavar="P"),
    )
    checkpoint: str | None = field(
        default=None,
        metadata=flag("save the weights here after each epoch and at the end (.npz)", parse="path", metavar="PATH"),
    )
    resume: str | None = field(
        default=None,
        metadata=flag("start from the weights of this checkpoint (same network)", parse="path", metavar="PATH"),
    )
    val_fraction: float = field(
        default=0.1, metadata=flag("share of the training set held out for validation", parse="number", metavar="F")
    )
    eval_batch_size: int = 500
    sizes: dict = field(default_factory=dict)
    precision: str = "float32"  # "float64" on the reference backend: exact small figures for a lesson

    def resolved(self) -> TrainConfig:
        """A copy with defaults filled in, checked; every problem is one NnsimError."""
        epochs = self.epochs if self.epochs is not None else DEFAULT_EPOCHS.get(self.model, 5)
        lr = self.lr if self.lr is not None else DEFAULT_LR.get(self.optimizer, 1e-3)
        config = TrainConfig(**{**asdict(self), "epochs": epochs, "lr": lr})
        config.check()
        return config

    def check(self) -> None:
        """Every setting finite and in range; each problem is a SettingError that names its field."""
        if self.model not in MODEL_NAMES:
            raise SettingError("model", f"unknown model {self.model!r}; choose one of {', '.join(MODEL_NAMES)}")
        if self.optimizer not in OPTIMIZER_NAMES:
            raise SettingError(
                "optimizer", f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZER_NAMES)}"
            )
        if self.loss not in LOSS_NAMES:
            raise SettingError("loss", f"unknown loss {self.loss!r}; choose ce or focal")
        _at_least("batch_size", "the batch size", self.batch_size, 1)
        _at_least("epochs", "epochs", self.epochs, 1)
        _at_least("max_steps", "--max-steps", self.max_steps, 1)
        _at_least("patience", "patience", self.patience, 1)
        _at_least("seed", "the seed", self.seed, 0)
        if self.lr is not None and not (_finite(self.lr) and self.lr > 0):
            raise SettingError("lr", f"the learning rate must be a finite number > 0, got {self.lr}")
        if not (_finite(self.momentum) and 0 <= self.momentum < 1):
            raise SettingError("momentum", f"momentum must be in [0, 1), got {self.momentum}")
        if not (_finite(self.weight_decay) and self.weight_decay >= 0):
            raise SettingError("weight_decay", f"weight decay must be a finite number >= 0, got {self.weight_decay}")
        if not (_finite(self.gamma) and self.gamma >= 0):
            raise SettingError("gamma", f"focal γ (gamma) must be a finite number >= 0, got {self.gamma}")
        alpha = np.asarray(self.alpha, dtype=float)
        if alpha.size == 0 or not (np.all(np.isfinite(alpha)) and np.all(alpha >= 0)):
            raise SettingError("alpha", f"focal α (alpha) must be finite numbers >= 0, got {self.alpha}")
        if not (_finite(self.val_fraction) and 0 <= self.val_fraction < 1):
            raise SettingError("val_fraction", f"the validation fraction must be in [0, 1), got {self.val_fraction}")
        if self.precision not in ("float32", "float64"):
            raise SettingError("precision", f"precision must be float32 or float64, got {self.precision!r}")
        if self.precision == "float64" and self.backend != "reference":
            raise SettingError("precision", "float64 runs on the reference backend only")


def _finite(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)


def _at_least(name: str, words: str, value: int | None, least: int) -> None:
    """A whole-number setting (None: its default) is at least `least`."""
    if value is not None and not (isinstance(value, (int, np.integer)) and value >= least):
        raise SettingError(name, f"{words} must be a whole number >= {least}, got {value}")


# ------------------------------------------------------------------------------------ events
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


@dataclass
class _Position:
    """Where a run is in its data: the epoch in progress, the batches done in it, and the state of
    the generator that shuffles the training set as it was when that epoch began."""

    epoch: int
    batch: int
    order_state: dict


@dataclass
class _Progress:
    """The figures a run carries from epoch to epoch."""

    start: float
    train_seconds: float = 0.0
    samples_seen: int = 0
    train_loss: float | None = None
    val_accuracy: float | None = None
    best_loss: float = math.inf
    best_epoch: int = 0
    best_state: dict | None = None
    waited: int = 0


# ------------------------------------------------------------------------------------ trainer
class Trainer:
    """Trains one model on one data set. ``run()`` yields events; ``stop()``/``pause()`` between steps."""

    def __init__(self, config: TrainConfig, dataset: Dataset | None = None):
        self.config = config.resolved()
        cfg = self.config
        self.dataset = dataset if dataset is not None else load_dataset(cfg.data, seed=cfg.seed)
        if cfg.loss == "focal" and np.ndim(cfg.alpha) == 1 and len(cfg.alpha) != self.dataset.classes:
            raise NnsimError(
                f"--alpha has {len(cfg.alpha)} weights but {self.dataset.name} has {self.dataset.classes} classes"
            )
        if cfg.checkpoint:
            check_writable(Path(cfg.checkpoint))  # before training, not after it
        self.be = get_backend(cfg.backend)
        self.x_train, self.y_train, self.x_val, self.y_val = split_validation(
            self.dataset.x_train, self.dataset.y_train, cfg.val_fraction, seed=cfg.seed
        )
        mean, std = self.dataset.channel_stats()
        self.model = build_model(
            cfg.model,
            self.dataset.input_shape,
            self.dataset.classes,
            backend=self.be,
            seed=cfg.seed,
            mean=mean,
            std=std,
            dtype=np.dtype(cfg.precision),
            **cfg.sizes,
        )
        self.optimizer = make_optimizer(
            cfg.optimizer,
            self.model.parameters(),
            self.be,
            cfg.lr,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
        )
        self.steps = 0
        self.epoch = 0
        self.warnings: list[str] = []
        self.save_failed: SaveFailedEvent | None = None  # the last save of the checkpoint, while it failed
        if cfg.checkpoint:  # never over the data set, a file no run wrote, or another network
            self.warnings += check_targets([cfg.checkpoint], cfg.data, self.model.config.to_dict(), cfg.resume)
        cfg.eval_batch_size = check_fits(  # a run too large for memory is refused now, not part way
            self.model.config, cfg.batch_size, cfg.eval_batch_size, len(self.x_train), cfg.precision
        )
        self._optimizer_dropped = False
        self._progress = _Progress(start=time.perf_counter())
        self._order_rng = np.random.default_rng(cfg.seed)  # the order of the training images, epoch by epoch
        self._position = _Position(1, 0, self._order_rng.bit_generator.state)
        if cfg.resume:
            self._resume(cfg.resume)
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._last_good: list | None = None
        self.last_predictions = np.zeros(0, dtype=np.int64)

    def describe(self) -> tuple[str, str]:
        """Two lines: the data and its split; the network, backend and settings."""
        cfg = self.config
        data = f"{self.dataset.summary()}  ({len(self.x_train):,} train, {len(self.x_val):,} validation)"
        model = (
            f"{cfg.model.upper()} with {self.model.parameter_count():,} weights and biases · backend "
            f"{self.be.name} · {cfg.optimizer} lr {cfg.lr:g} · batch {cfg.batch_size} · {cfg.epochs} epochs"
            + (f" (at most {cfg.max_steps} steps)" if cfg.max_steps else "")
        )
        return data, model

    # ---------------------------------------------------------------- control (any thread)
    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def set_patience(self, patience: int | None) -> None:
        """Early stopping from the next validation on. Turned on mid-run, the best epoch so far
        counts from the next validation: earlier epochs' weights were not kept."""
        self.config.patience = patience
        if patience and self._progress.best_state is None:
            self._progress.best_loss, self._progress.waited = math.inf, 0

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def _should_stop(self) -> bool:
        self._running.wait()
        return self._stop.is_set()

    # ---------------------------------------------------------------- the loop
    def run(self) -> Iterator[Event]:
        """Train for the configured epochs (or steps), yielding an event at every step and milestone."""
        cfg = self.config
        self._progress.start = time.perf_counter()
        reason = "finished"
        for epoch in range(self._position.epoch, cfg.epochs + 1):
            reason = yield from self.run_epoch(epoch)
            if reason != "finished":
                break
            if cfg.checkpoint and epoch < cfg.epochs:
                yield self._save_during_run(cfg.checkpoint)
        yield from self.finish(reason)

    def run_epoch(self, epoch: int) -> Iterator[Event]:
        """One pass over the training set, then validation. Returns why it ended ("finished" if it ran out)."""
        cfg, progress = self.config, self._progress
        self.epoch = epoch
        epoch_start = time.perf_counter()
        loss_sum, correct_sum, seen = 0.0, 0, 0
        position = self._position
        if position.epoch != epoch:
            position = self._position = _Position(epoch, 0, self._order_rng.bit_generator.state)
        self._order_rng.bit_generator.state = position.order_state  # the same order after a resume
        order = self._order_rng.permutation(len(self.x_train))
        batches = math.ceil(len(self.x_train) / cfg.batch_size)
        for batch in range(position.batch, batches):
            if self._should_stop():
                return "stopped"
            index = order[batch * cfg.batch_size : (batch + 1) * cfg.batch_size]
            t0 = time.perf_counter()
            with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is reported, not warned
                loss, correct = self.train_step(self.x_train[index], self.y_train[index])
            elapsed = time.perf_counter() - t0
            if not math.isfinite(loss):
                yield from self._diverged(loss)
                return "diverged"
            position.batch = batch + 1
            progress.train_seconds += elapsed
            progress.samples_seen += len(index)
            loss_sum += loss * len(index)
            correct_sum += correct
            seen += len(index)
            yield StepEvent(
                self.steps, epoch, batch + 1, batches, loss, correct / len(index), len(index) / max(elapsed, 1e-9)
            )
            if cfg.max_steps is not None and self.steps >= cfg.max_steps:
                break
        if position.batch == batches:  # the next epoch starts with the next permutation
            self._position = _Position(epoch + 1, 0, self._order_rng.bit_generator.state)
        progress.train_loss = loss_sum / max(seen, 1)
        yield EpochEvent(
            epoch, cfg.epochs, progress.train_loss, correct_sum / max(seen, 1), time.perf_counter() - epoch_start
        )
        early_stop = yield from self._validate(epoch)
        if early_stop:
            return "early_stop"
        return "max_steps" if cfg.max_steps is not None and self.steps >= cfg.max_steps else "finished"

    def _validate(self, epoch: int) -> Iterator[Event]:
        """Validation loss and accuracy; keeps the best weights for early stopping. Returns True to stop."""
        cfg, progress = self.config, self._progress
        if not len(self.x_val):
            return False
        val_loss, progress.val_accuracy = self.evaluate(self.x_val, self.y_val)
        improved = val_loss < progress.best_loss
        if improved:
            progress.best_loss, progress.best_epoch, progress.waited = val_loss, epoch, 0
            progress.best_state = self.model.state_dict() if cfg.patience else None
        else:
            progress.waited += 1
        yield ValidationEvent(epoch, val_loss, progress.val_accuracy, improved)
        if not (cfg.patience and progress.waited >= cfg.patience):
            return False
        self.model.load_state_dict(progress.best_state)
        _, progress.val_accuracy = self.evaluate(self.x_val, self.y_val)
        yield EarlyStopEvent(epoch, progress.best_epoch, progress.best_loss)
        return True

    def finish(self, reason: str) -> Iterator[Event]:
        """The end of a run: the last checkpoint, the test set (unless stopped), and the done event."""
        cfg, progress = self.config, self._progress
        if reason in ("diverged", "stopped") and cfg.checkpoint:
            yield self._save_during_run(cfg.checkpoint, final=True)
        test_loss = test_accuracy = None
        if len(self.dataset.x_test) and reason != "stopped":
            test_loss, test_accuracy = self.evaluate(self.dataset.x_test, self.dataset.y_test)
        if cfg.checkpoint and reason not in ("diverged", "stopped"):
            yield self._save_during_run(cfg.checkpoint, final=True, test_accuracy=test_accuracy)
        yield DoneEvent(
            train_loss=progress.train_loss,
            val_accuracy=progress.val_accuracy,
            test_accuracy=test_accuracy,
            test_loss=test_loss,
            steps=self.steps,
            epochs=self.epoch,
            samples_per_s=self.images_per_s(),
            seconds=time.perf_counter() - progress.start,
            checkpoint=cfg.checkpoint,
            backend=self.be.name,
            reason=reason,
        )

    def images_per_s(self) -> float:
        """Training images this session has really stepped through, per second of stepping (a
        batch larger than the training set holds only the training set)."""
        return self._progress.samples_seen / max(self._progress.train_seconds, 1e-9)

    # ---------------------------------------------------------------- one step, phase by phase
    def train_step(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
        """Forward, loss, backward, update. Returns (loss, correct) of this batch."""
        logits = self.forward(images)
        loss, dlogits, correct = self.loss(logits, labels)
        if not math.isfinite(loss):
            return loss, correct
        self.backward(dlogits)
        self.update()
        return loss, correct

    def forward(self, images: np.ndarray):
        """1. Forward pass: the logits; every layer keeps what it computed (feature maps, attention)."""
        return self.model.forward(self.be.asarray(images, dtype=self.config.precision))

    def loss(self, logits, labels: np.ndarray) -> tuple[float, object, int]:
        """2. Loss: (mean loss, dL/dlogits, how many of the batch were right)."""
        cfg = self.config
        return self.be.classification_loss(logits, self.be.asarray(labels), cfg.loss, cfg.alpha, cfg.gamma)

    def backward(self, dlogits) -> dict[str, object]:
        """3. Backpropagation: ∇θ L for every θ, by name (each parameter's .grad)."""
        self.model.backward(dlogits)
        return {name: param.grad for name, param in self.model.named_parameters()}

    def update(self) -> None:
        """4. Update: θ ← θ − η ∇θ L, by the optimizer; the weights before it are kept in case the next loss is NaN."""
        self._keep_last_good()
        self.optimizer.step()
        self.steps += 1

    def _keep_last_good(self) -> None:
        """A copy of every weight before the update, into the same buffers step after step (NumPy
        backends): no new arrays each step, which for a small network costs as much as its math."""
        params, kept = self.model.parameters(), self._last_good
        reusable = kept is not None and all(
            isinstance(k, np.ndarray) and isinstance(p.value, np.ndarray) and k.shape == p.value.shape
            for k, p in zip(kept, params, strict=True)
        )
        if not reusable:
            self._last_good = [self.be.copy(p.value) for p in params]
            return
        for buffer, param in zip(kept, params, strict=True):
            np.copyto(buffer, param.value)

    def _diverged(self, loss: float) -> Iterator[Event]:
        failed_at = self.steps + 1
        if self._last_good is not None:
            # The weights before the last update: the last ones whose loss was finite. The update
            # that made them diverge is undone; its optimizer state is dropped rather than kept.
            for param, value in zip(self.model.parameters(), self._last_good, strict=True):
                param.value = value
            self._last_good = None  # those buffers are the weights now: the next step copies afresh
            self.steps -= 1
            self._optimizer_dropped = True
        lr = self.config.lr
        yield DivergedEvent(
            self.steps,
            float(loss),
            f"the loss became {loss} at step {failed_at}; the last good weights were kept. "
            f"Try a smaller learning rate (e.g. --lr {lr / 10:g}).",
        )

    def evaluate(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        """Mean loss and accuracy over a whole set, in batches, without changing the weights."""
        cfg = self.config
        loss_sum, correct_sum, predicted = 0.0, 0, []
        for start in range(0, len(images), cfg.eval_batch_size):
            x = images[start : start + cfg.eval_batch_size]
            y = labels[start : start + cfg.eval_batch_size]
            logits = self.model.forward(self.be.asarray(x, dtype=cfg.precision))
            loss, _, correct = self.be.classification_loss(logits, self.be.asarray(y), cfg.loss, cfg.alpha, cfg.gamma)
            predicted.append(np.argmax(self.be.to_numpy(logits), axis=1))
            loss_sum += loss * len(x)
            correct_sum += correct
        self.last_predictions = np.concatenate(predicted)  # the class each image was given (the lab's confusion matrix)
        return loss_sum / len(images), correct_sum / len(images)

    def _save_during_run(self, path, final: bool = False, **figures) -> Event:
        """A save that never ends the run: a failure is an event that says so (the next epoch tries again)."""
        try:
            event, self.save_failed = self.save(path, **figures), None
        except (NnsimError, OSError) as error:
            event = self.save_failed = SaveFailedEvent(str(path), save_failure(error), self.steps, final)
        return event

    def describing(self) -> dict:
        """What every file of this run carries, so that each is read the same way (`predict`, the lab's draw)."""
        return {
            "class_names": self.dataset.class_names,
            "data": self.dataset.name,
            "background": float(_border_mean(self.dataset.x_train)),
            "steps": self.steps,
            "epoch": self.epoch,
        }

    def save(self, path, **figures) -> CheckpointEvent:
        """Weights, optimizer state and position in the data, so that a resume continues exactly."""
        progress, position = self._progress, self._position
        meta = {
            **self.describing(),
            "optimizer": {"name": self.config.optimizer, "steps": self.optimizer.steps},
            "position": {"epoch": position.epoch, "batch": position.batch, "order_state": position.order_state},
            "progress": {
                "train_loss": progress.train_loss,
                "val_accuracy": progress.val_accuracy,
                "best_loss": progress.best_loss if math.isfinite(progress.best_loss) else None,
                "best_epoch": progress.best_epoch,
                "waited": progress.waited,
            },
            **figures,
        }
        extra = {}
        if self._optimizer_dropped:
            del meta["optimizer"]  # a resume starts the optimizer afresh, at the weights kept
        else:
            extra = {f"optimizer/{key}": value for key, value in self.optimizer.state_dict()["buffers"].items()}
        extra.update({f"best/{name}": value for name, value in (progress.best_state or {}).items()})
        save_checkpoint(Path(path), self.model, meta, extra)
        return CheckpointEvent(str(path), self.steps, self.epoch)

    def _resume(self, path) -> None:
        """Continue from a checkpoint: its weights and, when it has them, optimizer state and position."""
        meta = load_weights(self.model, path)
        self.steps = int(meta.get("steps", 0))
        self.epoch = int(meta.get("epoch", 0))
        extra = read_extra(path)
        saved = meta.get("optimizer", {})
        if saved.get("name") == self.config.optimizer:
            buffers = {key.split("/", 1)[1]: value for key, value in extra.items() if key.startswith("optimizer/")}
            self.optimizer.load_state_dict({"steps": saved["steps"], "buffers": buffers})
        elif saved:
            self.warnings.append(
                f"{path} was trained with {saved.get('name')}; {self.config.optimizer} starts with fresh state"
            )
        if "position" in meta:
            where = meta["position"]
            self._position = _Position(int(where["epoch"]), int(where["batch"]), where["order_state"])
            figures = meta.get("progress", {})
            best = {key.split("/", 1)[1]: value for key, value in extra.items() if key.startswith("best/")}
            self._progress = _Progress(
                start=time.perf_counter(),
                train_loss=figures.get("train_loss"),
                val_accuracy=figures.get("val_accuracy"),
                best_loss=figures["best_loss"] if figures.get("best_loss") is not None else math.inf,
                best_epoch=int(figures.get("best_epoch", 0)),
                best_state=best or None,
                waited=int(figures.get("waited", 0)),
            )


def _border_mean(images: np.ndarray) -> float:
    """Mean brightness of the outermost pixels: about 0 for MNIST's white-on-black digits."""
    sample = images[:500]
    border = np.concatenate(
        [sample[:, :, 0].ravel(), sample[:, :, -1].ravel(), sample[:, :, :, 0].ravel(), sample[:, :, :, -1].ravel()]
    )
    return float(border.mean()) if border.size else 0.0
