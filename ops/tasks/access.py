"""ssh, exec, psql, audit, releases, lock: an operator's access to the environment's host."""

import sys

from invoke import Exit

from ops import console
from ops.errors import OpsError
from ops.tasks.common import ENV_HELP, load, operation, read_only, task, whole

DATA_JSON = "print machine-readable JSON only"


def _status(code: int) -> None:
    """Exit with what ran remotely's status when it failed."""
    if code:
        raise Exit(code=code)


@task(help={"env": ENV_HELP, "command": "run this shell command instead of a login shell"})
@operation
def ssh(c, env=None, command=None):
    """A shell on the host as its login user (host.ssh_user), with deploy's key and host key
    checking; a terminal when this one is."""
    from ops.host import terminal

    _status(terminal.shell(load(env), command))


def _after_dashes() -> list[str]:
    """The words after `--` as typed: Invoke passes tasks no remainder (it keeps one string
    of them, joined with spaces), so they are read from this process's own arguments."""
    argv = sys.argv
    return argv[argv.index("--") + 1:] if "--" in argv else []


@task(name="exec", help={"env": ENV_HELP,
                         "service": "compose service of the live release to run the command in"})
@operation
def exec_(c, service, env=None):
    """Run a command in a service's running container: inv exec SERVICE -- CMD [ARG...]
    (with a terminal when this one is)."""
    from ops.stack import service_exec

    _status(service_exec.run(load(env), service, _after_dashes()))


@task(help={"env": ENV_HELP, "command": "run this one SQL statement and exit"})
@operation
def psql(c, env=None, command=None):
    """psql to the environment's database as its master user, from the host, TLS verified."""
    from ops.db import psql as db_psql

    _status(db_psql.run(load(env), command))


@task(help={"env": ENV_HELP, "lines": "how many of the newest entries (default 20)",
            "json": DATA_JSON})
@read_only
def audit(c, env=None, lines="20", json_=False):
    """The host's audit log, newest first: who deployed, rolled back or broke a lock, when."""
    from ops.stack import audit as stack_audit
    from ops.stack import host_state

    count = whole(lines, "lines", minimum=1)
    if json_:
        console.json_mode()
    records = host_state.audit_log(load(env), count)
    if json_:
        console.emit_json(records)
        return
    console.table(f"audit log ({len(records)}, newest first)",
                  ["time", "who", "action", "release", "result", "detail"],
                  [(r.get("time"), r.get("who"), r.get("action"), r.get("release"),
                    r.get("result"), stack_audit.detail(r)) for r in records])


@task(help={"env": ENV_HELP, "json": DATA_JSON})
@read_only
def releases(c, env=None, json_=False):
    """The releases on the host, newest first: which is live, their age, the images they pin."""
    from ops.stack import host_state
    from ops.stack.release_list import age

    if json_:
        console.json_mode()
    found = host_state.releases(load(env))
    if json_:
        console.emit_json([r.as_dict(found.now) for r in found.releases])
        return
    console.table(f"releases on {found.address} ({len(found.releases)})",
                  ["release", "live", "age", "since", "images"],
                  [(r.id, "live" if r.live else "", age(found.now - r.time),
                    r.since,
                    "\n".join(sorted(set(r.images.values())))) for r in found.releases])


@task(help={"env": ENV_HELP, "json": DATA_JSON,
            "break": "break the lock if it is STALE (its holder's connection is gone); "
                     "a live one is refused"})
@read_only
def lock(c, env=None, break_=False, json_=False):
    """The deploy lock: free, or who holds it since when, and whether that holder's
    connection is gone (stale)."""
    from ops.stack import host_state

    if break_ and c.config.run.dry:
        raise OpsError("--dry cannot hold back breaking the lock",
                       hint="run without --break to see the lock's state")
    if json_:
        console.json_mode()
    environment = load(env)
    address, state = (host_state.break_lock if break_ else host_state.lock_state)(environment)
    if json_:
        console.emit_json(state.as_dict())
        return
    who = state.holder.describe() if state.holder else "an unknown holder"
    if state.state == "free":
        console.ok(f"the deploy lock on {address} is free")
    elif state.state == "broken":
        console.ok(f"broke the stale deploy lock of {who} on {address}")
    elif state.state == "alive":
        console.say(f"the deploy lock on {address} is held by {who}; its connection is alive")
    else:
        console.warn(f"the deploy lock on {address} is STALE: held by {who}, whose connection is "
                     f"gone; once no deploy runs, break it: inv lock --env {environment.name} "
                     "--break")


TASKS = [ssh, exec_, psql, audit, releases, lock]
