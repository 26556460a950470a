"""Backup records: a dump's manifest, a verification result, and the summary list-backups shows.

Pure data: no I/O. A manifest is what a restore trusts — every file's sha256 and every table's
row count at the moment of the dump — so one read back from the bucket is checked as untrusted
input first: its file names become paths on the host.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from ops.errors import OpsError

DUMP = "dump"
SNAPSHOT = "snapshot"
DUMP_ID = re.compile(r"dump-[0-9A-Za-z-]+")
# pg_dump's directory format names its files toc.dat, NNNN.dat(.zst), blobs_NNNN.toc…
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
SHA256 = re.compile(r"[0-9a-f]{64}")
TEXTS = ("id", "time", "environment", "database", "server_version", "release", "reason", "format")


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def new_dump_id(at: datetime) -> str:
    """A sortable, unique-per-second id: dump-20261128T114500Z."""
    return f"dump-{at.strftime('%Y%m%dT%H%M%SZ')}"


def kind_of(backup_id: str) -> str:
    """Dumps are named dump-…; everything else is an RDS snapshot id."""
    return DUMP if backup_id.startswith("dump-") else SNAPSHOT


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """What one logical dump holds and how to check it."""

    id: str
    time: str
    environment: str
    database: str
    server_version: str
    database_size: int
    release: str
    reason: str
    tables: dict[str, int]
    files: dict[str, FileEntry]
    format: str = "pg_dump directory, zstd"

    @property
    def archive_size(self) -> int:
        return sum(f.size for f in self.files.values())

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """A manifest read back; ManifestError naming every problem when it is not one this
        toolkit wrote (damaged or tampered with)."""
        try:
            data = json.loads(text)
            files = {name: FileEntry(**entry) for name, entry in data.pop("files").items()}
            manifest = cls(**data, files=files)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ManifestError([f"not a manifest ({type(exc).__name__}: {exc})"]) from None
        if problems := manifest.problems():
            raise ManifestError(problems)
        return manifest

    def problems(self) -> list[str]:
        """What makes this manifest unsafe to act on, one line each."""
        found = [f"{name} is not text" for name in TEXTS
                 if not isinstance(getattr(self, name), str)]
        if type(self.database_size) is not int:
            found.append("database_size is not a number")
        if isinstance(self.id, str) and not DUMP_ID.fullmatch(self.id):
            found.append(f"id {self.id!r} is not a dump id")
        if not isinstance(self.tables, dict) or not all(
                isinstance(k, str) and type(v) is int for k, v in self.tables.items()):
            found.append("tables is not a map of table names to row counts")
        if "toc.dat" not in self.files:
            found.append("it lists no toc.dat")
        for name, entry in self.files.items():
            if not FILE_NAME.fullmatch(name):
                found.append(f"file name {name!r} is not a plain name inside the dump")
            if not (isinstance(entry.sha256, str) and SHA256.fullmatch(entry.sha256)):
                found.append(f"file {name!r} has no valid sha256")
            if type(entry.size) is not int or entry.size < 0:
                found.append(f"file {name!r} has no valid size")
        return found


class ManifestError(OpsError):
    """A manifest that cannot be trusted: nothing is done with it."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("the dump's manifest is not valid: " + "; ".join(problems),
                         hint="nothing was changed; restore another backup (inv list-backups)")
        self.problems = problems


@dataclass(frozen=True)
class Verification:
    """The result of one restore drill (or checksum check) of a backup."""

    ok: bool
    time: str
    detail: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Verification:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Backup:
    """One backup as listed: a dump or a snapshot, with its verification state."""

    id: str
    kind: str
    time: datetime
    size: int | None = None
    release: str = "none"
    reason: str = ""
    status: str = "available"
    verification: Verification | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def verified(self) -> bool:
        return bool(self.verification and self.verification.ok)

    @property
    def state(self) -> str:
        if self.verification is None:
            return "unverified"
        return ("verified " if self.verification.ok else "FAILED ") + self.verification.time

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind, "time": self.time.isoformat(),
                "size": self.size, "release": self.release, "reason": self.reason,
                "status": self.status, "verification": self.state}


def human(size: int) -> str:
    """A byte count for people: 1.4 GiB, 12.0 MiB, 512 B."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            return f"{size / (1 << shift):.1f} {unit}"
    return f"{size} B"


def newest_first(backups: list[Backup]) -> list[Backup]:
    return sorted(backups, key=lambda b: (b.time, b.id), reverse=True)


def count_differences(expected: dict[str, int], actual: dict[str, int]) -> list[str]:
    """Tables whose row counts differ (or that are missing/extra), one line each."""
    lines = []
    for table in sorted(expected.keys() | actual.keys()):
        want, got = expected.get(table), actual.get(table)
        if want != got:
            lines.append(f"{table}: expected {want if want is not None else 'absent'}, "
                         f"found {got if got is not None else 'absent'}")
    return lines
