"""How long `nnsim lessons open LESSON` takes to show the lesson's prose, in a real terminal (tmux).

    python benchmarks/paint_time.py [--runs 5] [lessons/01-why-it-matters.md ...]

For each lesson file: start it in a fresh 120×40 tmux window, poll the screen every 10 ms until
the first words of its prose appear, and report the median of the runs (and each run). Numba's
cache and the OS file cache are warm after the first run, as they are for a learner.
"""

from __future__ import annotations

import argparse
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def first_words(lesson: Path) -> str:
    """A few words of the first prose line of the lesson's first step (after the front matter)."""
    body = lesson.read_text(encoding="utf-8").split("+++", 2)[2]
    for line in body.splitlines():
        text = re.sub(r"[#*_`]", "", line).strip()
        if len(text) > 12 and not text.startswith(("widget", "```", "-")):
            return " ".join(text.split()[:3])
    raise SystemExit(f"{lesson}: no prose found")


def paint_seconds(lesson: Path, words: str, timeout: float = 20.0) -> float:
    session = f"nnsim-paint-{time.monotonic_ns()}"
    command = f"{shlex.quote(sys.executable)} -m nnsim lessons open {shlex.quote(str(lesson))}"
    start = time.perf_counter()
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command], check=True)
    try:
        while time.perf_counter() - start < timeout:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True)
            if words in " ".join(screen.stdout.split()):
                return time.perf_counter() - start
            time.sleep(0.01)
        raise SystemExit(f"{lesson}: the prose did not appear within {timeout:.0f} s")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lessons", nargs="*", type=Path, help="lesson files (default: every shipped lesson)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    lessons = args.lessons or sorted((ROOT / "lessons").glob("[0-9][0-9]-*.md"))
    print("| lesson | median | runs |\n|---|---|---|")
    keeper = f"nnsim-paint-keeper-{time.monotonic_ns()}"  # keeps one tmux server up between runs
    subprocess.run(["tmux", "new-session", "-d", "-s", keeper, "sleep 3600"], check=True)
    try:
        measure(lessons, args.runs)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", keeper], capture_output=True)


def measure(lessons: list[Path], count: int) -> None:
    for lesson in lessons:
        words = first_words(lesson)
        paint_seconds(lesson, words)  # warm the caches
        runs = [paint_seconds(lesson, words) for _ in range(count)]
        shown = ", ".join(f"{r:.2f}" for r in runs)
        print(f"| {lesson.name} | {statistics.median(runs):.2f} s | {shown} |", flush=True)


if __name__ == "__main__":
    main()
