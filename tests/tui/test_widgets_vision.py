"""Lesson 6's widgets in the app: the convolution stepper (gray and colour), the CNN beside the ViT,
and the ViT view on the lesson's digits, an image of the learner's and a drawn digit."""

import re

import numpy as np
from PIL import Image
from textual.widgets import Input

from nnsim.engine.backends import get_backend
from nnsim.resources import shipped_path
from nnsim.tui.formatting import number, signed
from nnsim.tui.live import vit
from tests.tui.conftest import LESSONS, make_app, settle, shown
from tests.tui.test_widgets import lesson_with

SAMPLES = shipped_path("sample_images")


async def test_conv_stepper_steps_runs_and_explains_its_sizes(tmp_path):
    from nnsim.tui.widgets.conv_stepper import ConvStepper

    app = make_app(lesson_with(tmp_path, 'widget = "conv_stepper"\nkernel = "sharpen"'))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        conv = app.screen.query_one(ConvStepper)
        conv.focus()
        await pilot.press(*["s"] * 40)
        assert conv.state.done == 41
        row, col = divmod(40, conv.conv.output.shape[1])
        expected = get_backend("reference").conv2d_forward(
            conv.image[None, None].astype(np.float64), conv.kernel[None, None], np.zeros(1), 1, 0
        )[0, 0]
        assert f"Y[{row}, {col}]" in shown(conv.query_one("#conv-sum"))
        assert f"{expected[row, col]:.4f}" in shown(conv.query_one("#conv-sum"))
        await pilot.press("z", "b")  # stride 2, padding 1
        size = shown(conv.query_one("#conv-size"))
        assert "⌊(28 + 2·1 − 3) / 2⌋ + 1 = ⌊27/2⌋ + 1 = 14" in size
        assert "all padding zeros: no pixel is lost" in size  # what the kernel misses is the border
        await pilot.press("b", "z", "z")  # padding 2, stride 1: the kernel reaches everything
        assert "= 30" in shown(conv.query_one("#conv-size")) and "never" not in shown(conv.query_one("#conv-size"))
        await pilot.press("z")  # stride 2
        await pilot.press("r")
        assert conv.state.done == conv.conv.output.size == 15 * 15
        await pilot.press("k", "k")  # sharpen → learned filter 0 → learned filter 1
        assert conv.state.kernel == "learned"
        assert "the CNN's learned filter 1, stride 2" in shown(conv.query_one("#conv-title"))
        await pilot.press("f")
        assert "block 2: 16 maps of 7×7 (after ReLU and 2×2 max-pool)" in shown(conv.query_one("#conv-output"))


async def test_the_colour_step_sums_three_channels_and_a_bias():
    """Lesson 6's step on a photo: each channel's products, their sums and b[cₒ], as the engine adds them."""
    from nnsim.tui.widgets.conv_stepper import ConvStepper

    app = make_app(LESSONS / "06-cnn-and-vit.md")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("right", "right")
        await settle(pilot)
        conv = app.screen.query_one(ConvStepper)
        assert conv.params.rgb and conv.image.shape == (3, 28, 28)
        assert "R, G and B channels of photos/coffee.jpg" in shown(conv.query_one("#conv-title"))
        await pilot.press(*["s"] * 100)
        row, col = divmod(100, conv.conv.output.shape[1])
        expected = get_backend("reference").conv2d_forward(
            conv.image[None], conv.kernel[None], np.array([conv.params.bias]), 1, 0
        )[0, 0, row, col]
        text = shown(conv.query_one("#conv-sum"))
        sums = conv.conv.channel_sums(row, col)
        for name, value in zip("RGB", sums, strict=True):
            assert f"{name}: {number(value, 4)} = " in text
        added = " + ".join(signed(v, 4) for v in sums)
        assert f"Y = R + G + B + b[0] = {added} + (−0.10)\n    = {number(expected, 4)}" in text
        await pilot.press(*["k"] * 3)  # edge, blur, sharpen, and back: no learned filter for three channels
        assert conv.state.kernel == "edge"


async def test_the_cnn_field_grows_around_the_same_spot_as_the_vit_patch(tmp_path):
    from nnsim.tui.widgets.cnn_vs_vit import CnnVsVit

    app = make_app(lesson_with(tmp_path, 'widget = "cnn_vs_vit"'))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        versus = app.screen.query_one(CnnVsVit)
        spot = versus.spot
        assert "sees 4×4 pixels" in shown(versus.query_one("#versus-cnn"))
        assert f"patch {versus.patch[0] * 4 + versus.patch[1]}'s attention" in shown(versus.query_one("#versus-vit"))
        small = versus.field(1)
        versus.focus()
        await pilot.press("d")
        assert versus.depth == 2
        assert "sees 10×10 pixels" in shown(versus.query_one("#versus-cnn"))
        large = versus.field(2)
        for top, bottom, left, right, _ in (small, large):
            assert top <= spot[0] < bottom and left <= spot[1] < right  # both around the ViT patch's centre
        assert large[0] <= small[0] and small[1] <= large[1] and large[2] <= small[2] and small[3] <= large[3]
        assert (large[1] - large[0]) > (small[1] - small[0])
        picture, (top, bottom, left, right, _) = versus.field_picture(), small
        yellow = np.array([1.0, 0.85, 0.0])  # what the note calls the earlier block's yellow frame
        for edge in (picture[top, left:right], picture[bottom - 1, left:right], picture[top:bottom, left]):
            np.testing.assert_allclose(edge, np.broadcast_to(yellow, edge.shape))
        field = np.zeros((28, 28), dtype=bool)
        field[large[0] : large[1], large[2] : large[3]] = True
        ring = field.copy()  # the block-2 field around the block-1 one
        ring[top:bottom, left:right] = False
        assert (picture[ring, 2] >= 0.5).all() and (picture[~field, 2] < 0.5).all()  # lit in blue, the rest not
        await pilot.press("d")
        assert versus.depth == 1  # after the last block, back to the first


async def test_the_vit_view_reads_another_digit_a_file_and_a_drawing(tmp_path):
    """The lesson's images (n), a typed path (o), a drawn digit (w): the ViT reads each."""
    from nnsim.tui.screens.draw_digit import DrawDigitScreen
    from nnsim.tui.widgets.vit_view import VitView
    from tests.tui.strokes import DIGITS

    own = tmp_path / "mine.png"
    Image.open(SAMPLES / "digits" / "4.png").save(own)
    app = make_app(lesson_with(tmp_path, 'widget = "vit_view"\nview = "occlusion"'))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        view = app.screen.query_one(VitView)
        assert "ViT on digits/7.png: says 7" in shown(view.query_one("#vit-title"))
        view.focus()
        await pilot.press("d")
        await settle(pilot)
        assert view.source == "digits/8.png" and "says 8" in shown(view.query_one("#vit-title"))
        assert "Here they agree" in shown(view.query_one("#vit-detail"))  # the 8: the lesson's one agreement
        look = vit.strongest(view.figures.cls_attention(0))  # the attention compared is block 1's, heads averaged
        said = f"attends most to patch {look[0] * 4 + look[1]} (row {look[0]}, col {look[1]}) in block 1"
        assert said in " ".join(shown(view.query_one("#vit-detail")).split())
        await pilot.press("d")
        await settle(pilot)
        assert view.source == "digits/9.png" and "Here they disagree" in shown(view.query_one("#vit-detail"))
        expected = vit.vit_figures(vit.vit_input(SAMPLES / "digits" / "9.png"))
        np.testing.assert_allclose(view.figures.probabilities, expected.probabilities)
        await pilot.press("o")
        path = view.query_one("#vit-path", Input)
        assert path.has_focus
        path.value = str(tmp_path / "missing.png")
        await pilot.press("enter")
        await settle(pilot)
        assert "no such image" in shown(view.query_one("#vit-problem")) and view.source == "digits/9.png"
        path.value = str(own)
        await pilot.press("enter")
        await settle(pilot)
        assert view.source == str(own) and "says 4" in shown(view.query_one("#vit-title"))
        assert shown(view.query_one("#vit-problem")) == ""
        view.focus()
        await pilot.press("w")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DrawDigitScreen)
        canvas = screen.query_one("#draw-digit-canvas")
        for stroke in DIGITS[7]:
            canvas.canvas.stroke(stroke)
        drawn = canvas.canvas.pixels.copy()
        await pilot.press("enter")
        await settle(pilot)
        assert view.source == "your drawing" and "ViT on your drawing" in shown(view.query_one("#vit-title"))
        from nnsim.tui.live.draw import mnist_like

        np.testing.assert_allclose(view.figures.image, mnist_like(drawn).tensor[0])


async def test_the_vit_views_embedding_qkv_and_attention(tmp_path):
    from nnsim.tui.widgets.vit_view import VitView

    app = make_app(lesson_with(tmp_path, 'widget = "vit_view"'))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        view = app.screen.query_one(VitView)
        f = view.figures
        assert "4 × 4 = 16" in shown(view.query_one("#vit-picture"))
        view.focus()
        await pilot.press("v")
        detail = shown(view.query_one("#vit-detail"))
        assert "z_5 = x_5 E + b + p_5" in detail
        assert f"(pixel − {f.mean:.3f}) / {f.std:.3f}" in detail
        assert f"blank paper becomes −{(f.mean / f.std):.2f}" in detail
        assert re.search(r"x E\s+\+ b\s+\+ p\s+= z", detail)
        xe = f.patches[5] @ f.projection  # row [1]: x E, E's bias, p and z, which is the engine's own token
        row = [number(v[1]) for v in (xe, f.projection_bias, f.positions[6], f.tokens[6])]
        assert re.search(r"\[1\]\s+" + r"\s+".join(map(re.escape, row)), detail)
        await pilot.press("v")
        assert view.state.view == "qkv"
        detail, picture = shown(view.query_one("#vit-detail")), shown(view.query_one("#vit-picture"))
        heads, d = f.projections.heads, f.projections.head_size
        assert f"{heads} heads of d = {d}" in detail and f"q ({heads * d} = {heads}×{d})" in picture
        assert "The forward pass's own q: yes" in detail
        q0 = f.queries[0, 0]  # head 0 of the CLS token, as the forward pass made it
        assert f"q = [{number(q0[0])}, {number(q0[1])}, {number(q0[2])}" in detail
        assert "×" in picture and "W_O" in picture
        # the lesson: "h picks another head"; from the default (−1, shown as head 0) the first h shows head 1
        for head in (1, 2, 3, 0):
            await pilot.press("h")
            assert view.state == view.state.__class__("qkv", 7, head, 5)
            detail = shown(view.query_one("#vit-detail"))
            q = f.queries[head, 0]
            assert f"head {head}:" in detail and f"q = [{number(q[0])}, {number(q[1])}, {number(q[2])}" in detail
        await pilot.press("v")
        detail = shown(view.query_one("#vit-detail"))
        assert "kept: yes" in detail and f"d = {d}" in detail
        picture = shown(view.query_one("#vit-picture"))
        assert "most attended: patches" in picture
        before = view.figures.probabilities.copy()
        await pilot.press("g")  # 7 → 14: another size drawn; the ViT itself keeps its own
        assert view.state.view == "patches" and "14×14 patches: 2 × 2 = 4" in shown(view.query_one("#vit-picture"))
        assert "the other sizes are only drawn" in shown(view.query_one("#vit-detail"))
        np.testing.assert_array_equal(view.figures.probabilities, before)


async def test_conv_stepper_on_a_photo_channel_and_the_learners_own_file(tmp_path):
    from nnsim.data.images import load_image
    from nnsim.tui.widgets.conv_stepper import ConvStepper

    app = make_app(lesson_with(tmp_path, 'widget = "conv_stepper"\nimage = "photos/coffee.jpg"\nchannel = 0'))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        conv = app.screen.query_one(ConvStepper)
        assert "R channel of photos/coffee.jpg" in shown(conv.query_one("#conv-title"))
        red = load_image(SAMPLES / "photos" / "coffee.jpg", mode="RGB", size=(28, 28)).tensor[0]
        np.testing.assert_allclose(conv.image, red)
        path_input = conv.query_one("#conv-path", Input)
        path_input.value = str(tmp_path / "missing.png")
        await pilot.click(path_input)
        await pilot.press("enter")
        assert "no such image" in shown(conv.query_one("#conv-problem"))
        path_input.value = str(SAMPLES / "digits" / "4.png")
        await pilot.press("enter")
        await settle(pilot)
        assert "digits/4.png" in shown(conv.query_one("#conv-title")) and conv.state.done == 1
