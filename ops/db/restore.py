"""restore-db from a dump, and the host-side restore steps verify-backup shares.

Order: checksums and a preflight (nothing touched before they pass) → safety copy → stop
services → empty the database (schemas, large objects) → extensions → pg_restore -j → row
counts → start services (after a failure, only once reverted to the safety copy). Extensions
(postgis, uuid-ossp, any the archive has) are created if missing and never dropped.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable

from ops import console, provider
from ops.config import Environment
from ops.db import catalog, dumps, extensions, remote, snapshots, transfer
from ops.db.backup import take_dump
from ops.db.manifest import DUMP, Manifest, count_differences, human, kind_of
from ops.db.remote import DbHost
from ops.errors import OpsError
from ops.stack import deploy

# Drop every schema and public-schema object that no extension owns, and every large object
# (they belong to the database, not to a schema): the database is then empty of application
# data while its extensions stay untouched.
RECREATE_SQL = r"""
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT n.nspname FROM pg_namespace n
    WHERE n.nspname NOT IN ('public', 'pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\_%'
      AND NOT EXISTS (SELECT 1 FROM pg_extension e WHERE e.extnamespace = n.oid)
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass
                      AND d.objid = n.oid AND d.deptype = 'e')
  LOOP EXECUTE format('DROP SCHEMA %I CASCADE', r.nspname); END LOOP;
  FOR r IN SELECT c.oid::regclass AS obj, c.relkind FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype = 'e')
  LOOP EXECUTE format('DROP %s IF EXISTS %s CASCADE', CASE r.relkind WHEN 'v' THEN 'VIEW'
      WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE'
      ELSE 'TABLE' END, r.obj); END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS obj, p.prokind FROM pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                      AND d.objid = p.oid AND d.deptype = 'e')
  LOOP EXECUTE format('DROP %s IF EXISTS %s CASCADE', CASE r.prokind WHEN 'p' THEN 'PROCEDURE'
      WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, r.obj); END LOOP;
  FOR r IN SELECT t.oid::regtype AS obj FROM pg_type t
    WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('c', 'd', 'e', 'r')
      AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                      AND d.objid = t.oid AND d.deptype = 'e')
  LOOP EXECUTE format('DROP TYPE IF EXISTS %s CASCADE', r.obj); END LOOP;
  PERFORM lo_unlink(oid) FROM pg_largeobject_metadata;
END $$;
""".strip()

# How a line of `pg_restore -l` begins.
TOC_ENTRY = "^[0-9]+; [0-9]+ [0-9]+"

# Every table an extension owns, as pg_restore -l names it: "schema table".
EXTENSION_TABLES_SQL = r"""
SELECT n.nspname || ' ' || c.relname FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
WHERE c.relkind = 'r' ORDER BY 1
""".strip()

# Stop/start every compose project deployed from /opt/openlmis; none is fine.
_PROJECTS = ("command -v docker >/dev/null && docker ps -a --format "
             "'{{.Label \"com.docker.compose.project\"}} "
             "{{.Label \"com.docker.compose.project.working_dir\"}}' "
             "| awk '$2 ~ \"^/opt/openlmis\" {print $1}' | sort -u")


def fetch(env: Environment, host: DbHost, manifest: Manifest) -> str:
    """Download a dump to the host, checking every file; its directory. Refuses on mismatch."""
    directory = f"{host.work}/{manifest.id}"
    free = host.free_bytes(host.work)
    if free < manifest.archive_size:
        raise OpsError(f"{host.address} has {free >> 20} MiB free, the dump is "
                       f"{manifest.archive_size >> 20} MiB", hint="free space on the host")
    host.run(f"install -d -m 700 {shlex.quote(directory)}", what="preparing the restore")
    console.step(f"fetching {manifest.id} ({human(manifest.archive_size)}) to "
                 f"{host.address}, checking sha256 of {len(manifest.files)} files")
    problems = transfer.download_dump(env, host, manifest, directory, env.backups.dump_jobs)
    if problems:
        host.run(f"rm -rf {shlex.quote(directory)}", what="cleaning up", warn=True)
        raise ChecksumError(manifest.id, problems)
    return directory


class ChecksumError(OpsError):
    def __init__(self, backup_id: str, problems: list[str]) -> None:
        super().__init__(f"dump {backup_id} is damaged: " + "; ".join(problems),
                         hint="nothing was changed; restore another backup (inv list-backups)")
        self.problems = problems


class RestoreFailed(OpsError):
    """A dump restore failed after its safety copy `safety_id` was taken; `reverted` when the
    database was already put back from it."""

    def __init__(self, message: str, *, safety_id: str, reverted: bool, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.safety_id = safety_id
        self.reverted = reverted


def archive_extensions(directory: str) -> str:
    """A command printing the names of the extensions a dump's archive holds."""
    return (rf"pg_restore -l {shlex.quote(directory)} | "
            rf"sed -nE 's/{TOC_ENTRY} EXTENSION - ([^ ]+) .*/\1/p'")


def load(host: DbHost, directory: str, database: str, jobs: int) -> None:
    """Into an emptied `database`: extensions, then pg_restore of the archive's objects with
    `jobs` or the host's CPU count of parallel jobs, whichever is larger.

    The archive's EXTENSION entries are created here (IF NOT EXISTS) and skipped by pg_restore,
    so an existing extension is never dropped nor needs ownership. Their names come from the
    archive: psql quotes each as an identifier (`:"e"`), so no name can inject SQL.

    The data of the extensions' own tables (postgis's spatial_ref_sys) is skipped too: the
    extension brings it, and as on RDS they belong to the superuser, not to the master.
    """
    d, db = shlex.quote(directory), shlex.quote(database)
    names = archive_extensions(directory)
    create = ("printf '%s\\n' 'CREATE EXTENSION IF NOT EXISTS :\"e\";' | "
              f'psql -X -q -v ON_ERROR_STOP=1 -v e="$e" -d {db}')
    host.run(f"for e in {' '.join(extensions.REQUIRED)} $({names}); do "
             f"{create} || exit 1; done", what="creating extensions")
    skip = ('FILENAME == ARGV[1] { skip[$0]; next } '
            '!($4 == "TABLE" && $5 == "DATA" && ($6 " " $7) in skip)')
    host.run(f"psql -X -At -v ON_ERROR_STOP=1 -d {db} -c {shlex.quote(EXTENSION_TABLES_SQL)} "
             f"> {d}/extension-tables && pg_restore -l {d} | "
             f"grep -vE '{TOC_ENTRY} (COMMENT - )?EXTENSION ' | "
             f"awk {shlex.quote(skip)} {d}/extension-tables - > {d}/toc",
             what="listing what to restore")
    options = "-c synchronous_commit=off -c maintenance_work_mem=256MB"
    jobs = max(jobs, host.cpus())
    host.run(f"PGOPTIONS='{options}' pg_restore -j {jobs} --exit-on-error -L {d}/toc "
             f"-d {db} {d}", what="pg_restore")


def services(host: DbHost, verb: str) -> list[str]:
    """`docker compose -p P stop|start` for each OpenLMIS project on the host; their names."""
    _, out = host.run(f"{_PROJECTS} || true", what="finding services", root=True)
    projects = out.split()
    for project in projects:
        host.run(f"docker compose -p {shlex.quote(project)} {verb}",
                 what=f"{verb} of compose project {project}", root=True)
    return projects


def preflight(host: DbHost, manifest: Manifest, directory: str) -> None:
    """Refuse, before anything changes, a dump the server cannot take: from a newer major
    version, or needing extensions the server does not offer."""
    server = host.server_major()
    dumped = int(manifest.server_version.split(".")[0])
    if dumped > server:
        raise OpsError(f"dump {manifest.id} comes from PostgreSQL {dumped}, the server runs "
                       f"{server}: pg_restore cannot go back a major version",
                       hint="nothing was changed; restore onto a server of the same major or newer")
    wanted = host.run(archive_extensions(directory),
                      what="listing the dump's extensions")[1].split()
    offered = set(host.sql("SELECT name FROM pg_available_extensions",
                           what="listing the server's extensions").split())
    if missing := sorted({*wanted, *extensions.REQUIRED} - offered):
        raise OpsError(f"dump {manifest.id} needs the extension(s) {', '.join(missing)}, which "
                       f"the server of {host.db.name} does not offer",
                       hint="nothing was changed; install them on the server (on RDS: a version "
                       "that offers them), then restore again")


def replace(env: Environment, host: DbHost, manifest: Manifest, directory: str,
            interrupt: Callable[[str], None] | None = None) -> None:
    """Empty the database, pg_restore the fetched dump, check the row counts."""
    console.step(f"recreating the schemas of {host.db.name}")
    host.sql(RECREATE_SQL, what="recreating schemas")
    if interrupt:
        interrupt("recreated")
    console.step(f"pg_restore of {manifest.id}")
    load(host, directory, host.db.name, env.backups.dump_jobs)
    host.run(f"rm -rf {shlex.quote(directory)}", what="cleaning up", warn=True)
    diff = count_differences(manifest.tables, host.row_counts())
    if diff:
        raise OpsError("restored row counts differ from the manifest: " + "; ".join(diff))


def restore_dump(env: Environment, host: DbHost, backup_id: str, *, auto_revert: bool,
                 safety: bool = True, interrupt: Callable[[str], None] | None = None) -> str:
    """Restore the environment's database from a dump; the safety copy's id (or '').

    The stack's services are stopped around it and started again only on a database that is
    good: restored, or reverted to its safety copy. After any other failure they stay stopped.
    """
    manifest = dumps.manifest(env, backup_id)
    directory = fetch(env, host, manifest)
    preflight(host, manifest, directory)
    safety_id = _safety_copy(env, host, backup_id) if safety else ""
    stopped = services(host, "stop")
    down = f"; the stack's services ({', '.join(stopped)}) stay stopped" if stopped else ""
    try:
        replace(env, host, manifest, directory, interrupt)
    except (OpsError, KeyboardInterrupt) as exc:
        if not safety_id:
            raise OpsError(f"restoring {backup_id} failed{down}: {exc}") from None
        back = f"inv restore-db --env {env.name} --from {safety_id} --yes"
        if not auto_revert or kind_of(safety_id) != DUMP:
            raise RestoreFailed(f"restoring {backup_id} failed{down}: {exc}",
                                safety_id=safety_id, reverted=False,
                                hint=f"the safety copy is {safety_id}; go back to it with: "
                                f"{back}") from None
        console.warn(f"restoring {backup_id} failed ({exc}); reverting to {safety_id}")
        copy = dumps.manifest(env, safety_id)
        try:
            replace(env, host, copy, fetch(env, host, copy))
        except (OpsError, KeyboardInterrupt) as again:
            raise RestoreFailed(f"restoring {backup_id} failed ({exc}), and so did reverting "
                                f"to {safety_id}{down}: {again}", safety_id=safety_id,
                                reverted=False, hint=f"go back to the safety copy with: {back}"
                                ) from None
        _start(host, stopped)
        raise RestoreFailed(f"restoring {backup_id} failed and the database was reverted to "
                            f"{safety_id}: {exc}", safety_id=safety_id, reverted=True) from None
    _start(host, stopped)
    console.ok(f"{host.db.name} restored from {backup_id}: {len(manifest.tables)} tables, "
               "row counts match the manifest")
    return safety_id


def _start(host: DbHost, projects: list[str]) -> None:
    for project in projects:
        host.run(f"docker compose -p {shlex.quote(project)} start",
                 what=f"starting compose project {project}", warn=True, root=True)


def _safety_copy(env: Environment, host: DbHost, backup_id: str) -> str:
    """A safety snapshot where snapshots hold the data, else a safety dump; its id."""
    reason = f"safety copy before restoring {backup_id}"
    if not provider.of(env).snapshot_holds_data:
        return take_dump(env, host, reason).id
    return snapshots.create(env, reason=reason, release=host.release())


def confirm(env: Environment, backup_id: str, *, yes: bool, force: bool,
            ask: Callable[[str], str] = console.ask) -> None:
    """Production tiers need --force; everyone types the environment's name unless --yes."""
    if env.is_production and not force:
        raise OpsError(f"{env.name} is a production-tier database: restoring over it needs --force")
    if yes:
        return
    answer = ask(f"Restore {env.name}'s database from {backup_id}? It replaces the current "
                 f"data (a safety copy is taken first). Type the environment name to go on: ")
    if answer.strip() != env.name:
        raise OpsError("not confirmed: nothing was changed")


def restore_db(env: Environment, backup_id: str, *, yes: bool, force: bool,
               auto_revert: bool) -> None:
    """restore-db: from a dump (in place, safety copy first, under the deploy lock) or a
    snapshot (new instance)."""
    confirm(env, backup_id, yes=True, force=force)  # the production guard, before any call
    catalog.find(env, backup_id)  # it exists, before asking anything
    if kind_of(backup_id) == DUMP:
        confirm(env, backup_id, yes=yes, force=force)
        with remote.session(env) as host, deploy.locked(env, host.remote, "restore", backup_id):
            restore_dump(env, host, backup_id, auto_revert=auto_revert)
        return
    if not snapshots.cut_over_left(snapshots.rds(env), env):
        snapshots.source(env)
    confirm(env, backup_id, yes=yes, force=force)
    snapshots.restore(env, backup_id)
