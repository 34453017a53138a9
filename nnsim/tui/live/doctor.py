"""The training doctor: rules that read a run's figures and name what looks wrong, why, the one
change that usually fixes it, and the lesson that explains it.

Each rule is a plain function of the figures, so a test can feed it a curve and see it fire.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nnsim.tui.live.lab_figures import LabFigures

MIN_STEPS = 30  # no verdict on a run younger than this


@dataclass(frozen=True)
class Hint:
    problem: str  # what is wrong, in a few words
    why: str  # what in the figures says so
    fix: str  # the one change, in words ("f" applies it)
    change: tuple[str, float]  # ("lr", factor) or ("patience", epochs)
    lesson: int  # the lesson that explains it ("o" opens it)


def diagnose(figures: LabFigures, lr: float) -> list[Hint]:
    """Every rule that fires, most urgent first."""
    hints = []
    for rule in RULES:
        hint = rule(figures, lr)
        if hint is not None:
            hints.append(hint)
    return hints


def diverging(f: LabFigures, lr: float) -> Hint | None:
    nan = f.reason == "diverged" or any(not math.isfinite(loss) for loss in f.losses[-5:])
    if not (nan or rising(f)):
        return None
    what = (
        "the loss became NaN" if nan else f"the smoothed loss rose from {min(f.smoothed):.3f} to {f.smoothed[-1]:.3f}"
    )
    return Hint("learning rate too high", what, f"lower the learning rate to {lr / 10:g}", ("lr", 0.1), 9)


def rising(f: LabFigures) -> bool:
    """The loss has climbed back a meaningful way, and stays there: the median of the last 20
    steps is above the lowest smoothed loss by half that lowest value, and by a fifth of all the
    run had learned (from where it began to its lowest). Near the bottom of a good run the loss of
    a batch of 64 jumps with each image it gets wrong: 0.045 to 0.070, or one bad batch, is such
    noise, not divergence; a rise that undoes a fifth of the learning is not."""
    if len(f.smoothed) < MIN_STEPS:
        return False
    lowest, recent = min(f.smoothed), float(np.median(f.losses[-20:]))
    began = float(np.mean(f.losses[:10]))
    rise = recent - lowest
    return rise > 0.5 * lowest and rise > 0.2 * max(began - lowest, 0.0)


def flat(f: LabFigures, lr: float) -> Hint | None:
    if len(f.smoothed) < 4 * MIN_STEPS or f.reason == "diverged":
        return None
    start = float(np.mean(f.losses[:10]))
    if f.smoothed[-1] < 0.9 * start:
        return None
    return Hint(
        "learning rate too low",
        f"after {len(f.smoothed)} steps the loss is still {f.smoothed[-1]:.3f} (it began at {start:.3f})",
        f"raise the learning rate to {lr * 10:g}",
        ("lr", 10.0),
        9,
    )


def overfitting(f: LabFigures, lr: float) -> Hint | None:
    if not f.val_accuracies or not f.train_accuracies or f.reason == "early_stop":  # its fix has been applied
        return None
    gap = f.train_accuracies[-1] - f.val_accuracies[-1]
    rising = len(f.val_losses) >= 2 and f.val_losses[-1] > min(f.val_losses)
    if gap < 0.05 or not rising:
        return None
    return Hint(
        "overfitting",
        f"train accuracy {f.train_accuracies[-1]:.1%} is {gap:.1%} above validation, and the validation loss rose",
        "stop early: keep the best epoch's weights after 2 epochs without improvement",
        ("patience", 2),
        9,
    )


def dead_relus(f: LabFigures, lr: float) -> Hint | None:
    if f.inside is None or not f.inside.dead or f.step < MIN_STEPS:
        return None
    layer, share = max(f.inside.dead, key=lambda item: item[1])
    if share < 0.5:
        return None
    return Hint(
        "dead ReLUs",
        f"{share:.0%} of the units of layer {layer} are 0 for every validation image: no gradient flows through them",
        f"lower the learning rate to {lr / 10:g} (large updates push units below 0 for good)",
        ("lr", 0.1),
        4,
    )


def exploding(f: LabFigures, lr: float) -> Hint | None:
    norms = [n for n in f.grad_norms if math.isfinite(n)]
    if len(norms) < MIN_STEPS:
        return None
    typical = float(np.median(norms[:-5]))
    recent = max(norms[-5:])
    if recent < 10 * typical or recent < 1.0:
        return None
    return Hint(
        "exploding gradients",
        f"‖∇θ L‖ reached {recent:.3g}, {recent / typical:.0f}× its median {typical:.3g}",
        f"lower the learning rate to {lr / 10:g}",
        ("lr", 0.1),
        9,
    )


def attention_collapse(f: LabFigures, lr: float) -> Hint | None:
    if f.inside is None or f.inside.attention is None or f.step < 4 * MIN_STEPS:
        return None
    if f.inside.attention_peak < 0.9:
        return None
    return Hint(
        "attention collapsed onto one patch",
        f"the CLS token puts {f.inside.attention_peak:.0%} of its attention on a single patch, in every head",
        f"lower the learning rate to {lr / 10:g}",
        ("lr", 0.1),
        6,
    )


RULES = (diverging, exploding, flat, dead_relus, attention_collapse, overfitting)
