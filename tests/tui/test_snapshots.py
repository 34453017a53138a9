"""SVG snapshots of whole screens: home, help, a too-small terminal, and one step of each widget.

Update after an intended change with `pytest tests/tui/test_snapshots.py --snapshot-update`, then
look at the new SVGs (tests/tui/__snapshots__/) before committing them.
"""

import pytest

from tests.tui.conftest import LESSONS, make_app, settle, until

STEPS = [  # (lesson file, step index, what it shows)
    ("01-why-it-matters.md", 0, "classify"),
    ("02-picture-to-numbers.md", 0, "pixel_grid"),
    ("02-picture-to-numbers.md", 2, "pixel_grid_normalize"),
    ("02-picture-to-numbers.md", 3, "pixel_grid_rgb"),
    ("03-weights-and-biases.md", 2, "neuron"),
    ("04-activation-functions.md", 1, "activation_plot"),
    ("05-building-a-network.md", 0, "network"),
    ("05-building-a-network.md", 1, "dense_layer"),
    ("05-building-a-network.md", 3, "network_compare"),
    ("02-picture-to-numbers.md", 5, "quiz"),
    ("06-cnn-and-vit.md", 0, "cnn_vs_vit"),
    ("06-cnn-and-vit.md", 1, "conv_stepper"),
    ("06-cnn-and-vit.md", 2, "conv_stepper_rgb"),
    ("06-cnn-and-vit.md", 4, "conv_stepper_maps"),
    ("06-cnn-and-vit.md", 6, "vit_qkv"),
    ("06-cnn-and-vit.md", 7, "vit_view"),
    ("07-softmax.md", 0, "softmax"),
    ("07-softmax.md", 2, "softmax_temperature"),
    ("08-loss-functions.md", 1, "loss_explorer"),
    ("08-loss-functions.md", 2, "imbalance"),
    ("08-loss-functions.md", 3, "softmax_and_loss"),
    ("09-the-learning-loop.md", 1, "learning_loop"),
    ("10-takeaways.md", 0, "lesson_links"),
]


def at_step(step: int, *keys: str, stepped: int = 0):
    """The lesson at `step`, then `keys`; `stepped` steps of the conv stepper before them by its own
    action (what its s key does; a key press waits for the app to be idle: 248 of them took minutes)."""

    async def run_before(pilot):
        await settle(pilot)
        for _ in range(step):
            await pilot.press("right")
            await settle(pilot)
        if stepped:
            from nnsim.tui.widgets.conv_stepper import ConvStepper

            stepper = pilot.app.screen.query_one(ConvStepper)
            for _ in range(stepped):
                stepper.action_step()
        await pilot.press(*keys)
        await settle(pilot)

    return run_before


def test_home(snap_compare):
    assert snap_compare(make_app(), terminal_size=(120, 40))


def test_help(snap_compare):
    assert snap_compare(make_app(), press=["question_mark"], terminal_size=(120, 40))


def test_too_small(snap_compare):
    assert snap_compare(make_app(), terminal_size=(40, 12))


@pytest.mark.parametrize(("lesson", "step", "shows"), STEPS, ids=[s[2] for s in STEPS])
def test_lesson_step(snap_compare, lesson, step, shows):
    keys = {
        "quiz": ("2",),
        "learning_loop": ("s",) * 3,
        "conv_stepper": ("s",),  # the 248th step (247 before it, below)
        "conv_stepper_rgb": ("s",),  # the 100th step (99 before it, below)
        "vit_view": ("2",),
        "loss_explorer": ("3",),
    }.get(shows, ())
    app = make_app(LESSONS / lesson)
    stepped = {"conv_stepper": 247, "conv_stepper_rgb": 99}.get(shows, 0)
    assert snap_compare(app, terminal_size=(120, 40), run_before=at_step(step, *keys, stepped=stepped))


def test_lesson_step_at_80_by_24(snap_compare):
    app = make_app(LESSONS / "03-weights-and-biases.md")
    assert snap_compare(app, terminal_size=(80, 24), run_before=at_step(0))


def test_lab_after_a_short_run(snap_compare, monkeypatch, tmp_path):
    """The lab once a two-epoch run has finished: curves, confusion matrix, predictions, status.
    (Nothing timed is on this screen: speeds and times are in the log's tab.)"""
    app = lab_app_after_a_run(monkeypatch, tmp_path)
    assert snap_compare(app, terminal_size=(120, 40), run_before=train_to_the_end)


def lab_app_after_a_run(monkeypatch, tmp_path):
    from nnsim.engine.config import TrainConfig
    from nnsim.tui.app import NnsimApp
    from nnsim.tui.progress import ProgressStore

    monkeypatch.chdir(tmp_path)
    config = TrainConfig(
        model="mlp", data="shapes", epochs=2, backend="reference", sizes={"hidden": [16]}, checkpoint="run.npz"
    )
    return NnsimApp(progress=ProgressStore(), lab=config)


async def train_to_the_end(pilot):
    await pilot.press("space")
    await settle(pilot)
    lab = pilot.app.screen

    def finished() -> bool:  # the run has reached its end, and its worker has ended too
        return lab.figures.reason == "finished" and lab.state == "finished"

    await until(pilot, finished, what="the run did not finish")
    await settle(pilot)


def test_lab_at_80_by_24(snap_compare, monkeypatch, tmp_path):
    """The smallest screen the app is laid out for: every setting, the controls and both curves."""
    app = lab_app_after_a_run(monkeypatch, tmp_path)
    assert snap_compare(app, terminal_size=(80, 24), run_before=train_to_the_end)


def test_draw_a_digit(snap_compare, monkeypatch, tmp_path):
    """A 7 drawn on the canvas, made to look like MNIST and read by the shipped CNN."""
    from tests.tui.strokes import DIGITS

    app = lab_app_after_a_run(monkeypatch, tmp_path)

    async def run_before(pilot):
        await pilot.press("d")
        screen = pilot.app.screen
        canvas = screen.query_one("#draw-canvas")
        for stroke in DIGITS[7]:
            canvas.canvas.stroke(stroke)
        canvas.refresh()
        canvas.post_message(canvas.Changed())
        await until(pilot, lambda: screen.reading is not None and not screen._dirty, what="the 7 was not read")
        await settle(pilot)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)
