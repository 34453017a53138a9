"""`nnsim bench`: how fast the kernels and training steps run here, and against what.

The machine's FP32 matrix-product peak is measured first with NumPy's BLAS; every kernel is then
timed on the chosen backend and on the reference, and whole training steps of the MLP, the CNN and
the ViT on the backend, on the reference (the "× reference" column) and in PyTorch with
``compare="torch"``. Timings of things that are compared are
interleaved round by round, so that a noisy machine slows both sides alike; each figure is a
median.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date

import numpy as np

from nnsim.engine.backends import get_backend
from nnsim.engine.models import build_model
from nnsim.engine.optim import make_optimizer
from nnsim.errors import NnsimError


@dataclass
class KernelResult:
    kernel: str
    shape: str
    gflop: float
    seconds: float
    reference_seconds: float

    @property
    def gflops(self) -> float:
        return self.gflop / self.seconds

    @property
    def speedup(self) -> float:
        return self.reference_seconds / self.seconds


@dataclass
class StepResult:
    model: str
    batch: int
    seconds: float
    torch_seconds: float | None
    vs_torch: float | None  # the median over rounds of (PyTorch time / our time) within each round
    reference_seconds: float | None = None
    vs_reference: float | None = None  # the same, against nnsim's own NumPy reference backend

    @property
    def samples_per_s(self) -> float:
        return self.batch / self.seconds


def interleaved_medians(
    functions: dict[str, Callable[[], object]],
    rounds: int = 7,
    budget: float = 0.15,
    settle: float = 0.2,
    samples: dict | None = None,
) -> dict:
    """Median seconds per call of each function, measured round by round in turn.

    Each round runs each function enough times to fill about ``budget`` seconds (at least once),
    after two untimed calls: the first call after a pause is slow for everyone (sleeping threads,
    cold caches), and what we compare is the steady pace. Between blocks the process sleeps
    ``settle`` seconds: BLAS and OpenMP thread pools spin for a while after each call, and a pool
    still spinning would slow the next one down. ``samples``, if given, receives every round's
    figure per function, for paired comparisons.
    """
    blocks = {name: _block(fn) for name, fn in functions.items()}
    for block in blocks.values():  # warm up: compile, allocate, fill caches
        block(2)
    repeats = {}
    for name, block in blocks.items():
        time.sleep(settle)
        once = max(block(1), 1e-7)
        repeats[name] = max(1, min(1000, int(budget / once)))
    samples = samples if samples is not None else {}
    samples.update({name: [] for name in functions})
    for _ in range(rounds):
        for name, block in blocks.items():
            if len(functions) > 1:
                time.sleep(settle)
            samples[name].append(block(repeats[name]) / repeats[name])
    return {name: float(np.median(samples[name])) for name in functions}


UNTIMED = 2  # calls before each timed block


def _block(fn) -> Callable[[int], float]:
    """A function that runs ``fn`` n times and returns the seconds taken (a child's own timer if it has one)."""
    if hasattr(fn, "run"):
        return fn.run

    def block(repeats: int) -> float:
        return _timed(fn, repeats)

    return block


def _timed(fn, repeats: int) -> float:
    for _ in range(UNTIMED):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return time.perf_counter() - start


def measure_peak(rounds: int = 5) -> float:
    """GFLOP/s of NumPy's float32 matrix product at 1024² (the BLAS NumPy ships with)."""
    rng = np.random.default_rng(0)
    a, b = (rng.random((1024, 1024), dtype=np.float32) for _ in range(2))
    seconds = interleaved_medians({"peak": lambda: a @ b}, rounds=rounds)["peak"]
    return 2 * 1024**3 / seconds / 1e9


def kernel_cases(be, ref, rng):
    """(name, shape, GFLOP, run on backend, run on reference) for each kernel we care about."""

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    return _matmul_cases(be, ref, r) + _conv_cases(be, ref, r) + _attention_cases(be, ref, r)


def _matmul_cases(be, ref, r) -> list:
    """The MLP's first layer forward and backward, and square matrix products of four sizes."""
    cases = []
    # the MLP's first layer: a batch of 64 images (784 pixels) times 128 neurons' weights
    x, w = r(64, 784), r(784, 128)
    x_be, w_be = be.asarray(x), be.asarray(w)
    flop = 2 * 64 * 784 * 128 / 1e9
    cases.append(
        ("matmul 64×784×128", "64×784×128", flop, lambda a=x_be, b=w_be: be.matmul(a, b), lambda a=x, b=w: a @ b)
    )
    # its weight gradient, dW = dYᵀ·X summed over the batch (the cpu backend's gemm_nn)
    weight, dy = r(128, 784), r(64, 128)
    args, args_be = (x, weight, dy), tuple(be.asarray(v) for v in (x, weight, dy))
    cases.append(
        (
            "linear backward (dW, db)",
            "64×784→128",
            flop,
            lambda a=args_be: be.linear_backward(*a, input_grad=False),
            lambda a=args: ref.linear_backward(*a, input_grad=False),
        )
    )
    for n in (128, 256, 512, 1024):
        a, b = r(n, n), r(n, n)
        a_be, b_be = be.asarray(a), be.asarray(b)
        cases.append(
            (
                f"matmul {n}",
                f"{n}×{n}×{n}",
                2 * n**3 / 1e9,
                lambda a=a_be, b=b_be: be.matmul(a, b),
                lambda a=a, b=b: a @ b,
            )
        )
    return cases


def _conv_cases(be, ref, r) -> list:
    """The CNN's two blocks, conv + ReLU + max-pool, as training runs them (block 1 needs no dx)."""
    cases = []
    for label, (c_in, c_out, size), input_grad in (("block 1", (1, 16, 28), False), ("block 2", (16, 32, 14), True)):
        x, w, bias = r(64, c_in, size, size), r(c_out, c_in, 3, 3), r(c_out)
        dpooled = r(64, c_out, size // 2, size // 2)
        flop = 2 * 64 * c_out * size * size * c_in * 9 / 1e9
        xb, wb, bb, dpb = (be.asarray(v) for v in (x, w, bias, dpooled))
        shape = f"64×{c_in}×{size}×{size} → {c_out}"
        cases.append(
            (
                f"conv {label} forward",
                shape,
                flop,
                lambda x=xb, w=wb, b=bb: be.conv_block_forward(x, w, b, 1, 1),
                lambda x=x, w=w, b=bias: ref.conv_block_forward(x, w, b, 1, 1),
            )
        )
        pooled_b, argmax_b = be.conv_block_forward(xb, wb, bb, 1, 1)
        pooled, argmax = ref.conv_block_forward(x, w, bias, 1, 1)
        what = "backward" if input_grad else "backward (dW, db)"
        cases.append(
            (
                f"conv {label} {what}",
                shape,
                (2 if input_grad else 1) * flop,
                lambda x=xb, w=wb, d=dpb, p=pooled_b, a=argmax_b, g=input_grad: be.conv_block_backward(
                    x, w, d, p, a, 1, 1, 2, input_grad=g
                ),
                lambda x=x, w=w, d=dpooled, p=pooled, a=argmax, g=input_grad: ref.conv_block_backward(
                    x, w, d, p, a, 1, 1, 2, input_grad=g
                ),
            )
        )
    return cases


def _attention_cases(be, ref, r) -> list:
    """The ViT's attention, forward and backward: 64 images, 4 heads, 17 tokens of 16 numbers."""
    q, k, v = r(64, 4, 17, 16), r(64, 4, 17, 16), r(64, 4, 17, 16)
    flop = 2 * 2 * 64 * 4 * 17 * 17 * 16 / 1e9
    qb, kb, vb = (be.asarray(t) for t in (q, k, v))
    probs_b, probs = be.attention_forward(qb, kb, vb)[1], ref.attention_forward(q, k, v)[1]
    return [
        (
            "attention forward",
            "64×4 heads×17×16",
            flop,
            lambda: be.attention_forward(qb, kb, vb),
            lambda: ref.attention_forward(q, k, v),
        ),
        (
            "attention backward",
            "64×4 heads×17×16",
            2 * flop,
            lambda: be.attention_backward(qb, kb, vb, probs_b, qb),
            lambda: ref.attention_backward(q, k, v, probs, q),
        ),
    ]


def nnsim_step(be, model: str, batch: int, image=(1, 28, 28), sizes: dict | None = None):
    """One training step (forward, loss, backward, SGD update) of our model, as a function.

    ``image`` (C, H, W) and ``sizes`` (build_model's) shrink the net, for Numba's CUDA simulator.
    """
    rng = np.random.default_rng(0)
    net = build_model(model, image, backend=be, seed=0, **(sizes or {}))
    optimizer = make_optimizer("sgd", net.parameters(), be, lr=0.01, momentum=0.9, weight_decay=0.0)
    x = be.asarray(rng.random((batch, *image), dtype=np.float32))
    labels = rng.integers(0, 10, batch)
    labels_be = be.asarray(labels)

    def step():
        loss, dlogits, _ = be.classification_loss(net.forward(x), labels_be)
        net.backward(dlogits)
        optimizer.step()
        return loss

    return step


def torch_step(model: str, batch: int, threads: int, device: str = "cpu"):
    """The same step in PyTorch (nnsim.torch_models: the networks `nnsim export` writes), as a function."""
    import torch

    from nnsim.torch_models import build

    torch.set_num_threads(threads)
    net = build(build_model(model).config.to_dict()).to(device)  # the sizes nnsim_step builds
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(batch, 1, 28, 28, device=device)
    labels = torch.randint(0, 10, (batch,), device=device)
    loss_fn = torch.nn.CrossEntropyLoss()
    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), labels)
        loss.backward()
        optimizer.step()
        synchronize()

    return step


def _torch_worker(connection, model, batch, threads, device):
    step = torch_step(model, batch, threads, device)
    while (repeats := connection.recv()) is not None:
        connection.send(_timed(step, repeats))


class TorchInChild:
    """A PyTorch step run in a child process, called like a function.

    PyTorch brings its own OpenMP runtime; in the same process as Numba's, PyTorch's CPU attention
    ran 400× slower here. A child keeps them apart, and the parent still interleaves the timings.
    """

    def __init__(self, model: str, batch: int, threads: int, device: str = "cpu"):
        import multiprocessing

        try:
            import torch  # noqa: F401 - only to fail early, with a clear message
        except ImportError:
            raise NnsimError("--compare torch needs PyTorch (pip install 'nnsim[torch]')") from None
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_torch_worker, args=(child, model, batch, threads, device), daemon=True)
        self.process.start()

    def run(self, repeats: int = 1) -> float:
        self.connection.send(repeats)
        return self.connection.recv()

    def close(self) -> None:
        self.connection.send(None)
        self.process.join(timeout=10)


def run_bench(backend: str = "cpu", compare: str | None = None, quick: bool = False, report=None) -> dict:
    """Everything `nnsim bench` measures, as a dict (see terminal_tables and markdown for the tables)."""
    report = report or (lambda message: None)
    be = get_backend(backend)
    if hasattr(be, "warm_up"):
        report(f"preparing {be.name} kernels")
        be.warm_up()
    rounds = 3 if quick else 5
    report("measuring NumPy's float32 matrix product (the peak)")
    peak = measure_peak(rounds)
    kernels = time_kernels(be, rounds, quick, report)
    threads = _threads()
    steps = time_steps(be, threads, compare, rounds, quick, report)
    return {
        "date": str(date.today()),
        "machine": f"{platform.machine()}, {_cpu_name()}, {threads} threads",
        "backend": be.name,
        "peak_gflops": peak,
        "kernels": [
            {
                **asdict(k),
                "gflops": k.gflops,
                "percent_of_peak": 100 * k.gflops / peak,
                "speedup_vs_reference": k.speedup,
            }
            for k in kernels
        ],
        "steps": [{**asdict(s), "samples_per_s": s.samples_per_s} for s in steps],
    }


def time_kernels(be, rounds: int, quick: bool, report) -> list[KernelResult]:
    """Each kernel on the backend and on the reference, interleaved round by round."""
    kernels = []
    for name, shape, gflop, run, run_ref in kernel_cases(be, get_backend("reference"), np.random.default_rng(0)):
        if quick and name in ("matmul 1024",):
            continue
        report(f"kernel: {name}")

        def timed(run=run):
            run()
            be.synchronize()  # a GPU only queues the work: time it to the end

        times = interleaved_medians({"be": timed, "ref": run_ref}, rounds=rounds, budget=0.05 if quick else 0.1)
        kernels.append(KernelResult(name, shape, gflop, times["be"], times["ref"]))
    return kernels


def time_steps(be, threads: int, compare: str | None, rounds: int, quick: bool, report) -> list[StepResult]:
    """Whole training steps of each model: on the backend, the reference and (compare="torch") PyTorch."""
    ref = get_backend("reference")
    steps = []
    for model in ("mlp", "cnn", "vit"):
        for batch in (64,) if quick else (64, 256):
            report(f"training step: {model} batch {batch}")
            functions = {"nnsim": nnsim_step(be, model, batch)}
            if be.name != "reference":
                functions["reference"] = nnsim_step(ref, model, batch)
            if compare == "torch":
                functions["torch"] = TorchInChild(model, batch, threads, "cuda" if be.name == "cuda" else "cpu")
            per_round: dict[str, list[float]] = {}
            try:
                times = interleaved_medians(
                    functions, rounds=rounds + 4, budget=0.1 if quick else 0.25, samples=per_round
                )
            finally:
                if compare == "torch":
                    functions["torch"].close()
            steps.append(
                StepResult(
                    model,
                    batch,
                    times["nnsim"],
                    times.get("torch"),
                    _paired(per_round, "torch"),
                    times.get("reference", times["nnsim"]),
                    _paired(per_round, "reference") or 1.0,
                )
            )
    return steps


def _paired(per_round: dict[str, list[float]], other: str) -> float | None:
    """The median over rounds of (other's time / ours): both sides timed within a second of each other."""
    if other not in per_round:
        return None
    return float(np.median(np.array(per_round[other]) / np.array(per_round["nnsim"])))


def _threads() -> int:
    try:
        import numba

        return numba.get_num_threads()
    except ImportError:  # pragma: no cover
        import os

        return os.cpu_count() or 1


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def markdown(result: dict) -> str:
    """The result as the Markdown tables of docs/benchmarks.md."""
    lines = [
        f"{result['date']} · {result['machine']} · backend `{result['backend']}` · measured peak "
        f"(NumPy float32 matmul 1024²) {result['peak_gflops']:.0f} GFLOP/s",
        "",
        "| kernel | shape | median | GFLOP/s | % of peak | × reference |",
        "|---|---|---|---|---|---|",
    ]
    for k in result["kernels"]:
        lines.append(
            f"| {k['kernel']} | {k['shape']} | {_ms(k['seconds'])} | {k['gflops']:.1f} | "
            f"{k['percent_of_peak']:.0f} % | {k['speedup_vs_reference']:.2f} |"
        )
    lines += [
        "",
        "| training step | batch | median | samples/s | × reference | PyTorch median | × PyTorch |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in result["steps"]:
        torch_ms = _ms(s["torch_seconds"]) if s["torch_seconds"] else "–"
        ratio = f"{s['vs_torch']:.2f}" if s["vs_torch"] else "–"
        lines.append(
            f"| {s['model'].upper()} | {s['batch']} | {_ms(s['seconds'])} | {s['samples_per_s']:,.0f} | "
            f"{s['vs_reference']:.2f} | {torch_ms} | {ratio} |"
        )
    return "\n".join(lines)


def terminal_tables(result: dict) -> list:
    """The result as the terminal shows it: a line on the machine, then the kernels' and the steps' tables."""
    from rich.table import Table

    header = (
        f"[bold]{result['machine']}[/] · backend [bold]{result['backend']}[/] · measured peak "
        f"{result['peak_gflops']:.0f} GFLOP/s (NumPy float32 matmul 1024²)"
    )
    kernels = Table(
        "kernel", "shape", "median", "GFLOP/s", "% of peak", "× reference", title="Kernels", title_justify="left"
    )
    for k in result["kernels"]:
        kernels.add_row(
            k["kernel"],
            k["shape"],
            f"{k['seconds'] * 1e3:.3f} ms",
            f"{k['gflops']:.1f}",
            f"{k['percent_of_peak']:.0f} %",
            f"{k['speedup_vs_reference']:.2f}",
        )
    steps = Table(
        "model",
        "batch",
        "median",
        "samples/s",
        "× reference",
        "PyTorch",
        "× PyTorch",
        title="Training steps",
        title_justify="left",
    )
    for s in result["steps"]:
        torch_ms = f"{s['torch_seconds'] * 1e3:.2f} ms" if s["torch_seconds"] else "–"
        steps.add_row(
            s["model"].upper(),
            str(s["batch"]),
            f"{s['seconds'] * 1e3:.2f} ms",
            f"{s['samples_per_s']:,.0f}",
            f"{s['vs_reference']:.2f}",
            torch_ms,
            f"{s['vs_torch']:.2f}" if s["vs_torch"] else "–",
        )
    return [header, kernels, steps]


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms" if seconds < 0.01 else f"{seconds * 1e3:.1f} ms"
