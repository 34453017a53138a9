"""A run's settings: `TrainConfig`, each setting's default and range written once, beside it.

Every setting a learner may choose is a field whose metadata is a `Setting`: its words, its kind,
its range, its help, and where it shows (a command-line flag, a box of the lab's form, changeable
mid-run). `nnsim train --help`, the lab's form, `check()` and `resolved()` all read these, so a new
setting is one new field here. Messages name the setting in words ("the learning rate must be …"),
never a flag: the lab shows them too; the CLI puts its flag in front (`SettingError.name`).
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from nnsim.engine.backends import BACKEND_NAMES
from nnsim.engine.models import MODEL_NAMES
from nnsim.engine.optim import OPTIMIZER_NAMES
from nnsim.errors import SettingError

LOSS_NAMES = ("ce", "focal")
PRECISIONS = ("float32", "float64")
# Defaults that depend on another setting (None in a TrainConfig means "this one's").
DEFAULT_EPOCHS = {"mlp": 5, "cnn": 5, "vit": 10}
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.05}
# How the text of a flag or a box is read, by kind of setting.
KINDS = ("choice", "whole", "number", "numbers", "text", "path")


@dataclass(frozen=True)
class Setting:
    """What a training setting is, besides its default (the field's own)."""

    words: str  # the setting named in a sentence: "the learning rate"
    help: str  # one line, for `nnsim train --help` and the lab
    kind: str = "number"  # one of KINDS; numbers: one number, or one per class
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    above: float | None = None  # the value must be > above
    at_least: float | None = None  # … >= at_least
    below: float | None = None  # … < below
    by: tuple[str, dict] | None = None  # None means the default for another setting: ("optimizer", DEFAULT_LR)
    flag: bool = True  # a flag of `nnsim train` and `nnsim lab`
    lab: bool = True  # a box or menu of the lab's form
    label: str | None = None  # its label there (None: its words without "the")
    placeholder: str = ""  # what an empty box means there ("off"; "default" for a setting with `by`)
    menu: dict[str, str] | None = None  # the lab's menu, value → label, in order (None: every choice)
    live: bool = False  # may change mid-run, from the next step

    def range_words(self) -> str:
        """The range in symbols: "> 0", ">= 1", "in [0, 1)"."""
        if self.at_least is not None and self.below is not None:
            return f"in [{self.at_least:g}, {self.below:g})"
        if self.above is not None:
            return f"> {self.above:g}"
        if self.at_least is not None:
            return f">= {self.at_least:g}"
        return f"< {self.below:g}" if self.below is not None else ""

    def in_range(self, value: float) -> bool:
        return (
            (self.above is None or value > self.above)
            and (self.at_least is None or value >= self.at_least)
            and (self.below is None or value < self.below)
        )

    def full_help(self) -> str:
        """The help, with the defaults that depend on another setting spelled out."""
        if self.by is None:
            return self.help
        return f"{self.help} (default: {_by_words(self.by[1])})"

    def check(self, name: str, value: Any) -> None:
        """Raises SettingError(name, …) unless value is of this setting's kind and in its range."""
        if self.kind == "choice":
            if value not in self.choices:
                noun = self.words.removeprefix("the ")
                raise SettingError(name, f"unknown {noun} {value!r}; choose one of {', '.join(self.choices)}")
        elif self.kind == "whole":
            if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and self.in_range(value)):
                raise SettingError(name, f"{self.words} must be a whole number {self.range_words()}, got {value}")
        elif self.kind == "number":
            if not (_finite(value) and self.in_range(value)):
                raise SettingError(name, f"{self.words} must be a finite number {self.range_words()}, got {value}")
        elif self.kind == "numbers":
            values = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
            if not values or not all(_finite(v) and self.in_range(v) for v in values):
                raise SettingError(name, f"{self.words} must be finite numbers {self.range_words()}, got {value}")
        elif not isinstance(value, str):
            raise SettingError(name, f"{self.words} must be text, got {value!r}")

    def read(self, name: str, text: str) -> Any:
        """The value a flag's or a box's text stands for; whether it is in range is check()'s to say."""
        text = text.strip()
        try:
            if self.kind == "whole":
                return int(text)
            if self.kind == "number":
                return float(text)
            if self.kind == "numbers":
                values = [float(part) for part in text.split(",") if part.strip()]
                if not values:
                    raise ValueError
                return values if "," in text else values[0]
        except ValueError:
            kind = {"whole": "a whole number", "number": "a number"}.get(self.kind, "a number, or one per class")
            raise SettingError(name, f"{self.words} must be {kind}, got {text!r}") from None
        return str(Path(text).expanduser()) if self.kind == "path" else text


def setting_field(default: Any, **about: Any) -> Any:
    """A TrainConfig field that is a setting: `lr: float = setting_field(0.1, words=…, help=…)`."""
    return field(default=default, metadata={"setting": Setting(**about)})


@dataclass
class TrainConfig:
    """Everything a run depends on. None means "the default for this model or optimizer"."""

    model: str = setting_field(
        "cnn",
        words="the model",
        help="the network to train",
        kind="choice",
        choices=MODEL_NAMES,
        menu={"cnn": "CNN", "vit": "ViT", "mlp": "MLP"},
    )
    data: str = setting_field(
        "mnist-mini",
        words="the data",
        help="a built-in name (mnist-mini, shapes, shapes-imbalanced), mnist or fashion-mnist, "
        "or a path to a Keras .npz, a folder of MNIST IDX files or an ImageFolder",
        kind="text",
        metavar="NAME|PATH",
        placeholder="name or path",
    )
    epochs: int | None = setting_field(
        None,
        words="epochs",
        help="passes over the training set",
        kind="whole",
        at_least=1,
        by=("model", DEFAULT_EPOCHS),
    )
    max_steps: int | None = setting_field(
        None,
        words="the step limit",
        help="stop after N optimizer steps, then evaluate",
        kind="whole",
        at_least=1,
        metavar="N",
        lab=False,
    )
    batch_size: int = setting_field(
        64, words="the batch size", help="images per step", kind="whole", at_least=1, metavar="B", label="batch"
    )
    lr: float | None = setting_field(
        None,
        words="the learning rate",
        help="learning rate η",
        above=0,
        by=("optimizer", DEFAULT_LR),
        label="learn rate",
        live=True,
    )
    optimizer: str = setting_field(
        "adam",
        words="the optimizer",
        help="how the weights are updated",
        kind="choice",
        choices=OPTIMIZER_NAMES,
        menu={"adam": "Adam", "sgd": "SGD"},
    )
    momentum: float = setting_field(
        0.9,
        words="momentum",
        help="SGD momentum (Adam has none)",
        at_least=0,
        below=1,
        metavar="M",
        label="momentum",
    )
    weight_decay: float = setting_field(
        0.0, words="weight decay", help="L2 weight decay", at_least=0, metavar="L2", lab=False
    )
    loss: str = setting_field(
        "ce",
        words="the loss",
        help="cross-entropy or focal loss",
        kind="choice",
        choices=LOSS_NAMES,
        menu={"ce": "cross-entropy", "focal": "focal"},
    )
    alpha: float | list[float] = setting_field(
        1.0,
        words="focal α (alpha)",
        help="focal loss class weight: one number, or one per class",
        kind="numbers",
        at_least=0,
        metavar="A|a0,a1,…",
        label="focal α",
        live=True,
    )
    gamma: float = setting_field(
        2.0,
        words="focal γ (gamma)",
        help="focal loss focusing factor γ ≥ 0",
        at_least=0,
        metavar="G",
        label="focal γ",
        live=True,
    )
    backend: str = setting_field(
        "auto",
        words="the backend",
        help="which engine runs the kernels (auto: cuda, else cpu, else reference)",
        kind="choice",
        choices=BACKEND_NAMES,
        menu={"auto": "auto", "reference": "reference"},
    )
    seed: int = setting_field(
        0, words="the seed", help="seed for weights, shuffling and the split", kind="whole", at_least=0, metavar="S"
    )
    patience: int | None = setting_field(
        None,
        words="patience",
        help="stop early after P epochs without a better validation loss",
        kind="whole",
        at_least=1,
        metavar="P",
        placeholder="off",
        live=True,
    )
    checkpoint: str | None = setting_field(
        None,
        words="the checkpoint",
        help="save the weights here after each epoch and at the end (.npz)",
        kind="path",
        metavar="PATH",
        label="save to",
    )
    resume: str | None = setting_field(
        None,
        words="the checkpoint to resume from",
        help="start from the weights of this checkpoint (same network)",
        kind="path",
        metavar="PATH",
        lab=False,
    )
    val_fraction: float = setting_field(
        0.1,
        words="the validation fraction",
        help="share of the training set held out for validation",
        at_least=0,
        below=1,
        metavar="F",
        lab=False,
    )
    eval_batch_size: int = setting_field(
        500,
        words="the evaluation batch size",
        help="images per forward pass when evaluating",
        kind="whole",
        at_least=1,
        flag=False,
        lab=False,
    )
    sizes: dict = field(default_factory=dict)  # the network's sizes (models.py), by name; {}: the model's own
    precision: str = setting_field(  # float64 on the reference backend: exact small figures for a lesson
        "float32",
        words="precision",
        help="the floating-point type of weights and activations",
        kind="choice",
        choices=PRECISIONS,
        flag=False,
        lab=False,
    )

    def check(self) -> None:
        """Every setting of its kind and in its range; each problem is a SettingError naming its field."""
        for name, (default, setting) in settings(type(self)).items():
            value = getattr(self, name)
            if not (value is None and default is None):  # None: the default, which depends on another setting
                setting.check(name, value)
        if self.precision == "float64" and self.backend != "reference":
            raise SettingError("precision", "float64 runs on the reference backend only")

    def resolved(self) -> TrainConfig:
        """A checked copy with every default filled in; every problem is one SettingError. A
        config resolved already is copied, not checked again."""
        if self._resolved:
            return replace(self)._marked()
        self.check()
        filled = {}
        for name, (_, setting) in settings(type(self)).items():
            if getattr(self, name) is None and setting.by is not None:
                other, defaults = setting.by
                filled[name] = defaults[getattr(self, other)]
        return replace(self, **filled)._marked()

    def check_classes(self, classes: int, data: str) -> None:
        """Focal α with one weight per class has as many weights as the data set has classes."""
        if self.loss == "focal" and np.ndim(self.alpha) == 1 and len(self.alpha) != classes:
            words = settings(type(self))["alpha"][1].words
            raise SettingError("alpha", f"{words} has {len(self.alpha)} weights but {data} has {classes} classes")

    _resolved = False  # a class attribute, not a field: set on the copies resolved() returns

    def _marked(self) -> TrainConfig:
        self._resolved = True
        return self


class FormSetting(NamedTuple):
    """One setting as the lab's form shows it."""

    name: str  # the TrainConfig field
    label: str
    default: Any  # None: the placeholder says what an empty box means
    kind: str  # one of KINDS
    live: bool  # may change mid-run
    placeholder: str
    help: str
    menu: tuple[tuple[str, str], ...]  # a choice's options, (label, value), in order; () for a box


# The order of the lab's form (a grid, row by row); a setting shown there but not named here follows.
FORM_ORDER = (
    "model",
    "data",
    "loss",
    "gamma",
    "optimizer",
    "lr",
    "momentum",
    "batch_size",
    "epochs",
    "patience",
    "backend",
    "seed",
    "alpha",
    "checkpoint",
)


def settings(config: type[TrainConfig] = TrainConfig) -> dict[str, tuple[Any, Setting]]:
    """Every setting of a TrainConfig (or subclass), in field order: name → (default, Setting)."""
    found = {}
    for spec in fields(config):
        setting = spec.metadata.get("setting")
        if setting is not None:
            default = spec.default if spec.default is not MISSING else spec.default_factory()
            found[spec.name] = (default, setting)
    return found


def flag_settings(config: type[TrainConfig] = TrainConfig) -> dict[str, tuple[Any, Setting]]:
    """The settings that are flags of `nnsim train` and `nnsim lab`, in field order."""
    return {name: about for name, about in settings(config).items() if about[1].flag}


def flag_name(name: str) -> str:
    """The command-line flag of a setting: batch_size → --batch-size."""
    return "--" + name.replace("_", "-")


def form_settings(config: type[TrainConfig] = TrainConfig) -> list[FormSetting]:
    """The settings the lab's form shows, in its order, each with what the form needs to build it."""
    shown = {name: about for name, about in settings(config).items() if about[1].lab}
    order = [name for name in FORM_ORDER if name in shown] + [name for name in shown if name not in FORM_ORDER]
    return [_form_setting(name, *shown[name]) for name in order]


def _form_setting(name: str, default: Any, setting: Setting) -> FormSetting:
    menu = setting.menu if setting.menu is not None else {choice: choice for choice in setting.choices}
    return FormSetting(
        name=name,
        label=setting.label or setting.words.removeprefix("the "),
        default=default,
        kind=setting.kind,
        live=setting.live,
        placeholder=setting.placeholder or ("default" if setting.by else ""),
        help=setting.full_help(),
        menu=tuple((label, value) for value, label in menu.items()) if setting.kind == "choice" else (),
    )


def read_setting(name: str, text: str, config: type[TrainConfig] = TrainConfig) -> Any:
    """A setting's value from the text of its flag or box (None when the box is empty: the default)."""
    if not text.strip():
        return None
    return settings(config)[name][1].read(name, text)


def _by_words(defaults: dict) -> str:
    """{"mlp": 5, "cnn": 5, "vit": 10} → "5 for mlp and cnn, 10 for vit"."""
    grouped: dict[Any, list[str]] = {}
    for key, value in defaults.items():
        grouped.setdefault(value, []).append(key)
    return ", ".join(f"{value:g} for {' and '.join(keys)}" for value, keys in grouped.items())


def _finite(value: Any) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )
