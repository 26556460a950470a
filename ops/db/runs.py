"""What the host's scheduled jobs did: their run records in the backups bucket
(runs/<kind>/<YYYYmmddTHHMMSSZ>.json, written by ops/host/backup_job.py), and the backup-age
condition, the toolkit's own reading of what the backup-age alarm watches.

`Run.from_json` and `backup_age` are pure; `latest` and `scheduled` read the bucket.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from ops.config import Environment
from ops.db import dumps
from ops.db.manifest import DUMP, Backup, newest_first

KINDS = ("dump", "drill")


@dataclass(frozen=True)
class Run:
    """One run of a scheduled job."""

    kind: str
    started: str
    finished: str
    ok: bool
    backup_id: str | None
    error: str | None

    @classmethod
    def from_json(cls, text: str) -> Run:
        """A run record read back; ValueError when it is not one."""
        try:
            data = json.loads(text)
            run = cls(**data)
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"not a run record: {exc}") from None
        if run.kind not in KINDS or type(run.ok) is not bool:
            raise ValueError("not a run record: kind or ok")
        for stamp in (run.started, run.finished):
            datetime.fromisoformat(stamp)
        return run

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class BackupAge:
    """Whether no dump succeeded within max_age_hours (firing), and the newest one's age."""

    firing: bool
    max_age_hours: int
    newest: str | None
    age_hours: float | None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def backup_age(backups: list[Backup], now: datetime, max_age_hours: int) -> BackupAge:
    """The backup-age condition from the listed backups (scheduled and manual dumps alike:
    both publish BackupSucceeded) at `now`."""
    newest = next((b for b in newest_first(backups) if b.kind == DUMP), None)
    if newest is None:
        return BackupAge(True, max_age_hours, None, None)
    age = now - newest.time
    return BackupAge(age > timedelta(hours=max_age_hours), max_age_hours, newest.id,
                     round(age.total_seconds() / 3600, 2))


def latest(env: Environment, kind: str) -> Run | None:
    """The newest run record of `kind`, None when there is none (or the bucket is missing)."""
    bucket = dumps.s3(env)
    try:
        pages = bucket.get_paginator("list_objects_v2").paginate(Bucket=env.bucket,
                                                                 Prefix=f"runs/{kind}/")
        keys = sorted(o["Key"] for page in pages for o in page.get("Contents", [])
                      if o["Key"].endswith(".json"))
    except bucket.exceptions.NoSuchBucket:
        return None
    for key in reversed(keys):
        try:
            return Run.from_json(bucket.get_object(Bucket=env.bucket, Key=key)["Body"].read()
                                 .decode(errors="replace"))
        except ValueError:
            continue  # not one the job wrote: the next older is
    return None


def scheduled(env: Environment, now: datetime) -> dict[str, object]:
    """status's "scheduled backups": the schedule, the last run of each job, and the
    backup-age condition (from the dumps' keys: no manifest is read)."""
    schedule = env.backups.schedule
    return {"schedule": {"dump": schedule.dump, "drill": schedule.drill},
            "last_runs": {kind: (run.as_dict() if (run := latest(env, kind)) else None)
                          for kind in KINDS},
            "backup_age": backup_age(dumps.completed(env), now,
                                     schedule.max_age_hours).as_dict()}
