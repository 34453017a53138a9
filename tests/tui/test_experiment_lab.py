"""An experiment file in the lab: `nnsim lab --config FILE` trains what `nnsim train --config FILE`
trains, step for step, and the NAME.toml the lab writes beside a run repeats that run exactly (its
comparison's second run too)."""

import json

from nnsim.cli import build_parser, main, train_config
from nnsim.engine.experiment import read_experiment
from nnsim.engine.runfiles import run_files
from nnsim.tui.app import NnsimApp
from nnsim.tui.progress import ProgressStore
from nnsim.tui.screens.lab import LabScreen
from tests.tui.test_lab import until

EXPERIMENT = """model = "mlp"
data = "shapes"
backend = "reference"
max_steps = 6
batch_size = 16
lr = 0.004
seed = 5

[sizes]
hidden = [12]
"""


def train_losses(capsys, path) -> list[float]:
    """The loss of every step of `nnsim train --config path --json`."""
    capsys.readouterr()
    assert main(["train", "--config", str(path), "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [event["loss"] for event in events if event["event"] == "step"]


def lab_from(path, *flags: str) -> NnsimApp:
    """The app as `nnsim lab --config path --start` opens it."""
    args = build_parser().parse_args(["lab", "--config", str(path), "--start", *flags])
    compare = read_experiment(path).compare
    return NnsimApp(progress=ProgressStore(), lab=train_config(args), start=args.start, compare=compare)


async def run_lab(app: NnsimApp) -> LabScreen:
    async with app.run_test(size=(120, 40)) as pilot:
        lab = app.screen
        assert isinstance(lab, LabScreen)
        await until(pilot, lambda: lab.state == "finished")
        await pilot.pause()
    return lab


async def test_train_and_the_lab_from_one_file_give_the_same_losses_step_for_step(tmp_path, capsys):
    path = tmp_path / "exp.toml"
    path.write_text(EXPERIMENT, encoding="utf-8")
    expected = train_losses(capsys, path)
    assert len(expected) == 6
    lab = await run_lab(lab_from(path, "--checkpoint", str(tmp_path / "run.npz")))
    (run,) = lab.session.runs
    assert run.figures.losses == expected
    assert (run.trainer.config.lr, run.trainer.config.sizes) == (0.004, {"hidden": [12]})


async def test_the_toml_a_lab_run_saves_repeats_it_and_its_comparison_exactly(tmp_path, capsys):
    path = tmp_path / "exp.toml"
    path.write_text(EXPERIMENT + '\n[compare]\noptimizer = "sgd"\n', encoding="utf-8")
    checkpoint = tmp_path / "runs" / "mine.npz"
    lab = await run_lab(lab_from(path, "--checkpoint", str(checkpoint)))
    first, second = lab.session.runs
    assert (first.trainer.config.optimizer, second.trainer.config.optimizer) == ("adam", "sgd")
    assert second.trainer.config.lr == 0.05  # SGD's own default, as the comparison brings it
    saved = run_files(checkpoint).experiment
    again = read_experiment(saved)
    assert again.compare == {"optimizer": "sgd", "lr": 0.05}
    assert train_losses(capsys, saved) == first.figures.losses
    assert train_losses(capsys, run_files(checkpoint.with_name("mine-B.npz")).experiment) == second.figures.losses
