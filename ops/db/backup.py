"""backup-db: a logical dump taken on the host and/or an RDS snapshot, then retention.

The dump: pg_dump directory format, parallel jobs, zstd (not CPU-bound gzip), in one
REPEATABLE READ snapshot shared with the manifest's row counts. It is written to a private
directory on the host after checking the free space there (at least the database's size,
an upper bound for a compressed dump). The host uploads each file to the backups bucket as
soon as pg_dump closes it (toc.dat last); the finished dump's files must be those uploaded,
of the same sizes. No fsync (--no-sync): the files only live until they are uploaded.
"""

from __future__ import annotations

import shlex
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress

from ops import console, provider
from ops.approval import Approval, granted, scope
from ops.config import Environment
from ops.db import catalog, dumps, metrics, remote, snapshots, transfer
from ops.db.manifest import Manifest, human, new_dump_id, now
from ops.db.remote import DbHost
from ops.errors import OpsError
from ops.host.remote import UNLIMITED

COMPRESSION = "zstd:2"  # measured: level 3 doubles the dump time for 1 point of size


def dump_script(database: str, directory: str, jobs: int) -> str:
    """A psql script: export a snapshot, pg_dump within it, count rows within it. (The host's
    scheduled dump runs it too: ops.host.schedule.)"""
    d = shlex.quote(directory)
    dump = (f"pg_dump -Fd -j {jobs} -Z {COMPRESSION} -d {shlex.quote(database)} "
            f'--snapshot="$(cat {d}/snapshot)" --no-sync -f {d}/dump 2> {d}/dump.err '
            f"&& touch {d}/dump.ok")
    return "\n".join([
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;",
        f"SELECT pg_export_snapshot() \\g {directory}/snapshot",
        "SELECT current_setting('server_version'), pg_database_size(current_database())",
        f"\\g {directory}/info",
        f"\\! {dump}",
        remote.ROW_COUNTS_SQL,
        f"\\g {directory}/counts",
        "COMMIT;",
        "",
    ])


def take_dump(env: Environment, host: DbHost, reason: str) -> Manifest:
    """Dump the database to the bucket with its manifest; the manifest."""
    dumps.ensure_bucket(env)
    backup_id = new_dump_id(now())
    directory = f"{host.work}/{backup_id}"
    size = int(host.sql("SELECT pg_database_size(current_database())", what="sizing"))
    free = host.free_bytes(host.work)
    if free < size:
        raise OpsError(f"{host.address} has {free >> 20} MiB free in {remote.WORK_ROOT}, "
                       f"the database is {size >> 20} MiB",
                       hint="grow the host's disk or free space there, then run again")
    console.step(f"dumping {host.db.name} ({human(size)}) on {host.address} "
                 f"with {env.backups.dump_jobs} jobs")
    host.run(f"install -d -m 700 {shlex.quote(directory)}", what="preparing the dump")
    host.put(dump_script(host.db.name, directory, env.backups.dump_jobs).encode(),
             f"{directory}/dump.sql")
    d = shlex.quote(directory)
    try:
        console.step(f"uploading to s3://{env.bucket}/dumps/{backup_id}/ as pg_dump writes")
        with ThreadPoolExecutor(max_workers=1) as side, host.remote.stopped_on_interrupt():
            dumping = side.submit(host.run, f"psql -X -At -v ON_ERROR_STOP=1 -d "
                                  f"{shlex.quote(host.db.name)} -f {d}/dump.sql",
                                  what="the dump (pg_dump)", timeout=UNLIMITED)
            files = transfer.upload_while_written(env, host, f"{directory}/dump", backup_id,
                                                 env.backups.dump_jobs, dumping)
            dumping.result()
        _, out = host.run(f"test -f {d}/dump.ok || {{ tail -c 1500 {d}/dump.err; exit 1; }}; "
                          f"cat {d}/info {d}/counts", what="pg_dump")
        info, _, counts = out.partition("\n")
        version, _, db_size = info.strip().partition("|")
        on_host = host.closed_files(f"{directory}/dump")
        changed = sorted(n for n in on_host.keys() | files.keys()
                         if n not in files or on_host.get(n) != files[n].size)
        if changed:
            raise OpsError(f"files changed while uploading: {', '.join(changed)}",
                           hint="run the backup again")
        manifest = Manifest(id=backup_id, time=now().isoformat(), environment=env.name,
                            database=host.db.name, server_version=version,
                            database_size=int(db_size), release=host.release(),
                            reason=reason, tables=remote.parse_counts(counts), files=files)
        dumps.write_manifest(env, manifest)
    except BaseException:
        with suppress(Exception):  # without a manifest, nothing uploaded is a backup
            dumps.delete(env, backup_id)
        raise
    finally:
        host.run(f"rm -rf {d}", what="cleaning up", warn=True)
    metrics.backup_succeeded(env)
    console.ok(f"dump {backup_id}: {len(manifest.tables)} tables, "
               f"{sum(manifest.tables.values())} rows, {human(manifest.archive_size)} "
               f"archive from a {human(manifest.database_size)} database")
    return manifest


def backup_db(env: Environment, *, method: str, reason: str,
              approval: Approval | None = None) -> list[str]:
    """The backup-db task: show what it takes and what retention removes, then take it."""
    approval = approval or granted()
    instance = _snapshot_source(env, method)
    dump = method in ("dump", "both")
    lines = [f"+ logical dump of {env.database.name} to s3://{env.bucket}"] if dump else []
    if instance:
        lines.append(f"+ RDS snapshot of {instance}")
    lines += [f"- retention removes {b.kind} {b.id} ({b.time:%Y-%m-%d}), and any the new "
              "backups push past backups.keep_last" for b in catalog.expired(env)]
    lines += [f"- retention removes the incomplete dump {backup_id} (no manifest: it never "
              "finished)" for backup_id in dumps.incomplete(env, now() - catalog.INCOMPLETE_AFTER)]
    if not approval.review(scope(env), f"{env.name}: back the database up", lines):
        return []
    taken = _take(env, dump=dump, snapshot=bool(instance), reason=reason)
    approval.outcome(backups=taken)
    return taken


def before_change_method(env: Environment) -> str:
    """How a change that risks the data (an upgrade, a resize) backs the database up first:
    an RDS snapshot, or a dump where a snapshot holds no data (the lab)."""
    return "snapshot" if provider.of(env).snapshot_holds_data else "dump"


def take(env: Environment, *, method: str, reason: str) -> list[str]:
    """Take the backups `method` asks for, then apply retention; the new backups' ids."""
    return _take(env, dump=method in ("dump", "both"),
                 snapshot=bool(_snapshot_source(env, method)), reason=reason)


def _take(env: Environment, *, dump: bool, snapshot: bool, reason: str) -> list[str]:
    taken: list[str] = []
    if dump:
        with remote.session(env) as host:
            manifest = take_dump(env, host, reason)
        taken.append(manifest.id)
    if snapshot:
        release = manifest.release if taken else remote.live_release(env)
        taken.append(snapshots.create(env, reason=reason, release=release))
    catalog.prune(env)
    return taken


def _snapshot_source(env: Environment, method: str) -> str | None:
    """The RDS instance `method` snapshots here, if any: none where a snapshot would hold no
    data and there is no RDS instance (a warning says so); OpsError when only a snapshot was
    asked for and there is nothing to snapshot."""
    if method not in ("snapshot", "dump", "both"):
        raise OpsError(f"--method {method!r}: use snapshot, dump or both")
    if method == "dump":
        return None
    if not provider.of(env).snapshot_holds_data and not snapshots.exists(env):
        if method == "snapshot":
            snapshots.source(env)  # raises: no RDS instance to snapshot
        console.warn(f"{env.name} has no RDS instance (run: inv provision), and a snapshot "
                     "would hold no data here: dump only")
        return None
    return str(snapshots.source(env)["DBInstanceIdentifier"])
