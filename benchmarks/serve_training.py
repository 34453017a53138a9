"""A classroom's first minute: N served tabs open the lab and train at once, from an empty cache.

    python benchmarks/serve_training.py [--tabs 10]

Starts `nnsim serve` on a free loopback port with NUMBA_CACHE_DIR pointed at a new, empty folder
(as on a fresh install), opens N web sockets at once as browser tabs do, and in each presses `l`
and space as soon as the lab is drawn. Meanwhile it samples every process under the server (the
tabs' apps, their background warm-ups, a compiler's helper) and, at the end, reports:

* the seconds until each tab's lab shows a training step (median and slowest), all tabs or a failure;
* how many processes did the compiling — each process's CPU seconds, those over COMPILER_CPU_S
  counted as compilers (compiling takes 20 s or more of CPU, the conv block alone as much in the
  compiler's helper; a tab's app that waits, loads the kernels from the cache, draws and trains a
  few steps takes about 7-9 s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402

from benchmarks.serve_tabs import descendants, start_server  # noqa: E402
from tests.test_serve import Tab, free_port  # noqa: E402  (the same tab the end-to-end test drives)

LIMIT = 300.0  # seconds the whole measurement may take
COMPILER_CPU_S = 15.0
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[str, float] | None:
    """(what the process runs, its CPU seconds so far), or None once it has gone."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_text(errors="replace").split("\0")
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    command = " ".join(argv).strip()[:90] or "(ended: its command line is gone)"
    return command, (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


async def one_tab(session, port: int, start: float) -> float:
    websocket = await session.ws_connect(f"ws://127.0.0.1:{port}/ws?width=120&height=40")
    tab = Tab(websocket)
    await tab.until("Why it matters", LIMIT)
    await tab.press("l")
    await tab.until("press space", LIMIT)
    await tab.press(" ")
    await tab.until("running: epoch", LIMIT)
    seconds = time.perf_counter() - start
    await websocket.close()
    return seconds


async def sample(server_pid: int, seen: dict, done: asyncio.Event) -> None:
    """Every process under the server, with the most CPU time it was seen to have."""
    while not done.is_set():
        for pid in descendants(server_pid):
            found = cpu_seconds(int(pid))
            if found is not None:  # (an ended process keeps the command it was seen with)
                command = seen[int(pid)][0] if int(pid) in seen and found[0].startswith("(ended") else found[0]
                seen[int(pid)] = (command, found[1])
        await asyncio.sleep(0.25)


async def measure(port: int, server_pid: int, tabs: int):
    seen: dict[int, tuple[str, float]] = {}
    done = asyncio.Event()
    sampler = asyncio.create_task(sample(server_pid, seen, done))
    try:
        async with aiohttp.ClientSession() as session:
            start = time.perf_counter()
            times = await asyncio.wait_for(asyncio.gather(*(one_tab(session, port, start) for _ in range(tabs))), LIMIT)
    finally:
        done.set()
        await sampler
    return times, seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tabs", type=int, default=10)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        cache, home = Path(folder) / "numba-cache", Path(folder) / "home"
        cache.mkdir()
        env = {**os.environ, "NNSIM_HOME": str(home), "NUMBA_CACHE_DIR": str(cache)}
        server = start_server(port, env)
        try:
            time.sleep(1.5)
            times, seen = asyncio.run(measure(port, server.pid, args.tabs))
        finally:
            server.terminate()
            server.wait(timeout=10)
    busy = sorted(seen.values(), key=lambda found: -found[1])
    compilers = [found for found in busy if found[1] >= COMPILER_CPU_S]
    print(
        f"{args.tabs} tabs, empty cache: every tab trains; its first step shown after "
        f"{statistics.median(times):.1f} s (median), {max(times):.1f} s (slowest)"
    )
    print(
        f"{len(compilers)} process(es) with >= {COMPILER_CPU_S:.0f} s of CPU (compiling), "
        f"of {len(seen)} under the server:"
    )
    for command, seconds in busy[: len(compilers) + 4]:
        print(f"  {seconds:6.1f} s  {command}")


if __name__ == "__main__":
    main()
