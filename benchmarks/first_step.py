"""How long a new learner waits for the lab's first training step, from an empty kernel cache.

    python benchmarks/first_step.py [--read 30]

Starts `nnsim` in a 120×40 tmux window with NUMBA_CACHE_DIR pointed at a new, empty folder (as on
a fresh install), opens the first lesson and stays there `--read` seconds (the learner reading,
while the app compiles the kernels in the background), then presses `l` and space, and polls the
screen every 10 ms until the lab's status shows a finished training step. Prints the time from
space to that step, and how far the background warm-up had got when `l` was pressed. The figure
includes tmux's own delay (a `capture-pane` process per poll), so it is an upper bound.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIRST_STEP = re.compile(r"running: epoch \d+/\d+, batch \d+/\d+, step [1-9]")
PROGRESS = re.compile(r"preparing kernels \d+/\d+")


def screen(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def wait_for(session: str, pattern: str | re.Pattern, timeout: float) -> float:
    """Seconds until `pattern` (text or a regular expression) shows on the screen."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        shown = screen(session)
        if (pattern in shown) if isinstance(pattern, str) else pattern.search(shown):
            return time.perf_counter() - start
        time.sleep(0.01)
    raise SystemExit(f"{getattr(pattern, 'pattern', pattern)!r} did not appear within {timeout:.0f} s")


def press(session: str, key: str) -> None:
    subprocess.run(["tmux", "send-keys", "-t", session, key], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--read", type=float, default=30.0, help="seconds spent on the lesson before `l`")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        cache, home = Path(folder) / "numba-cache", Path(folder) / "home"
        cache.mkdir()
        session = f"nnsim-first-step-{time.monotonic_ns()}"
        command = (
            f"NUMBA_CACHE_DIR={shlex.quote(str(cache))} NNSIM_HOME={shlex.quote(str(home))} "
            f"{shlex.quote(sys.executable)} -m nnsim"
        )
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command], check=True)
        try:
            wait_for(session, "Lessons", 120)
            press(session, "Enter")  # the first lesson
            wait_for(session, "Lesson 1", 60)
            time.sleep(args.read)  # the learner reads
            warmed = PROGRESS.search(screen(session))
            press(session, "l")
            wait_for(session, "press space", 60)
            start = time.perf_counter()
            press(session, "Space")
            wait_for(session, FIRST_STEP, 600)
            seconds = time.perf_counter() - start
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    where = f"still {warmed.group(0)}" if warmed else "done (no progress shown)"
    print(f"{args.read:.0f} s on a lesson from an empty cache: the background warm-up was {where} when l was pressed")
    print(f"first training step {seconds:.2f} s after space")


if __name__ == "__main__":
    main()
