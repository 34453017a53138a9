"""The `nnsim` command: train, predict and manage data from the shell.

Every error a user can cause ends in one line on stderr and a non-zero exit; Ctrl+C during
training saves the last finished step and exits 130.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from nnsim import __version__
from nnsim.errors import NnsimError, SettingError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage is one `--help` away)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


class _DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Help that ends with "(default: …)", except where the default is None (the help says it)."""

    def _get_help_string(self, action):
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def _port(text: str) -> int:
    port = _int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a whole number from 1 to 65535, not {text!r}")
    return port


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nnsim",
        description="Learn how neural networks classify images, with a real engine underneath.",
        epilog="Run a subcommand with --help for its options, e.g. `nnsim train --help`.",
    )
    parser.add_argument("--version", action="version", version=f"nnsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    from nnsim.export import add_parser as _add_export

    for add in (_add_train, _add_lab, _add_predict, _add_bench, _add_lessons, _add_serve, _add_data, _add_export):
        add(sub)
    return parser


class _Given(argparse.Action):
    """Stores a flag's value and remembers that it was given: a flag given wins over the
    experiment file's setting, a flag left at its default does not."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.given = {*getattr(namespace, "given", ()), self.dest}


def add_train_flags(parser: argparse.ArgumentParser, config=None) -> None:
    """One flag per setting of TrainConfig (or of `config`, a subclass) that is a flag, with its
    default, choices and help: a new setting there is a new flag here; and --config FILE."""
    from nnsim.engine.config import TrainConfig, flag_name, flag_settings

    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="an experiment file (TOML; its keys are these flags' names with underscores, e.g. batch_size); "
        "flags given here override it",
    )
    for name, (default, setting) in flag_settings(config or TrainConfig).items():
        parser.add_argument(
            flag_name(name),
            dest=name,
            action=_Given,
            type=_reader(name, setting),
            choices=setting.choices or None,
            default=default,
            metavar=setting.metavar,
            help=setting.full_help(),
        )


def _reader(name: str, setting):
    """The flag's text as its setting's value; whether the value is in range is TrainConfig.check's to say."""
    from nnsim.errors import SettingError

    def read(text: str):
        try:
            return setting.read(name, text)
        except SettingError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    read.__name__ = setting.kind  # what argparse calls the type in its own messages
    return read


def train_config(args, config=None):
    """The TrainConfig (or `config`, a subclass) that parsed train flags describe: the experiment
    file's settings (--config), if one is named, with the flags given on top."""
    from nnsim.engine.config import TrainConfig, flag_settings

    config = config or TrainConfig
    flags = {name: getattr(args, name) for name in flag_settings(config)}
    experiment = _experiment(args)
    if experiment is None:
        return config(**flags)
    return config(**{**experiment.settings, **{name: flags[name] for name in getattr(args, "given", ())}})


def _experiment(args):
    """The experiment file --config names (read once), or None."""
    if getattr(args, "config", None) is None:
        return None
    if getattr(args, "experiment", None) is None:
        from nnsim.engine.experiment import read_experiment

        args.experiment = read_experiment(args.config)
    return args.experiment


def _add_train(sub) -> None:
    train = sub.add_parser(
        "train",
        help="train an MLP, CNN or ViT on a data set",
        description="Train a network and report loss and accuracy as it learns.",
        formatter_class=_DefaultsHelp,
    )
    add_train_flags(train)
    train.add_argument("--json", action="store_true", help="print one JSON object per event instead of progress")
    train.set_defaults(handler=cmd_train)


def _add_lab(sub) -> None:
    lab = sub.add_parser(
        "lab",
        help="the app at the lab: train a network and watch it learn",
        description="Open the nnsim app at the lab, set up with the same flags as `nnsim train`; "
        "--start begins training at once. In the lab: space starts, pauses and resumes, . runs one step while paused, "
        "x stops, r resumes from the checkpoint, e exports it to PyTorch, d draws a digit for the network to read, "
        "f applies the training doctor's fix, 1-4 switch between curves, inside, compare and log. "
        "Runs are kept in $NNSIM_HOME/lab (else your data folder) unless --checkpoint names a file; "
        "beside it: NAME.best.npz (the best epoch's weights), NAME.figures.json and NAME.steps.csv.",
        formatter_class=_DefaultsHelp,
    )
    add_train_flags(lab)
    lab.add_argument("--start", action="store_true", help="begin training as soon as the lab opens")
    lab.set_defaults(handler=cmd_lab)


def _add_predict(sub) -> None:
    from nnsim.engine.backends import BACKEND_NAMES

    predict = sub.add_parser(
        "predict",
        help="classify images with a trained checkpoint",
        description="Classify image files with a checkpoint; any size or colour mode "
        "is adapted to what the network expects, and said so.",
    )
    predict.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files to classify")
    predict.add_argument("--checkpoint", type=Path, required=True, metavar="PATH", help="a checkpoint from train")
    predict.add_argument("--top", type=_positive_int, default=3, metavar="K", help="how many classes to show")
    predict.add_argument("--backend", choices=BACKEND_NAMES, default="reference", help="engine for the forward pass")
    predict.add_argument("--json", action="store_true", help="print one JSON object per image")
    predict.set_defaults(handler=cmd_predict)


def _add_bench(sub) -> None:
    from nnsim.engine.backends import BACKEND_NAMES

    bench = sub.add_parser(
        "bench",
        help="measure kernels and training steps (GFLOP/s, %% of peak)",
        description="Time every kernel and whole MLP/CNN/ViT training steps on a backend, "
        "against the reference backend and, optionally, PyTorch.",
    )
    bench.add_argument("--backend", choices=BACKEND_NAMES, default="auto", help="the backend to measure")
    bench.add_argument(
        "--compare",
        choices=("torch",),
        default=None,
        help="also time the same networks in PyTorch, interleaved, and show the ratio",
    )
    bench.add_argument("--quick", action="store_true", help="fewer rounds and sizes (about 30 s)")
    bench.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    bench.add_argument("--json", action="store_true", help="print the result as one JSON object")
    bench.set_defaults(handler=cmd_bench)


def _add_lessons(sub) -> None:
    lessons = sub.add_parser("lessons", help="list the lessons or check lesson files")
    lessons_sub = lessons.add_subparsers(dest="lessons_command", metavar="ACTION", parser_class=_Parser, required=True)
    lessons_sub.add_parser("list", help="the shipped lessons, in order").set_defaults(handler=cmd_lessons_list)
    check = lessons_sub.add_parser(
        "check",
        help="check lesson files; prints file:line: problem and exits 1 on any",
        description="Check lesson files (default: the shipped ones) against the lesson format and the "
        "parameters each widget accepts. See docs/lesson-format.md.",
    )
    check.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="lesson files or folders of them")
    check.set_defaults(handler=cmd_lessons_check)
    open_lesson = lessons_sub.add_parser(
        "open",
        help="open the app at one lesson file (a shipped one or your own)",
        description="Open the nnsim app at a lesson file. Problems in the file show as error panels in "
        "its steps; `nnsim lessons check PATH` lists them.",
    )
    open_lesson.add_argument("path", type=Path, metavar="PATH", help="a lesson file (.md)")
    open_lesson.set_defaults(handler=cmd_lessons_open)


def _add_serve(sub) -> None:
    serve = sub.add_parser(
        "serve",
        help="the same app in a web browser (textual-serve)",
        description="Serve the nnsim app to a web browser: open the address it prints. Each browser tab "
        "runs its own copy of the app on this machine.",
        formatter_class=_DefaultsHelp,
    )
    serve.add_argument("--host", default="localhost", help="the address to listen on")
    serve.add_argument("--port", type=_port, default=8000, help="the port to listen on")
    serve.add_argument(
        "--files",
        type=Path,
        default=None,
        metavar="DIR",
        help="the folder whose files learners may open by typing a path (default: none beyond nnsim's own)",
    )
    serve.set_defaults(handler=cmd_serve)


def _add_data(sub) -> None:
    data = sub.add_parser("data", help="list or download data sets")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION", parser_class=_Parser, required=True)
    data_sub.add_parser("list", help="the data sets nnsim knows and where they are").set_defaults(handler=cmd_data_list)
    download = data_sub.add_parser("download", help="fetch mnist or fashion-mnist (checksums verified)")
    download.add_argument("name", choices=("mnist", "fashion-mnist"), help="which data set")
    download.add_argument("--to", type=Path, default=None, metavar="DIR", help="folder to put it in")
    download.set_defaults(handler=cmd_data_download)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        args.handler = cmd_app
    try:
        return args.handler(args) or 0
    except SettingError as error:
        return _setting_refused(args, error)
    except NnsimError as error:
        print(f"nnsim: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("nnsim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR


def _setting_refused(args, error: SettingError) -> int:
    """A setting out of range, said as a usage error that names the flag it came from."""
    from nnsim.engine.config import flag_name

    if not hasattr(args, error.name):  # not a flag of this command
        print(f"nnsim: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    command = f"nnsim {args.command}"
    print(f"{command}: error: argument {flag_name(error.name)}: {error} (see `{command} --help`)", file=sys.stderr)
    return EXIT_USAGE


# ------------------------------------------------------------------------------ train
def cmd_train(args) -> int:
    from nnsim.engine.trainer import Trainer

    config = train_config(args)
    experiment = _experiment(args)
    if experiment is not None and experiment.compare is not None:
        print(
            f"nnsim: note: {args.config}'s [compare] is the lab's second run (nnsim lab --config); "
            "train runs the first",
            file=sys.stderr,
        )
    trainer = Trainer(config)  # checks the settings before it loads anything
    for warning in [*trainer.dataset.warnings, *trainer.warnings]:
        print(f"nnsim: warning: {warning}", file=sys.stderr)
    warm_up_kernels(trainer.be)
    interrupted = _stop_on_ctrl_c(trainer)
    events = _warn_on_failed_saves(trainer.run())
    done = _print_json(events) if args.json else _print_progress(trainer, events)
    if trainer.save_failed is not None:  # the run's last save: its weights are nowhere
        raise NnsimError(trainer.save_failed.describe())
    if interrupted():
        path = Path(config.checkpoint) if config.checkpoint else Path(f"nnsim-{config.model}-interrupted.npz")
        if not config.checkpoint:
            trainer.save(path)
        print(f"nnsim: interrupted; saved the weights of step {done.steps} to {path}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_ERROR if done.reason == "diverged" else 0


def _warn_on_failed_saves(events):
    """A save that fails mid-run is one warning on stderr, and training goes on."""
    for event in events:
        if event.event == "save_failed":
            print(f"nnsim: warning: {event.describe()}", file=sys.stderr)
        yield event


def warm_up_kernels(backend) -> None:
    """Compile (first run) or load (later runs) a fast backend's kernels, with progress on stderr.

    Ctrl+C takes effect between two kernels: raised inside the compiler (LLVM calls back into
    Python) it would be swallowed there and leave a half-built kernel that fails with a traceback.
    """
    if not hasattr(backend, "warm_up"):
        return
    interrupted: list[bool] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(True))
    try:
        _warm_up_with_progress(backend, interrupted)
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted:
        raise KeyboardInterrupt


def _warm_up_with_progress(backend, interrupted: list[bool]) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from nnsim.engine.backends.warm import prepare

    console = Console(stderr=True)
    with Progress(
        TextColumn(f"preparing {backend.name} kernels: {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("", total=None)

        def report(name: str, done: int, total: int) -> None:
            if interrupted:
                raise KeyboardInterrupt
            bar.update(task, description=name, completed=done, total=total or None)

        def warn(text: str) -> None:
            console.print(f"nnsim: warning: {text}", markup=False, highlight=False)

        prepare(backend, report, warn)  # (waits, with the same progress, while another nnsim compiles them)


def _stop_on_ctrl_c(trainer):
    """First Ctrl+C: finish the current step, then stop. A second one interrupts at once."""
    state = {"interrupted": False}

    def handler(signum, frame):
        if state["interrupted"]:
            raise KeyboardInterrupt
        state["interrupted"] = True
        trainer.stop()

    signal.signal(signal.SIGINT, handler)
    return lambda: state["interrupted"]


def _print_json(events):
    done = None
    for event in events:
        print(json_line(event.to_dict()), flush=True)
        done = event
    return done


def _print_progress(trainer, events):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=False)
    data_line, model_line = trainer.describe()
    console.print(data_line, style="bold", highlight=False)
    console.print(model_line, highlight=False)
    done = None
    with Progress(
        TextColumn("epoch {task.fields[epoch]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f} · acc {task.fields[acc]:.1%} · {task.fields[speed]:,.0f}/s"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task, task_epoch = None, None
        for event in events:
            kind = event.event
            if kind == "step":
                if event.epoch != task_epoch:  # a fresh bar for each epoch
                    if task is not None:
                        bar.remove_task(task)
                    task = bar.add_task("", total=event.batches, epoch=event.epoch, loss=0.0, acc=0.0, speed=0.0)
                    task_epoch = event.epoch
                bar.update(task, completed=event.batch, loss=event.loss, acc=event.accuracy, speed=event.samples_per_s)
            elif kind not in ("done", "save_failed"):  # a failed save is warned about on stderr
                console.print(_styled(event))
            else:
                done = event
    if done.test_accuracy is not None:
        console.print(_styled(done))
    return done


# how the progress display marks each kind of event: (indent, style of the line, words to highlight)
EVENT_STYLES = {
    "validation": ("  ", "", {"best so far": "green"}),
    "checkpoint": ("  ", "dim", {}),
    "early_stop": ("", "", {"early stop": "yellow"}),
    "diverged": ("", "", {"diverged": "red"}),
    "done": ("", "", {"test accuracy": "bold"}),
}


def _styled(event):
    """An event's own words (``describe()``), indented and coloured for the terminal."""
    from rich.text import Text

    indent, style, words = EVENT_STYLES.get(event.event, ("", "", {}))
    text = Text(indent + event.describe(), style=style)
    for word, word_style in words.items():
        text.highlight_words([word], word_style)
    return text


# ------------------------------------------------------------------------------ predict
def cmd_predict(args) -> int:
    from nnsim.predict import predict_files

    return predict_files(args.images, args.checkpoint, top=args.top, backend=args.backend, as_json=args.json)


# ------------------------------------------------------------------------------ bench
def cmd_bench(args) -> int:
    from rich.console import Console

    from nnsim.bench import markdown, run_bench, terminal_tables

    console = Console(stderr=True)
    with console.status("benchmarking") as status:
        result = run_bench(
            args.backend,
            compare=args.compare,
            quick=args.quick,
            report=lambda message: status.update(f"benchmarking: {message}"),
        )
    if args.json:
        print(json_line(result))
    elif args.markdown:
        print(markdown(result))
    else:
        out = Console()
        for part in terminal_tables(result):
            out.print(part)
    return 0


# ------------------------------------------------------------------------------ lessons
def _shipped_lessons() -> list[Path]:
    from nnsim.lessons import lesson_files
    from nnsim.resources import shipped_path

    folder = shipped_path("lessons")
    return lesson_files(folder) if folder.is_dir() else []


def cmd_lessons_list(args) -> int:
    from nnsim.lessons import parse_lesson

    files = _shipped_lessons()
    if not files:
        print("no lessons are shipped in this version of nnsim")
    for path in files:
        lesson = parse_lesson(path)
        mark = "" if lesson.ok else "  (has problems: nnsim lessons check)"
        print(f"{lesson.section:>2}. {lesson.title or path.name} — {len(lesson.steps)} steps{mark}")
    return 0


def cmd_lessons_check(args) -> int:
    from nnsim.lessons import lesson_files, parse_lesson

    paths: list[Path] = []
    for path in args.paths or _shipped_lessons():
        if path.is_dir():
            paths.extend(lesson_files(path) or sorted(path.glob("*.md")))
        elif path.exists():
            paths.append(path)
        else:
            raise NnsimError(f"{path}: no such file or folder")
    problems = 0
    for path in paths:
        for error in parse_lesson(path).errors:
            print(error)
            problems += 1
    print(
        f"checked {len(paths)} lesson file{'s' if len(paths) != 1 else ''}: "
        f"{problems} problem{'s' if problems != 1 else ''}",
        file=sys.stderr,
    )
    return 1 if problems else 0


def cmd_lessons_open(args) -> int:
    path = args.path.expanduser()
    if not path.is_file():
        raise NnsimError(f"{path}: no such lesson file")
    return _run_app(lesson=path)


# ------------------------------------------------------------------------------ the app
def cmd_app(args) -> int:
    return _run_app(lesson=None)


def cmd_lab(args) -> int:
    config = train_config(args)
    config.check()  # the flags and the file, before the app opens
    experiment = _experiment(args)
    compare = experiment.compare if experiment is not None else None
    return _run_app(lesson=None, lab=config, start=args.start, compare=compare)


def _run_app(lesson: Path | None, lab=None, start: bool = False, compare: dict | None = None) -> int:
    import os

    # A Textual driver named in the environment (textual-serve's web driver) needs no terminal.
    if not os.environ.get("TEXTUAL_DRIVER") and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise NnsimError("the app needs a terminal (run `nnsim --help` for the commands that do not)")
    from nnsim import serving
    from nnsim.engine.backends.warm import background_command
    from nnsim.tui.app import NnsimApp

    # The cpu kernels compile in the background while the learner reads; a lab that trains at
    # once compiles them itself, at full priority; `nnsim serve` compiles them for all its tabs.
    warm_up = None if start or serving.served() else background_command()
    app = NnsimApp(lesson=lesson, lab=lab, start=start, warm_up=warm_up, compare=compare)
    app.run()
    return app.return_code or 0  # Textual's 1 when the app ended on an error


def cmd_serve(args) -> int:
    from nnsim.serve import serve

    return serve(args)


def cmd_data_list(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from nnsim.data.datasets import BUILTIN_NAMES, DESCRIPTIONS, FINDABLE_NAMES, find_on_disk

    table = Table(title="Data sets", title_justify="left")
    table.add_column("name")
    table.add_column("what")
    table.add_column("where")
    for name in BUILTIN_NAMES:
        table.add_row(name, DESCRIPTIONS[name], "built in")
    for name in FINDABLE_NAMES:
        found = find_on_disk(name)
        table.add_row(name, DESCRIPTIONS[name], str(found) if found else f"not here: nnsim data download {name}")
    Console().print(table)
    print("Also: --data PATH to a Keras .npz, a folder of MNIST IDX files, or an ImageFolder.")
    return 0


def cmd_data_download(args) -> int:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from nnsim.data.download import download_dataset

    with Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), transient=False
    ) as bar:
        tasks: dict[str, int] = {}

        def report(name: str, done: int, total: int | None) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            bar.update(tasks[name], completed=done, total=total)

        folder = download_dataset(args.name, dest=args.to, progress=report)
    print(f"{args.name} is in {folder} (checksums verified)")
    return 0


def json_line(obj: dict) -> str:
    return json.dumps(obj, default=float)
