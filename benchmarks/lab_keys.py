"""How soon a key press shows on the lab's screen while it trains, in a real terminal (tmux).

    python benchmarks/lab_keys.py [--presses 50] [--model vit]

Starts `nnsim lab --start` in a 120×40 tmux window, waits until it trains, then presses space
(pause, resume, pause, …) and polls the screen every 2 ms until the Start button's label shows the
new state. Reports the median and the 90th percentile over the presses. The figures include tmux's
own delay (a `send-keys` and a `capture-pane` process per poll), so they are an upper bound.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time


def screen(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def wait_for(session: str, text: str, timeout: float) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if text in screen(session):
            return time.perf_counter() - start
        time.sleep(0.002)
    raise SystemExit(f"{text!r} did not appear within {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presses", type=int, default=50)
    parser.add_argument("--model", default="vit")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        session = f"nnsim-keys-{time.monotonic_ns()}"
        command = (
            f"NNSIM_HOME={shlex.quote(home)} {shlex.quote(sys.executable)} -m nnsim lab --model {args.model} "
            "--epochs 50 --start"
        )
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command], check=True)
        try:
            wait_for(session, "running: epoch", 120)
            delays = []
            for press in range(args.presses):
                label = "▶ Resume" if press % 2 == 0 else "❚❚ Pause"
                start = time.perf_counter()
                subprocess.run(["tmux", "send-keys", "-t", session, "Space"], check=True)
                wait_for(session, label, 5)
                delays.append(time.perf_counter() - start)
                time.sleep(0.3)  # let it train (or stay paused) a moment between presses
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    delays_ms = sorted(1000 * d for d in delays)
    print(f"{args.model}, training on mnist-mini; {len(delays_ms)} presses of space (pause/resume)")
    print(
        f"median {statistics.median(delays_ms):.0f} ms, 90th percentile {delays_ms[int(0.9 * len(delays_ms))]:.0f} ms, "
        f"slowest {delays_ms[-1]:.0f} ms"
    )


if __name__ == "__main__":
    main()
