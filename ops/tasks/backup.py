"""backup-db, restore-db, verify-backup, list-backups: nothing lost."""

from invoke import task

from ops.tasks.common import ENV_HELP, load, not_implemented, operation


@task(help={"env": ENV_HELP, "method": "snapshot, dump or both (default)",
            "reason": "why this backup is taken (kept with it)"})
@operation
def backup_db(c, env=None, method="both", reason=""):
    """Back up the database: an RDS snapshot and/or a logical dump to the backups bucket."""
    load(env)
    not_implemented("backup-db")


@task(help={"env": ENV_HELP, "from": "backup id to restore (see list-backups)",
            "yes": "do not ask to type the environment's name",
            "force": "allow restoring over a production-tier database"})
@operation
def restore_db(c, env=None, from_=None, yes=False, force=False):
    """Restore the database from a snapshot or a dump, keeping a safety copy."""
    load(env)
    not_implemented("restore-db")


@task(help={"env": ENV_HELP, "backup": "backup id (default: the newest)"})
@operation
def verify_backup(c, env=None, backup=None):
    """Restore drill: check a backup's checksums, restore it to scratch and compare."""
    load(env)
    not_implemented("verify-backup")


@task(help={"env": ENV_HELP, "json": "print machine-readable JSON only"})
@operation
def list_backups(c, env=None, json_=False):
    """List snapshots and dumps, newest first, with their verification state."""
    load(env)
    not_implemented("list-backups")


TASKS = [backup_db, restore_db, verify_backup, list_backups]
