"""What lessons 6, 8 and 9 tell the learner to watch in the lab, at each lab link's own settings,
checked by training those runs as the lab does (its doctor, its recall rows). Each test names the
sentence it keeps true; change the settings or the engine so that it no longer holds, and the test
fails and the sentence must change with it."""

from dataclasses import replace

import numpy as np
import pytest

from nnsim.data.datasets import load_dataset
from nnsim.engine.experiment import Experiment, second_config
from nnsim.engine.trainer import Trainer
from nnsim.tui.live.doctor import diagnose
from nnsim.tui.live.lab_figures import LabFigures
from tests.tui.test_lab_links import lab_links


def link(lesson: str, words: str):
    """The lab link of `lesson` whose watch sentence holds `words`."""
    return next(params for _, params in lab_links(lesson) if words in params.watch)


def train(config, backend: str = "reference"):
    """Every event of a run at `config` (on `backend`), and its trainer."""
    trainer = Trainer(replace(config, backend=backend))
    return list(trainer.run()), trainer


def losses(events) -> list[float]:
    return [event.loss for event in events if event.event == "step"]


def test_lesson_9_a_learning_rate_of_2_diverges_the_doctor_names_it_and_its_fix_learns():
    """09 'A step too far': "Within a few steps the loss shoots up and becomes NaN … the doctor's line
    … names the cause, a learning rate too high; f lowers it tenfold … now its loss falls." """
    params = link("09", "becomes NaN")
    config = Experiment(params.settings).config()
    events, _ = train(config)
    assert events[-1].reason == "diverged" and len(losses(events)) <= 20  # a few steps
    assert max(losses(events)) > 100 * losses(events)[0]  # it shoots up first
    figures = LabFigures(losses=losses(events), smoothed=losses(events), reason="diverged")
    hint = diagnose(figures, config.lr)[0]
    assert hint.problem == "learning rate too high" and hint.change == ("lr", 0.1)
    fixed, _ = train(replace(config, lr=config.lr * hint.change[1]))
    assert fixed[-1].reason == "finished"
    assert np.mean(losses(fixed)[-20:]) < 0.5 * losses(fixed)[0]


def test_lesson_9_early_stopping_ends_the_run_and_keeps_the_best_epoch():
    """09 'Update, epochs and early stopping': "The training loss keeps falling towards 0 while the
    validation loss … stops improving after a few epochs; two epochs without a better one end the run
    early, the best epoch's weights are kept"."""
    params = link("09", "stops improving")
    events, trainer = train(Experiment(params.settings).config())
    stop = next(event for event in events if event.event == "early_stop")
    assert stop.epoch == stop.best_epoch + params.settings["patience"] < params.settings["epochs"]
    val = [event.val_loss for event in events if event.event == "validation"]
    epochs = [event.train_loss for event in events if event.event == "epoch"]
    assert min(val) == val[stop.best_epoch - 1] and stop.best_epoch >= 3  # after a few epochs
    assert epochs[-1] < epochs[stop.best_epoch - 1] < epochs[0]  # the training loss went on falling
    assert epochs[-1] < 0.5 * min(val)


def test_lesson_8_focal_loss_with_its_alpha_finds_more_rings_than_cross_entropy():
    """08 'Rare classes': "with focal loss and its α, the network finds a far larger share of the
    rarest shape, the rings, than with cross-entropy, and a larger share of each class on average",
    read from the validation images as the lab's recall rows read them; α is the inverse class
    frequency (mean 1) that the imbalance widget above computes, to two decimals."""
    params = link("08", "rings")
    data = load_dataset("shapes-imbalanced")
    counts = np.bincount(data.y_train)
    assert params.compare["alpha"] == [round(float(a), 2) for a in (1 / counts) / (1 / counts).mean()]
    first = Experiment(params.settings).config()
    recalls = []
    for config in (first, second_config(first, params.compare)):
        trainer = Trainer(replace(config, backend="cpu"))
        for event in trainer.run():
            if event.event == "validation":  # the predictions the lab's confusion matrix counts
                true, predicted = np.asarray(trainer.y_val), np.asarray(trainer.last_predictions)
        recalls.append([float(np.mean(predicted[true == c] == c)) for c in range(data.classes)])
    rare = int(np.argmin(np.bincount(true)))
    assert data.class_names[rare] == "ring"
    (ce, focal) = recalls
    assert focal[rare] >= 2 * ce[rare] and focal[rare] - ce[rare] >= 0.25  # far larger
    assert np.mean(focal) > np.mean(ce)


@pytest.mark.slow
def test_lesson_6_the_cnn_learns_the_digits_faster_than_the_vit():
    """06 'Two ways to read an image': "from the first steps the CNN's loss falls faster than the
    ViT's, and after the same two epochs on the same digits its validation accuracy is clearly
    higher"."""
    params = link("06", "CNN's loss")
    first = Experiment(params.settings).config()
    (cnn, _), (vit, _) = (train(config, backend="cpu") for config in (first, second_config(first, params.compare)))
    cnn_losses, vit_losses = losses(cnn), losses(vit)
    assert len(cnn_losses) == len(vit_losses)
    for upto in (20, 50, len(cnn_losses)):  # from the first steps on
        assert np.mean(cnn_losses[:upto]) < np.mean(vit_losses[:upto])
    assert cnn[-1].val_accuracy > vit[-1].val_accuracy + 0.05
