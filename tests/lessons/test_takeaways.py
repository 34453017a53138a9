"""Lesson 10 says how the lesson CNN was trained: by this engine, with Adam, on the built-in
digits for a few epochs, without early stopping. The shipped checkpoint and its script agree."""

import importlib.util
import math
from pathlib import Path

from nnsim.data.datasets import load_dataset
from nnsim.engine.trainer import TrainConfig

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make_lesson_networks.py"


def test_the_lesson_cnn_was_trained_as_lesson_10_says():
    from nnsim.tui.live.classify import lesson_cnn

    spec = importlib.util.spec_from_file_location("make_lesson_networks", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    epochs, _ = script.NETWORKS["cnn"]
    source = SCRIPT.read_text()
    assert 'optimizer="adam"' in source and "patience" not in source  # Adam; no early stopping
    _, meta = lesson_cnn()
    assert meta["data"] == "mnist-mini" and meta["epoch"] == epochs <= 5  # the built-in digits, a few epochs
    defaults = TrainConfig()
    train = round(len(load_dataset("mnist-mini").x_train) * (1 - defaults.val_fraction))
    assert meta["steps"] == epochs * math.ceil(train / defaults.batch_size)  # every epoch ran to its end
