"""The `nnsim` command as a user runs it: exit codes, one-line errors, JSON output, Ctrl+C."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nnsim.engine.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "sample_images" / "digits"


def nnsim(*args, cwd=None, env=None):
    """Run the CLI as a user would: no CUDA simulator (that is for the kernel tests only)."""
    environment = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "nnsim", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=300,
    )


def assert_one_line_error(result, fragment, code=None):
    assert result.returncode != 0, result.stdout
    if code is not None:
        assert result.returncode == code
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]


@pytest.fixture(scope="module")
def mlp_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "mlp.npz"
    result = nnsim(
        "train", "--model", "mlp", "--max-steps", "60", "--backend", "reference", "--json", "--checkpoint", path
    )
    assert result.returncode == 0, result.stderr
    return path


def test_train_json_ends_with_done(mlp_checkpoint, tmp_path):
    result = nnsim("train", "--model", "mlp", "--max-steps", "5", "--backend", "reference", "--json")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0
    assert lines[0]["event"] == "step" and lines[-1]["event"] == "done"
    done = lines[-1]
    for key in ("train_loss", "val_accuracy", "test_accuracy", "steps", "samples_per_s", "checkpoint"):
        assert key in done
    assert done["steps"] == 5


def test_train_with_progress_over_several_epochs():
    result = nnsim("train", "--model", "mlp", "--epochs", "3", "--backend", "reference", env={"COLUMNS": "120"})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for epoch in (1, 2, 3):
        assert f"epoch {epoch}/3:" in result.stdout
    assert "test accuracy" in result.stdout


def test_train_with_progress_prints_test_accuracy():
    result = nnsim("train", "--model", "mlp", "--max-steps", "20", "--backend", "reference")
    assert result.returncode == 0, result.stderr
    assert "test accuracy" in result.stdout and "mnist-mini" in result.stdout


def test_predict_top_k(mlp_checkpoint):
    result = nnsim(
        "predict", DIGITS / "1.png", DIGITS / "7-on-paper.png", "--checkpoint", mlp_checkpoint, "--top", "2", "--json"
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 2 and len(rows[0]["top"]) == 2
    assert rows[0]["top"][0]["probability"] >= rows[0]["top"][1]["probability"]
    assert any("inverted" in note for note in rows[1]["notes"])
    assert any("resized 112×112 to 28×28" in note for note in rows[1]["notes"])


def test_predict_adapts_alpha_16bit_and_animations(mlp_checkpoint, tmp_path):
    Image.fromarray(np.zeros((40, 30, 4), np.uint8)).save(tmp_path / "alpha.png")
    Image.fromarray(np.full((28, 28), 40000, np.uint16)).save(tmp_path / "deep.png")
    frames = [Image.new("RGB", (28, 28), c) for c in ((0, 0, 0), (255, 255, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    result = nnsim(
        "predict",
        *(tmp_path / n for n in ("alpha.png", "deep.png", "anim.gif")),
        "--checkpoint",
        mlp_checkpoint,
        "--json",
    )
    assert result.returncode == 0, result.stderr
    notes = [json.loads(line)["notes"] for line in result.stdout.splitlines()]
    assert any("transparency" in n for n in notes[0]) and any("I;16" in n for n in notes[1])
    assert any("first of 2 frames" in n for n in notes[2])


@pytest.mark.parametrize(
    "make,fragment",
    [
        (lambda p: p.write_text("I am text, not a PNG"), "not an image file"),
        (lambda p: p.write_bytes((DIGITS / "7-on-paper.png").read_bytes()[:200]), "damaged or truncated"),
        (lambda p: None, "no such file"),
    ],
)
def test_predict_bad_images(mlp_checkpoint, tmp_path, make, fragment):
    path = tmp_path / "x.png"
    make(path)
    assert_one_line_error(nnsim("predict", path, "--checkpoint", mlp_checkpoint), fragment, code=1)


def test_predict_bad_checkpoint(tmp_path):
    (tmp_path / "c.npz").write_text("nope")
    assert_one_line_error(nnsim("predict", DIGITS / "1.png", "--checkpoint", tmp_path / "c.npz"), "not a readable")


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--lr", "0"], "argument --lr: the learning rate must be a finite number > 0, got 0"),
        (["--lr", "-0.1"], "argument --lr: the learning rate must be a finite number > 0, got -0.1"),
        (["--lr", "inf"], "argument --lr: the learning rate must be a finite number > 0, got inf"),
        (["--lr", "abc"], "argument --lr: the learning rate must be a number, got 'abc'"),
        (["--batch-size", "0"], "argument --batch-size: the batch size must be a whole number >= 1, got 0"),
        (["--loss", "focal", "--gamma", "-1"], "argument --gamma: focal γ (gamma) must be a finite number >= 0"),
        (["--loss", "focal", "--alpha", "1,2,3"], "3 weights but mnist-mini has 10 classes"),
        (["--model", "rnn"], "invalid choice"),
        (["--data", "/no/such/place"], "no such file or folder"),
        (["--backend", "cuda"], "cuda backend"),
    ],
)
def test_train_bad_flags(args, fragment):
    assert_one_line_error(nnsim("train", "--max-steps", "1", *args), fragment)


def test_train_bad_data_files(tmp_path):
    np.savez(tmp_path / "keys.npz", a=np.zeros(3))
    assert_one_line_error(nnsim("train", "--data", tmp_path / "keys.npz"), "needs x_train, y_train, x_test, y_test")
    np.savez(
        tmp_path / "pickle.npz",
        x_train=np.array([{}], dtype=object),
        y_train=np.zeros(1),
        x_test=np.zeros(1),
        y_test=np.zeros(1),
    )
    assert_one_line_error(nnsim("train", "--data", tmp_path / "pickle.npz"), "pickled")
    idx = tmp_path / "idx"
    idx.mkdir()
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (idx / name).write_bytes(b"\x12\x34\x56\x78" + bytes(16))
    assert_one_line_error(nnsim("train", "--data", idx), "bad magic")


def test_image_folder_warns_about_an_unreadable_file_and_trains(tmp_path):
    for name, value in (("dark", 20), ("light", 230)):
        (tmp_path / "set" / name).mkdir(parents=True)
        for i in range(6):
            Image.new("L", (8, 8), value + i).save(tmp_path / "set" / name / f"{i}.png")
    (tmp_path / "set" / "light" / "bad.png").write_bytes(b"garbage")
    result = nnsim(
        "train",
        "--model",
        "mlp",
        "--data",
        tmp_path / "set",
        "--max-steps",
        "2",
        "--batch-size",
        "4",
        "--backend",
        "reference",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("warning") == 1 and "bad.png" in result.stderr


def test_nan_loss_diverges_with_advice_and_keeps_a_loadable_checkpoint(tmp_path):
    path = tmp_path / "ck.npz"
    result = nnsim(
        "train",
        "--model",
        "mlp",
        "--optimizer",
        "sgd",
        "--momentum",
        "0",
        "--lr",
        "1e9",
        "--epochs",
        "2",
        "--backend",
        "reference",
        "--json",
        "--checkpoint",
        path,
    )
    events = [json.loads(line) for line in result.stdout.splitlines()]
    diverged = [e for e in events if e["event"] == "diverged"]
    assert diverged and "smaller learning rate" in diverged[0]["message"]
    assert events[-1]["event"] == "done" and events[-1]["reason"] == "diverged"
    assert result.returncode == 1 and "Traceback" not in result.stderr
    model, _ = load_checkpoint(path)
    assert all(np.isfinite(v).all() for v in model.state_dict().values())
    # the weights kept are exactly those of the last step whose loss was finite
    good = tmp_path / "good.npz"
    flags = ["--optimizer", "sgd", "--momentum", "0", "--lr", "1e9", "--backend", "reference"]
    last_good = diverged[0]["step"]
    assert last_good >= 1
    nnsim("train", "--model", "mlp", *flags, "--max-steps", last_good, "--json", "--checkpoint", good)
    expected, _ = load_checkpoint(good)
    for name, value in expected.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[name], value, err_msg=name)


def test_ctrl_c_saves_the_last_step_and_exits_130(tmp_path):
    process, seen = _train_until_steps(tmp_path)
    try:
        process.send_signal(signal.SIGINT)
        rest, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "Traceback" not in stderr and "interrupted" in stderr
    saved = tmp_path / "nnsim-cnn-interrupted.npz"
    assert str(saved.name) in stderr
    model, meta = load_checkpoint(saved)
    steps = seen + [json.loads(line)["step"] for line in rest.splitlines() if '"event": "step"' in line]
    assert meta["steps"] == steps[-1] and model.config.model == "cnn"  # the last step that finished
    assert f"step {steps[-1]} to" in stderr


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["train"],
        ["predict"],
        ["bench"],
        ["data"],
        ["data", "list"],
        ["data", "download"],
        ["lessons"],
        ["lessons", "check"],
        ["lessons", "open"],
        ["serve"],
        ["lab"],
    ],
)
def test_every_help_page(command):
    result = nnsim(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: nnsim" in result.stdout and "Traceback" not in result.stderr


def test_data_list_and_help():
    result = nnsim("data", "list")
    assert result.returncode == 0 and "mnist-mini" in result.stdout and "built in" in result.stdout
    help_text = nnsim("train", "--help").stdout
    for flag in (
        "--model",
        "--data",
        "--epochs",
        "--max-steps",
        "--batch-size",
        "--lr",
        "--optimizer",
        "--momentum",
        "--loss",
        "--alpha",
        "--gamma",
        "--backend",
        "--seed",
        "--patience",
        "--checkpoint",
        "--json",
    ):
        assert flag in help_text
    assert nnsim("--version").stdout.startswith("nnsim ")


def test_data_download_without_network_is_one_line(tmp_path):
    env = {
        "NNSIM_DATA": str(tmp_path),
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "no_proxy": "",
    }
    started = time.monotonic()
    result = nnsim("data", "download", "fashion-mnist", env=env)
    assert time.monotonic() - started < 120
    assert_one_line_error(result, "could not download")


def test_train_on_the_cpu_backend():
    result = nnsim("train", "--model", "cnn", "--max-steps", "5", "--backend", "cpu", "--json")
    assert result.returncode == 0, result.stderr
    done = json.loads(result.stdout.splitlines()[-1])
    assert done["backend"] == "cpu" and done["steps"] == 5


def test_bench_quick_json():
    result = nnsim("bench", "--backend", "cpu", "--quick", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["peak_gflops"] > 0 and report["backend"] == "cpu"
    kernels = {k["kernel"] for k in report["kernels"]}
    assert {"matmul 512", "conv block 2 backward", "attention forward"} <= kernels
    by_name = {k["kernel"]: k for k in report["kernels"]}
    assert by_name["matmul 512"]["gflop"] == pytest.approx(2 * 512**3 / 1e9)  # the work counted right
    for k in report["kernels"]:  # each figure follows from the measured times
        assert 1e-7 < k["seconds"] < 10 and 1e-7 < k["reference_seconds"] < 100, k
        assert k["gflops"] == pytest.approx(k["gflop"] / k["seconds"])
        assert k["percent_of_peak"] == pytest.approx(100 * k["gflops"] / report["peak_gflops"])
        assert k["speedup_vs_reference"] == pytest.approx(k["reference_seconds"] / k["seconds"])
    assert by_name["matmul 64×784×128"]["gflop"] == pytest.approx(2 * 64 * 784 * 128 / 1e9)  # the MLP's first layer
    assert {(s["model"], s["batch"]) for s in report["steps"]} == {("mlp", 64), ("cnn", 64), ("vit", 64)}
    for step in report["steps"]:
        assert step["samples_per_s"] == pytest.approx(step["batch"] / step["seconds"])
        assert step["reference_seconds"] > 0 and step["vs_reference"] > 0  # timed against the reference too
    cnn = next(s for s in report["steps"] if s["model"] == "cnn")
    assert cnn["vs_reference"] > 2  # Numba's CNN step is many times the NumPy reference's


def test_app_commands_fail_in_one_line_without_a_terminal(tmp_path):
    assert_one_line_error(nnsim(), "the app needs a terminal", code=1)
    assert_one_line_error(nnsim("lessons", "open", ROOT / "lessons" / "01-why-it-matters.md"), "needs a terminal")
    assert_one_line_error(nnsim("lessons", "open", tmp_path / "nope.md"), "no such lesson file", code=1)
    assert_one_line_error(nnsim("serve", "--port", "70000"), "a port is a whole number", code=2)
    assert_one_line_error(nnsim("lab", "--model", "cnn", "--start"), "needs a terminal", code=1)
    assert_one_line_error(nnsim("lab", "--model", "rnn"), "invalid choice", code=2)
    assert_one_line_error(nnsim("lab", "--loss", "focal", "--gamma", "-1"), "--gamma: focal γ (gamma) must be", code=2)


GOLDEN = ROOT / "tests" / "golden" / "train-progress.txt"


def _unclocked(text: str) -> str:
    """The progress text with what depends on the clock (and a diverged run's huge loss) masked."""
    import re

    text = re.sub(r"\(\d+\.\d s\)", "(T s)", text)
    text = re.sub(r"[\d,]+ images/s, \d+\.\d s", "N images/s, T s", text)
    return re.sub(r"loss \d{7,}\.\d+", "loss HUGE", text)


def test_train_progress_text_is_unchanged(tmp_path):
    """What `nnsim train` prints for a normal run, an early stop and a divergence, word for word."""
    expected = GOLDEN.read_text().split("$ nnsim ")[1:]
    for block in expected:
        command, _, output = block.partition("\n")
        result = nnsim(*command.split(), cwd=tmp_path, env={"COLUMNS": "120"})
        assert "Traceback" not in result.stderr
        assert _unclocked(result.stdout) == _unclocked(output), command


def _npz(path, x, y):
    np.savez(path, x_train=x, y_train=y, x_test=x[:5], y_test=y[:5])
    return path


@pytest.mark.parametrize(
    "make,fragment",
    [
        (lambda x, y: (np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x), y), "x_train: 1 pixel values"),
        (lambda x, y: (np.where(np.arange(x.size).reshape(x.shape) == 9, np.inf, x), y), "NaN or infinite"),
        (lambda x, y: (x, np.full_like(y, 3)), "y_train has only class 3; a classifier needs at least two"),
    ],
    ids=["nan", "inf", "one-class"],
)
def test_train_refuses_data_that_cannot_be_learned(tmp_path, make, fragment):
    rng = np.random.default_rng(0)
    x, y = make(rng.random((40, 8, 8)).astype(np.float32), rng.integers(0, 3, 40))
    path = _npz(tmp_path / "bad.npz", x, y)
    result = nnsim("train", "--data", path, "--model", "mlp", "--backend", "reference", "--max-steps", "1")
    assert_one_line_error(result, fragment)
    assert str(path.name) in result.stderr


@pytest.mark.parametrize(
    "target,fragment", [(".", "is a folder; give a file name"), ("/proc/nnsim/x.npz", "cannot write here")]
)
def test_an_unwritable_checkpoint_is_refused_before_training(tmp_path, target, fragment):
    result = nnsim(
        "train",
        "--model",
        "mlp",
        "--max-steps",
        "1",
        "--backend",
        "reference",
        "--checkpoint",
        target,
        "--json",
        cwd=tmp_path,
    )
    assert_one_line_error(result, fragment)
    assert result.stdout == ""  # refused before the first step


def test_serve_on_a_port_in_use_is_one_line():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = nnsim("serve", "--host", "127.0.0.1", "--port", port)
    assert_one_line_error(result, f"port {port} on 127.0.0.1 is already in use; choose another with --port")


def test_serve_beyond_loopback_warns_once():
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "nnsim", "serve", "--host", "0.0.0.0", "--port", str(port)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        import select

        ready, _, _ = select.select([server.stderr], [], [], 60)  # bounded: never waits on a silent server
        first = server.stderr.readline() if ready else ""
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert first.startswith(f"nnsim: warning: serving on 0.0.0.0: anyone who can reach port {port} gets the app")


def _figures(result):
    """What a run computed, without what depends on the clock."""
    events = [json.loads(line) for line in result.stdout.splitlines()]
    clock = {"samples_per_s", "seconds"}
    return [{k: v for k, v in e.items() if k not in clock} for e in events]


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_the_same_seed_gives_the_same_figures(backend, tmp_path):
    """Kernels split work into a fixed number of chunks, so even parallel sums repeat exactly.

    The digits are a small random set of MNIST's shape (28×28, batches of 64 as in mnist-mini): the
    steps run the same kernels on the same chunks, and the evaluation after them reads 24 + 40
    images instead of mnist-mini's 3,000 (which took most of the time)."""
    rng = np.random.default_rng(0)
    x, y = rng.random((240, 28, 28)).astype(np.float32), rng.integers(0, 10, 240)
    np.savez(tmp_path / "digits.npz", x_train=x, y_train=y, x_test=x[:40], y_test=y[:40])
    args = ("train", "--model", "cnn", "--backend", backend, "--data", tmp_path / "digits.npz", "--max-steps", "6")
    args += ("--seed", "3", "--json")
    first, second = nnsim(*args), nnsim(*args)
    assert first.returncode == 0, first.stderr
    assert _figures(first) == _figures(second)
    other = nnsim(*args[:-2], "4", "--json")
    assert _figures(other) != _figures(first)


NO_NUMBA = "import sys; sys.modules['numba'] = None  # as if Numba were not installed\n"


def test_auto_falls_back_to_the_reference_backend_without_numba(tmp_path):
    script = NO_NUMBA + (
        "from nnsim.engine.backends import get_backend\n"
        "print(get_backend('auto').name)\n"
        "from nnsim.cli import main\n"
        "sys.exit(main(['train', '--model', 'mlp', '--max-steps', '2', '--json']))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "reference"
    assert json.loads(lines[-1])["backend"] == "reference"
    explicit = subprocess.run(
        [sys.executable, "-c", NO_NUMBA + "from nnsim.cli import main; sys.exit(main(['train', '--backend', 'cpu']))"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_one_line_error(explicit, "the cpu backend needs Numba")


def _train_until_steps(tmp_path, *flags, steps=1):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nnsim",
            "train",
            "--model",
            "cnn",
            "--epochs",
            "50",
            "--backend",
            "reference",
            "--json",
            *flags,
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = []
    for line in process.stdout:
        event = json.loads(line)
        if event["event"] == "step":
            seen.append(event["step"])
            if len(seen) >= steps:
                break
    return process, seen


def test_ctrl_c_with_a_checkpoint_saves_there_and_the_run_resumes(tmp_path):
    process, _ = _train_until_steps(tmp_path, "--checkpoint", "run.npz", steps=2)
    try:
        process.send_signal(signal.SIGINT)
        rest, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130 and "Traceback" not in stderr
    last = [json.loads(line) for line in rest.splitlines() if '"event": "step"' in line]
    saved = load_checkpoint(tmp_path / "run.npz")[1]
    assert "run.npz" in stderr and saved["steps"] >= 2
    if last:
        assert saved["steps"] == last[-1]["step"]
    resumed = nnsim(
        "train",
        "--model",
        "cnn",
        "--backend",
        "reference",
        "--resume",
        "run.npz",
        "--max-steps",
        saved["steps"] + 1,
        "--json",
        cwd=tmp_path,
    )
    steps = [json.loads(line)["step"] for line in resumed.stdout.splitlines() if '"event": "step"' in line]
    assert resumed.returncode == 0 and steps == [saved["steps"] + 1]


def test_a_second_ctrl_c_stops_at_once_in_one_line(tmp_path):
    process, _ = _train_until_steps(tmp_path)
    try:
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "Traceback" not in stderr and "interrupted" in stderr


def test_ctrl_c_while_the_kernels_compile_is_one_line(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "NUMBA_ENABLE_CUDASIM": "0"}
    process = subprocess.Popen(
        [sys.executable, "-m", "nnsim", "train", "--model", "cnn", "--backend", "cpu", "--max-steps", "1"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        # an empty cache: the kernels take tens of seconds to compile; once the first is in the
        # cache the warm-up is under way, with the others still to come
        _until_a_kernel_is_cached(tmp_path / "cache", process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1] == "nnsim: interrupted"


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_train_on_a_device_or_a_fifo_is_one_line(tmp_path, kind):
    path = Path("/dev/zero") if kind == "device" else tmp_path / "pipe"
    if kind == "fifo":
        os.mkfifo(path)
    assert_one_line_error(nnsim("train", "--data", path, "--backend", "reference"), "a device or a pipe")


def _until_a_kernel_is_cached(cache: Path, process, seconds: float = 120.0) -> None:
    """Wait until Numba has written a compiled kernel's index into `cache` (fail, never hang)."""
    deadline = time.monotonic() + seconds
    while not any(cache.glob("**/*.nbi")):
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "no kernel was compiled in time"
        time.sleep(0.05)
