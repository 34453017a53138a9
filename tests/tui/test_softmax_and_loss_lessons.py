"""Lessons 7 and 8 say of their widgets only what the widgets show, at each step's defaults."""

import asyncio
import re

import numpy as np
import pytest

from nnsim.engine.losses import focal_loss, softmax
from nnsim.lessons.format import parse_lesson
from tests.tui.conftest import LESSONS, make_app, settle, shown

SOFTMAX = LESSONS / "07-softmax.md"
LOSSES = LESSONS / "08-loss-functions.md"


async def at_step(pilot, step: int) -> None:
    """Walk there with → alone, as a learner does."""
    await settle(pilot)
    for _ in range(step):
        await pilot.press("right")
        await settle(pilot)


def widget(app, name: str):
    from nnsim.tui.widgets.loss_explorer import LossExplorer
    from nnsim.tui.widgets.softmax import SoftmaxBars

    return app.screen.query_one({"softmax": SoftmaxBars, "loss": LossExplorer}[name])


def prose(lesson, step: int) -> str:
    """A step's text, its line breaks as spaces."""
    return " ".join(parse_lesson(lesson).steps[step].markdown.split())


def as_drawn(static) -> str:
    """A Static's text as printed at the width it has on screen (a cut-short cell ends in …)."""
    import io

    from rich.console import Console

    console = Console(file=io.StringIO(), width=static.content_size.width, color_system=None)
    console.print(static.content)
    return console.file.getvalue()


# ------------------------------------------------------------------------------------ lesson 7
async def test_lesson_7_a_difference_of_one_is_a_ratio_of_e_and_temperature_divides_it():
    """07 step 3: pᵢ / pⱼ = e^(zᵢ − zⱼ), e^((zᵢ − zⱼ)/T) with a temperature, shown on the last line."""
    app = make_app(SOFTMAX)
    async with app.run_test(size=(120, 40)) as pilot:
        bars = widget(app, "softmax")
        p = bars.probabilities
        assert p[0] / p[1] == pytest.approx(np.e)  # cat 2.0, dog 1.0 at T = 1 (step 1)
        assert "p(cat) / p(dog) = 2.718 = e^(2.00 − 1.00) = 2.718" in shown(bars.query_one("#softmax-sum"))
        assert "(step 1's last line: cat 2.0 against dog 1.0 gives 2.718)" in prose(SOFTMAX, 2)
        await at_step(pilot, 2)
        bars = widget(app, "softmax")
        assert bars.state.temperature == 0.5  # the step opens at T = 0.5
        p = bars.probabilities
        assert p[0] / p[1] == pytest.approx(np.exp(2.0))
        summary = shown(bars.query_one("#softmax-sum"))
        assert summary.rstrip().splitlines()[-1] == "p(cat) / p(dog) = 7.389 = e^((2.00 − 1.00) / 0.5) = 7.389"
        sharp = max(p)
        bars.focus()
        await pilot.press("right_square_bracket", "right_square_bracket")  # T = 0.5 → 2
        await settle(pilot)
        assert bars.state.temperature == 2.0 and max(bars.probabilities) < sharp  # T > 1 flattens
        await pilot.press(*["left_square_bracket"] * 4)  # T = 0.125, the smallest: e^(z/T) up to e^16
        await settle(pilot)
        assert bars.state.temperature == 0.125
        assert "…" not in as_drawn(bars.query_one("#softmax-table"))  # no number cut short


async def test_lesson_7_equal_scores_give_equal_shares():
    """07 step 2's prediction question: three scores of 1.0 give 1/3 each."""
    app = make_app(SOFTMAX)
    async with app.run_test(size=(120, 40)) as pilot:
        await at_step(pilot, 1)
        await pilot.press("2")  # the answer: 1/3 each
        await settle(pilot)
        np.testing.assert_allclose(widget(app, "softmax").probabilities, [1 / 3] * 3)


async def test_lesson_7_a_and_d_say_why_when_they_can_do_nothing():
    """07 step 2: `d` down to two classes, then once more; `a` up to eight, then once more."""
    app = make_app(SOFTMAX)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        bars = widget(app, "softmax")
        bars.focus()
        await pilot.press("d", "d")
        await settle(pilot)
        assert len(bars.state.logits) == 2 and "least 2 classes" in shown(bars.query_one("#softmax-sum"))
        await pilot.press(*["a"] * 7)
        await settle(pilot)
        assert len(bars.state.logits) == 8 and "8 classes is the most" in shown(bars.query_one("#softmax-sum"))
        await pilot.press("plus")  # any change clears the notice
        await settle(pilot)
        assert "8 classes" not in shown(bars.query_one("#softmax-sum"))


def test_lesson_7_the_digit_network_is_sure_of_a_wrong_answer():
    """07 step 3: lesson 1's network gives a digit "more than half" for a cat, "nearly 90 %" for a circle."""
    from nnsim.resources import shipped_path
    from nnsim.tui.live.classify import classify

    text = prose(SOFTMAX, 2)
    assert "more than half" in text and "nearly 90 %" in text
    shares = {}
    for image in ("photos/cat.jpg", "shapes/circle.png"):
        best, shares[image] = classify(shipped_path("sample_images") / image, 1).top[0]
        assert best in "0123456789", (image, best)
    assert 0.5 < shares["photos/cat.jpg"] and 0.85 <= shares["shapes/circle.png"] < 0.92, shares


async def test_lesson_7_the_table_names_T_only_once_the_learner_changes_it():
    """07 step 1 says the columns are "e to the power of the score": T is not yet taught there."""
    app = make_app(SOFTMAX)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        bars = widget(app, "softmax")
        header = shown(bars.query_one("#softmax-table")).splitlines()[0]
        assert header.split()[:3] == ["class", "z", "e^z"] and "T" not in header
        assert shown(bars.query_one("#softmax-sum")).startswith("Σ e^z = 11.2125")
        bars.focus()
        await pilot.press("right_square_bracket")
        await settle(pilot)
        header = shown(bars.query_one("#softmax-table")).splitlines()[0]
        assert header.split()[:4] == ["class", "z", "z/T", "e^(z/T)"]


async def test_lesson_7_equal_scores_are_a_tie_until_one_moves():
    """07 step 2: "equal scores get equal probabilities, and the widget calls that a tie"."""
    app = make_app(SOFTMAX)
    async with app.run_test(size=(120, 40)) as pilot:
        await at_step(pilot, 1)
        await pilot.press("2")
        await settle(pilot)
        bars = widget(app, "softmax")
        summary = shown(bars.query_one("#softmax-sum"))
        assert "predicted: a tie, 33.3% each: cat, dog, car (argmax takes cat)" in summary
        bars.focus()
        await pilot.press("down", "plus")  # dog 1.1: dog wins
        await settle(pilot)
        summary = shown(bars.query_one("#softmax-sum"))
        assert "tie" not in summary and "predicted: dog (the largest p, " in summary
        await pilot.press("minus")  # back to 1.0: a tie again
        await settle(pilot)
        assert "predicted: a tie" in shown(bars.query_one("#softmax-sum"))


async def test_lesson_7_temperature_changes_how_sure_never_the_winner():
    """07 step 3: T = 0.5 makes a difference of 1 a ratio of e² ≈ 7.39; [ and ] keep the winner."""
    app = make_app(SOFTMAX)
    async with app.run_test(size=(120, 40)) as pilot:
        await at_step(pilot, 2)
        bars = widget(app, "softmax")
        p = bars.probabilities
        assert f"a difference of 1 gives e² ≈ {p[0] / p[1]:.2f}" in prose(SOFTMAX, 2)
        bars.focus()
        seen = set()
        for key in ["left_square_bracket"] * 2 + ["right_square_bracket"] * 6:  # T from 0.125 to 8
            await pilot.press(key)
            await settle(pilot)
            seen.add(bars.state.temperature)
            assert int(np.argmax(bars.probabilities)) == 0  # cat, the highest score
            assert "predicted: cat (the largest p" in shown(bars.query_one("#softmax-sum"))
        assert seen == {0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0}


def test_lesson_7_quiz_answer_is_the_engines():
    """07's quiz: adding 10 to every score leaves cat's 0.66 as it was."""
    quiz = parse_lesson(SOFTMAX).steps[-1].blocks[0].params
    before = softmax(np.array([[2.0, 1.0, 0.1]]))[0][0]
    after = softmax(np.array([[12.0, 11.0, 10.1]]))[0][0]
    assert f"{before:.2f}" == "0.66" and "12.0, dog 11.0, car 10.1" in quiz.question
    assert after == pytest.approx(before) and quiz.choices[quiz.answer].startswith(f"{after:.2f}, the same")


# ------------------------------------------------------------------------------------ lesson 8
async def test_lesson_8_focal_loss_at_gamma_zero_is_said_to_be_cross_entropy():
    """08 step 1 shows γ = 0: the widget must not say the loss is scaled down there."""
    app = make_app(LOSSES)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        loss = widget(app, "loss")
        text = shown(loss.query_one("#loss-terms"))
        assert loss.state.gamma == 0 and "(1 − p)^0 = 1, so it is α × cross-entropy" in text
        assert "scaled down" not in text and loss.terms.focal == pytest.approx(loss.terms.cross_entropy)


async def test_lesson_8_the_curves_dot_is_the_focal_loss_shown_whatever_alpha_and_gamma():
    """08 step 2: `a` and `g` move the dot with the loss the widget prints (it ignored α before)."""
    app = make_app(LOSSES)
    async with app.run_test(size=(120, 40)) as pilot:
        await at_step(pilot, 1)
        await pilot.press("3")  # the predict question's answer: about 400 times smaller
        await settle(pilot)
        loss = widget(app, "loss")
        assert loss.terms.cross_entropy / loss.terms.focal == pytest.approx(400)
        loss.focus()
        await pilot.press("e")  # the wrong answer, dog 0.10, still costs most of what CE says
        await settle(pilot)
        assert loss.terms.p_true == 0.10 and loss.terms.focal > loss.terms.cross_entropy / 2
        for key in ("a", "g", "a", "g"):  # α 2; γ 5; α 0.25; γ 0
            await pilot.press(key)
            await settle(pilot)
            assert loss.marker == (loss.terms.p_true, pytest.approx(loss.terms.focal))
        assert (loss.terms.alpha, loss.state.gamma) == (0.25, 0.0)
        await pilot.press("g")  # γ = 0.5, a curve of its own
        await settle(pilot)
        assert loss.marker[1] == pytest.approx(loss.terms.focal)


async def test_lesson_8_a_larger_gamma_scales_a_sure_right_answer_down_faster():
    """08 step 2: the true class's (1 − ŷ)^γ shrinks "the faster the larger γ is"; at γ = 2, 1/400."""
    app = make_app(LOSSES)
    async with app.run_test(size=(120, 40)) as pilot:
        await at_step(pilot, 1)
        await pilot.press("3")
        await settle(pilot)
        loss = widget(app, "loss")
        loss.focus()
        factors = {}
        for _ in range(5):  # γ 2 → 5 → 0 → 0.5 → 1 → 2
            await pilot.press("g")
            await settle(pilot)
            factors[loss.state.gamma] = loss.terms.modulator
            assert f"× {loss.terms.modulator:.6f} ×" in shown(loss.query_one("#loss-terms"))
        assert sorted(factors) == [0.0, 0.5, 1.0, 2.0, 5.0] and factors[0.0] == 1.0
        assert [factors[g] for g in sorted(factors)] == sorted(factors.values(), reverse=True)
        assert factors[2.0] == pytest.approx(1 / 400)


async def test_lesson_8_focal_loss_is_said_to_scale_cross_entropy_down_only_while_alpha_is_1():
    """08 step 2: with α = 2 (key a) and the wrong answer (key e), focal loss is more than CE."""
    app = make_app(LOSSES)
    async with app.run_test(size=(120, 40)) as pilot:
        await at_step(pilot, 1)
        await pilot.press("3")
        await settle(pilot)
        loss = widget(app, "loss")
        assert "CE scaled down the more" in shown(loss.query_one("#loss-terms"))  # α = 1, γ = 2
        loss.focus()
        await pilot.press("e", "a")  # dog 0.10; α = 2
        await settle(pilot)
        text = shown(loss.query_one("#loss-terms"))
        assert loss.terms.alpha == 2.0 and loss.terms.focal > loss.terms.cross_entropy
        assert "scaled down" not in text and "Focal loss (α = 2, γ = 2): α × CE × (1 − p)^γ" in text


async def test_lesson_8_lowering_the_true_score_grows_ces_pull_and_fades_squared_errors():
    """08 step 4: pick dog (↓), press −: the "now" column follows, CE's pull growing, SE's fading."""
    app = make_app(LOSSES)
    async with app.run_test(size=(120, 40)) as pilot:
        await at_step(pilot, 3)
        bars, loss = widget(app, "softmax"), widget(app, "loss")
        bars.focus()
        await pilot.press("down")
        await settle(pilot)
        pulls = [(loss.terms.pull_ce, loss.terms.pull_se)]
        for _ in range(10):  # dog 1.0 → 0.0
            await pilot.press("minus")
            await settle(pilot)
            pulls.append((loss.terms.pull_ce, loss.terms.pull_se))
            now = next(line for line in shown(loss.query_one("#loss-terms")).splitlines() if "squared error  " in line)
            assert now.split()[2] == f"{loss.terms.pull_se:.4f}".replace("-", "−")
        assert bars.state.logits[1] == pytest.approx(0.0)
        ce, se = ([abs(pull[k]) for pull in pulls] for k in (0, 1))
        assert ce == sorted(ce) and se == sorted(se, reverse=True) and se[-1] < se[0] / 1.5


async def test_lesson_8_the_loss_follows_the_softmax_when_it_adds_or_removes_a_class():
    """08 step 4: `a` and `d` in the softmax used to cut the loss widget off without a word."""
    app = make_app(LOSSES)
    async with app.run_test(size=(120, 40)) as pilot:
        await at_step(pilot, 3)
        bars, loss = widget(app, "softmax"), widget(app, "loss")
        bars.focus()
        await pilot.press("a")  # a fourth class
        await settle(pilot)
        assert loss.state.classes == bars.state.classes == ("cat", "dog", "car", "bird")
        np.testing.assert_allclose(loss.state.probabilities, bars.probabilities)
        assert loss.terms.cross_entropy == pytest.approx(-np.log(bars.probabilities[1]))  # still dog
        assert "bird added" in shown(loss.query_one("#loss-note"))
        await pilot.press("down", "d")  # remove dog, the true class
        await settle(pilot)
        assert loss.state.classes == ("cat", "car", "bird")
        assert "dog was removed" in shown(loss.query_one("#loss-note")) and loss.state.true_class == 0
        assert loss.terms.cross_entropy == pytest.approx(-np.log(bars.probabilities[0]))
        loss.focus()
        await pilot.press("e")  # its own example cannot replace the softmax's prediction here
        await settle(pilot)
        np.testing.assert_allclose(loss.state.probabilities, bars.probabilities)
        assert "comes from the softmax" in shown(loss.query_one("#loss-note"))


async def test_lesson_8_squared_errors_pull_fades_when_confidently_wrong():
    """08 step 4: the widget's gradients on the true class's logit, now and as p(true) falls."""
    app = make_app(LOSSES)
    async with app.run_test(size=(120, 40)) as pilot:
        await at_step(pilot, 3)
        loss = widget(app, "loss")
        t = loss.terms
        assert t.pull_ce == pytest.approx(t.p_true - 1)  # p − y on the true class
        onehot = [0, 1, 0]  # dog
        assert t.squared_error == pytest.approx(
            sum((p - y) ** 2 for p, y in zip(loss.state.probabilities, onehot, strict=True))
        )
        p, y = np.array(loss.state.probabilities), np.array(onehot)
        g = 2 * (p - y)  # squared error's gradient on p, then back through softmax to dog's logit
        assert t.pull_se == pytest.approx(p[1] * (g[1] - g @ p)) and abs(t.pull_se) < abs(t.pull_ce)
        rows = {}
        for line in shown(loss.query_one("#loss-terms")).splitlines():
            for label in ("cross-entropy", "squared error"):
                if line.strip().startswith(label + " "):
                    rows[label] = [float(v.replace("−", "-")) for v in re.findall(r"−?\d+\.\d+", line)]
        ce, se = rows["cross-entropy"], rows["squared error"]
        assert ce[0] == pytest.approx(t.pull_ce, abs=5e-5) and se[0] == pytest.approx(t.pull_se, abs=5e-5)
        assert [abs(v) for v in ce[1:]] == sorted(abs(v) for v in ce[1:]) and abs(ce[-1]) > 0.95  # stays near 1
        assert [abs(v) for v in se[1:]] == sorted((abs(v) for v in se[1:]), reverse=True) and abs(se[-1]) < 0.05


def test_lesson_8_quiz_figures_are_the_engines():
    """08's quiz explanation: (1 − p)^γ at three p, which is focal loss over cross-entropy."""
    quiz = parse_lesson(LOSSES).steps[-1].blocks[0].params
    figures = re.findall(r"([\d.]+) at p = ([\d.]+)", quiz.explanation)
    assert len(figures) == 3
    for factor, p in figures:
        logits = np.log([[float(p), 1 - float(p)]])
        ratio = focal_loss(logits, np.array([0]), gamma=2.0)[0] / focal_loss(logits, np.array([0]), gamma=0.0)[0]
        assert ratio == pytest.approx(float(factor))


def test_lesson_8_the_three_runs_start_from_the_same_weights_and_order():
    """08 step 3: "All three start from the same weights and see the images in the same order"."""
    from nnsim.data.datasets import load_dataset
    from nnsim.engine.trainer import Trainer
    from nnsim.lessons.params import ImbalanceParams
    from nnsim.tui.live.losses import imbalance_runs

    p = ImbalanceParams()
    data = load_dataset("shapes-imbalanced", seed=p.seed)
    runs = imbalance_runs(data, p.epochs, p.hidden, p.gamma, p.seed)
    assert [(c.loss, np.ndim(c.alpha), c.gamma) for _, c in runs] == [
        ("ce", 0, 2.0),
        ("focal", 1, 0.0),
        ("focal", 1, 2.0),
    ]
    assert runs[1][1].alpha == runs[2][1].alpha
    first, *others = (Trainer(config, data) for _, config in runs)
    for other in others:
        for (name, a), (_, b) in zip(first.model.named_parameters(), other.model.named_parameters(), strict=True):
            np.testing.assert_array_equal(np.asarray(a.value), np.asarray(b.value), err_msg=name)
        assert other._order_rng.bit_generator.state == first._order_rng.bit_generator.state


@pytest.mark.slow
async def test_lesson_8_the_three_losses_do_what_the_text_says():
    """08 step 3, trained in the widget at its defaults: CE misses the rare classes; α wins them back
    and gives up recall on the common ones; γ = 2 on top of α moves the rare classes far less."""
    from nnsim.tui.widgets.imbalance import ImbalanceDemo, groups

    app = make_app(LOSSES)
    async with app.run_test(size=(120, 40)) as pilot:
        await at_step(pilot, 2)  # settle waits for the training worker
        demo = app.screen.query_one(ImbalanceDemo)
        result = demo.result
        table = shown(demo.query_one("#imbalance-table"))
        status = shown(demo.query_one("#imbalance-status"))
    assert [run.loss for run in result.runs] == ["cross-entropy", "α-weighted CE", "focal (α, γ = 2)"]
    assert f"({result.test_counts[0]} each)" in status and len(set(result.test_counts)) == 1  # balanced
    for i, name in enumerate(result.class_names):  # the table shows each run's recall
        row = next(line for line in table.splitlines() if line.split()[:1] == [name])
        assert [f"{run.recall[i]:.0%}" for run in result.runs] == re.findall(r"\d+%", row)
    ce, weighted, focal = result.runs
    common, rare = groups(result.train_counts)
    assert [result.class_names[c] for c in common + rare] == ["circle", "square", "cross", "ring"]

    def mean(run, classes):
        return np.mean([run.recall[c] for c in classes])

    assert mean(ce, common) > mean(ce, rare) + 0.4 and max(ce.recall[c] for c in rare) < 0.3  # misses them
    assert mean(weighted, rare) > mean(ce, rare) + 0.3  # α wins back much of the rare classes' recall
    for run in (weighted, focal):  # ... and gives up some on the common ones
        assert all(run.recall[c] < ce.recall[c] for c in common)
    gain_from_alpha = mean(weighted, rare) - mean(ce, rare)
    assert abs(mean(focal, rare) - mean(weighted, rare)) < gain_from_alpha / 3  # γ moves them far less
    for c in rare:
        assert abs(focal.recall[c] - weighted.recall[c]) < weighted.recall[c] - ce.recall[c]
    rarest = int(np.argmin(result.train_counts))  # what the two-way demo promised still holds
    assert result.train_counts[rarest] < result.train_counts[0] / 10
    assert focal.recall[rarest] > ce.recall[rarest] + 0.1
    assert mean(focal, rare) > mean(ce, rare)
    assert weighted.mean_recall > ce.mean_recall


def test_softmax_of_the_lessons_example_is_the_engines():
    """The figures lesson 7 opens on are the engine's softmax of the workshop's logits."""
    block = parse_lesson(SOFTMAX).steps[0].blocks[0].params
    assert (block.logits, block.temperature) == ([2.0, 1.0, 0.1], 1.0)
    np.testing.assert_allclose(softmax(np.array([block.logits]))[0].round(2), [0.66, 0.24, 0.10])


async def test_a_prediction_sent_while_the_loss_widget_is_built_or_taken_down_is_not_a_crash():
    """A softmax publishes as it mounts; walking fast, that reached a loss widget still being built,
    or one being removed."""
    from textual.app import App
    from textual.containers import Vertical

    from nnsim.lessons.params import LossExplorerParams
    from nnsim.tui.widgets.loss_explorer import LossExplorer

    class Pane(App):
        def compose(self):
            yield Vertical(id="pane")

    app = Pane()
    async with app.run_test() as pilot:
        explorer = LossExplorer(LossExplorerParams())
        mounting = app.query_one("#pane").mount(explorer)
        explorer.prediction = (("cat", "dog", "car", "bird"), (0.1, 0.2, 0.3, 0.4))
        await mounting
        await pilot.pause()
        assert explorer.state.classes == ("cat", "dog", "car", "bird") and explorer.terms.p_true == 0.2
        assert "dog 0.20" in shown(explorer.query_one("#loss-prediction"))
        removing = explorer.remove()  # the learner moves on; the softmax's last word arrives meanwhile,
        while explorer.children:  # when the widget's parts are gone and the widget not yet
            await asyncio.sleep(0)
        explorer.prediction = (("cat", "dog"), (0.5, 0.5))
        await removing
