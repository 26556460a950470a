"""verify-backup: a restore drill whose result is recorded with the backup.

Dumps: checksums, then pg_restore into a scratch database on the same server, row counts
compared with the manifest, scratch dropped. Snapshots: restore to a scratch instance shaped
like the source, check it, delete it.
"""

from __future__ import annotations

import shlex

from ops import console
from ops.config import Environment
from ops.db import dumps, remote, snapshots
from ops.db.manifest import DUMP, Backup, Verification, count_differences, now
from ops.db.restore import ChecksumError, fetch, load
from ops.errors import OpsError


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
    manifest = dumps.manifest(env, backup_id)
    with remote.session(env) as host:
        try:
            directory = fetch(env, host, manifest)
        except ChecksumError as exc:
            return Verification(False, now().isoformat(), "checksums: " + "; ".join(exc.problems))
        scratch = "verify_" + backup_id.replace("-", "_").lower()
        quoted = shlex.quote(scratch)
        host.run(f"dropdb --if-exists {quoted} && createdb {quoted}",
                 what="creating the scratch database")
        try:
            console.step(f"restoring {backup_id} into scratch database {scratch}")
            load(host, directory, scratch, env.backups.dump_jobs)
            diff = count_differences(manifest.tables, host.row_counts(scratch))
        except OpsError as exc:
            diff = [f"the restore failed: {exc.message[-500:]}"]
        finally:
            host.run(f"dropdb --if-exists {quoted}; rm -rf {shlex.quote(directory)}",
                     what="cleaning up", warn=True)
    rows = sum(manifest.tables.values())
    detail = ("; ".join(diff[:10])) if diff else (
        f"checksums ok; restored {len(manifest.tables)} tables, {rows} rows match the manifest")
    return Verification(not diff, now().isoformat(), detail)
