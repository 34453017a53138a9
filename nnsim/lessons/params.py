"""What each lesson widget accepts: declared once, read by the widgets and by `nnsim lessons check`.

A lesson block names a widget and sets some of these fields in TOML; anything else is an error
that `nnsim lessons check` reports with its line. Defaults are what a block that sets nothing gets.

This module is also the one registry of widgets: `@widget("name", "ClassName")` declares that a
block `widget = "name"` takes these parameters and is drawn by ClassName in
`nnsim/tui/widgets/name.py`. Each dataclass says what is wrong with its values in `problems()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nnsim.engine.activations import ACTIVATIONS, LESSON_ACTIVATIONS

WIDGET_PARAMS: dict[str, type] = {}  # widget name -> its params dataclass (with .widget_class)


def widget(name: str, class_name: str):
    """Register a params dataclass as widget `name`, drawn by class_name in nnsim/tui/widgets/name.py."""

    def register(spec: type) -> type:
        spec.widget_name, spec.widget_class = name, class_name
        WIDGET_PARAMS[name] = spec
        return spec

    return register


class Params:
    """Base of every widget's parameters."""

    def problems(self) -> list[str]:
        """What is wrong with these values, one message each (nothing by default)."""
        return []


def _at_least(name: str, value, low) -> list[str]:
    return [] if value >= low else [f"'{name}' must be at least {low}, got {value}"]


def _activation(name: str, value: str) -> list[str]:
    if value in ACTIVATIONS:
        return []
    return [f"'{name}' must be one of {', '.join(ACTIVATIONS)}, got {value!r}"]


@widget("pixel_grid", "PixelGrid")
@dataclass
class PixelGridParams(Params):
    """An image as coloured cells, split into channels, with a zoom window of its 0..1 values."""

    image: str = "digits/7.png"  # under sample_images/, or relative to the lesson file
    channels: bool = True  # show an RGB image's three channels side by side
    zoom: list[int] = field(default_factory=lambda: [10, 10])  # (row, column) of the zoom window
    zoom_size: int = 5
    open_file: bool = True  # offer an input to open the learner's own image
    normalize: bool = False  # also show the window as the shipped CNN's first layer normalises it

    def problems(self) -> list[str]:
        found = _at_least("zoom_size", self.zoom_size, 1)
        if len(self.zoom) != 2 or min(self.zoom, default=0) < 0:
            found.append(f"'zoom' must be [row, column], two whole numbers >= 0, got {self.zoom}")
        return found


@widget("neuron", "Neuron")
@dataclass
class NeuronParams(Params):
    """z = w1·x1 + w2·x2 + b with every number adjustable."""

    x1: float = 1.0
    x2: float = 0.5
    w1: float = 0.8
    w2: float = -0.4
    b: float = 0.1
    bias: bool = True  # False hides b and shows that z = 0 when x = 0
    step: float = 0.1

    def problems(self) -> list[str]:
        return [] if self.step > 0 else [f"'step' must be > 0, got {self.step}"]


@widget("activation_plot", "ActivationPlot")
@dataclass
class ActivationPlotParams(Params):
    """ReLU, Sigmoid, Tanh and Linear curves with the current z marked."""

    functions: list[str] = field(default_factory=lambda: list(LESSON_ACTIVATIONS))
    z: float = 0.5
    range: float = 4.0  # the x axis runs from −range to +range

    def problems(self) -> list[str]:
        found = [problem for name in self.functions for problem in _activation("functions", name)]
        return found + ([] if self.range > 0 else [f"'range' must be > 0, got {self.range}"])


@widget("dense_layer", "DenseLayer")
@dataclass
class DenseLayerParams(Params):
    """y = f(Wx + b) as coloured matrices, one neuron's row spelled out."""

    inputs: int = 4
    neurons: int = 3
    activation: str = "relu"
    seed: int = 0
    highlight: int = 0  # the neuron whose dot product is spelled out

    def problems(self) -> list[str]:
        found = _at_least("inputs", self.inputs, 1) + _at_least("neurons", self.neurons, 1)
        found += _activation("activation", self.activation)
        if self.inputs > 8 or self.neurons > 8:
            found.append("a dense layer of more than 8 inputs or neurons does not fit the screen")
        if not 0 <= self.highlight < self.neurons:
            found.append(f"'highlight' must be a neuron, 0 to {self.neurons - 1}, got {self.highlight}")
        return found


@widget("network", "NetworkDiagram")
@dataclass
class NetworkParams(Params):
    """Input, hidden and output layers of a small MLP trained on the built-in digits."""

    hidden: list[int] = field(default_factory=lambda: [16])
    steps: int = 300  # training steps before it is drawn
    seed: int = 0
    compare: list[int] = field(default_factory=list)  # hidden sizes of a second network, trained alike

    def problems(self) -> list[str]:
        found = _at_least("steps", self.steps, 1)
        if not self.hidden or min(self.hidden) < 1:
            found.append(f"'hidden' must list at least one layer size >= 1, got {self.hidden}")
        if self.compare and min(self.compare) < 1:
            found.append(f"'compare' must list layer sizes >= 1 (or none), got {self.compare}")
        if self.compare == self.hidden:
            found.append("'compare' is the same network as 'hidden': there would be nothing to compare")
        return found


@widget("classify", "Classify")
@dataclass
class ClassifyParams(Params):
    """A shipped CNN classifying sample images, with its top guesses."""

    images: list[str] = field(default_factory=lambda: ["digits/3.png", "digits/7-on-paper.png"])
    top: int = 3

    def problems(self) -> list[str]:
        return _at_least("top", self.top, 1) + ([] if self.images else ["'images' must name at least one image"])


@widget("quiz", "Quiz")
@dataclass
class QuizParams(Params):
    """A question with choices; the explanation appears after an answer."""

    question: str = ""
    choices: list[str] = field(default_factory=list)
    answer: int = 0  # index into choices
    explanation: str = ""

    def problems(self) -> list[str]:
        found = [] if self.question else ["a quiz needs a question"]
        if len(self.choices) < 2:
            found.append("a quiz needs at least two choices")
        elif not 0 <= self.answer < len(self.choices):
            found.append(f"answer {self.answer} is not the index of a choice (0–{len(self.choices) - 1})")
        if not self.explanation:
            found.append("a quiz needs an explanation, shown after the learner answers")
        return found


@widget("softmax", "SoftmaxBars")
@dataclass
class SoftmaxParams(Params):
    """Logits become probabilities: exp, sum and division shown, with a temperature."""

    classes: list[str] = field(default_factory=lambda: ["cat", "dog", "car"])
    logits: list[float] = field(default_factory=lambda: [2.0, 1.0, 0.1])
    temperature: float = 1.0
    step: float = 0.1  # how much + and − change a logit

    def problems(self) -> list[str]:
        found = []
        if len(self.classes) != len(self.logits):
            found.append(f"'classes' has {len(self.classes)} names but 'logits' {len(self.logits)} numbers")
        if not 2 <= len(self.logits) <= 8:
            found.append(f"softmax needs 2 to 8 classes, got {len(self.logits)}")
        if not self.temperature > 0:
            found.append(f"'temperature' must be > 0, got {self.temperature}")
        return found + ([] if self.step > 0 else [f"'step' must be > 0, got {self.step}"])


@widget("loss_explorer", "LossExplorer")
@dataclass
class LossExplorerParams(Params):
    """Cross-entropy and focal loss of one prediction, term by term, and their curves."""

    classes: list[str] = field(default_factory=lambda: ["cat", "dog", "car"])
    true_class: int = 1  # index into classes
    probabilities: list[float] = field(default_factory=lambda: [0.01, 0.95, 0.04])
    other: list[float] = field(default_factory=lambda: [0.80, 0.10, 0.10])  # the second example (key e)
    alpha: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])  # focal loss weight per class
    gamma: float = 2.0
    squared_error: bool = False  # also squared error, and the gradient each loss gives the true class

    def problems(self) -> list[str]:
        found = []
        n = len(self.classes)
        for name in ("probabilities", "other", "alpha"):
            values = getattr(self, name)
            if len(values) != n:
                found.append(f"'{name}' needs one number per class ({n}), got {len(values)}")
            elif min(values) < 0:
                found.append(f"'{name}' must not be negative")
        for name in ("probabilities", "other"):
            total = sum(getattr(self, name))
            if len(getattr(self, name)) == n and abs(total - 1.0) > 1e-6:
                found.append(f"'{name}' must add up to 1 (they are probabilities), got {total:g}")
        if not 0 <= self.true_class < n:
            found.append(f"'true_class' must be a class, 0 to {n - 1}, got {self.true_class}")
        return found + ([] if self.gamma >= 0 else [f"'gamma' must be >= 0, got {self.gamma}"])


@widget("learning_loop", "LearningLoopStepper")
@dataclass
class LearningLoopParams(Params):
    """A tiny network trained phase by phase: forward, loss, backward (checked), update; then epochs."""

    lr: float = 0.5  # the learning rate η
    hidden: int = 3  # neurons in the hidden layer
    points: int = 16  # half train, half validation
    seed: int = 2  # a sample in which one red training point lies deep among the blue: overfitting to see
    patience: int = 10  # epochs without a better validation loss before early stopping

    def problems(self) -> list[str]:
        found = [] if self.lr > 0 else [f"'lr' must be > 0, got {self.lr}"]
        found += _at_least("patience", self.patience, 1)
        if not 1 <= self.hidden <= 6:
            found.append(f"'hidden' must be 1 to 6 neurons (they are all shown), got {self.hidden}")
        if not 4 <= self.points <= 24 or self.points % 2:
            found.append(f"'points' must be an even number from 4 to 24, got {self.points}")
        return found


@widget("lesson_links", "LessonLinks")
@dataclass
class LessonLinksParams(Params):
    """Points, each linked to the lesson that teaches it: Enter or a click opens that lesson."""

    lessons: list[int] = field(default_factory=list)  # the section number of each point's lesson
    points: list[str] = field(default_factory=list)
    title: str = "Where each idea is taught"

    def problems(self) -> list[str]:
        found = [] if self.points else ["'points' must list at least one point"]
        if len(self.lessons) != len(self.points):
            found.append(f"'lessons' has {len(self.lessons)} numbers but 'points' {len(self.points)} points")
        return found + [f"'lessons' holds {n}: a lesson number is 1 or more" for n in self.lessons if n < 1]


@widget("lab_link", "LabLink")
@dataclass
class LabLinkParams(Params):
    """Try it in the lab: a button (and the key L) that opens the lab with these settings."""

    watch: str = ""  # what to watch in the lab, in a sentence
    start: bool = False  # begin training as the lab opens (else it waits for space)
    settings: dict = field(default_factory=dict)  # an experiment's settings: model, data, lr, … ([settings])
    compare: dict = field(default_factory=dict)  # what the comparison's second run changes ([compare])

    def problems(self) -> list:
        """Problems of the settings come as (their keys, the message), so that the line is the key's."""
        from nnsim.engine.experiment import COMPARE, NOT_COMPARED, experiment_problems

        found: list = [] if self.watch.strip() else ["'watch' must say, in a sentence, what to look at in the lab"]
        found += [(("settings", k), f"'{k}' is the lab's to choose") for k in NOT_COMPARED if k in self.settings]
        if COMPARE in self.settings:
            return found + [
                (("settings", COMPARE), "the comparison is a table of its own, [compare], not in [settings]")
            ]
        values = {**self.settings, **({COMPARE: self.compare} if self.compare else {})}
        for keys, message in experiment_problems(values):
            found.append((keys if keys[0] == COMPARE else ("settings", *keys), message))
        return found


@widget("imbalance", "ImbalanceDemo")
@dataclass
class ImbalanceParams(Params):
    """The same network trained on imbalanced shapes with CE, α-weighted CE and focal loss: recall per class."""

    epochs: int = 2
    hidden: int = 32
    gamma: float = 2.0
    seed: int = 0

    def problems(self) -> list[str]:
        found = _at_least("epochs", self.epochs, 1) + _at_least("hidden", self.hidden, 1)
        if self.epochs > 10:
            found.append(f"'epochs' above 10 makes the learner wait; got {self.epochs}")
        return found + ([] if self.gamma >= 0 else [f"'gamma' must be >= 0, got {self.gamma}"])


KERNEL_NAMES = ("edge", "blur", "sharpen", "learned")


@widget("conv_stepper", "ConvStepper")
@dataclass
class ConvStepperParams(Params):
    """A kernel slides over an image, one position a step, the output filling in; or every feature map."""

    image: str = "digits/7.png"
    kernel: str = "edge"  # edge, blur, sharpen, or learned (a filter of the shipped CNN)
    filter: int = 0  # which learned filter
    stride: int = 1
    padding: int = 0
    maps: bool = False  # start on the view of every feature map of the shipped CNN
    channel: int = -1  # −1: the image in gray; 0, 1, 2: its red, green or blue channel
    rgb: bool = False  # all three colour channels at once: one k×k kernel per channel, summed, plus a bias
    bias: float = 0.0  # b, added to every output (shown when rgb is on)

    def problems(self) -> list[str]:
        found = [] if self.kernel in KERNEL_NAMES else [f"'kernel' must be one of {', '.join(KERNEL_NAMES)}"]
        if not -1 <= self.channel <= 2:
            found.append(f"'channel' must be −1 (gray), 0, 1 or 2 (R, G, B), got {self.channel}")
        if self.rgb and (self.channel != -1 or self.kernel == "learned"):
            found.append("'rgb' convolves all three channels with a hand-made kernel: no 'channel', no 'learned'")
        found += _at_least("stride", self.stride, 1) + _at_least("padding", self.padding, 0)
        return found + _at_least("filter", self.filter, 0)


@widget("vit_view", "VitView")
@dataclass
class VitViewParams(Params):
    """The shipped ViT on an image: patches, one patch embedded, the CLS token's attention, occlusion."""

    image: str = "digits/7.png"
    view: str = "patches"  # patches, embedding, qkv, attention, occlusion
    patch: int = 7  # the grid drawn in the patches view (the ViT itself uses 7)
    head: int = -1  # the attention head shown; −1 averages the heads
    patch_index: int = 5  # the patch whose embedding is spelled out

    def problems(self) -> list[str]:
        views = ("patches", "embedding", "qkv", "attention", "occlusion")
        found = [] if self.view in views else [f"'view' must be one of {', '.join(views)}, got {self.view!r}"]
        if self.patch not in (2, 4, 7, 14):
            found.append(f"'patch' must divide the 28-pixel digit: 2, 4, 7 or 14, got {self.patch}")
        if not -1 <= self.head <= 3:
            found.append(f"'head' must be −1 (the average) or a head, 0 to 3, got {self.head}")
        return found + ([] if 0 <= self.patch_index < 16 else ["'patch_index' must be a patch, 0 to 15"])


@widget("cnn_vs_vit", "CnnVsVit")
@dataclass
class CnnVsVitParams(Params):
    """One CNN output's receptive field, growing with depth, beside one ViT token's attention."""

    image: str = "digits/7.png"
    row: int = 1  # the ViT patch (in its 4×4 grid) looked at; the CNN output is the one centred on it
    col: int = 2

    def problems(self) -> list[str]:
        return _at_least("row", self.row, 0) + _at_least("col", self.col, 0)
