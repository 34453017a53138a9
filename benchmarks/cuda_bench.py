"""The CUDA backend on a real GPU: parity, kernels against cuBLAS, steps against cpu and PyTorch.

    pip install -e ".[cuda,torch]"
    NUMBA_ENABLE_CUDASIM=0 python benchmarks/cuda_bench.py [--mnist ../shared/datasets/mnist]

Prints Markdown for docs/benchmarks.md: matmul GFLOP/s against PyTorch's cuBLAS (FP32, TF32
off), CNN and ViT training steps at batch 64, 256 and 512 against the `cpu` backend and PyTorch
CUDA, and, with --mnist, one full-MNIST CNN epoch with its accuracy.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nnsim.bench import TorchInChild, interleaved_medians, nnsim_step
from nnsim.engine.backends import get_backend
from nnsim.errors import NnsimError


def matmul_rows(gpu) -> list[str]:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    rows = ["| matmul | nnsim cuda GFLOP/s | cuBLAS GFLOP/s | % of cuBLAS |", "|---|---|---|---|"]
    for n in (1024, 2048, 4096):
        rng = np.random.default_rng(0)
        a, b = (rng.random((n, n), dtype=np.float32) for _ in range(2))
        a_gpu, b_gpu = gpu.asarray(a), gpu.asarray(b)
        a_t, b_t = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
        error = np.abs(gpu.to_numpy(gpu.matmul(a_gpu, b_gpu)) - a @ b).max() / np.abs(a @ b).max()
        assert error < 1e-4, f"parity failed at {n}: {error}"

        def ours(a_gpu=a_gpu, b_gpu=b_gpu):
            gpu.matmul(a_gpu, b_gpu)
            gpu.synchronize()

        def cublas(a_t=a_t, b_t=b_t):
            torch.matmul(a_t, b_t)
            torch.cuda.synchronize()

        times = interleaved_medians({"ours": ours, "cublas": cublas}, rounds=5, settle=0.0)
        flop = 2 * n**3 / 1e9
        rows.append(
            f"| {n}² | {flop / times['ours']:.0f} | {flop / times['cublas']:.0f} | "
            f"{100 * times['cublas'] / times['ours']:.0f} % |"
        )
    return rows


def step_rows(gpu, cpu) -> list[str]:
    rows = [
        "| step | batch | cuda ms | cpu ms | × cpu | PyTorch CUDA ms | × PyTorch |",
        "|---|---|---|---|---|---|---|",
    ]
    for model in ("cnn", "vit"):
        for batch in (64, 256, 512):
            torch_child = TorchInChild(model, batch, 1, "cuda")
            try:
                times = interleaved_medians(
                    {"cuda": nnsim_step(gpu, model, batch), "cpu": nnsim_step(cpu, model, batch), "torch": torch_child},
                    rounds=5,
                )
            finally:
                torch_child.close()
            cuda_ms, cpu_ms, torch_ms = (times[k] * 1e3 for k in ("cuda", "cpu", "torch"))
            rows.append(
                f"| {model.upper()} | {batch} | {cuda_ms:.2f} | {cpu_ms:.2f} | {cpu_ms / cuda_ms:.1f} | "
                f"{torch_ms:.2f} | {torch_ms / cuda_ms:.2f} |"
            )
    return rows


def mnist_epoch(path: str) -> str:
    from nnsim.engine.trainer import TrainConfig, Trainer

    config = TrainConfig(model="cnn", data=path, epochs=1, optimizer="sgd", lr=0.05, momentum=0.9, backend="cuda")
    started = time.perf_counter()
    done = list(Trainer(config).run())[-1]
    return (
        f"Full MNIST, CNN, 1 epoch on cuda: {time.perf_counter() - started:.1f} s "
        f"({done.samples_per_s:,.0f} images/s), test accuracy {done.test_accuracy:.2%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default=None, help="folder of the MNIST IDX files, for a full epoch")
    args = parser.parse_args()
    try:
        gpu, cpu = get_backend("cuda"), get_backend("cpu")
    except NnsimError as error:
        raise SystemExit(f"cuda_bench: {error}") from None
    if gpu.simulated:
        raise SystemExit("this measures a real GPU: run it with NUMBA_ENABLE_CUDASIM=0")
    from numba import cuda

    name = cuda.get_current_device().name
    print(f"GPU: {name.decode() if isinstance(name, bytes) else name}")
    print("\n".join(matmul_rows(gpu)))
    print()
    print("\n".join(step_rows(gpu, cpu)))
    if args.mnist:
        print()
        print(mnist_epoch(args.mnist))


if __name__ == "__main__":
    main()
