"""The lab's files offer the run to PyTorch: `e` (or the PyTorch button) writes `nnsim export`'s
files into a new folder beside the checkpoint, and says where, or why not."""

import json

from textual.widgets import Input

from nnsim.engine.checkpoint import load_checkpoint, save_checkpoint
from nnsim.engine.models import build_model
from tests.tui.conftest import shown
from tests.tui.test_lab import lab_app, until

FILES = ["example.py", "model.py", "model.safetensors"]


def _config_in(folder):
    data = (folder / "model.safetensors").read_bytes()
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    return json.loads(header["__metadata__"]["nnsim_config"])


async def test_e_exports_the_runs_checkpoint_beside_it_and_never_over_files(tmp_path):
    checkpoint = tmp_path / "run.npz"
    app = lab_app(checkpoint=str(checkpoint), epochs=1)
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        status = lab.query_one("#lab-status")
        await pilot.press("e")
        assert "no checkpoint at" in shown(status) and not list(tmp_path.iterdir())
        await pilot.press("space")
        await until(pilot, lambda: lab.figures.reason == "finished")
        await pilot.press("e")
        assert "run-pytorch/ beside the checkpoint" in shown(status) and "pip install torch" in shown(status)
        await pilot.click("#lab-export")
        assert "run-pytorch-2/ beside the checkpoint" in shown(status)
        lab.query_one("#lab-checkpoint", Input).value = ""
        await pilot.press("e")
        assert "type the run's checkpoint" in shown(status)
    for folder in (tmp_path / "run-pytorch", tmp_path / "run-pytorch-2"):
        assert sorted(p.name for p in folder.iterdir()) == FILES
        assert _config_in(folder) == load_checkpoint(checkpoint)[0].config.to_dict()


async def test_a_damaged_checkpoint_is_one_message_and_no_folder(tmp_path):
    checkpoint = tmp_path / "run.npz"
    checkpoint.write_text("not a checkpoint")
    app = lab_app(checkpoint=str(checkpoint))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("e")
        assert "could not export" in shown(app.screen.query_one("#lab-status"))
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]


async def test_served_a_checkpoint_outside_the_tabs_own_folder_is_not_exported(tmp_path, monkeypatch):
    from nnsim.serving import SERVED

    theirs = tmp_path / "theirs.npz"
    save_checkpoint(theirs, build_model("mlp", (1, 4, 4), 2, hidden=[3]))
    monkeypatch.setenv(SERVED, "")
    app = lab_app()  # served: its runs live in the tab's own folder
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        lab.query_one("#lab-checkpoint", Input).value = str(theirs)
        await pilot.press("e")
        assert "this tab's own folder" in shown(lab.query_one("#lab-status"))
    assert [p.name for p in tmp_path.iterdir()] == ["theirs.npz"]
