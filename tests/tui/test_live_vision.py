"""Lesson 6's figures (nnsim/tui/live/vision.py and vit.py), checked without the app: every number the
convolution stepper, the CNN-against-ViT view and the ViT view show is the engine's."""

from pathlib import Path

import numpy as np
import pytest

from nnsim.engine.backends import get_backend
from nnsim.tui.live import vision, vit

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"
LESSON = Path(__file__).resolve().parents[2] / "lessons" / "06-cnn-and-vit.md"
DIGITS = [SAMPLES / "digits" / f"{d}.png" for d in range(10)]


def test_the_conv_stepper_sums_are_the_reference_convolution():
    image = np.random.default_rng(3).random((9, 8))
    kernel = vision.KERNELS["sharpen"]
    for stride, padding in [(1, 0), (2, 1), (3, 2)]:
        conv = vision.convolve(image, kernel, stride, padding)
        expected = get_backend("reference").conv2d_forward(
            image[None, None], np.asarray(kernel)[None, None], np.zeros(1), stride, padding
        )[0, 0]
        np.testing.assert_array_equal(conv.output, expected)
        for row in range(conv.output.shape[0]):
            for col in range(conv.output.shape[1]):  # each spelled-out sum is that output number
                assert conv.terms(row, col)[1] == pytest.approx(expected[row, col], abs=1e-12)
    with pytest.raises(Exception, match="does not fit"):
        vision.convolve(image[:2, :2], kernel)


def test_a_colour_convolution_sums_its_channels_and_adds_the_bias():
    """Y[cₒ,h,w] = b[cₒ] + Σ_cᵢ Σ_m Σ_n K[cₒ,cᵢ,m,n]·X[cᵢ,…], as the engine's conv2d_forward computes it."""
    photo = np.random.default_rng(5).random((3, 10, 9))
    kernel = np.random.default_rng(6).normal(size=(3, 3, 3))
    conv = vision.convolve(photo, kernel, stride=2, padding=1, bias=-0.25)
    expected = get_backend("reference").conv2d_forward(photo[None], kernel[None], np.array([-0.25]), 2, 1)[0, 0]
    np.testing.assert_allclose(conv.output, expected, rtol=1e-12)
    for row, col in [(0, 0), (2, 3), (4, 4)]:
        sums = conv.channel_sums(row, col)
        assert sums.shape == (3,)
        assert sums.sum() - 0.25 == pytest.approx(expected[row, col], abs=1e-12)
        assert conv.terms(row, col)[1] == pytest.approx(expected[row, col], abs=1e-12)
    # the lesson's colour kernel finds what the same kernel finds on the gray version of the photo
    from nnsim.data.images import load_image

    coffee = SAMPLES / "photos" / "coffee.jpg"
    rgb = load_image(coffee, mode="RGB", size=(28, 28)).tensor.astype(np.float64)
    gray = rgb.transpose(1, 2, 0) @ np.asarray(vision.GRAY_WEIGHTS)
    edge = vision.KERNELS["edge"]
    colour = vision.convolve(rgb, vision.colour_kernel(edge)).output
    np.testing.assert_allclose(colour, vision.convolve(gray, edge).output, atol=1e-9)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "said"),
    [
        (28, 3, 2, 0, "never reaches the last 1 row(s) and column(s) of the image"),
        (28, 3, 2, 1, "last 1 row(s) and column(s), all padding zeros: no pixel is lost"),
        (28, 3, 4, 1, "last 3 row(s) and column(s): 1 of padding zeros and 2 of the image"),
        (28, 3, 1, 0, None),
    ],
)
def test_the_size_formula_says_which_rows_the_kernel_never_reaches(size, kernel, stride, padding, said):
    n, text = vision.output_size(size, kernel, stride, padding)
    padded = size + 2 * padding
    covered = np.zeros(padded, dtype=bool)
    for position in range(n):  # every place the kernel sits, counted out
        covered[position * stride : position * stride + kernel] = True
    last = np.flatnonzero(covered).max()
    missed = np.arange(last + 1, padded)  # after the last window
    between = int((~covered[: last + 1]).sum())  # between windows: only when the stride outruns the kernel
    assert between == max(stride - kernel, 0) * (n - 1)
    assert (f"skips {stride - kernel} row(s)" in text) == (between > 0)
    image_missed = int(((missed >= padding) & (missed < padding + size)).sum())
    if said is None:
        assert len(missed) == 0 and "never" not in text
    else:
        assert said in text
        assert f"last {len(missed)} row(s)" in text
        assert ("no pixel is lost" in text) == (image_missed == 0)
        assert image_missed == 0 or f"{image_missed} of the image" in text or "of the image" in said


def test_the_receptive_field_comes_from_the_cnns_own_layers():
    from nnsim.tui.live.classify import lesson_cnn

    model, _ = lesson_cnn()
    blocks = vision.cnn_blocks()
    layers = model.conv_layers()
    assert [(b.kernel, b.stride, b.padding, b.pool) for b in blocks] == [
        (layer.kernel_size, layer.stride, layer.padding, layer.pool) for layer in layers
    ]
    image, maps = vision.feature_maps(SAMPLES / "digits" / "7.png")
    assert vision.block_grids(blocks, 28) == [m.shape[-1] for m in maps]
    assert vision.learned_kernels().shape == (layers[0].out_channels, 3, 3)


@pytest.mark.parametrize("depth", [1, 2])
def test_the_receptive_field_is_what_the_cnn_output_depends_on(depth):
    """Pixels outside the field never change that output; each edge of the field can."""
    from nnsim.tui.live import SHIPPED_MODELS
    from nnsim.tui.live.classify import lesson_cnn

    model, _ = lesson_cnn()
    blocks = vision.cnn_blocks()[:depth]
    row, col = 3, 2
    top, left, size = vision.receptive_field(blocks, row, col)
    inside = np.zeros((28, 28), dtype=bool)
    inside[max(top, 0) : top + size, max(left, 0) : left + size] = True

    def output(image):
        with SHIPPED_MODELS:
            model.forward(model.be.asarray(image[None, None].astype(np.float32)))
            return np.array(model.conv_layers()[depth - 1].feature_map)[0, :, row, col]

    rng = np.random.default_rng(0)
    image = rng.random((28, 28))
    base = output(image)
    outside = image.copy()
    outside[~inside] = rng.random(int((~inside).sum()))
    np.testing.assert_array_equal(output(outside), base)
    edges = {
        "top": (max(top, 0), slice(max(left, 0), left + size)),
        "bottom": (top + size - 1, slice(max(left, 0), left + size)),
        "left": (slice(max(top, 0), top + size), max(left, 0)),
        "right": (slice(max(top, 0), top + size), left + size - 1),
    }
    for name, where in edges.items():
        changed = False
        for _ in range(8):  # random changes along that edge: at least one must reach the output
            moved = image.copy()
            moved[where] = rng.random(moved[where].shape) * 4 - 2
            changed |= not np.array_equal(output(moved), base)
        assert changed, name


def test_stacking_blocks_widens_the_field_around_the_same_spot():
    blocks = vision.cnn_blocks()
    grids = vision.block_grids(blocks, 28)
    for spot_row in range(3, 28, 7):  # the centre of every ViT patch
        for spot_col in range(3, 28, 7):
            fields = []
            for depth in range(1, len(blocks) + 1):
                row, col = vision.output_nearest(blocks[:depth], grids[depth - 1], (spot_row, spot_col))
                top, left, size = vision.receptive_field(blocks[:depth], row, col)
                assert top <= spot_row < top + size and left <= spot_col < left + size
                fields.append((top, left, size))
            for (t1, l1, s1), (t2, l2, s2) in zip(fields, fields[1:], strict=False):
                assert s2 > s1
                assert t2 <= t1 and t1 + s1 <= t2 + s2 and l2 <= l1 and l1 + s1 <= l2 + s2


def test_the_vit_views_figures_are_the_shipped_vits_own():
    from nnsim.engine.losses import softmax

    tensor = vit.vit_input(SAMPLES / "digits" / "7.png")
    figures = vit.vit_figures(tensor)
    assert figures.class_names[figures.predicted] == "7"
    model, _ = vit.lesson_vit()
    logits = np.asarray(model.forward(model.be.asarray(tensor[None])), dtype=np.float64)
    np.testing.assert_allclose(figures.probabilities, softmax(logits)[0], rtol=1e-6)
    blocks = [layer for layer in model.layers if type(layer).__name__ == "TransformerBlock"]
    for mine, theirs in zip(figures.attention, [b.attn.attention for b in blocks], strict=True):
        np.testing.assert_array_equal(mine, np.asarray(theirs)[0])
    for head in range(figures.projections.heads):  # the spelled-out softmax(q·k/√d) is the forward pass's row
        np.testing.assert_allclose(figures.cls_query(head)[1], figures.attention[0][head, 0], rtol=1e-5)
    first = blocks[0].attn
    mixed, _ = model.be.attention_forward(first.q, first.k, first.v)  # softmax(QKᵀ/√d)V, by the backend
    for head in range(figures.projections.heads):
        np.testing.assert_allclose(figures.cls_output(head), np.asarray(mixed)[0, head, 0], rtol=1e-5, atol=1e-6)
    # z = x E + b + p, with Normalize first: the figures the embedding view spells out
    normalize = model.layers[0]
    assert (figures.mean, figures.std) == (float(normalize.mean[0]), float(normalize.std[0]))
    np.testing.assert_allclose(figures.patches[0][:7], (tensor[0, 0, :7] - figures.mean) / figures.std, rtol=1e-5)
    embedding = figures.patches[5] @ figures.projection + figures.projection_bias
    np.testing.assert_allclose(embedding + figures.positions[6], figures.tokens[6], rtol=1e-4, atol=1e-5)
    assert np.abs(figures.projection_bias).max() > 1e-3  # the bias the view now shows is really there


def test_queries_keys_and_values_are_learned_projections_of_the_tokens():
    """q, k, v = LayerNorm(z) W + b, cut into heads of d = D / H; the heads' outputs, concatenated,
    go through W_O: each figure against the engine's own forward pass."""
    tensor = vit.vit_input(SAMPLES / "digits" / "3.png")
    figures = vit.vit_figures(tensor)
    pr = figures.projections
    model, _ = vit.lesson_vit()
    config = model.config.sizes
    assert (pr.heads, pr.head_size) == (config["heads"], config["dim"] // config["heads"])
    assert figures.queries.shape[-1] == pr.head_size
    first = [layer for layer in model.layers if type(layer).__name__ == "TransformerBlock"][0]
    with_ln, _, _ = model.be.layernorm_forward(
        figures.tokens, first.norm1.weight.value, first.norm1.bias.value, first.norm1.eps
    )
    np.testing.assert_allclose(pr.normed, with_ln, rtol=1e-5, atol=1e-6)
    for token in (0, 6, 16):
        q, k, v = pr.qkv(token)
        for mine, theirs in ((q, figures.queries), (k, figures.keys), (v, figures.values)):
            np.testing.assert_allclose(mine.reshape(pr.heads, -1), theirs[:, token], rtol=1e-4, atol=1e-5)
    model.forward(model.be.asarray(tensor[None]))
    attention_out = np.asarray(first.attn.forward(first.norm1.forward(model.be.asarray(figures.tokens[None]))))[0]
    for token in (0, 6):
        np.testing.assert_allclose(pr.output(token), attention_out[token], rtol=1e-4, atol=1e-5)
    merged = np.concatenate([figures.cls_output(h) for h in range(pr.heads)])
    np.testing.assert_allclose(pr.merged[0], merged, rtol=1e-4, atol=1e-5)


def test_attention_and_occlusion_agree_only_on_the_digits_the_lesson_says():
    """Lesson 6 says: on the ten sample digits they agree only on the 8 (the attention compared is
    the first block's, its heads averaged)."""
    said = " ".join(LESSON.read_text(encoding="utf-8").split())
    assert "they agree only on the 8" in said
    assert "attends to most in the first block (its heads averaged)" in said
    agree = []
    for digit, path in enumerate(DIGITS):
        tensor = vit.vit_input(path)
        figures, drop = vit.vit_figures(tensor), vit.occlusion(tensor)
        assert figures.predicted == digit  # the ViT reads each one right
        if vit.strongest(figures.cls_attention(0)) == vit.strongest(drop):
            agree.append(digit)
    assert agree == [8]


def test_the_cls_token_attends_most_to_the_strokes_at_the_lessons_default():
    """The attention step's predict-first answer, on its default image."""
    from nnsim.lessons.format import parse_lesson

    blocks = [b for step in parse_lesson(LESSON).steps for b in step.blocks]
    block = next(b for b in blocks if getattr(b.params, "view", "") == "attention")
    assert block.predict.choices[block.predict.answer] == "patches on the digit's strokes"
    figures = vit.vit_figures(vit.vit_input(SAMPLES / block.params.image))
    attention, ink = figures.cls_attention(0).ravel(), figures.ink().ravel()
    top3 = np.argsort(-attention)[:3]
    assert (ink[top3] > 0.25).all() and ink[top3].mean() > 3 * ink.mean()
    corners = [0, 3, 12, 15]
    assert attention[corners].max() < attention[top3].min()


def test_a_plain_vit_knows_where_a_patch_was_only_through_its_position_vectors():
    """Lesson 6: "a plain ViT knows where each patch was only through position vectors added to the
    patches". With them set to zero, shuffling the patches leaves the answer exactly as it was; with
    them, it does not."""
    from nnsim.engine.checkpoint import load_checkpoint
    from nnsim.resources import builtin_data_path

    assert "only through position vectors added to the patches" in " ".join(LESSON.read_text(encoding="utf-8").split())
    model, _ = load_checkpoint(builtin_data_path(vit.VIT_CHECKPOINT), backend=get_backend("reference"))
    embed = model.layers[1]
    p, (rows, cols) = embed.patch, embed.grid
    image = vit.vit_input(DIGITS[7])[0]
    blocks = [image[r * p : (r + 1) * p, c * p : (c + 1) * p] for r in range(rows) for c in range(cols)]
    order = np.random.default_rng(0).permutation(len(blocks))
    shuffled = np.block([[blocks[order[r * cols + c]] for c in range(cols)] for r in range(rows)])

    def logits(picture):
        return np.asarray(model.forward(model.be.asarray(picture[None, None].astype(np.float32))), dtype=np.float64)

    assert np.abs(logits(shuffled) - logits(image)).max() > 0.1  # with positions, the order matters
    embed.positions.value[1:] = 0.0  # the patches' positions gone (the CLS token's kept: it is not a patch)
    np.testing.assert_allclose(logits(shuffled), logits(image), rtol=1e-4, atol=1e-4)


def test_the_quizs_output_size_is_the_engines():
    """The check-yourself question: a 28 × 28 image, a 3 × 3 kernel, stride 1, no padding. The marked
    answer and the explanation's figure are what the reference backend's convolution puts out."""
    from nnsim.lessons.format import parse_lesson

    blocks = [b for step in parse_lesson(LESSON).steps for b in step.blocks]
    quiz = next(b.params for b in blocks if "How large is the output?" in getattr(b.params, "question", ""))
    assert "A 28 × 28 image, a 3 × 3 kernel, stride 1, no padding" in quiz.question
    image, kernel = np.zeros((1, 1, 28, 28)), np.zeros((1, 1, 3, 3))
    rows, cols = get_backend("reference").conv2d_forward(image, kernel, np.zeros(1), 1, 0).shape[-2:]
    assert quiz.choices[quiz.answer] == f"{rows} × {cols}"
    assert f"⌊(28 + 2·0 − 3) / 1⌋ + 1 = {rows}" in quiz.explanation
    assert f"can sit at {rows} places" in quiz.explanation
