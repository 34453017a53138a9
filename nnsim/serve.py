"""`nnsim serve`: the app in web browsers (textual-serve), one app process a tab, on this machine.

Checks the address (a port in use is one line; a non-loopback host a warning), names the folder
learners may open files from (nnsim.serving), and compiles the cpu kernels once for all the tabs.
"""

from __future__ import annotations

import shlex
import sys

from nnsim.errors import NnsimError


def serve(args) -> int:
    try:
        from textual_serve.server import Server
    except ImportError:
        raise NnsimError("nnsim serve needs textual-serve: pip install textual-serve") from None
    import os

    from nnsim.serving import SERVED

    files = args.files.expanduser().resolve() if args.files else None
    if files is not None and not files.is_dir():
        raise NnsimError(f"{args.files}: no such folder to share (--files)")
    _check_port_free(args.host, args.port)
    if not _is_loopback(args.host):
        print(
            f"nnsim: warning: serving on {args.host}: anyone who can reach port {args.port} gets the app",
            file=sys.stderr,
        )
    os.environ[SERVED] = str(files or "")  # every tab's app process inherits it (nnsim.serving)
    command = f"{shlex.quote(sys.executable)} -m nnsim"
    warm_up = _warm_up_for_the_tabs()
    try:
        Server(command, host=args.host, port=args.port, title="nnsim").serve()
    finally:
        if warm_up is not None:
            from nnsim.tui.warm_up import end

            end(warm_up)
            warm_up.wait()
    return 0


def _warm_up_for_the_tabs():
    """The cpu kernels compiled once, from the moment the server starts, for every tab to come (a
    served tab starts no warm-up of its own: ten tabs opened at once started ten, each importing
    Numba only to find the first one's lock held). Its stdin stays open while the server runs."""
    import subprocess

    from nnsim.engine.backends.warm import background_command

    try:
        return subprocess.Popen(
            background_command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: it and its helper end together
        )
    except OSError:  # no process to start: each tab's lab compiles when it first trains
        return None


def _check_port_free(host: str, port: int) -> None:
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise NnsimError(f"cannot serve on {host}: no such address on this machine") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise NnsimError(
                    f"port {port} on {host} is already in use; choose another with --port (e.g. --port {port + 1})"
                ) from None
            raise NnsimError(f"cannot serve on {host} port {port}: {error.strerror or error}") from None


def _is_loopback(host: str) -> bool:
    import ipaddress
    import socket

    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
    except (OSError, ValueError):
        return False


# ------------------------------------------------------------------------------ data
