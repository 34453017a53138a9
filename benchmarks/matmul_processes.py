"""Our matmul against NumPy's (OpenBLAS), each side in its own process.

    python benchmarks/matmul_processes.py [--pairs 5]

In one process, OpenBLAS's threads spin for a while after each call and slow an OpenMP pool that
runs right after them (and the other way round), so `nnsim bench`, which times both in one
process with pauses between them, can still favour one side. Here each figure comes from a fresh
process that times only one side (median of 7 blocks after a warm-up), and the two alternate,
pair by pair. Prints the median of each side and of the per-pair ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

SHAPES = [(64, 784, 128), (512, 512, 512), (1024, 1024, 1024)]

CHILD = """
import json, sys, time
import numpy as np
m, k, n, side = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(0)
a, b = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
if side == "nnsim":
    from nnsim.engine.backends import get_backend
    be = get_backend("cpu")
    fn = lambda: be.matmul(a, b)
else:
    fn = lambda: a @ b
for _ in range(5):
    fn()
once = time.perf_counter(); fn(); once = time.perf_counter() - once
repeats = max(1, int(0.2 / max(once, 1e-7)))
blocks = []
for _ in range(7):
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    blocks.append((time.perf_counter() - start) / repeats)
print(json.dumps(sorted(blocks)[3]))
"""


def seconds(shape, side: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *map(str, shape), side], capture_output=True, text=True, check=True
    )
    return float(json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    print("| shape | nnsim cpu | NumPy (OpenBLAS) | nnsim / NumPy speed |\n|---|---|---|---|")
    for shape in SHAPES:
        ours, theirs, ratios = [], [], []
        for pair in range(args.pairs):
            order = ("nnsim", "numpy") if pair % 2 == 0 else ("numpy", "nnsim")
            times = {side: seconds(shape, side) for side in order}
            ours.append(times["nnsim"])
            theirs.append(times["numpy"])
            ratios.append(times["numpy"] / times["nnsim"])
        label = "×".join(map(str, shape))
        print(
            f"| {label} | {statistics.median(ours) * 1e3:.3f} ms | {statistics.median(theirs) * 1e3:.3f} ms | "
            f"{statistics.median(ratios):.0%} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
