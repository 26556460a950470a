"""backup-db, restore-db, verify-backup, list-backups: nothing lost."""

from invoke import Exit

from ops import console
from ops.errors import OpsError
from ops.tasks.common import (
    ENV_HELP,
    JSON_HELP,
    PLAN_HELP,
    YES_HELP,
    approving,
    choice,
    load,
    operation,
    read_only,
    task,
)


@task(help={"env": ENV_HELP, "method": "snapshot, dump or both (default)",
            "reason": "why this backup is taken (kept with it)",
            "plan": PLAN_HELP, "yes": YES_HELP, "json": JSON_HELP})
@operation
def backup_db(c, env=None, method="both", reason="", plan=False, yes=False, json_=False):
    """Back up the database: an RDS snapshot and/or a logical dump to the backups bucket."""
    from ops.db import backup

    with approving(plan=plan, yes=yes, json_=json_) as approval:
        method = choice(method, "method", ("snapshot", "dump", "both"))
        backup.backup_db(load(env), method=method, reason=reason, approval=approval)


@task(help={"env": ENV_HELP,
            "from": "backup id (see list-backups), or a database copy a restore kept",
            "plan": PLAN_HELP, "yes": YES_HELP, "json": JSON_HELP,
            "force": "allow restoring over a production-tier database",
            "break-lock": "break a stale deploy lock (its holder's connection is gone)"})
@operation
def restore_db(c, env=None, from_=None, plan=False, yes=False, json_=False, force=False,
               break_lock=False):
    """Restore the database from a dump, a snapshot or a kept copy; the current one is kept."""
    from ops.db import restore

    with approving(plan=plan, yes=yes, json_=json_) as approval:
        if not from_:
            raise OpsError("--from BACKUP_ID is required", hint="see: inv list-backups")
        restore.restore_db(load(env), from_, force=force, break_lock=break_lock,
                           approval=approval)


@task(help={"env": ENV_HELP, "backup": "backup id (default: the newest)",
            "plan": PLAN_HELP, "yes": YES_HELP, "json": JSON_HELP})
@operation
def verify_backup(c, env=None, backup=None, plan=False, yes=False, json_=False):
    """Restore drill: check a backup's checksums, restore it to scratch and compare."""
    from ops.db import catalog, verify

    with approving(plan=plan, yes=yes, json_=json_) as approval:
        environment = load(env)
        result = verify.verify_backup(environment, catalog.find(environment, backup), approval)
    if result and not result.ok:
        raise Exit(code=1)


@task(help={"env": ENV_HELP, "json": "print machine-readable JSON only"})
@read_only
def list_backups(c, env=None, json_=False):
    """List snapshots and dumps, newest first, with their verification state."""
    from ops.db import catalog

    console.json_mode(json_)
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
