"""The lab's AWS API emulator: moto in server mode, a process of its own on the lab network."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from dataclasses import dataclass

from ops.lab import served
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
        return served.start(self.lab, "emulator", address,
                            lambda port: [sys.executable, "-m", "moto.server", "-H", address,
                                          "-p", str(port)], _answers, "AWS emulator")

    def stop(self) -> bool:
        return served.stop(self.lab, "emulator")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
