"""The CUDA backend on a real GPU: losses, matmul against cuBLAS, training steps, an MNIST epoch.

    pip install -e ".[cuda,torch]"
    NUMBA_ENABLE_CUDASIM=0 python benchmarks/cuda_bench.py [losses matmul steps mnist] [--mnist PATH]

Prints Markdown for docs/benchmarks.md: three training steps of the MLP, CNN and ViT against the
reference's losses; matmul GFLOP/s against PyTorch's cuBLAS (FP32, TF32 off); CNN and ViT
training steps at batch 512, 256 and 64 against the `cpu` backend and PyTorch CUDA; one CNN epoch
(full MNIST with --mnist, else mnist-mini) on cuda and on cpu, with both test accuracies.
PyTorch is optional: without it the cuBLAS and PyTorch columns say so.

--json FILE writes every figure there too, row by row, so that a part stopped by a timeout keeps
what it measured (benchmarks/gpu_check.sh runs each part in its own process). --sim runs tiny
shapes in Numba's CUDA simulator: it tests this script, it measures nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nnsim.bench import TorchInChild, _cpu_name, interleaved_medians, nnsim_step
from nnsim.engine.backends import get_backend
from nnsim.errors import NnsimError

PARTS = ("losses", "matmul", "steps", "mnist")
TOLERANCE = 1e-4  # the reference's losses, relative
# the simulator runs every GPU thread as Python: nets for 8×8 images, as in tests/engine/test_backend_parity.py
SIM_IMAGE = (1, 8, 8)
SIM_SIZES = {
    "mlp": {"hidden": [6]},
    "cnn": {"channels": [2, 3], "hidden": 5},
    "vit": {"patch": 4, "dim": 8, "heads": 2, "depth": 1, "mlp_dim": 8},
}


def medians(functions: dict, sim: bool, settle: float = 0.2) -> dict:
    """Median seconds per call, interleaved (nnsim.bench); in the simulator one call each, as a smoke test."""
    if not sim:
        return interleaved_medians(functions, rounds=5, budget=0.15, settle=settle)
    seconds = {}
    for name, function in functions.items():
        started = time.perf_counter()
        function()
        seconds[name] = time.perf_counter() - started
    return seconds


class Record:
    """One part's figures, rewritten to a JSON file after each change (None: kept in memory only)."""

    def __init__(self, path: str | None):
        self.path = Path(path) if path else None
        self.data: dict = {}

    def set(self, key: str, value) -> None:
        self.data[key] = value
        self._write()

    def append(self, key: str, row: dict) -> None:
        self.data.setdefault(key, []).append(row)
        self._write()

    def _write(self) -> None:
        if self.path:
            draft = self.path.with_suffix(".draft")
            draft.write_text(json.dumps(self.data, indent=1))
            draft.replace(self.path)


def cuda_torch():
    """PyTorch when it is installed and sees a GPU, else None (the comparisons are then left out)."""
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def torch_note(torch) -> str:
    return f"PyTorch {torch.__version__}" if torch else "not measured: no PyTorch with CUDA here"


# ----------------------------------------------------------------------------------- losses
def losses(record: Record, sim: bool) -> None:
    """Three SGD steps (one in the simulator) of each net on cuda and on the reference: losses agree to 1e-4."""
    from nnsim.engine.models import build_model
    from nnsim.engine.optim import make_optimizer

    shape = (2, *SIM_IMAGE) if sim else (5, 1, 28, 28)
    record.set("batch", list(shape))
    rng = np.random.default_rng(0)
    x = rng.random(shape, dtype=np.float32)
    labels = np.array([0, 2, 1, 2, 1][: shape[0]])
    for model in ("mlp", "cnn", "vit"):
        seen = {}
        for name in ("cuda", "reference"):
            be = get_backend(name)
            sizes = SIM_SIZES[model] if sim else {}
            net = build_model(model, shape[1:], 3, backend=be, seed=1, mean=[0.5], std=[0.3], **sizes)
            optimizer = make_optimizer("sgd", net.parameters(), be, lr=0.05, momentum=0.9, weight_decay=0.0)
            seen[name] = []
            for _ in range(1 if sim else 3):
                loss, dlogits, _ = be.classification_loss(net.forward(be.asarray(x)), be.asarray(labels))
                net.backward(dlogits)
                optimizer.step()
                seen[name].append(float(loss))
        ours, theirs = np.array(seen["cuda"]), np.array(seen["reference"])
        error = float(np.max(np.abs(ours - theirs) / np.abs(theirs)))
        record.append("models", {"model": model, **seen, "max_relative_error": error, "ok": error <= TOLERANCE})


def losses_markdown(data: dict) -> list[str]:
    rows = _table(None, "net", "cuda losses", "reference losses", "max relative error")
    for m in data.get("models", []):
        rows.append(
            f"| {m['model'].upper()} | {_numbers(m['cuda'])} | {_numbers(m['reference'])} | "
            f"{m['max_relative_error']:.1e}{'' if m['ok'] else ' (over 1e-4)'} |"
        )
    return rows


def _numbers(values) -> str:
    return ", ".join(f"{v:.6f}" for v in values)


# ----------------------------------------------------------------------------------- matmul
def matmul(record: Record, sim: bool) -> None:
    """GFLOP/s of our tiled matmul against cuBLAS FP32 (TF32 off), interleaved, at each size."""
    gpu, torch = get_backend("cuda"), cuda_torch()
    if torch:
        torch.backends.cuda.matmul.allow_tf32 = False
    record.set("cublas", torch_note(torch) + (", TF32 off" if torch else ""))
    for n in (7, 17) if sim else (1024, 2048, 4096):
        rng = np.random.default_rng(0)
        a, b = (rng.random((n, n), dtype=np.float32) for _ in range(2))
        a_gpu, b_gpu = gpu.asarray(a), gpu.asarray(b)
        expected = a.astype(np.float64) @ b
        error = float(np.abs(gpu.to_numpy(gpu.matmul(a_gpu, b_gpu)) - expected).max() / np.abs(expected).max())

        def ours(a_gpu=a_gpu, b_gpu=b_gpu):
            gpu.matmul(a_gpu, b_gpu)
            gpu.synchronize()

        functions = {"ours": ours}
        if torch:
            a_t, b_t = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()

            def cublas(a_t=a_t, b_t=b_t):
                torch.matmul(a_t, b_t)
                torch.cuda.synchronize()

            functions["cublas"] = cublas
        times = medians(functions, sim, settle=0.0)  # nothing on the CPU to let settle
        flop = 2 * n**3 / 1e9
        row = {"n": n, "max_relative_error": error, "ours_gflops": flop / times["ours"]}
        if torch:
            row["cublas_gflops"] = flop / times["cublas"]
            row["percent_of_cublas"] = 100 * times["cublas"] / times["ours"]
        record.append("sizes", row)


def matmul_markdown(data: dict) -> list[str]:
    rows = _table(
        f"cuBLAS: {data.get('cublas', '?')}",
        *("matmul", "nnsim cuda GFLOP/s", "cuBLAS GFLOP/s", "% of cuBLAS", "max relative error"),
    )
    for r in data.get("sizes", []):
        cublas = f"{r['cublas_gflops']:.0f}" if "cublas_gflops" in r else "–"
        share = f"{r['percent_of_cublas']:.0f} %" if "percent_of_cublas" in r else "–"
        rows.append(f"| {r['n']}² | {r['ours_gflops']:.0f} | {cublas} | {share} | {r['max_relative_error']:.1e} |")
    return rows


# ----------------------------------------------------------------------------------- steps
def steps(record: Record, sim: bool) -> None:
    """CNN and ViT steps on cuda, cpu (all threads) and PyTorch CUDA; the CNN's on cpu with 2 threads too."""
    gpu, cpu, torch = get_backend("cuda"), get_backend("cpu"), cuda_torch()
    record.set("pytorch", torch_note(torch))
    image = SIM_IMAGE if sim else (1, 28, 28)
    batches = (2,) if sim else (512, 256, 64)
    for model in ("cnn",) if sim else ("cnn", "vit"):
        sizes = SIM_SIZES[model] if sim else None
        for batch in batches:
            functions = {name: nnsim_step(be, model, batch, image, sizes) for name, be in (("cuda", gpu), ("cpu", cpu))}
            if torch:
                functions["torch"] = TorchInChild(model, batch, 1, "cuda")
            try:
                times = medians(functions, sim)
            finally:
                if torch:
                    functions["torch"].close()
            record.append("rows", {"model": model, "batch": batch, **{f"{k}_ms": v * 1e3 for k, v in times.items()}})
        if model == "cnn":  # the baseline of issue 29's point 2, before a timeout can stop the ViT's rows
            record.set("cnn_cpu_2_threads", _cpu_two_threads(cpu, batches[0], image, sizes, sim))


def _cpu_two_threads(cpu, batch: int, image, sizes, sim: bool) -> dict:
    """The CNN step on the cpu backend with 2 threads: the 2-core development machine, roughly."""
    import numba

    before, threads = numba.get_num_threads(), min(2, numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(threads)
    try:
        seconds = medians({"cpu": nnsim_step(cpu, "cnn", batch, image, sizes)}, sim)["cpu"]
    finally:
        numba.set_num_threads(before)
    return {"batch": batch, "threads": threads, "cpu_ms": seconds * 1e3, "cpu_name": _cpu_name()}


def steps_markdown(data: dict) -> list[str]:
    rows = _table(
        f"PyTorch CUDA: {data.get('pytorch', '?')}",
        *("step", "batch", "cuda ms", "cpu ms", "× cpu", "PyTorch CUDA ms", "× PyTorch"),
    )
    for r in data.get("rows", []):
        torch_ms = f"{r['torch_ms']:.2f}" if "torch_ms" in r else "–"
        vs_torch = f"{r['torch_ms'] / r['cuda_ms']:.2f}" if "torch_ms" in r else "–"
        rows.append(
            f"| {r['model'].upper()} | {r['batch']} | {r['cuda_ms']:.2f} | {r['cpu_ms']:.2f} | "
            f"{r['cpu_ms'] / r['cuda_ms']:.1f} | {torch_ms} | {vs_torch} |"
        )
    two = data.get("cnn_cpu_2_threads")
    if two:
        rows += [
            "",
            f"CNN step at batch {two['batch']} on the cpu backend with {two['threads']} threads "
            f"({two['cpu_name']}): {two['cpu_ms']:.2f} ms",
        ]
    return rows


# ----------------------------------------------------------------------------------- mnist
def mnist(record: Record, sim: bool, path: str | None) -> None:
    """One CNN epoch with the same flags on cuda and on cpu: time, images/s and test accuracy."""
    from nnsim.engine.config import TrainConfig
    from nnsim.engine.trainer import Trainer

    with tempfile.TemporaryDirectory() as folder:
        data = _tiny_digits(Path(folder)) if sim else (path or "mnist-mini")
        record.set("data", "mnist-mini at 8×8, 4 + 4 images (simulator)" if sim else data)
        flags = {"model": "cnn", "data": data, "epochs": 1, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9}
        if sim:
            flags.update(batch_size=4, sizes=SIM_SIZES["cnn"], val_fraction=0.0)
        record.set("flags", {k: v for k, v in flags.items() if k != "data"})
        for backend in ("cuda", "cpu"):
            started = time.perf_counter()
            done = list(Trainer(TrainConfig(**flags, backend=backend)).run())[-1]
            record.set(
                backend,
                {
                    "seconds": time.perf_counter() - started,
                    "images_per_s": done.samples_per_s,
                    "test_accuracy": done.test_accuracy,
                },
            )
    accuracies = [record.data[backend]["test_accuracy"] for backend in ("cuda", "cpu")]
    record.set("difference_points", 100 * abs(accuracies[0] - accuracies[1]))


def _tiny_digits(folder: Path) -> str:
    """mnist-mini's first 4 + 4 digits shrunk to 8×8 (crop to 24×24, mean of 3×3), as a Keras .npz."""
    from nnsim.data.datasets import load_dataset

    digits = load_dataset("mnist-mini")

    def shrink(x):
        return x[:, 0, 2:26, 2:26].reshape(len(x), 8, 3, 8, 3).mean(axis=(2, 4))

    path = folder / "digits-8px.npz"
    np.savez(
        path,
        x_train=shrink(digits.x_train[:4]),
        y_train=digits.y_train[:4],
        x_test=shrink(digits.x_test[:4]),
        y_test=digits.y_test[:4],
    )
    return str(path)


def mnist_markdown(data: dict) -> list[str]:
    rows = _table(
        f"One CNN epoch on {data.get('data', '?')}, flags {data.get('flags', {})}",
        *("backend", "wall time", "images/s", "test accuracy"),
    )
    for backend in ("cuda", "cpu"):
        if backend in data:
            r = data[backend]
            rows.append(f"| {backend} | {r['seconds']:.1f} s | {r['images_per_s']:,.0f} | {r['test_accuracy']:.2%} |")
    if "difference_points" in data:
        rows += ["", f"Test accuracies differ by {data['difference_points']:.2f} points."]
    return rows


def _table(note: str | None, *columns: str) -> list[str]:
    """The first lines of a Markdown table with these columns, after a note and a blank line."""
    head = [f"| {' | '.join(columns)} |", "|" + "---|" * len(columns)]
    return head if note is None else [note, "", *head]


MARKDOWN = {"losses": losses_markdown, "matmul": matmul_markdown, "steps": steps_markdown, "mnist": mnist_markdown}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", metavar="PART", help=f"any of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--mnist", default=None, help="folder of the MNIST IDX files (default: mnist-mini)")
    parser.add_argument("--json", default=None, help="also write the figures to this file (one part only)")
    parser.add_argument("--sim", action="store_true", help="tiny shapes in Numba's CUDA simulator (a test run)")
    args = parser.parse_args()
    parts = args.parts or PARTS
    unknown = [part for part in parts if part not in PARTS]
    if unknown:
        parser.error(f"unknown part {unknown[0]!r}; choose from {', '.join(PARTS)}")
    if args.json and len(parts) > 1:
        parser.error("--json takes one part")
    if args.sim:
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"  # before numba.cuda is first imported
    try:
        gpu = get_backend("cuda")
    except NnsimError as error:
        raise SystemExit(f"cuda_bench: {error}") from None
    if gpu.simulated and not args.sim:
        raise SystemExit("cuda_bench: this measures a real GPU: run it with NUMBA_ENABLE_CUDASIM=0 (or pass --sim)")
    for part in parts:
        record = Record(args.json)
        try:
            run_part(part, record, args)
        finally:
            print(f"\n## {part}\n", *MARKDOWN[part](record.data), sep="\n")
            sys.stdout.flush()


def run_part(part: str, record: Record, args) -> None:
    if part == "mnist":
        mnist(record, args.sim, args.mnist)
    else:
        {"losses": losses, "matmul": matmul, "steps": steps}[part](record, args.sim)


if __name__ == "__main__":
    main()
