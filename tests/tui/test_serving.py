"""Served to browsers (`nnsim serve`): each tab keeps its own progress, and typed paths stay inside
the shared folder."""

import shutil
from pathlib import Path

import pytest
from textual.widgets import Input, OptionList

from nnsim.errors import NnsimError
from nnsim.serving import SERVED
from nnsim.tui.app import NnsimApp
from nnsim.tui.images import resolve_image
from nnsim.tui.widgets.classify import Classify
from tests.tui.conftest import LESSONS, settle, shown, until

SAMPLES = Path(__file__).resolve().parents[2] / "sample_images"


@pytest.fixture
def shared(tmp_path, monkeypatch):
    """A served app whose teacher shares tmp/shared; tmp/secret.png lies outside it."""
    folder = tmp_path / "shared"
    folder.mkdir()
    shutil.copy(SAMPLES / "digits" / "4.png", folder / "mine.png")
    shutil.copy(SAMPLES / "digits" / "4.png", tmp_path / "secret.png")
    (folder / "link.png").symlink_to(tmp_path / "secret.png")
    monkeypatch.setenv(SERVED, str(folder))
    return folder


def test_a_path_inside_the_shared_folder_or_shipped_opens(shared):
    assert resolve_image("mine.png") == shared / "mine.png"
    assert resolve_image(str(shared / "mine.png")) == shared / "mine.png"
    assert resolve_image("digits/7.png").name == "7.png"  # nnsim's own sample images


@pytest.mark.parametrize(
    "typed",
    ["ABSOLUTE/secret.png", "../secret.png", "link.png", "ABSOLUTE/no-such-file.png", "/etc/passwd"],
    ids=["absolute", "dot-dot", "symlink-out", "absent-outside", "system-file"],
)
def test_a_path_out_of_the_shared_folder_is_refused(shared, typed):
    typed = typed.replace("ABSOLUTE", str(shared.parent))
    with pytest.raises(NnsimError, match="not available here; a served nnsim opens files only from the folder"):
        resolve_image(typed)


def test_unserved_the_learner_opens_any_file(tmp_path):
    shutil.copy(SAMPLES / "digits" / "4.png", tmp_path / "anywhere.png")
    assert resolve_image(str(tmp_path / "anywhere.png")) == tmp_path / "anywhere.png"


async def test_the_app_says_so_when_a_typed_path_leads_out(shared, tmp_path):
    lesson = tmp_path / "01-test.md"
    lesson.write_text(
        '+++\ntitle = "T"\nsection = 1\nsummary = "s"\n+++\nProse.\n\n```nnsim\nwidget = "classify"\n```\n'
    )
    app = NnsimApp(lesson=lesson)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        classify = app.screen.query_one(Classify)
        path_input = classify.query_one(Input)
        path_input.value = str(tmp_path / "secret.png")
        await pilot.click(path_input)
        await pilot.press("enter")
        await settle(pilot)
        assert "not available here" in shown(classify.query_one("#classify-problem"))
        assert "secret" not in str(classify.names)


async def test_two_tabs_keep_their_own_progress(shared, own_progress):
    """Two served apps (two tabs) finish different lessons; neither sees the other's, none is written."""
    lessons = sorted(LESSONS.glob("0*.md"))
    tabs = [NnsimApp(), NnsimApp()]
    for index, app in enumerate(tabs):
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press(*["down"] * index, "enter")
            await settle(pilot)
            for _ in range(len(app.screen.lesson.steps) - 1):
                await pilot.press("right")
                await settle(pilot)
            await pilot.press("escape")
            await settle(pilot)
            labels = [str(o.prompt).strip() for o in app.screen.query_one(OptionList).options]
            assert labels[index].startswith("✓")
            assert not labels[1 - index].startswith("✓")  # the other tab's lesson is not ticked here
            assert app.progress.get(lessons[1 - index].name).seen == 0
    assert not own_progress.exists()


async def test_a_served_lab_refuses_a_data_path_outside_the_shared_folder(shared, tmp_path):
    from nnsim.tui.screens.lab import LabScreen

    app = NnsimApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("l")
        lab = app.screen
        assert isinstance(lab, LabScreen)
        lab.query_one("#lab-data", Input).value = str(tmp_path)
        lab.query_one("#lab-start").focus()
        await pilot.press("space")
        await until(pilot, lambda: "not available here" in shown(lab.query_one("#lab-status")), what="no refusal")
        assert lab.session is None


async def test_a_served_lab_keeps_its_runs_in_the_tabs_own_folder(shared, tmp_path):
    from nnsim.engine.config import TrainConfig
    from nnsim.tui.screens.lab import LabScreen
    from tests.tui.test_lab import until

    config = TrainConfig(model="mlp", data="shapes", epochs=1, backend="reference", sizes={"hidden": [8]})
    app = NnsimApp(lab=config)
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        assert isinstance(lab, LabScreen)
        own = Path(lab.query_one("#lab-checkpoint", Input).value)
        assert shared not in own.parents and own.parent.is_dir()
        await pilot.press("space")
        await until(pilot, lambda: lab.figures.reason == "finished")
        assert own.is_file()  # saved where the tab may write
        for elsewhere in (shared / "run.npz", tmp_path / "run.npz"):
            lab.query_one("#lab-checkpoint", Input).value = str(elsewhere)
            await pilot.press("s")
            assert "keeps runs only in this tab's own folder" in shown(lab.query_one("#lab-status"))
            await pilot.press("r")
            assert "keeps runs only in this tab's own folder" in shown(lab.query_one("#lab-status"))
            assert not elsewhere.exists()


# ------------------------------------------------------------------ one rule, asked by every place
def _asked(monkeypatch) -> list[Path]:
    """Every path the one policy (serving.allows) is asked about, while it still decides."""
    from nnsim import serving

    asked, rule = [], serving.allows
    monkeypatch.setattr(serving, "allows", lambda path, own_folder=None: asked.append(path) or rule(path, own_folder))
    return asked


@pytest.mark.parametrize("place", ["lesson image", "lab data", "lab save"])
def test_each_place_refuses_a_path_outside_through_the_one_rule(shared, tmp_path, monkeypatch, place):
    """A lesson's image (and the draw box, resolve_image), the lab's data box and its save refuse
    secret.png outside the shared folder, and did so by asking serving.allows about it."""
    from nnsim.tui.live.lab_files import data_allowed, save_as

    asked = _asked(monkeypatch)
    outside, own = tmp_path / "secret.png", tmp_path / "tab"
    own.mkdir()
    refuse = {
        "lesson image": lambda: resolve_image(str(outside)),
        "lab data": lambda: data_allowed(str(outside)),
        "lab save": lambda: save_as(None, outside, own),  # refused before the (absent) run is touched
    }[place]
    with pytest.raises(NnsimError, match="not available here|keeps runs only in this tab's own folder"):
        refuse()
    assert outside in asked


async def test_the_lab_and_draw_screens_refuse_a_path_outside_through_the_one_rule(shared, tmp_path, monkeypatch):
    """The lab's resume (r), its start with a "save to" outside the tab's folder (space), and the draw
    screen's path box: each says no, and serving.allows was asked about that very path."""
    from nnsim.engine.config import TrainConfig
    from nnsim.tui.screens.draw import DrawScreen
    from nnsim.tui.screens.lab import LabScreen

    asked = _asked(monkeypatch)
    outside = tmp_path / "secret.png"
    config = TrainConfig(model="mlp", data="shapes", epochs=1, backend="reference", sizes={"hidden": [8]})
    app = NnsimApp(lab=config)
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        assert isinstance(lab, LabScreen)
        refusal = "keeps runs only in this tab's own folder"
        for key, where in (("r", tmp_path / "run.npz"), ("space", tmp_path / "start.npz")):
            lab.query_one("#lab-checkpoint", Input).value = str(where)
            lab.query_one("#lab-start").focus()
            await pilot.press(key)

            def refused(where=where) -> bool:  # this path asked about (the status may still say the last one)
                return where in asked and refusal in shown(lab.query_one("#lab-status"))

            await until(pilot, refused, what=f"{where.name} was not refused")
            assert refusal in shown(lab.query_one("#lab-status"))
            assert where in asked and lab.session is None
        await pilot.press("d")
        draw = app.screen
        assert isinstance(draw, DrawScreen)
        field = draw.query_one("#draw-path", Input)
        field.value = str(outside)
        field.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert "not available here" in shown(draw.query_one("#draw-steps")) and outside in asked
