"""An experiment file: a run's settings in TOML, read back exactly as written, every problem one
line that says the file and the line, and `nnsim train --config` / `nnsim lab --config` with the
flags given on top of the file (a flag left at its default never is)."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from nnsim.cli import build_parser, main, train_config
from nnsim.engine.config import TrainConfig
from nnsim.engine.experiment import (
    experiment_text,
    key_line,
    parse_experiment,
    read_experiment,
    second_config,
    write_experiment,
)
from nnsim.errors import NnsimError

TINY = """model = "mlp"
data = "shapes"
backend = "reference"
max_steps = 4
batch_size = 16
seed = 3

[sizes]
hidden = [8]
"""


def write(tmp_path: Path, text: str, name: str = "exp.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_written_file_reads_back_as_the_same_settings_and_comparison(tmp_path):
    config = TrainConfig(model="cnn", data="shapes", lr=0.003, alpha=[1.0, 2.0, 0.5], patience=2, seed=7)
    config = replace(config, sizes={"channels": [8, 16], "hidden": 32}).resolved()
    compare = {"model": "vit", "lr": 0.01, "sizes": {"dim": 32, "depth": 1}}
    path = tmp_path / "run.toml"
    write_experiment(path, config, compare, notes=("a note",))
    experiment = read_experiment(path)
    assert experiment.config() == replace(config, checkpoint=None, resume=None)
    assert experiment.compare == compare
    assert path.read_text().startswith("# nnsim experiment")


def test_text_is_quoted_so_that_any_path_survives(tmp_path):
    data = 'my "digits"\\folder\tä'
    text = experiment_text(TrainConfig(data=data).resolved())
    assert parse_experiment(text, "x.toml").settings["data"] == data


def test_the_second_run_takes_the_changes_and_names_its_files_after_the_first():
    first = TrainConfig(model="cnn", optimizer="adam", lr=0.01, checkpoint="/runs/a.npz", sizes={"hidden": 8})
    second = second_config(first, {"model": "vit", "optimizer": "sgd"})
    assert (second.model, second.optimizer, second.lr, second.sizes) == ("vit", "sgd", None, {})
    assert second.checkpoint == "/runs/a-B.npz" and second.resume is None
    assert second_config(first, {"lr": 0.1}).sizes == {"hidden": 8}


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ('model = "mlp"\nlrate = 0.1\n', 2, "unknown setting 'lrate'"),
        ('model = "mlp"\n\n[compare]\nmodle = "vit"\n', 4, "unknown setting 'modle'; did you mean 'model'?"),
        ("[extra]\nx = 1\n", 1, "unknown setting 'extra'"),
        ("seed = 1.5\n", 1, "'seed' must be a whole number, got 1.5"),
        ('model = "mlp"\nbatch_size = "big"\n', 2, "'batch_size' must be a whole number"),
        ("lr = true\n", 1, "'lr' must be a number, got True"),
        ('alpha = [1, "a"]\n', 1, "'alpha' must be a number or a list of numbers"),
        ('data = "shapes"\nlr = -1\n', 2, "the learning rate must be a finite number > 0"),
        ("\n\nmomentum = 1.5\n", 3, "momentum must be a finite number in [0, 1)"),
        ('model = "rnn"\n', 1, "unknown model 'rnn'"),
        ("seed = 1\n[compare]\nepochs = 0\n", 3, "epochs must be a whole number >= 1"),
        ('seed = 1\n[compare]\ncheckpoint = "b.npz"\n', 3, "the second run cannot set 'checkpoint'"),
        ("seed = 1\n\n[compare]\n", 3, "[compare] changes no setting"),
        ("[sizes]\nhidden = [0]\n", 2, "'hidden' must be a whole number >= 1"),
        ("[sizes]\nwidth = 3\n", 2, "unknown size 'width'"),
        ("seed = 1\nmodel = \n", 2, "bad TOML"),
        ("seed = 1\nseed = 2\n", 2, "bad TOML"),
    ],
)
def test_every_problem_is_one_line_with_the_file_and_the_line(tmp_path, text, line, fragment):
    path = write(tmp_path, text)
    with pytest.raises(NnsimError) as caught:
        read_experiment(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{line}: "), message
    assert fragment in message


def test_a_missing_file_says_so(tmp_path):
    with pytest.raises(NnsimError, match=r"nothere\.toml: no such file$"):
        read_experiment(tmp_path / "nothere.toml")


def test_a_key_is_found_in_its_own_table_and_in_an_inline_one():
    lines = ["lr = 1", "[compare]", "lr = 2", "[compare.sizes]", "dim = 3"]
    assert key_line(lines, ("lr",)) == 1
    assert key_line(lines, ("compare", "lr")) == 3
    assert key_line(lines, ("compare", "sizes", "dim")) == 5
    assert key_line(["settings = {lr = 1, seed = 2}"], ("settings", "seed"), first=10) == 10


# ------------------------------------------------------------------------------ the command line
def test_flags_given_win_over_the_file_and_defaults_do_not(tmp_path):
    path = write(tmp_path, TINY)
    parse = build_parser().parse_args
    from_file = train_config(parse(["train", "--config", str(path)]))
    assert (from_file.model, from_file.batch_size, from_file.seed, from_file.sizes) == ("mlp", 16, 3, {"hidden": [8]})
    # 64 is the flag's own default: given, it still wins over the file's 16
    given = train_config(parse(["train", "--config", str(path), "--batch-size", "64", "--lr", "0.5"]))
    assert (given.batch_size, given.lr, given.seed) == (64, 0.5, 3)


def test_train_config_runs_the_file(tmp_path, capsys):
    path = write(tmp_path, TINY)
    assert main(["train", "--config", str(path), "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2, 3, 4]


@pytest.mark.parametrize("command", ["train", "lab"])
@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("lrate = 1\n", ":1: unknown setting 'lrate'"),
        ("seed = 'x'\n", ":1: 'seed' must be a whole number"),
        ("seed = 1\nlr = 0\n", ":2: the learning rate must be"),
        (None, "exp.toml: no such file"),
    ],
)
def test_a_bad_file_is_one_line_and_a_failed_exit(tmp_path, capsys, command, text, fragment):
    path = write(tmp_path, text) if text is not None else tmp_path / "exp.toml"
    assert main([command, "--config", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0] and str(path) in err[0], err
