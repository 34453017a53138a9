"""Each widget shows what the engine computes, answers keys and mouse, and shows problems in place."""

import math

import numpy as np
import pytest
from PIL import Image
from textual.widgets import Button, Checkbox, Input

from nnsim.data.images import load_image
from nnsim.resources import shipped_path
from nnsim.tui.formatting import number
from nnsim.tui.widgets.activation_plot import ActivationPlot
from nnsim.tui.widgets.classify import Classify
from nnsim.tui.widgets.dense_layer import DenseLayer, MatrixRow
from nnsim.tui.widgets.network import NetworkDiagram
from nnsim.tui.widgets.neuron import Neuron
from nnsim.tui.widgets.pixel_grid import ImageCells, PixelGrid
from nnsim.tui.widgets.quiz import Quiz
from tests.tui.conftest import LESSONS, make_app, settle, shown

SAMPLES = shipped_path("sample_images")


def lesson_with(tmp_path, *blocks: str):
    body = "\n\n".join(f"```nnsim\n{block}\n```" for block in blocks)
    path = tmp_path / "01-test.md"
    path.write_text(f'+++\ntitle = "T"\nsection = 1\nsummary = "s"\n+++\nProse.\n\n{body}\n', encoding="utf-8")
    return path


async def test_pixel_grid_zoom_shows_the_tensor(tmp_path):
    app = make_app(
        lesson_with(tmp_path, 'widget = "pixel_grid"\nimage = "digits/7.png"\nzoom = [6, 14]\nzoom_size = 6')
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        grid = app.screen.query_one(PixelGrid)
        tensor = load_image(SAMPLES / "digits" / "7.png").tensor
        assert grid.tensor.shape == (28, 28)
        assert "28×28" in shown(grid.query_one("#pixel-title"))
        np.testing.assert_array_equal(grid.zoomed_values(), tensor[6:12, 14:20])
        await pilot.press("s", "s", "d")
        assert (grid.zoom_row, grid.zoom_col) == (8, 15)
        np.testing.assert_array_equal(grid.zoomed_values(), tensor[8:14, 15:21])
        table = shown(grid.query_one("#zoom-values"))
        assert "X[8:14, 15:21]" in table
        assert "  ".join(f"{v:.2f}" for v in tensor[10, 15:21]) in table
        cells = grid.query_one(ImageCells)
        await pilot.click(cells, offset=(3, 2))  # cell row 2 holds pixel rows 4 and 5
        assert (grid.zoom_row, grid.zoom_col) == (1, 0)
        for _ in range(40):
            await pilot.press("d", "s")
        assert (grid.zoom_row, grid.zoom_col) == (22, 22)  # the window stays inside the image


async def test_pixel_grid_rgb_channels(tmp_path):
    app = make_app(lesson_with(tmp_path, 'widget = "pixel_grid"\nimage = "photos/coffee.jpg"\nzoom = [2, 3]'))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        grid = app.screen.query_one(PixelGrid)
        assert grid.tensor.ndim == 3 and grid.tensor.shape[0] == 3
        c, h, w = grid.picture.shape
        assert f"shrunk to fit: 3 × {h} × {w}" in shown(grid.query_one("#pixel-title"))
        assert len(grid.query(ImageCells)) == 4
        await pilot.press("c", "c")
        assert grid.channel == 2
        np.testing.assert_array_equal(grid.zoomed_values(), grid.tensor[2, 2:7, 3:8])
        green = [cell for cell in grid.query(ImageCells) if cell.channel == 1][0]
        await pilot.click(green, offset=(0, 0))
        assert grid.channel == 1


async def test_pixel_grid_table_reads_the_files_own_tensor_at_its_own_indices(tmp_path):
    """A photo is drawn shrunk, but the table shows X itself: its values, its indices."""
    block = 'widget = "pixel_grid"\nimage = "photos/coffee.jpg"\nzoom = [100, 150]\nzoom_size = 4'
    app = make_app(lesson_with(tmp_path, block))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        grid = app.screen.query_one(PixelGrid)
        tensor = load_image(SAMPLES / "photos" / "coffee.jpg").tensor
        np.testing.assert_array_equal(grid.tensor, tensor)
        assert grid.picture.shape[-2:] != tensor.shape[-2:]  # drawn from a copy shrunk to fit
        table = shown(grid.query_one("#zoom-values"))
        assert "X[0, 100:104, 150:154]" in table
        assert "  ".join(f"{v:.2f}" for v in tensor[0, 101, 150:154]) in table
        await pilot.press("d", "c")  # one drawn pixel right, then the green channel
        row, col = grid.zoom_row, grid.zoom_col
        assert row == 100 and grid.shown_pixel(row, col)[1] == grid.shown_pixel(100, 150)[1] + 1
        table = shown(grid.query_one("#zoom-values"))
        assert f"X[1, {row}:{row + 4}, {col}:{col + 4}]" in table
        assert "  ".join(f"{v:.2f}" for v in tensor[1, row + 3, col : col + 4]) in table
        cells = grid.query_one(ImageCells)
        await pilot.click(cells, offset=(10, 3))  # drawn pixel (6, 10): the tensor's pixels around its centre
        height, width = tensor.shape[1:]
        shown_h, shown_w = grid.picture.shape[1:]
        assert grid.shown_pixel(grid.zoom_row + 2, grid.zoom_col + 2) == (6, 10)
        assert (grid.zoom_row + 2, grid.zoom_col + 2) == (int(6.5 * height / shown_h), int(10.5 * width / shown_w))


async def test_pixel_grid_normalises_as_the_shipped_cnns_first_layer(tmp_path):
    """normalize = true: the window as (x − mean) / std, with the training digits' own mean and std."""
    from nnsim.data.datasets import load_dataset

    block = 'widget = "pixel_grid"\nimage = "digits/3.png"\nzoom = [10, 8]\nnormalize = true'
    app = make_app(lesson_with(tmp_path, block))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        grid = app.screen.query_one(PixelGrid)
        (mean,), (std,) = load_dataset("mnist-mini").channel_stats()
        assert grid.normalisation.mean == pytest.approx(mean) and grid.normalisation.std == pytest.approx(std)
        window = load_image(SAMPLES / "digits" / "3.png").tensor[10:15, 8:13]
        np.testing.assert_allclose(grid.normalised_values(), (window - mean) / std, rtol=1e-5, atol=1e-6)
        table = shown(grid.query_one("#zoom-normalised"))
        assert f"(X − {mean:.4f}) / {std:.4f}" in table
        row_14 = next(line.split() for line in table.splitlines() if line.split()[:1] == ["14"])
        assert row_14[1:] == [number(v) for v in (window[4] - mean) / std]
        assert (0 - mean) / std < 0 < 1 < (1 - mean) / std  # the lesson: black turns negative, ink above 1


async def test_pixel_grid_opens_the_learners_own_file_and_reports_problems(tmp_path):
    own = tmp_path / "mine.png"
    Image.fromarray(np.tile(np.arange(0, 250, 10, dtype=np.uint8), (12, 1))).save(own)
    (tmp_path / "notes.txt").write_text("not an image")
    app = make_app(lesson_with(tmp_path, 'widget = "pixel_grid"'))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        grid = app.screen.query_one(PixelGrid)
        path_input = grid.query_one(Input)
        for text, problem in (("nowhere.png", "no such image"), (str(tmp_path / "notes.txt"), "not an image")):
            path_input.value = text
            await pilot.click(path_input)
            await pilot.press("enter")
            assert problem in shown(grid.query_one("#pixel-problem"))
            assert grid.tensor.shape == (28, 28)  # the old image stays
        path_input.value = str(own)
        await pilot.click(path_input)
        await pilot.press("enter")
        await pilot.pause()
        assert grid.tensor.shape == (12, 25)
        assert grid.tensor[0, 1] == pytest.approx(10 / 255)
        assert not grid.query_one("#pixel-problem").display


async def test_neuron_z_comes_from_the_engine_and_follows_keys_and_mouse(tmp_path):
    block = 'widget = "neuron"\nx1 = 1.0\nx2 = 0.5\nw1 = 0.8\nw2 = -0.4\nb = 0.1\nstep = 0.5'
    app = make_app(lesson_with(tmp_path, block, 'widget = "activation_plot"'))
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(pilot)
        neuron = app.screen.query_one(Neuron)
        plot = app.screen.query_one(ActivationPlot)
        assert neuron.z == pytest.approx(0.8 * 1.0 - 0.4 * 0.5 + 0.1)
        assert plot.z == pytest.approx(neuron.z)  # the neuron feeds the plot
        assert "0.70" in shown(neuron.query_one("#neuron-sum"))
        neuron.focus()
        await pilot.press("up", "up")  # from w1 to x1
        await pilot.press("plus")
        assert neuron.values["x1"] == pytest.approx(1.5)
        assert neuron.z == pytest.approx(0.8 * 1.5 - 0.4 * 0.5 + 0.1)
        await pilot.click("#less-w2")
        assert neuron.values["w2"] == pytest.approx(-0.9)
        assert plot.z == pytest.approx(neuron.z)
        await pilot.press("b")
        assert not neuron.use_bias and not neuron.query_one(Checkbox).value
        assert neuron.z == pytest.approx(0.8 * 1.5 - 0.9 * 0.5)
        assert "nothing can move it off 0" in shown(neuron.query_one("#neuron-sum"))
        await pilot.click("#use-bias")
        assert neuron.use_bias


async def test_activation_plot_values_are_the_functions(tmp_path):
    app = make_app(lesson_with(tmp_path, 'widget = "activation_plot"\nz = -1.5'))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        plot = app.screen.query_one(ActivationPlot)
        out = plot.outputs()
        assert out["relu"] == 0.0 and out["linear"] == -1.5
        assert out["sigmoid"] == pytest.approx(1 / (1 + math.exp(1.5)))
        assert out["tanh"] == pytest.approx(math.tanh(-1.5))
        plot.focus()
        await pilot.press("plus", "plus", "plus", "plus", "plus", "plus", "plus", "plus")
        assert plot.z == pytest.approx(0.5)
        assert plot.outputs()["relu"] == pytest.approx(0.5)
        assert "f(0.50)" in shown(plot.query_one("#activation-table"))


async def test_dense_layer_is_f_of_wx_plus_b(tmp_path):
    block = 'widget = "dense_layer"\ninputs = 4\nneurons = 3\nactivation = "sigmoid"\nseed = 2'
    app = make_app(lesson_with(tmp_path, block))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        layer = app.screen.query_one(DenseLayer)
        z = layer.weights @ np.array(layer.x) + layer.bias
        np.testing.assert_allclose(layer.z, z, rtol=1e-12)
        np.testing.assert_allclose(layer.y, 1 / (1 + np.exp(-z)), rtol=1e-12)
        layer.focus()
        await pilot.press("down")
        assert layer.highlight == 1
        await pilot.click(list(layer.query(MatrixRow))[2])
        assert layer.highlight == 2
        assert f"{layer.y[2]:.3f}" in shown(layer.query_one("#dense-spelled"))
        old = layer.x
        await pilot.press("x")
        assert not np.array_equal(old, layer.x)
        np.testing.assert_allclose(layer.z, layer.weights @ np.array(layer.x) + layer.bias, rtol=1e-12)


async def test_network_trains_on_real_digits_and_shows_them_flowing(tmp_path):
    app = make_app(lesson_with(tmp_path, 'widget = "network"\nhidden = [16]\nsteps = 300'))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, seconds=120)
        net = app.screen.query_one(NetworkDiagram)
        assert net.ready
        trained = net.trained
        assert trained.steps == 300 and trained.test_accuracy > 0.8
        assert [w.shape for w in trained.weights] == [(16, 784), (10, 16)]
        assert f"{trained.test_accuracy:.1%}" in shown(net.query_one("#network-status"))
        pixels = (trained.images[0].reshape(-1) - trained.mean) / trained.std
        hidden = np.maximum(trained.weights[0] @ pixels + trained.biases[0], 0)
        np.testing.assert_allclose(trained.activations[0][1], hidden, rtol=1e-4, atol=1e-5)
        net.focus()
        await pilot.press("down")
        assert net.sample == 1
        await pilot.click("#network-digit")
        assert net.sample == 2


async def test_network_compares_two_networks_with_the_scores_it_computed(tmp_path):
    """Lesson 5: both scores are shown, each the share of the whole test set its own weights name right."""
    from nnsim.data.datasets import load_dataset

    block = 'widget = "network"\nhidden = [8, 8]\ncompare = [8]\nsteps = 40'
    app = make_app(lesson_with(tmp_path, block))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot, seconds=120)
        net = app.screen.query_one(NetworkDiagram)
        deep, shallow = net.trained, net.compared
        assert deep.hidden == (8, 8) and shallow.hidden == (8,)
        assert deep.steps == shallow.steps == 40
        data = load_dataset("mnist-mini")
        (mean,), (std,) = data.channel_stats()
        assert (deep.mean, deep.std) == pytest.approx((mean, std))  # lesson 2: its first layer normalises so
        status = shown(net.query_one("#network-status"))
        assert f"{len(data.y_test):,} test digits" in status
        for network, sizes in ((deep, "784 → 8 → 8 → 10"), (shallow, "784 → 8 → 10")):
            x = (data.x_test.reshape(len(data.x_test), -1) - network.mean) / network.std
            for layer, (weights, bias) in enumerate(zip(network.weights, network.biases, strict=True)):
                x = x @ weights.T + bias
                x = np.maximum(x, 0) if layer < len(network.weights) - 1 else x  # no activation on the output
            accuracy = float(np.mean(np.argmax(x, axis=1) == data.y_test))
            assert network.test_accuracy == pytest.approx(accuracy, abs=1.5 / len(data.y_test))
            line = next(line for line in status.splitlines() if line.strip().startswith(sizes + " "))
            assert f"{network.test_accuracy:.1%}" in line and "40 steps" in line
        logits = deep.activations[0][-1]  # the output layer: Wx + b, no activation
        np.testing.assert_allclose(deep.probabilities[0], np.exp(logits) / np.exp(logits).sum(), rtol=1e-6)
        best = int(np.argmax(deep.probabilities[0]))
        assert f"{best} {deep.probabilities[0][best]:>4.0%}" in net.diagram().plain  # shown after softmax


async def test_classify_reads_the_sample_digits(tmp_path):
    block = 'widget = "classify"\nimages = ["digits/3.png", "digits/8.png", "missing.png"]'
    app = make_app(lesson_with(tmp_path, block))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        classify = app.screen.query_one(Classify)
        top = classify.result_for("digits/3.png").top
        assert top[0][0] == "3" and top[0][1] > 0.9
        assert "It says: 3" in shown(classify.query_one("#classify-guesses"))
        await pilot.click("#image-1")
        await settle(pilot)
        assert classify.chosen == 1
        assert classify.result_for("digits/8.png").top[0][0] == "8"
        assert "It says: 8" in shown(classify.query_one("#classify-guesses"))
        await pilot.press("down")
        await settle(pilot)
        assert "no such image" in shown(classify.query_one("#classify-problem"))
        path_input = classify.query_one(Input)
        path_input.value = str(SAMPLES / "digits" / "4.png")
        await pilot.click(path_input)
        await pilot.press("enter")
        await settle(pilot)
        assert classify.chosen == 3 and "It says: 4" in shown(classify.query_one("#classify-guesses"))


async def test_quiz_answers_by_key_and_by_click():
    app = make_app(LESSONS / "03-weights-and-biases.md")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for _ in range(len(app.screen.lesson.steps)):
            await pilot.press("right")
        await settle(pilot)
        quiz = app.screen.query_one(Quiz)
        assert shown(quiz.query_one("#explanation")) == ""
        await pilot.press("2")
        assert quiz.chosen == 1
        assert "Not quite" in shown(quiz.query_one("#verdict"))
        assert "bias" in shown(quiz.query_one("#explanation"))
        await pilot.click("#choice-0")
        assert quiz.chosen == 0 and "Right" in shown(quiz.query_one("#verdict"))
        assert quiz.query_one("#choice-0", Button).has_class("-right")


async def test_pixel_grid_title_gives_the_files_real_shape(tmp_path):
    from PIL import Image

    from nnsim.tui.widgets.pixel_grid import PixelGrid

    app = make_app(lesson_with(tmp_path, 'widget = "pixel_grid"\nimage = "photos/astronaut.jpg"'))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        grid = app.screen.query_one(PixelGrid)
        width, height = Image.open(SAMPLES / "photos" / "astronaut.jpg").size
        title = shown(grid.query_one("#pixel-title"))
        assert f"shape C × H × W = 3 × {height} × {width}" in title
        shown_h, shown_w = grid.picture.shape[-2:]
        assert (shown_h, shown_w) != (height, width) and f"shrunk to fit: 3 × {shown_h} × {shown_w}" in title
        assert grid.tensor.shape == (3, height, width)  # the table reads the file's own tensor


async def test_softmax_shows_the_workshops_figures_and_feeds_the_loss(tmp_path):
    from nnsim.tui.widgets.loss_explorer import LossExplorer
    from nnsim.tui.widgets.softmax import SoftmaxBars

    app = make_app(lesson_with(tmp_path, 'widget = "softmax"', 'widget = "loss_explorer"\ngamma = 0.0'))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        softmax, loss = app.screen.query_one(SoftmaxBars), app.screen.query_one(LossExplorer)
        table = shown(softmax.query_one("#softmax-table"))
        for figure in ("7.3891", "2.7183", "1.1052", "÷ 11.2125", "0.6590", "0.2424", "0.0986"):
            assert figure in table  # e^2, e^1, e^0.1, their sum, and the seed's 0.66 / 0.24 / 0.10
        assert "predicted: cat" in shown(softmax.query_one("#softmax-sum"))
        expected = np.exp([2.0, 1.0, 0.1]) / np.exp([2.0, 1.0, 0.1]).sum()
        np.testing.assert_allclose(loss.state.probabilities, expected, rtol=1e-12)  # published to the loss
        assert loss.terms.cross_entropy == pytest.approx(-np.log(expected[1]))  # true class: dog
        softmax.focus()
        await pilot.press(
            "down", "plus", "plus", "plus", "plus", "plus", "plus", "plus", "plus", "plus", "plus", "plus"
        )
        await settle(pilot)
        assert softmax.state.logits[1] == pytest.approx(2.1)
        assert "predicted: dog" in shown(softmax.query_one("#softmax-sum"))
        assert sum(softmax.probabilities) == pytest.approx(1.0)
        assert loss.terms.p_true == pytest.approx(softmax.probabilities[1])
        await pilot.press("right_square_bracket", "a")
        await settle(pilot)
        assert softmax.state.temperature == 2.0 and len(softmax.state.logits) == 4


async def test_loss_explorer_computes_the_workshops_examples(tmp_path):
    from nnsim.tui.widgets.loss_explorer import LossExplorer

    app = make_app(lesson_with(tmp_path, 'widget = "loss_explorer"'))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        loss = app.screen.query_one(LossExplorer)
        text = shown(loss.query_one("#loss-terms"))
        assert "= 0.0513" in text and "= 0.000128" in text  # CE 0.05 and focal 0.00013 (α = 1, γ = 2)
        loss.focus()
        await pilot.press("e")
        await settle(pilot)
        text = shown(loss.query_one("#loss-terms"))
        assert "= 2.3026" in text and "= 1.8651" in text  # CE 2.30 and focal 1.865 for the bad prediction
        assert loss.terms.focal == pytest.approx(-(0.9**2) * np.log(0.1))
        await pilot.press("a")
        await settle(pilot)
        assert loss.terms.focal == pytest.approx(-2.0 * 0.9**2 * np.log(0.1))  # α of dog raised to 2


async def test_predict_first_holds_the_widget_back_until_answered(tmp_path):
    from nnsim.tui.widgets.predict_first import PredictFirst
    from nnsim.tui.widgets.softmax import SoftmaxBars

    block = 'widget = "softmax"\npredict = "Guess?"\npredict_choices = ["one", "two"]\npredict_answer = 1'
    app = make_app(lesson_with(tmp_path, block))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        wrapper = app.screen.query_one(PredictFirst)
        assert not app.screen.query(SoftmaxBars)  # the result is hidden
        await pilot.press("1")
        await settle(pilot)
        assert wrapper.revealed and app.screen.query_one(SoftmaxBars).probabilities
        assert "Not quite" in shown(wrapper.query_one(Quiz).query_one("#verdict"))


async def test_predict_first_follows_the_revealed_widget_as_it_grows_until_the_learner_acts():
    """After the answer the view jumps toward the verdict (the result below it) and jumps again each time
    the revealed widget grows, so where it ends does not depend on when the worker drew; once the
    learner presses a key there, the view stays where the learner puts it."""
    from nnsim.tui.widgets.predict_first import PredictFirst
    from tests.tui.test_snapshots import at_step

    app = make_app(LESSONS / "06-cnn-and-vit.md")
    async with app.run_test(size=(120, 40)) as pilot:
        await at_step(7, "2")(pilot)  # the ViT view, behind "which patches will the CLS token attend to?"
        pane, wrapper = app.screen.query_one("#widgets"), app.screen.query_one(PredictFirst)
        verdict = wrapper.query_one(Quiz).query_one("#verdict")
        assert pane.max_scroll_y > 0 and pane.scroll_y == pane.max_scroll_y  # toward the verdict, as far as it goes
        assert pane.region.y <= verdict.region.y < pane.region.bottom
        await pilot.press("h")  # the learner acts: another head
        await settle(pilot)
        pane.scroll_to(y=0, animate=False, immediate=True)
        height = wrapper.size.height
        await pilot.press("v")  # the next view: the revealed widget changes size
        await settle(pilot)
        assert wrapper.size.height != height and pane.scroll_y == 0


def test_no_lesson_widget_takes_a_key_the_lesson_screen_or_the_app_owns():
    """DESIGN's key contract: in a lesson → or n next, ← or p back, Esc home; l, ?, t, q everywhere.

    A widget has the focus while its step is shown, so a binding of its own for one of these keys
    would swallow it (the ViT view once took n for "next digit", and n stopped turning the page).
    """
    import importlib
    import pkgutil

    import nnsim.tui.widgets as package
    from nnsim.tui.app import NnsimApp
    from nnsim.tui.screens.lesson import LessonScreen

    owned = {b.key for b in LessonScreen.BINDINGS if b.action in ("next", "previous", "home", "lab_link")}
    owned |= {b.key for b in NnsimApp.BINDINGS}
    assert {"right", "n", "left", "p", "escape", "L", "l", "q"} <= owned
    checked = 0
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == module.__name__ and "BINDINGS" in vars(value):
                spelled = [b.key if hasattr(b, "key") else b[0] for b in value.BINDINGS]
                keys = {key.strip() for keys in spelled for key in keys.split(",")}
                assert not keys & owned, (value.__name__, keys & owned)
                checked += 1
    assert checked >= 10
