"""backup-db, restore-db, verify-backup, list-backups: nothing lost."""

from invoke import Exit

from ops import console
from ops.errors import OpsError
from ops.tasks.common import ENV_HELP, choice, load, operation, read_only, task


@task(help={"env": ENV_HELP, "method": "snapshot, dump or both (default)",
            "reason": "why this backup is taken (kept with it)"})
@operation
def backup_db(c, env=None, method="both", reason=""):
    """Back up the database: an RDS snapshot and/or a logical dump to the backups bucket."""
    from ops.db import backup

    method = choice(method, "method", ("snapshot", "dump", "both"))
    backup.backup_db(load(env), method=method, reason=reason)


@task(help={"env": ENV_HELP,
            "from": "backup id (see list-backups), or a database copy a restore kept",
            "yes": "do not ask to type the environment's name",
            "force": "allow restoring over a production-tier database",
            "break-lock": "break a stale deploy lock (its holder's connection is gone)"})
@operation
def restore_db(c, env=None, from_=None, yes=False, force=False, break_lock=False):
    """Restore the database from a dump, a snapshot or a kept copy; the current one is kept."""
    from ops.db import restore

    if not from_:
        raise OpsError("--from BACKUP_ID is required", hint="see: inv list-backups")
    restore.restore_db(load(env), from_, yes=yes, force=force, break_lock=break_lock)


@task(help={"env": ENV_HELP, "backup": "backup id (default: the newest)"})
@operation
def verify_backup(c, env=None, backup=None):
    """Restore drill: check a backup's checksums, restore it to scratch and compare."""
    from ops.db import catalog, verify

    environment = load(env)
    result = verify.verify(environment, catalog.find(environment, backup))
    if not result.ok:
        raise Exit(code=1)


@task(help={"env": ENV_HELP, "json": "print machine-readable JSON only"})
@read_only
def list_backups(c, env=None, json_=False):
    """List snapshots and dumps, newest first, with their verification state."""
    from ops.db import catalog

    if json_:
        console.json_mode()
    found = catalog.backups(load(env))
    if json_:
        console.emit_json([b.as_dict() for b in found])
        return
    console.table(f"backups ({len(found)})", ["id", "kind", "time", "size", "release",
                                              "verification", "reason"],
                  [(b.id, b.kind, f"{b.time:%Y-%m-%d %H:%M:%S}", _size(b.size), b.release,
                    b.state, b.reason) for b in found])


def _size(size: int | None) -> str:
    from ops.db.manifest import human

    return "" if size is None else human(size)


TASKS = [backup_db, restore_db, verify_backup, list_backups]
