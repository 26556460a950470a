"""The releases on the host (`inv releases`): which one is live, since when each was made or
last switched to, and the images each pins, read from its own files.

One command prints it all (each file base64 on one line); the parsing is pure.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, datetime

import yaml

from ops.errors import OpsError
from ops.stack import compose
from ops.stack.release import CURRENT, RELEASES

FILES = (*compose.COMPOSE_FILES, compose.TOOLKIT_FILE, ".env")


@dataclass(frozen=True)
class HostRelease:
    id: str
    live: bool
    time: int  # its directory's time, seconds since the epoch: made, or last switched to
    images: dict[str, str] = field(default_factory=dict)  # service → image

    @property
    def since(self) -> str:
        """Its directory's time in UTC, ISO 8601 (as the audit log's)."""
        return datetime.fromtimestamp(self.time, UTC).isoformat(timespec="seconds")

    def as_dict(self, now: int) -> dict[str, object]:
        return {"release": self.id, "live": self.live, "time": self.since,
                "age_s": max(now - self.time, 0), "images": self.images}


def command() -> str:
    """Print the host's clock, the live release, and each release (newest first) with its
    directory's time and its compose files and `.env`. Read-only."""
    names = " ".join(FILES)
    return "\n".join([
        "printf 'now\\t%s\\n' \"$(date +%s)\"",
        f"printf 'current\\t%s\\n' \"$(basename \"$(readlink {CURRENT} 2>/dev/null)\")\"",
        f"cd {RELEASES} 2>/dev/null || exit 0",
        "for r in $(ls -1t | grep -v '[.]partial$'); do",
        "  printf 'release\\t%s\\t%s\\n' \"$r\" \"$(stat -c %Y \"$r\")\"",
        f"  for f in {names}; do [ -f \"$r/$f\" ] || continue; "
        "printf 'file\\t%s\\t%s\\t%s\\n' \"$r\" \"$f\" \"$(base64 -w0 \"$r/$f\")\"; done",
        "done",
    ])


def parse(output: str) -> tuple[int, list[HostRelease]]:
    """The host's clock and its releases, newest first, from the command's output."""
    now, current = 0, ""
    order: list[tuple[str, int]] = []
    files: dict[str, dict[str, str]] = {}
    for line in output.splitlines():
        kind, *values = line.split("\t")
        if kind == "now" and values and values[0].isdigit():
            now = int(values[0])
        elif kind == "current" and values:
            current = values[0]
        elif kind == "release" and len(values) == 2:
            order.append((values[0], int(values[1]) if values[1].isdigit() else 0))
        elif kind == "file" and len(values) == 3:
            try:
                text = base64.b64decode(values[2]).decode(errors="replace")
            except (binascii.Error, ValueError):
                continue
            files.setdefault(values[0], {})[values[1]] = text
    return now, [HostRelease(name, name == current, time, images(files.get(name, {})))
                 for name, time in order]


def images(files: dict[str, str]) -> dict[str, str]:
    """What each service of a release runs, as its files pin it; {} when they cannot be read."""
    dotenv = compose.parse_env(files.get(".env", ""))
    try:
        found = compose.services({k: v for k, v in files.items() if k != ".env"}, dotenv)
    except (yaml.YAMLError, OpsError, AttributeError, TypeError):
        return {}
    return {s.name: s.image for s in found if s.image}


def age(seconds: int) -> str:
    """A duration as an operator reads it: `45s`, `12m`, `5h 3m`, `3d 4h`."""
    seconds = max(seconds, 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{seconds}s"
