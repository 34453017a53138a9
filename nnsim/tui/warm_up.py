"""The app's side of the background warm-up (nnsim.engine.backends.warm): start the process that
compiles the cpu kernels, show its progress in the header, and end it with the app."""

from __future__ import annotations

import asyncio
import os
import signal

from nnsim.engine.backends.warm import read_line


async def warm_in_background(app, command: list[str]) -> bool:
    """Run `command` (warm.background_command, or a stand-in in tests) until it ends or the app
    does. Its stdin stays open: when the app ends, however it ends, the process sees its end and
    stops, its helper too; on an orderly exit it is killed here first. True once it said the
    kernels are ready in the cache."""
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # its own process group: it and its helper end together
        )
    except OSError:  # no process to start: the lab compiles when it first trains, as before
        return False
    app.warm_up_process = process
    usual = app.sub_title
    try:
        async for raw in process.stdout:
            kind, *fields = read_line(raw.decode("utf-8", errors="replace"))
            if kind == "progress":
                _, done, total = fields
                app.sub_title = f"{usual} · preparing kernels {done}/{total}"
            elif kind == "note" and fields:
                app.notify(fields[0], title="cpu kernels", severity="warning", timeout=10)
            elif kind == "ready":
                return True
        return False
    finally:
        app.sub_title = usual
        end(process)
        await process.wait()


def end(process) -> None:
    """Kill the process's group: the process, if it still runs, and whatever it started."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # all ended already
        pass
