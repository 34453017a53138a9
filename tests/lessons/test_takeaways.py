"""Lesson 10 says how the lesson CNN was trained: by this engine, with Adam, on the built-in
digits for a few epochs, without early stopping. The shipped checkpoint and its script agree."""

import importlib.util
import math
from pathlib import Path

from nnsim.data.datasets import load_dataset
from nnsim.engine.config import TrainConfig

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


def test_a_diverging_lab_run_keeps_the_last_finite_weights_and_the_doctor_suggests_a_tenth():
    """Lesson 10's last quiz: the lab stops a run whose loss is no longer a number, keeps the weights
    of the step before (the last whose loss was finite), and its doctor suggests a tenth of η."""
    import numpy as np

    from nnsim.tui.live.doctor import diagnose
    from nnsim.tui.live.lab import LabRun

    lr = 1e3
    config = TrainConfig(
        model="mlp", data="shapes", backend="reference", epochs=1, optimizer="sgd", lr=lr, sizes={"hidden": [8]}
    )
    run = LabRun(config)
    trainer = run.trainer
    after_step = {0: trainer.model.state_dict()}
    for event in run.events():
        if event.event == "step":
            after_step[event.step] = trainer.model.state_dict()
        elif event.event == "diverged":
            diverged = event
    assert run.figures.reason == "diverged" and diverged.step >= 1
    kept = trainer.model.state_dict()
    for name, value in kept.items():  # the weights of the step before the loss stopped being a number
        np.testing.assert_array_equal(value, after_step[diverged.step][name], err_msg=name)
    loss, _, _ = trainer.loss(trainer.forward(trainer.x_train[:64]), trainer.y_train[:64])
    assert np.isfinite(loss)
    hint = diagnose(run.figures, lr)[0]
    assert hint.problem == "learning rate too high" and hint.change == ("lr", 0.1) and f"{lr / 10:g}" in hint.fix
