"""The lab's choices beyond a run's own settings (those are `TrainConfig`'s, and its field metadata
builds the lab's form: `engine/config.py`): the network's size, and the comparison a second run
makes, with one setting changed or the changes an experiment file gives."""

from __future__ import annotations

from nnsim.engine.config import TrainConfig
from nnsim.engine.experiment import changes_words, second_config

# The main sizes of each network, by name ("default" is the engine's DEFAULT_SIZES).
SIZES = {
    "small": {
        "mlp": {"hidden": [32]},
        "cnn": {"channels": [8, 16], "hidden": 32},
        "vit": {"dim": 32, "heads": 2, "depth": 1, "mlp_dim": 64},
    },
    "default": {"mlp": {}, "cnn": {}, "vit": {}},
    "large": {
        "mlp": {"hidden": [256, 128]},
        "cnn": {"channels": [32, 64], "hidden": 128},
        "vit": {"dim": 128, "heads": 4, "depth": 4, "mlp_dim": 256},
    },
}

# One setting changed for a comparison: (label, the field, its new value or a function of the old).
COMPARISONS = {
    "none": ("no comparison", None, None),
    "model-cnn": ("vs a CNN", "model", "cnn"),
    "model-vit": ("vs a ViT", "model", "vit"),
    "model-mlp": ("vs an MLP", "model", "mlp"),
    "loss-focal": ("vs focal loss", "loss", "focal"),
    "loss-ce": ("vs cross-entropy", "loss", "ce"),
    "optimizer-sgd": ("vs SGD", "optimizer", "sgd"),
    "optimizer-adam": ("vs Adam", "optimizer", "adam"),
    "lr-up": ("vs learning rate × 10", "lr", lambda lr: lr * 10),
    "lr-down": ("vs learning rate ÷ 10", "lr", lambda lr: lr / 10),
}
GIVEN = "given"  # the comparison an experiment file or a lesson's lab link gives


def compared(config: TrainConfig, key: str, given: dict | None = None) -> TrainConfig | None:
    """The second configuration of a comparison: `config` (resolved) with one setting changed, or
    with the changes an experiment file's [compare] gives (`key` "given")."""
    return None if key == "none" else second_config(config, comparison(config, key, given)).resolved()


def comparison_options(given: dict | None = None) -> list[tuple[str, str]]:
    """The lab's comparisons, (label, key), and the one it was opened with (a file's, a lesson's)."""
    options = [(label, key) for key, (label, *_) in COMPARISONS.items()]
    return options + ([(f"vs {changes_words(given)}", GIVEN)] if given else [])


def comparison(config: TrainConfig, key: str, given: dict | None = None) -> dict:
    """The settings the second run of comparison `key` changes, and their values."""
    if key == GIVEN:
        return dict(given or {})
    _, name, value = COMPARISONS[key]
    return {name: value(getattr(config, name)) if callable(value) else value}


def differences(a: TrainConfig, b: TrainConfig) -> list[tuple[str, str, str]]:
    """(setting, A's value, B's value) for every setting the two runs do not share."""
    names = ("model", "loss", "optimizer", "lr", "epochs", "batch_size", "alpha", "gamma", "sizes")
    return [(n, _value(getattr(a, n)), _value(getattr(b, n))) for n in names if getattr(a, n) != getattr(b, n)]


def _value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def sizes_tip() -> str:
    """What each size of the size menu means, network by network."""
    lines = []
    for size, models in SIZES.items():
        parts = [
            f"{model.upper()} {', '.join(f'{k} {v}' for k, v in sizes.items()) or 'as built in'}"
            for model, sizes in models.items()
        ]
        lines.append(f"{size}: " + "; ".join(parts))
    return "\n".join(lines)
