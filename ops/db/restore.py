"""restore-db from a dump or a kept copy; the host-side restore steps verify-backup shares.

From a dump: checksums and a preflight (server major, extensions, owners: nothing touched
before they pass) → a fresh database beside the live one (ops.db.swap) with the archive's
database-level settings → extensions → pg_restore -j → row counts against the manifest → stop
the stack → one transaction swaps the names → start the stack. The live database is untouched
until the swap and kept after it, so wherever a restore dies the database is either the old
one or the restored one, and going back is the same swap with the kept copy. Extensions
(postgis, uuid-ossp, any the archive has) are created, never dropped.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from ops import console, provider, targets
from ops.approval import Approval, granted, scope
from ops.config import Environment
from ops.db import catalog, dumps, extensions, remote, snapshots, swap, transfer
from ops.db.manifest import DUMP, Manifest, count_differences, human, kind_of, now
from ops.db.remote import DbHost
from ops.errors import OpsError
from ops.host.remote import QUICK, SLOW, UNLIMITED, Remote
from ops.host.session import open_host
from ops.stack import deploy
from ops.swarm import stack as swarm

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


def archive_extensions(directory: str) -> str:
    """A command printing the names of the extensions a dump's archive holds."""
    return (rf"pg_restore -l {shlex.quote(directory)} | "
            rf"sed -nE 's/{TOC_ENTRY} EXTENSION - ([^ ]+) .*/\1/p'")


def load_commands(directory: str, database: str, jobs: int) -> list[tuple[str, str, bool]]:
    """What loads a dump's archive into a new `database` with `jobs` parallel jobs: (what,
    command, whether it may run for long) each, in order. Pure: the scheduled drill on the
    host runs the same commands (ops.host.schedule).

    The archive's EXTENSION entries are created here (IF NOT EXISTS) and skipped by pg_restore;
    their comments are restored (the master who creates an extension owns it). Their names
    come from the archive: psql quotes each as an identifier (`:"e"`), so no name can inject
    SQL.

    The data of the extensions' own tables (postgis's spatial_ref_sys) is skipped too: the
    extension brings it, and as on RDS they belong to the superuser, not to the master.
    """
    d, db = shlex.quote(directory), shlex.quote(database)
    names = archive_extensions(directory)
    create = ("printf '%s\\n' 'CREATE EXTENSION IF NOT EXISTS :\"e\";' | "
              f'psql -X -q -v ON_ERROR_STOP=1 -v e="$e" -d {db}')
    skip = ('FILENAME == ARGV[1] { skip[$0]; next } '
            '!($4 == "TABLE" && $5 == "DATA" && ($6 " " $7) in skip)')
    options = "-c synchronous_commit=off -c maintenance_work_mem=256MB"
    return [
        ("creating extensions", f"for e in {' '.join(extensions.REQUIRED)} $({names}); do "
         f"{create} || exit 1; done", False),
        ("listing what to restore",
         f"psql -X -At -v ON_ERROR_STOP=1 -d {db} -c {shlex.quote(EXTENSION_TABLES_SQL)} "
         f"> {d}/extension-tables && pg_restore -l {d} | "
         f"grep -vE '{TOC_ENTRY} EXTENSION ' | "
         f"awk {shlex.quote(skip)} {d}/extension-tables - > {d}/toc", False),
        ("pg_restore", f"PGOPTIONS='{options}' pg_restore -j {jobs} --exit-on-error "
         f"-L {d}/toc -d {db} {d}", True),
    ]


def load(host: DbHost, directory: str, database: str, jobs: int) -> None:
    """Into a new `database`: load_commands' extensions and archive, with `jobs` or the host's
    CPU count of parallel jobs, whichever is larger."""
    for what, command, long in load_commands(directory, database, max(jobs, host.cpus())):
        host.run(command, what=what, timeout=UNLIMITED if long else QUICK)


def services(remote: Remote, verb: str) -> list[str]:
    """`docker compose -p P stop|start` for each OpenLMIS project on the host; their names."""
    projects = remote.run(f"{_PROJECTS} || true", what="finding services").split()
    for project in projects:
        remote.run(f"docker compose -p {shlex.quote(project)} {verb}",
                   what=f"{verb} of compose project {project}", timeout=SLOW)
    return projects


@contextmanager
def stack_stopped(env: Environment, remote: Remote) -> Iterator[None]:
    """The stack's services stopped around a cut-over, and started again however it ends
    (then the health gate's verdict): the cut-over leaves the old database or the new one,
    never half of each. On a swarm, the stack's services are scaled to none and back."""
    if env.host.swarm:
        try:
            with swarm.stopped(remote, env.project):
                yield
        finally:
            deploy.settle(env, remote)
        return
    stopped = services(remote, "stop")
    try:
        yield
    finally:
        for project in stopped:
            remote.run(f"docker compose -p {shlex.quote(project)} start",
                       what=f"starting compose project {project}", check=False)
        if env.project in stopped:
            deploy.settle(env, remote)


@contextmanager
def held(env: Environment, subject: str, *,
         break_lock: bool) -> Iterator[Callable[[], AbstractContextManager[None]]]:
    """A snapshot restore's hold on the stack: the deploy lock, and (for the cut-over) the
    services stopped. An environment without a host has no stack to hold."""
    if not targets.has_host(env):
        console.warn(f"{env.name} has no host: no stack to stop around the cut-over")
        yield nullcontext
        return
    with open_host(env) as remote, deploy.locked(env, remote, "restore-db", subject,
                                                 break_lock=break_lock):
        yield lambda: stack_stopped(env, remote)


def preflight(host: DbHost, manifest: Manifest, directory: str) -> None:
    """Refuse, before anything changes, a dump the server cannot take: from a newer major
    version, needing extensions the server does not offer, or owned by roles the connected
    user cannot act as."""
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
    owners, grantees = dump_roles(host, directory)
    privilege = "SET" if server >= 16 else "MEMBER"
    if foreign := host.script(swap.FOREIGN_OWNERS_SQL, {"roles": owners, "privilege": privilege},
                              what="checking the dump's owners").strip():
        raise OpsError(f"dump {manifest.id} has objects owned by {foreign}, which "
                       f"{host.db.user} cannot act as (pg_restore gives every object its "
                       "owner, which needs SET ROLE to that owner)",
                       hint=f"nothing was changed; create the role(s) and GRANT each TO "
                       f"{host.db.user}, then restore again")
    if absent := host.script(swap.MISSING_ROLES_SQL, {"roles": grantees},
                             what="checking the dump's grantees").strip():
        raise OpsError(f"dump {manifest.id} grants privileges to {absent}, which the server "
                       "does not have", hint="nothing was changed; create the role(s), then "
                       "restore again")


def dump_roles(host: DbHost, directory: str) -> tuple[str, str]:
    """The roles a dump's objects are owned by, and those it grants privileges to (PUBLIC
    aside): each one quoted identifier per line, as pg_restore prints them."""
    owners, _, grantees = host.run(roles_command(directory),
                                   what="listing the dump's roles")[1].partition("/\n")
    return owners, grantees


def roles_command(directory: str) -> str:
    """What dump_roles runs: owners, a line "/", grantees. Pure (the scheduled drill runs it)."""
    d = shlex.quote(directory)
    return (f"pg_restore -s -f - {d} > {d}/schema.sql && "
            f"sed -nE 's/^ALTER .* OWNER TO (.+);$/\\1/p' {d}/schema.sql | sort -u && echo / && "
            f"sed -E 's/ WITH GRANT OPTION;$/;/' {d}/schema.sql | "
            "sed -nE 's/^(GRANT .* TO|REVOKE .* FROM) (.+);$/\\2/p' | grep -vx PUBLIC | sort -u; "
            f"rm -f {d}/schema.sql")


def restore_dump(env: Environment, host: DbHost, backup_id: str) -> str:
    """Restore the environment's database from a dump beside the live one and swap it in;
    the name the previous database is kept under.

    Until the swap the live database and the stack are untouched: a failure drops the
    incoming copy (a leftover of a dead run is dropped by the next)."""
    manifest = dumps.manifest(env, backup_id)
    directory = fetch(env, host, manifest)
    preflight(host, manifest, directory)
    names = swap.Names.restore(host.db.name, now())
    _check_storage(env, manifest)
    try:
        console.step(f"restoring {backup_id} into {names.incoming}, beside {names.live}")
        _create_incoming(host, names, directory)
        load(host, directory, names.incoming, env.backups.dump_jobs)
        if diff := count_differences(manifest.tables, host.row_counts(names.incoming)):
            raise OpsError("restored row counts differ from the manifest: " + "; ".join(diff))
    except (OpsError, KeyboardInterrupt) as exc:
        try:
            host.script(swap.DROP_SQL, names.variables(), database=swap.MAINTENANCE_DB,
                        what=f"dropping {names.incoming}")
            left = f"{names.incoming} was dropped"
        except OpsError:
            left = f"the next restore drops what is left of {names.incoming}"
        raise OpsError(f"restoring {backup_id} failed: {exc}",
                       hint=f"{names.live} and the stack were not touched; {left}") from None
    host.run(f"rm -rf {shlex.quote(directory)}", what="cleaning up", warn=True)
    try:
        swap_in(env, host, names)
    except OpsError as exc:
        raise OpsError(f"restoring {backup_id}: the swap failed: {exc.message}",
                       hint=f"the renames are one transaction: if {names.kept} exists, the "
                       f"restore went through; if not, {names.live} is as it was and "
                       f"{names.incoming} (the restored data) is dropped by the next restore-db. "
                       f"If the stack stayed stopped, inv deploy --env {env.name} starts it") \
            from None
    console.ok(f"{names.live} restored from {backup_id}: {len(manifest.tables)} tables, "
               f"row counts match the manifest; the previous database is kept as {names.kept}")
    return names.kept


def _check_storage(env: Environment, manifest: Manifest) -> None:
    """Refuse a restore the server's storage cannot hold beside the live database: a full
    RDS instance stops taking the live database's writes too."""
    need = manifest.database_size * 11 // 10 + (1 << 30)
    free = provider.of(env).database_free_bytes(env)
    if free is None:
        console.warn(f"the database server's free storage is not known; the restore needs about "
                     f"{human(need)} beside the live database")
    elif free < need:
        raise OpsError(f"the database server has {human(free)} of storage free; restoring "
                       f"{manifest.id} beside the live database needs about {human(need)} "
                       f"({human(manifest.database_size)} plus 10% and 1 GiB)",
                       hint="nothing was changed; grow the storage (database.storage_gb, then "
                       "inv provision) or drop kept copies, then restore again")


def _create_incoming(host: DbHost, names: swap.Names, directory: str) -> None:
    """A new, empty database shaped like the live one (owner, encoding, collation), with the
    archive's database-level settings, comment and privileges."""
    live = host.script(swap.LIVE_SETTINGS_SQL, names.variables(), database=swap.MAINTENANCE_DB,
                       what=f"reading {names.live}'s settings").strip()
    if live:
        owner, encoding, collate, ctype = live.split("|")
        host.script(swap.CREATE_SQL, {**names.variables(), "owner": owner,
                                      "encoding": encoding, "collate": collate, "ctype": ctype},
                    database=swap.MAINTENANCE_DB, what=f"creating {names.incoming}")
    else:
        host.script(swap.CREATE_DEFAULT_SQL, names.variables(), database=swap.MAINTENANCE_DB,
                    what=f"creating {names.incoming}")
    d = shlex.quote(directory)
    _, sql = host.run(f"pg_restore --create -l {d} | grep -E '{TOC_ENTRY} (ACL - DATABASE|"
                      f"DATABASE PROPERTIES|COMMENT - DATABASE) ' > {d}/database-toc; "
                      f"if [ -s {d}/database-toc ]; then pg_restore --create -L {d}/database-toc "
                      f"-f - {d}; fi", what="reading the dump's database settings")
    if sql.strip():
        host.script(swap.retarget(sql, names.incoming), {}, database=names.incoming,
                    what="applying the dump's database settings")


def swap_in(env: Environment, host: DbHost, names: swap.Names) -> None:
    """Stop the stack, swap the names in one transaction, start the stack again: it runs on
    the old or on the new database, never on none."""
    with stack_stopped(env, host.remote):
        host.script(swap.SWAP_SQL, names.variables(), database=swap.MAINTENANCE_DB,
                    what=f"swapping {names.incoming} in as {names.live}")


def swap_back(env: Environment, host: DbHost, copy: str) -> str:
    """Make a kept copy the live database again; the name the live one is kept under."""
    names = swap.Names.back(host.db.name, copy, now())
    kept = host.script(swap.KEPT_SQL, {"prefix": names.live + swap.BEFORE},
                       database=swap.MAINTENANCE_DB, what="listing kept copies").split()
    if copy not in kept:
        raise OpsError(f"{env.name} has no kept copy {copy}",
                       hint="kept copies: " + (", ".join(kept) or "none"))
    swap_in(env, host, names)
    console.ok(f"{names.live} is {copy} again; the database it replaced is kept as "
               f"{names.kept}")
    return names.kept


def guard(env: Environment, *, force: bool) -> None:
    """Production tiers need --force, before any call."""
    if env.is_production and not force:
        raise OpsError(f"{env.name} is a production-tier database: restoring over it needs --force")


def restore_db(env: Environment, backup_id: str, *, force: bool, break_lock: bool = False,
               approval: Approval | None = None) -> None:
    """restore-db: from a dump or a kept copy (swapped in under the deploy lock), or from a
    snapshot (a new instance)."""
    approval = approval or granted()
    guard(env, force=force)
    stops = "the stack stops for the swap, and the database it replaces is kept beside it"
    if swap.is_copy(backup_id) or kind_of(backup_id) == DUMP:
        if swap.is_copy(backup_id):
            line = f"~ database {env.database.name}: the kept copy {backup_id} swapped back in"
        else:
            catalog.find(env, backup_id)  # it exists, before asking anything
            line = (f"~ database {env.database.name}: restored from dump {backup_id} beside "
                    "the live one, then swapped in")
        if not approval.review(scope(env), f"{env.name}: restore the database",
                               [f"{line}; {stops}"]):
            return
        with remote.session(env) as host, deploy.locked(
                env, host.remote, "restore-db", backup_id, break_lock=break_lock):
            if swap.is_copy(backup_id):
                swap_back(env, host, backup_id)
            else:
                restore_dump(env, host, backup_id)
        approval.outcome(restored=backup_id)
        return
    if backup_id not in {backup.id for backup in catalog.backups(env)}:
        raise OpsError(f"{env.name} has no backup, snapshot or kept database copy named "
                       f"{backup_id}", hint="see: inv list-backups (kept copies are named "
                       f"{env.database.name}{swap.BEFORE}<time>)")
    if not snapshots.cut_over_left(snapshots.rds(env), env):
        snapshots.source(env)
    if not approval.review(scope(env), f"{env.name}: restore the database", [
            f"~ RDS instance {env.prefix}-db: a new instance restored from snapshot "
            f"{backup_id} takes its place; the stack stops for the cut-over, and the instance "
            "it replaces is kept under another name"]):
        return
    with held(env, backup_id, break_lock=break_lock) as cut_over:
        snapshots.restore(env, backup_id, cut_over)
    approval.outcome(restored=backup_id)
