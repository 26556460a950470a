"""All of an environment's backups together (dumps and snapshots), and retention applied."""

from __future__ import annotations

from datetime import timedelta

from ops import console
from ops.config import Environment
from ops.db import dumps, retention, snapshots
from ops.db.manifest import DUMP, Backup, kind_of, newest_first, now
from ops.errors import OpsError

INCOMPLETE_AFTER = timedelta(days=1)  # a dump still without a manifest then has died


def backups(env: Environment) -> list[Backup]:
    """Dumps and snapshots, newest first."""
    return newest_first(dumps.listed(env) + snapshots.listed(env))


def find(env: Environment, backup_id: str | None) -> Backup:
    """One backup by id; the newest when `backup_id` is None."""
    found = backups(env)
    if backup_id is None:
        if not found:
            raise OpsError(f"{env.name} has no backups yet", hint="run: inv backup-db")
        return found[0]
    for backup in found:
        if backup.id == backup_id:
            return backup
    kind = "dump" if kind_of(backup_id) == DUMP else "snapshot"
    raise OpsError(f"{env.name} has no {kind} {backup_id}", hint="see: inv list-backups")


def expired(env: Environment) -> list[Backup]:
    """The backups retention selects now."""
    return retention.to_prune(backups(env), keep_last=env.backups.keep_last,
                              keep_days=env.backups.keep_days, now=now())


def prune(env: Environment) -> list[Backup]:
    """Remove what retention selects, saying what goes, and dumps that died more than a day
    ago; the removed backups."""
    for backup_id in dumps.incomplete(env, now() - INCOMPLETE_AFTER):
        console.say(f"- retention removes the incomplete dump {backup_id} (no manifest: it "
                    "never finished)", "red")
        dumps.delete(env, backup_id)
    removed = expired(env)
    for backup in removed:
        console.say(f"- retention removes {backup.kind} {backup.id} ({backup.time:%Y-%m-%d}, "
                    f"{backup.state})", "red")
        if backup.kind == DUMP:
            dumps.delete(env, backup.id)
        else:
            snapshots.delete(env, backup.id)
    return removed
