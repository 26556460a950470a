"""Backup records: a dump's manifest, a verification result, and the summary list-backups shows.

Pure data: no I/O. A manifest is what a restore trusts — every file's sha256 and every table's
row count at the moment of the dump.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

DUMP = "dump"
SNAPSHOT = "snapshot"


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
        data = json.loads(text)
        data["files"] = {k: FileEntry(**v) for k, v in data["files"].items()}
        return cls(**data)


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
