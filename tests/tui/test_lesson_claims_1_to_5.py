"""What lessons 1–5 say about their own widgets, at each step's own settings, checked.

Each test names the step and the sentence it keeps true; when a widget or a setting changes so that
the sentence is no longer so, the test fails and the sentence must change with it.
"""

import re

import numpy as np
import pytest

from nnsim.data.images import load_image
from nnsim.engine import layers as L
from nnsim.lessons.format import parse_lesson
from nnsim.resources import shipped_path
from tests.tui.conftest import LESSONS, make_app, settle

SAMPLES = shipped_path("sample_images")


def step_block(lesson: str, title: str, widget: str):
    """The params of the `widget` block in the step of `lesson` whose heading is `title`, and its prose."""
    parsed = parse_lesson(next(LESSONS.glob(f"{lesson}-*.md")))
    step = next(s for s in parsed.steps if s.markdown.lstrip().startswith(f"# {title}"))
    return next(b.params for b in step.blocks if b.widget == widget), step.markdown


def words(prose: str) -> str:
    """Prose with its line breaks and runs of spaces made single spaces, to find a sentence in it."""
    return " ".join(prose.split())


def test_lesson_1_outline_numbers_are_the_lessons_that_teach_them():
    """01 'Where this course goes': each "lesson N: … **topic**" is taught in lesson N."""
    _, prose = step_block("01", "Where this course goes", "lesson_links")
    outline = re.findall(r"^- lessons? (\d+)(?: and (\d+))?: (.*)$", prose, flags=re.MULTILINE)
    assert len(outline) == 8
    for first, second, text in outline:
        numbers = [int(n) for n in (first, second) if n]
        for topic in re.findall(r"\*\*(.+?)\*\*", text):
            taught = [next(LESSONS.glob(f"{n:02d}-*.md")).read_text().lower() for n in numbers]
            assert any(topic.lower() in lesson for lesson in taught), (numbers, topic)


def test_lesson_1_a_share_is_given_even_to_what_is_no_digit():
    """01 'It only knows what it was shown': every picture goes to some digit; the circle gets a large share."""
    from nnsim.tui.live.classify import classify

    params, prose = step_block("01", "It only knows what it was shown", "classify")
    assert "shapes/circle.png" in params.images and "the circle gets a large share" in words(prose)
    for name in params.images:
        result = classify(SAMPLES / name, top=10)
        assert sum(p for _, p in result.top) == pytest.approx(1.0)  # the shares add up to 100 %
        assert result.top[0][0] in "0123456789"
    assert classify(SAMPLES / "shapes" / "circle.png", top=1).top[0][1] > 0.75


def test_lesson_1_the_photo_of_paper_is_turned_light_on_dark_and_says_so():
    """01 'Pixels first': the 7 on paper is inverted to match the training digits, and a note says so."""
    from nnsim.tui.live.classify import classify

    params, _ = step_block("01", "Pixels first", "classify")
    for name in params.images:
        result = classify(SAMPLES / name, top=1)
        assert result.input_shape == (1, 28, 28) and result.picture.shape == (28, 28)
    notes = classify(SAMPLES / "digits" / "7-on-paper.png", top=1).notes
    assert any("inverted" in note for note in notes)


def test_lesson_2_the_window_on_the_coffee_photo_sits_on_the_red_cup():
    """02 'Colour: three grids': at the step's zoom, R is well above G and B; R is the largest almost everywhere."""
    params, prose = step_block("02", "Colour: three grids", "pixel_grid")
    tensor = load_image(SAMPLES / params.image).tensor
    (r, c), k = params.zoom, params.zoom_size
    red, green, blue = tensor[:, r : r + k, c : c + k].mean(axis=(1, 2))
    assert red > 2.5 * max(green, blue)
    assert np.mean(tensor.argmax(axis=0) == 0) > 0.95  # "R is the largest almost everywhere"
    assert "R is the largest almost everywhere" in words(prose)


def test_lesson_2_the_networks_end_in_dense_layers_and_take_one_shape():
    """02 'A tensor': a dense layer ends each network, the ViT has a position a patch; the CNN takes 1 × 28 × 28."""
    from nnsim.tui.live.classify import lesson_cnn
    from nnsim.tui.live.vit import lesson_vit

    for model, _ in (lesson_cnn(), lesson_vit()):
        assert isinstance(model.layers[-1], L.Linear)
    assert lesson_cnn()[0].config.input_shape == (1, 28, 28)
    vit, _ = lesson_vit()
    patch = vit.config.sizes["patch"]
    positions = dict(vit.named_parameters())["layers.1.positions"].value
    assert positions.shape[0] == 1 + (28 // patch) ** 2  # one learned position a patch, and the CLS token's


async def test_lesson_3_without_a_bias_zero_inputs_give_zero_whatever_the_weights():
    """03 'The bias': both inputs are 0 here; bias off, changing the weights leaves z at 0; on, z = b."""
    from nnsim.tui.widgets.neuron import Neuron

    params, _ = step_block("03", "The bias", "neuron")
    assert params.x1 == params.x2 == 0.0
    app = make_app(LESSONS / "03-weights-and-biases.md")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("right", "right")
        await settle(pilot)
        neuron = app.screen.query_one(Neuron)
        await pilot.press("b", "plus", "plus", "down", "minus")  # bias off, then w₁ up and w₂ down
        assert neuron.values["w1"] != params.w1 and neuron.values["w2"] != params.w2
        assert neuron.z == 0.0
        await pilot.press("b")
        assert neuron.z == pytest.approx(params.b)


def test_lesson_3_the_digit_network_learned_only_weights_and_biases():
    """03 'Parameters': everything the shipped CNN learned is a weight or a bias, and they are counted."""
    from nnsim.tui.live.classify import classify, lesson_cnn

    model, _ = lesson_cnn()
    names = [name for name, _ in model.named_parameters()]
    assert names and all(name.endswith((".weight", ".bias")) for name in names)
    counted = classify(SAMPLES / "digits" / "3.png", top=1).parameters
    assert counted == sum(np.size(p.value) for _, p in model.named_parameters())


def test_lesson_4_each_activation_only_rises_or_stays_level():
    """04 'Straight lines are not enough': each f of the lesson is monotone, so one neuron's boundary is straight."""
    from nnsim.engine.activations import LESSON_ACTIVATIONS
    from nnsim.tui.live import activate

    params, prose = step_block("04", "Straight lines are not enough", "activation_plot")
    assert params.functions == ["relu", "linear"] and "ReLU bends" in words(prose)
    z = np.linspace(-10, 10, 2001)
    for name in LESSON_ACTIVATIONS:
        assert np.all(np.diff(activate(name, z)) >= 0), name


def test_lesson_5_the_diagram_draws_what_the_prose_says():
    """05 'Layers of neurons': the ten strongest input pixels and the strongest 30 % of the weights."""
    from nnsim.tui.widgets import network

    _, prose = step_block("05", "Layers of neurons", "network")
    assert network.SHOWN_INPUTS == 10 and "the ten whose weights" in words(prose)
    assert f"the strongest {round(network.EDGE_SHARE * 100)} %" in words(prose)


def test_lesson_5_depth_is_compared_at_equal_width_and_every_output_layer_is_plain():
    """05 'Deeper networks': same width, one layer against two; every network ends in Wx + b, no activation."""
    from nnsim.engine.models import build_model

    params, prose = step_block("05", "Deeper networks", "network")
    assert len(params.compare) == 1 and len(params.hidden) == 2
    assert set(params.hidden) == set(params.compare)  # the same width
    assert "two networks of the same width" in words(prose)
    first, _ = step_block("05", "Layers of neurons", "network")
    assert "(the network of the first step)" in words(prose)
    assert (params.compare, params.steps, params.seed) == (first.hidden, first.steps, first.seed)
    for name, shape in (("mlp", (1, 28, 28)), ("cnn", (1, 28, 28)), ("vit", (1, 28, 28)), ("mlp", (1, 2, 1))):
        assert isinstance(build_model(name, shape, 10).layers[-1], L.Linear), name


def test_lesson_2_the_first_window_on_the_3_crosses_a_stroke_edge():
    """02 'From 0 to 1': at the step's window the values run from near 1 (ink) down to 0 (paper)."""
    params, prose = step_block("02", "From 0 to 1", "pixel_grid")
    (r, c), k = params.zoom, params.zoom_size
    window = load_image(SAMPLES / params.image).tensor[r : r + k, c : c + k]
    assert window.max() > 0.9 and window.min() == 0.0
    assert "The window sits across the edge of a stroke: its values fall from near 1 on the ink to 0" in words(prose)


def test_lesson_3_negative_weights_step_has_w2_below_and_w1_above_0():
    """03 'Negative weights': "Raise x₂ and z falls; raise x₁ and z rises" at the step's weights."""
    from nnsim.tui.live import layer_forward

    params, _ = step_block("03", "Negative weights", "neuron")
    assert params.w2 < 0 < params.w1
    z = [layer_forward([[params.w1, params.w2]], [0.0], x)[0][0] for x in ([0.8, 0.6], [0.8, 0.9], [1.1, 0.9])]
    assert z[1] < z[0] and z[2] > z[1]  # x₂ up: z down; then x₁ up: z up


def test_lesson_4_the_neuron_step_draws_all_four_curves():
    """04 'A neuron with its activation': the markers, one on each of the four curves, move together."""
    from nnsim.engine.activations import LESSON_ACTIVATIONS

    params, prose = step_block("04", "A neuron with its activation", "activation_plot")
    assert len(params.functions) == 4 and set(params.functions) == set(LESSON_ACTIVATIONS)
    assert "one on each of the four curves" in words(prose)


def test_lesson_5_the_sigmoid_layer_step_is_a_sigmoid_layer():
    """05 'Many neurons at once': "a sigmoid activation, so every output lies between 0 and 1"."""
    from nnsim.tui.live import dense_layer_init, layer_forward

    params, _ = step_block("05", "Many neurons at once", "dense_layer")
    assert params.activation == "sigmoid"
    weights, bias, rng = dense_layer_init(params.inputs, params.neurons, params.seed)
    _, y = layer_forward(weights, bias, rng.uniform(0, 1, params.inputs), params.activation)
    assert np.all((y > 0) & (y < 1))


def test_no_lesson_places_its_widgets_on_a_side():
    """No step of any lesson says "on the right": under NARROW columns (80×24, say) the widgets sit below the prose."""
    from nnsim.lessons.format import parse_lesson
    from nnsim.tui.screens.lesson import NARROW

    assert NARROW > 80
    for path in sorted(LESSONS.glob("[01][0-9]-*.md")):
        for step in parse_lesson(path).steps:
            side = re.search(r"on the (right|left)(?! class)", words(step.markdown).lower())
            assert side is None, (path.name, step.markdown[:40])


def test_lesson_1_draws_three_shares_of_the_ten_and_says_so():
    """01 'Why it matters' and 'It only knows…': bars show the three largest shares; all ten add up to 100 %."""
    from nnsim.tui.live.classify import classify

    params, prose = step_block("01", "Why it matters", "classify")
    assert params.top == 3 and "bars show the three largest" in words(prose)
    params, prose = step_block("01", "It only knows what it was shown", "classify")
    assert params.top == 3 and "All ten shares (only the three largest are drawn) add up to 100 %" in words(prose)
    drawn = classify(SAMPLES / "photos" / "cat.jpg", top=params.top).top
    assert sum(p for _, p in drawn) < 0.99  # the bars alone need not make 100 %: the prose says "all ten"


def test_lessons_1_and_2_point_at_the_right_steps():
    """01 "step 3 here shows what they are not"; 02 "colour comes in step 4", "the next step says why"."""
    first = parse_lesson(next(LESSONS.glob("01-*.md"))).steps
    assert "step 3 here shows what they are not" in words(first[0].markdown)
    assert first[2].markdown.lstrip().startswith("# It only knows what it was shown")
    second = parse_lesson(next(LESSONS.glob("02-*.md"))).steps
    assert "(colour comes in step 4)" in words(second[0].markdown)
    assert second[3].markdown.lstrip().startswith("# Colour")
    assert "the next step says why that helps" in words(second[1].markdown)
    assert "Why bother?" in second[2].markdown


def test_lesson_4_table_is_the_engines():
    """04 'Four common choices': each row's formula and output range are the engine's own facts."""
    from nnsim.engine.activations import ACTIVATIONS, LESSON_ACTIVATIONS

    _, prose = step_block("04", "Four common choices", "activation_plot")
    rows = re.findall(r"^\| (\w+) \| (.+?) \| (.+?) \|$", prose, flags=re.MULTILINE)
    by_title = {facts.title: facts for facts in ACTIVATIONS.values()}
    assert [name for name, _, _ in rows[1:]] == [ACTIVATIONS[n].title for n in LESSON_ACTIVATIONS]
    for name, formula, output_range in rows[1:]:
        assert formula.removeprefix("f(z) = ") == by_title[name].formula, name
        assert output_range == by_title[name].output_range, name


async def test_lesson_4_the_plot_marks_z_once_on_each_curve(monkeypatch):
    """04 'A neuron with its activation': one marker on each of the four curves, at the neuron's z."""
    from nnsim.tui.widgets.activation_plot import ActivationPlot
    from nnsim.tui.widgets.neuron import Neuron

    app = make_app(LESSONS / "04-activation-functions.md")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("right", "right")
        await settle(pilot)
        plot, neuron = app.screen.query_one(ActivationPlot), app.screen.query_one(Neuron)
        assert plot.z == pytest.approx(neuron.z)
        marked = []
        plt = plot.query_one("#activation-curves").plt
        monkeypatch.setattr(plt, "scatter", lambda xs, ys, **kw: marked.append((xs[0], ys[0])))
        plot.redraw()
        assert sorted(marked) == sorted((plot.z, value) for value in plot.outputs().values())
        assert len(marked) == 4
