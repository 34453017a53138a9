"""Training in the lab against `nnsim train` headless, on the same configuration, in one run.

    python benchmarks/lab_throughput.py [--runs 5] [--model cnn] [--data mnist-mini]

Alternates the two, each in a fresh process: `nnsim train --json --checkpoint` (the done event's
seconds; it saves after every epoch, as the lab does) and
`nnsim lab --start` in a 120×40 tmux window, drawing as a learner sees it (the seconds its run
wrote beside its checkpoint). Both count from the first step to the end of the run, validation
and test included, with Numba's cache warm. Prints each pair and the median of the ratios
headless seconds / lab seconds (the lab's share of the headless throughput).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def headless(args) -> float:
    with tempfile.TemporaryDirectory() as folder:  # the lab saves its run after every epoch: so does this
        checkpoint = str(Path(folder) / "run.npz")
        command = [sys.executable, "-m", "nnsim", "train", "--model", args.model, "--data", args.data, "--json"]
        out = subprocess.run(command + ["--checkpoint", checkpoint], capture_output=True, text=True, check=True).stdout
    done = [json.loads(line) for line in out.splitlines() if '"event": "done"' in line]
    return float(done[-1]["seconds"])


def lab(args, timeout: float = 600.0) -> float:
    with tempfile.TemporaryDirectory() as home:
        session = f"nnsim-lab-{time.monotonic_ns()}"
        figures = Path(home) / "lab" / f"{args.model}-{args.data}.figures.json"
        command = (
            f"NNSIM_HOME={shlex.quote(home)} {shlex.quote(sys.executable)} -m nnsim lab "
            f"--model {args.model} --data {args.data} --start"
        )
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command], check=True)
        try:
            start = time.monotonic()
            while time.monotonic() - start < timeout:
                try:
                    saved = json.loads(figures.read_text())
                except (OSError, ValueError):
                    saved = {}
                if saved.get("reason"):
                    return float(saved["seconds"])
                time.sleep(0.2)
            raise SystemExit(f"the lab did not finish within {timeout:.0f} s")
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--data", default="mnist-mini")
    args = parser.parse_args()
    keeper = f"nnsim-lab-keeper-{time.monotonic_ns()}"  # one tmux server for every run
    subprocess.run(["tmux", "new-session", "-d", "-s", keeper, "sleep 3600"], check=True)
    headless(args)  # fills Numba's cache: neither side pays the compile
    print(f"{args.model} on {args.data}, default settings\n| pair | headless s | lab s | lab / headless throughput |")
    print("|---|---|---|---|")
    ratios = []
    try:
        for pair in range(1, args.runs + 1):
            first, second = (headless, lab) if pair % 2 else (lab, headless)
            times = {first.__name__: first(args), second.__name__: second(args)}
            ratio = times["headless"] / times["lab"]
            ratios.append(ratio)
            print(f"| {pair} | {times['headless']:.2f} | {times['lab']:.2f} | {ratio:.1%} |", flush=True)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", keeper], capture_output=True)
    print(f"median: the lab trains at {statistics.median(ratios):.1%} of the headless throughput")


if __name__ == "__main__":
    main()
