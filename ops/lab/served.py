"""A lab process that serves HTTP on the lab network (the emulator, the metadata service):
started once, in a session of its own, its URL, port and pid kept in the lab's state under
its name; stopped by its process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable

from ops.errors import OpsError
from ops.lab.state import LabState

START_TIMEOUT_S = 30


def start(lab: LabState, name: str, address: str, argv: Callable[[int], list[str]],
          answers: Callable[[str], bool], what: str, *,
          env: dict[str, str] | None = None) -> str:
    """Run `argv(port)` on `address` unless the URL recorded under `name` answers; its URL.
    Its output goes to `<name>.log` in the lab's directory."""
    state = lab.read(name)
    if (url := state.get("url")) and answers(url):
        return str(url)
    port = state.get("port") or free_port(address)
    url = f"http://{address}:{port}"
    lab.ensure_dir()
    log = (lab.dir / f"{name}.log").open("ab")
    process = subprocess.Popen(argv(port), stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True,
                               env={**os.environ, **(env or {})})
    lab.write(name, {**state, "url": url, "port": port, "pid": process.pid})
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            raise OpsError(f"the lab's {what} did not start on {url}",
                           hint=f"look at {lab.dir / f'{name}.log'}")
        time.sleep(0.2)
    return url


def stop(lab: LabState, name: str) -> bool:
    """Stop the process recorded under `name`; whether one was running."""
    pid = lab.read(name).get("pid")
    if not pid:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])
