"""Several trainings sharing the machine: N `nnsim train` CNN runs at once against one alone.

    python benchmarks/trainings_at_once.py [--at-once 1 2 4] [--repeats 5] [--steps 600]

A classroom on `nnsim serve` is several trainings on one machine, each process with its own thread
pool. For each repeat and each N, starts N `nnsim train --model cnn --data mnist-mini --json` runs
at the same moment (fresh processes, Numba's cache warm) and sums the images per second each one
reports when it is done. Prints, for each N, the median over the repeats of that sum and its share
of one run alone in the same repeat (1.0: the machine does as much work with N jobs as with one).
Every run trains `--steps` steps, enough that the runs overlap for all but their first second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile


def train_command(steps: int, backend: str) -> list[str]:
    return [
        sys.executable, "-m", "nnsim", "train", "--model", "cnn", "--data", "mnist-mini", "--backend", backend,
        "--epochs", "100", "--max-steps", str(steps), "--json",
    ]  # fmt: skip


def images_per_second(n: int, steps: int, backend: str) -> list[float]:
    """The images/s each of `n` trainings started together reports."""
    with tempfile.TemporaryDirectory() as folder:
        runs = [
            subprocess.Popen(train_command(steps, backend), cwd=folder, stdout=subprocess.PIPE, text=True)
            for _ in range(n)
        ]
        outputs = [run.communicate()[0] for run in runs]
    if any(run.returncode for run in runs):
        raise SystemExit("a training failed:\n" + "\n".join(outputs))
    done = [json.loads(line) for output in outputs for line in output.splitlines() if '"event": "done"' in line]
    return [event["samples_per_s"] for event in done]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--at-once", type=int, nargs="+", default=[1, 2, 4], help="how many trainings at once")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=600, help="training steps of each run")
    parser.add_argument("--backend", default="cpu")
    args = parser.parse_args()
    counts = sorted(set(args.at_once) | {1})
    images_per_second(1, 20, args.backend)  # the kernels compiled into the cache
    totals: dict[int, list[float]] = {n: [] for n in counts}
    shares: dict[int, list[float]] = {n: [] for n in counts}
    for repeat in range(args.repeats):
        alone = None
        for n in counts:
            each = images_per_second(n, args.steps, args.backend)
            total = sum(each)
            alone = total if n == 1 else alone
            totals[n].append(total)
            shares[n].append(total / alone)
            print(f"repeat {repeat + 1}: {n} at once: {' + '.join(f'{x:,.0f}' for x in each)} = {total:,.0f} images/s")
    print()
    for n in counts:
        print(
            f"{n} at once: {statistics.median(totals[n]):,.0f} images/s together (median), "
            f"{statistics.median(shares[n]):.0%} of one alone (median of the repeats' shares)"
        )


if __name__ == "__main__":
    main()
