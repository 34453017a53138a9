"""Lesson 9's learning loop does what the lesson says at the lesson's own settings: the validation
loss turns up while the training loss falls, early stopping ends the run, and the best epoch's
weights are put back."""

from collections import Counter

import numpy as np
import pytest

from nnsim.lessons import parse_lesson
from nnsim.tui.live.learning_loop import LearningLoop, overfitted
from nnsim.tui.widgets.learning_loop import LearningLoopStepper
from tests.tui.conftest import LESSONS, make_app, settle, shown

LESSON = LESSONS / "09-the-learning-loop.md"
EARLY_STOPPING_STEP = 2  # "Update, epochs and early stopping"


def lesson_params():
    step = parse_lesson(LESSON).steps[EARLY_STOPPING_STEP]
    (block,) = [b for b in step.blocks if b.widget == "learning_loop"]
    return block.params


def loop_at_the_lessons_settings() -> LearningLoop:
    p = lesson_params()
    return LearningLoop(lr=p.lr, hidden=p.hidden, points=p.points, seed=p.seed, patience=p.patience)


def run_to_the_stop(loop: LearningLoop) -> list[dict[str, np.ndarray]]:
    """Every epoch's weights, as they were right after that epoch (before any restoring)."""
    weights = []
    while loop.epoch() is not None:
        assert len(loop.state.epochs) <= 100, "no early stop within 100 epochs"
        weights.append(loop.trainer.model.state_dict())
    return weights


def test_early_stopping_triggers_at_lesson_9s_settings_and_restores_the_best_weights():
    loop = loop_at_the_lessons_settings()
    weights = run_to_the_stop(loop)
    state = loop.state
    assert state.stopped.startswith("early stop") and state.restored
    val_losses = [e.val_loss for e in state.epochs]
    best = int(np.argmin(val_losses)) + 1
    assert state.best_epoch == best and len(state.epochs) == best + loop.patience
    restored = loop.trainer.model.state_dict()
    for name, value in restored.items():
        np.testing.assert_array_equal(value, weights[best - 1][name], err_msg=name)
    val_now, accuracy_now = loop.trainer.evaluate(loop.trainer.x_val, loop.trainer.y_val)
    assert val_now == val_losses[best - 1] < val_losses[-1]  # the best epoch's network, not the last one's
    assert round(accuracy_now * len(loop.trainer.y_val)) == state.epochs[best - 1].val_right
    assert f"weights of epoch {best}" in state.stopped and "put back" in state.stopped


def test_the_validation_loss_rises_while_the_training_loss_falls_before_it_stops():
    loop = loop_at_the_lessons_settings()
    run_to_the_stop(loop)
    epochs, best = loop.state.epochs, loop.state.best_epoch
    after = epochs[best - 1 :]
    assert all(b.val_loss > a.val_loss for a, b in zip(after, after[1:], strict=False))  # it turns up and keeps rising
    assert all(b.train_loss < a.train_loss for a, b in zip(after, after[1:], strict=False))
    assert epochs[-1].val_loss > 1.1 * epochs[best - 1].val_loss  # a rise the curve shows, not a wobble
    assert epochs[0].val_loss > 1.5 * epochs[best - 1].val_loss  # and it fell a long way before that
    assert overfitted(after) and "fitting its training points" in loop.state.stopped
    # the network gets more training points right and more validation points wrong
    assert epochs[-1].train_right == len(loop.y) > epochs[best - 1].train_right
    assert epochs[-1].val_right < epochs[best - 1].val_right


def test_a_stop_on_a_plateau_or_a_jumpy_run_does_not_claim_overfitting():
    for lr in (1 / 16, 4.0):  # too small a step: barely moving; too large: the training loss jumps up and down
        loop = LearningLoop(lr=lr)
        run_to_the_stop(loop)
        assert loop.state.stopped.startswith("early stop") and loop.state.restored, lr
        assert "fitting its training points" not in loop.state.stopped, lr


async def test_the_lesson_step_shows_the_stop_and_the_best_epoch():
    app = make_app(LESSON)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for _ in range(EARLY_STOPPING_STEP):
            await pilot.press("right")
            await settle(pilot)
        stepper = app.screen.query_one(LearningLoopStepper)
        for _ in range(10):
            await pilot.press("r")
            if stepper.loop.state.stopped:
                break
        await settle(pilot)
        status = shown(stepper.query_one("#loop-status"))
        best = stepper.loop.state.best_epoch
        assert "early stop" in status and f"weights of epoch {best}" in status
        assert f"epochs: {len(stepper.loop.state.epochs)}" in status
        assert f"lowest validation loss: epoch {best} (the green line)" in status
        assert green_line_epoch(stepper) == pytest.approx(best, abs=1)  # the green line marks that epoch


def green_line_epoch(stepper: LearningLoopStepper) -> float:
    """The epoch at which the curves' plot, as drawn, has a green vertical line: read from the
    column most of whose rows are green, placed between the x axis's labelled ticks."""
    from rich.text import Text
    from textual_plotext import PlotextPlot

    from nnsim.tui.widgets.learning_loop import _epoch_ticks

    rows = Text.from_ansi(stepper.query_one(PlotextPlot).plt.build()).split("\n")
    axis = next(i for i, row in enumerate(rows) if row.plain.lstrip().startswith("└"))
    green = Counter(
        column
        for row in rows[:axis]
        for span in row.spans
        if "color(2)" in str(span.style)
        for column in range(span.start, span.end)
    )
    assert green, "no green in the plot"
    column, count = green.most_common(1)[0]
    assert count >= axis // 2, "no green line: too few green rows in any column"
    ticks = [i for i, char in enumerate(rows[axis].plain) if char in "┬┼┴"]
    labels = _epoch_ticks(len(stepper.loop.state.epochs))
    if len(ticks) == len(labels) + 1:
        ticks.remove(column)  # the line crosses the axis between ticks
    assert len(ticks) == len(labels), (rows[axis].plain, labels)
    return float(np.interp(column, ticks, labels))


def test_the_map_shows_what_the_network_says_now_and_leaves_backprop_alone():
    from nnsim.engine.losses import softmax

    loop = loop_at_the_lessons_settings()
    loop.step()  # forward
    loop.step()  # loss
    loop.red_map(7, 5)  # drawn between phases, as the widget does
    loop.step()  # backward: from the values the forward phase left in the layers
    for gradient in loop.state.gradients:
        assert gradient.error < 1e-6, gradient.name
    run_to_the_stop(loop)  # the map after early stopping: the restored network's
    x1_from, x1_to, x2_from, x2_to = loop.map_extent()
    x1 = x1_from + (np.arange(7) + 0.5) * (x1_to - x1_from) / 7
    x2 = x2_to - (np.arange(5) + 0.5) * (x2_to - x2_from) / 5
    grid = np.array([[a, b] for b in x2 for a in x1]).reshape(-1, 1, 1, 2)
    expected = softmax(np.asarray(loop.trainer.forward(grid)))[:, 1].reshape(5, 7)
    np.testing.assert_allclose(loop.red_map(7, 5), expected, rtol=1e-12)
    points = np.concatenate([loop.x, loop.trainer.x_val])[:, 0, 0]
    assert x1_from < points[:, 0].min() and points[:, 0].max() < x1_to
    assert x2_from < points[:, 1].min() and points[:, 1].max() < x2_to


def test_the_counts_and_the_batch_the_lesson_names():
    loop = loop_at_the_lessons_settings()
    assert len(loop.y) == len(loop.trainer.y_val) == 8  # "8 training points (and 8 more held back)"
    loop.epoch()
    assert loop.trainer.steps == 1  # "all 8 training points go in one batch, so an epoch is one update"
    for _ in range(3):  # forward, loss, backward
        loop.step()
    errors = [g.error for g in loop.state.gradients]
    assert max(errors) < 1e-6 and min(errors) > 0  # "tiny, but not zero"


TOO_FAR_STEP = 3  # "A step too far"


def too_far_params():
    (block,) = [b for b in parse_lesson(LESSON).steps[TOO_FAR_STEP].blocks if b.widget == "learning_loop"]
    return block.params


def test_a_step_too_far_diverges_within_a_few_epochs():
    p = too_far_params()
    loop = LearningLoop(lr=p.lr, hidden=p.hidden, points=p.points, seed=p.seed, patience=p.patience)
    while loop.epoch() is not None:
        assert len(loop.state.epochs) <= 6, "no divergence in a few epochs"
    assert loop.state.stopped.startswith("diverged") and "too large" in loop.state.stopped
    # "the loss grows instead of shrinking, faster and faster": from the first epoch on, both losses
    train, val = [e.train_loss for e in loop.state.epochs], [e.val_loss for e in loop.state.epochs]
    for losses in (train, val):
        rises = [b - a for a, b in zip(losses, losses[1:], strict=False)]
        assert all(r > 0 for r in rises) and rises == sorted(rises), losses


def test_halving_the_step_too_far_finds_an_eta_that_learns():
    """− halves η and 0 starts again with the same first weights: a few halvings down, a run
    learns (its losses fall well below where they began) instead of diverging."""
    p = too_far_params()
    stepper = LearningLoopStepper(p)  # 0 builds its loop afresh with _new_loop, at the η of the moment
    first = stepper.loop
    lr, halvings = p.lr, 0
    while True:
        loop = stepper._new_loop(lr)
        for name, value in first.trainer.model.state_dict().items():  # the same first weights
            np.testing.assert_array_equal(loop.trainer.model.state_dict()[name], value, err_msg=name)
        run_to_the_stop(loop)
        if not loop.state.stopped.startswith("diverged"):
            break
        lr, halvings = lr / 2, halvings + 1
        assert halvings <= 4, "still diverging after four halvings"
    epochs = loop.state.epochs
    assert halvings >= 2  # more than one press of − : a search, not a single step
    assert loop.state.stopped.startswith("early stop")
    assert min(e.train_loss for e in epochs) < 0.5 * epochs[0].train_loss
    assert min(e.val_loss for e in epochs) < 0.8 * epochs[0].val_loss


def test_the_intro_says_what_the_inputs_are_standardised_with():
    """One mean and one std, over the training and the validation points together (the engine's
    Normalize takes them from the whole data set before it is split)."""
    loop = loop_at_the_lessons_settings()
    points = np.concatenate([loop.x, loop.trainer.x_val])
    config = loop.trainer.model.config
    np.testing.assert_allclose([config.mean, config.std], [[points.mean()], [points.std()]], rtol=1e-12)
    assert abs(config.mean[0] - loop.x.mean()) > 0.01  # not the training points' alone
    intro = LearningLoopStepper(lesson_params())._intro().plain
    assert f"one mean and one std over all {len(points)} points" in intro


async def test_an_update_by_phases_is_counted_as_an_update():
    """ "An epoch is one update": the status counts the updates made by pressing s through the
    four phases as well as those of whole epochs, so that one by phases is not lost from view."""
    app = make_app(LESSON)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        stepper = app.screen.query_one(LearningLoopStepper)
        await pilot.press(*"ssss", "e")
        await settle(pilot)
        status = shown(stepper.query_one("#loop-status"))
        assert "epochs: 1   updates: 2" in status and stepper.loop.trainer.steps == 2
