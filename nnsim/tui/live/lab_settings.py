"""The lab's settings as the learner types them: which box holds which setting, and a box's text
read as that setting's value. Whether a value is in range is for the settings' own check()
(TrainConfig.check); this says only whether the text is a number at all."""

from __future__ import annotations

from nnsim.errors import SettingError

# The box each setting is typed in, and the settings a run takes from its next step on.
BOXES = {
    "lr": "lab-lr",
    "batch_size": "lab-batch",
    "epochs": "lab-epochs",
    "patience": "lab-patience",
    "seed": "lab-seed",
    "gamma": "lab-gamma",
    "alpha": "lab-alpha",
}
LIVE_SETTINGS = ("lr", "patience", "gamma", "alpha")
WHOLE_NUMBERS = ("batch_size", "epochs", "patience", "seed")
SETTING_WORDS = {
    "lr": "the learning rate",
    "batch_size": "the batch size",
    "epochs": "epochs",
    "patience": "patience",
    "seed": "the seed",
    "gamma": "focal γ",
    "alpha": "focal α",
}


def parse(name: str, text: str):
    """A box's text as its setting's value (None when empty: the default). The settings' check()
    says whether the value is in range; this says only whether it is a number at all."""
    text = text.strip()
    if not text:
        return None
    try:
        if name == "alpha" and "," in text:
            return [float(v) for v in text.split(",")]
        return int(text) if name in WHOLE_NUMBERS else float(text)
    except ValueError:
        kind = "a number, or one per class" if name == "alpha" else "a number"
        raise SettingError(name, f"{SETTING_WORDS[name]} must be {kind}, got {text!r}") from None
