"""What each lesson widget accepts: declared once, read by the widgets and by `nnsim lessons check`.

A lesson block names a widget and sets some of these fields in TOML; anything else is an error
that `nnsim lessons check` reports with its line. Defaults are what a block that sets nothing gets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ACTIVATION_NAMES = ("relu", "sigmoid", "tanh", "linear")


@dataclass
class PixelGridParams:
    """An image as coloured cells, split into channels, with a zoom window of its 0..1 values."""

    image: str = "digits/7.png"  # under sample_images/, or relative to the lesson file
    channels: bool = True  # show an RGB image's three channels side by side
    zoom: list[int] = field(default_factory=lambda: [10, 10])  # (row, column) of the zoom window
    zoom_size: int = 5
    open_file: bool = True  # offer an input to open the learner's own image


@dataclass
class NeuronParams:
    """z = w1·x1 + w2·x2 + b with every number adjustable."""

    x1: float = 1.0
    x2: float = 0.5
    w1: float = 0.8
    w2: float = -0.4
    b: float = 0.1
    bias: bool = True  # False hides b and shows that z = 0 when x = 0
    step: float = 0.1


@dataclass
class ActivationPlotParams:
    """ReLU, Sigmoid, Tanh and Linear curves with the current z marked."""

    functions: list[str] = field(default_factory=lambda: list(ACTIVATION_NAMES))
    z: float = 0.5
    range: float = 4.0  # the x axis runs from −range to +range


@dataclass
class DenseLayerParams:
    """y = f(Wx + b) as coloured matrices, one neuron's row spelled out."""

    inputs: int = 4
    neurons: int = 3
    activation: str = "relu"
    seed: int = 0
    highlight: int = 0  # the neuron whose dot product is spelled out


@dataclass
class NetworkParams:
    """Input, hidden and output layers of a small MLP trained on the built-in digits."""

    hidden: list[int] = field(default_factory=lambda: [16])
    steps: int = 300  # training steps before it is drawn
    seed: int = 0


@dataclass
class ClassifyParams:
    """A shipped CNN classifying sample images, with its top guesses."""

    images: list[str] = field(default_factory=lambda: ["digits/3.png", "digits/7-on-paper.png"])
    top: int = 3


@dataclass
class QuizParams:
    """A question with choices; the explanation appears after an answer."""

    question: str = ""
    choices: list[str] = field(default_factory=list)
    answer: int = 0  # index into choices
    explanation: str = ""


WIDGET_PARAMS: dict[str, type] = {
    "pixel_grid": PixelGridParams,
    "neuron": NeuronParams,
    "activation_plot": ActivationPlotParams,
    "dense_layer": DenseLayerParams,
    "network": NetworkParams,
    "classify": ClassifyParams,
    "quiz": QuizParams,
}
