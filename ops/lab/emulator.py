"""The lab's AWS API emulator: moto in server mode, a process of its own on the lab network."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from ops.errors import OpsError
from ops.lab.state import LabState


@dataclass(frozen=True)
class Emulator:
    lab: LabState

    def recorded(self) -> str | None:
        """The URL the emulator was last started on (not checked)."""
        return self.lab.read("emulator").get("url")

    def url(self) -> str | None:
        """The emulator's URL when it answers, else None."""
        url = self.recorded()
        return url if url and _answers(url) else None

    def start(self, address: str) -> str:
        """Start the emulator on `address` (reachable from lab hosts) unless it runs. Idempotent."""
        if url := self.url():
            return url
        port = self.lab.read("emulator").get("port") or _free_port(address)
        url = f"http://{address}:{port}"
        self.lab.ensure_dir()
        log = (self.lab.dir / "emulator.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", address, "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.lab.write("emulator", {"url": url, "port": port, "pid": process.pid})
        deadline = time.monotonic() + 30
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise OpsError(f"the AWS emulator did not start on {url}",
                               hint=f"look at {self.lab.dir / 'emulator.log'}")
            time.sleep(0.2)
        return url

    def stop(self) -> bool:
        pid = self.lab.read("emulator").get("pid")
        if not pid:
            return False
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        return True


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]
