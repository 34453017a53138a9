"""The activation functions as the lessons name them: one table, read by the layers, the lesson
format and the widgets. The formulas themselves are computed by the backends
(`activation_forward`, reference.py first)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ActivationFacts:
    name: str  # what a model config, a lesson block and the backends call it
    title: str  # how a lesson writes it
    formula: str
    output_range: str
    description: str


ACTIVATIONS = {
    facts.name: facts
    for facts in (
        ActivationFacts("relu", "ReLU", "max(0, z)", "0 to ∞", "negatives become 0; positives pass unchanged"),
        ActivationFacts(
            "sigmoid", "Sigmoid", "1 / (1 + e^(−z))", "0 to 1", "squeezes any z into 0..1; extremes near 0 or 1"
        ),
        ActivationFacts(
            "tanh", "Tanh", "tanh(z)", "−1 to 1", "like sigmoid but centred on 0; negative in, negative out"
        ),
        ActivationFacts("linear", "Linear", "z", "−∞ to ∞", "passes z through unchanged (for comparison)"),
        ActivationFacts(
            "gelu",
            "GELU",
            "½ z (1 + tanh(√(2/π)(z + 0.044715 z³)))",
            "about −0.17 to ∞",
            "a smooth ReLU: small negatives pass a little; used in transformers",
        ),
    )
}
ACTIVATION_NAMES = tuple(ACTIVATIONS)
LESSON_ACTIVATIONS = ("relu", "sigmoid", "tanh", "linear")  # the four the workshop compares
