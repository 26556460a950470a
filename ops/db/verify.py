"""verify-backup: a restore drill whose result is recorded with the backup.

Dumps: checksums, then pg_restore into a throw-away PostgreSQL container on the host (see
ops.db.drill for why there), row counts compared with the manifest, the container removed; the
production instance is only read (its version). Snapshots: restore to a scratch instance shaped
like the source, check it, delete it.
"""

from __future__ import annotations

from ops import console, provider
from ops.approval import Approval, scope
from ops.config import Environment
from ops.db import drill, dumps, remote, snapshots, swap
from ops.db.manifest import DUMP, Backup, Verification, count_differences, now
from ops.db.restore import ChecksumError, dump_roles, fetch, load
from ops.errors import OpsError


def verify_backup(env: Environment, backup: Backup,
                  approval: Approval) -> Verification | None:
    """The verify-backup task: show the drill, then run it once approved."""
    scratch = "a throw-away PostgreSQL container on the host" if backup.kind == DUMP \
        else "a scratch RDS instance"
    if not approval.review(scope(env), f"{env.name}: restore drill", [
            f"> restore {backup.kind} {backup.id} to {scratch}, compare, record the result "
            "with the backup, remove the scratch copy"]):
        return None
    result = verify(env, backup)
    approval.outcome(backup=backup.id, ok=result.ok, detail=result.detail)
    return result


def verify(env: Environment, backup: Backup) -> Verification:
    """Drill one backup, record the result; the result."""
    if backup.kind == DUMP:
        result = _drill_dump(env, backup.id)
        dumps.record(env, backup.id, result)
    else:
        result = snapshots.drill(env, backup)
        snapshots.record(env, backup, result)
    (console.ok if result.ok else console.error)(f"{backup.id}: {result.detail}")
    return result


def _drill_dump(env: Environment, backup_id: str) -> Verification:
    """Refused (OpsError) before any change without room; a failed restore is a result. The
    dump is fetched into the session's private directory, removed with the session."""
    manifest = dumps.manifest(env, backup_id)
    with remote.session(env) as host:
        major = host.server_major()
        memory = drill.prepare(host, manifest, env.backups.drill_memory_mb)
        image = provider.of(env).drill_image(env, host.remote, major)
        try:
            directory = fetch(env, host, manifest)
        except ChecksumError as exc:
            return Verification(False, now().isoformat(), "checksums: " + "; ".join(exc.problems))
        with drill.server(host, image, memory) as scratch:
            console.step(f"restoring {backup_id} into the scratch PostgreSQL {major}")
            try:
                owners, grantees = dump_roles(host, directory)
                scratch.script(swap.CREATE_ROLES_SQL, {"roles": owners + grantees},
                               what="creating the dump's roles")
                load(scratch, directory, drill.DATABASE, env.backups.dump_jobs)
                diff = count_differences(manifest.tables, scratch.row_counts())
            except OpsError as exc:
                diff = [f"the restore failed: {exc.message[-500:]}"]
    rows = sum(manifest.tables.values())
    detail = ("; ".join(diff[:10])) if diff else (
        f"checksums ok; restored {len(manifest.tables)} tables, {rows} rows match the manifest "
        f"(scratch PostgreSQL {major})")
    return Verification(not diff, now().isoformat(), detail)
