"""Open the environment's host: one verified connection, wrapped in the one runner."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress

from ops import targets
from ops.config import Environment
from ops.errors import OpsError
from ops.host.connect import ChangedHost, UnknownHost, connect, console_fingerprints
from ops.host.remote import Remote
from ops.stack import audit


@contextmanager
def open_host(env: Environment) -> Iterator[Remote]:
    """The environment's host (node 1) over one connection, closed on exit.

    On Ctrl-C, what runs on the host is stopped (the cleanups on the way out have already
    run when it reaches here), and an interrupted task that changes things writes so in the
    host's audit log.

    A first contact with an EC2 host, or with the new instance that replaced a lost one at the
    same address, is refused with what the instance printed on its console, so the operator
    can compare fingerprints before accepting the key.
    """
    with _opened(env, targets.host(env)) as remote:
        yield remote


@contextmanager
def open_nodes(env: Environment) -> Iterator[list[tuple[targets.HostTarget, Remote]]]:
    """Every node of the environment (node 1 first), each over its own connection, verified
    as `open_host` verifies one."""
    with ExitStack() as stack:
        yield [(host, stack.enter_context(_opened(env, host))) for host in targets.hosts(env)]


@contextmanager
def _opened(env: Environment, host: targets.HostTarget) -> Iterator[Remote]:
    try:
        connection = connect(host.address, user=host.user, key=host.key,
                             known_hosts=host.known_hosts)
    except (UnknownHost, ChangedHost) as exc:
        if host.instance_id:
            exc.hint = f"{_printed_fingerprints(env, host.instance_id, exc.fingerprint)}; " \
                       + exc.hint
        raise
    remote = Remote(connection, host.address)
    try:
        yield remote
    except KeyboardInterrupt:
        _interrupted(remote)
        raise
    finally:
        connection.close()


def _interrupted(remote: Remote) -> None:
    """Stop what still runs on the host; then the audit entry, if a task that changes things
    was interrupted (once per task, even through nested connections; a second Ctrl-C, or a
    connection already gone, skips it)."""
    remote.stop_running()
    task = audit.TASK.get()
    if task:
        audit.TASK.set(None)
        with suppress(OpsError, KeyboardInterrupt):
            remote.run(audit.append_command(audit.interrupted(task, remote.stopped)),
                       what="writing the audit log")


def _printed_fingerprints(env: Environment, instance_id: str, offered: str) -> str:
    """What the EC2 instance printed on its console, compared with what the host offered."""
    from ops.aws.session import client

    try:
        output = client(env, "ec2").get_console_output(InstanceId=instance_id, Latest=True)
    except Exception as exc:  # the hint is a courtesy: never hide the refusal behind it
        return f"its console output could not be read ({type(exc).__name__})"
    printed = console_fingerprints(output.get("Output") or "")
    if not printed:
        return f"instance {instance_id} printed no fingerprints (yet) on its console"
    digests = {p.split()[-1] for p in printed}
    verdict = "MATCHES" if offered.split()[-1] in digests else "does NOT match: do not accept it"
    return f"instance {instance_id} printed {', '.join(printed)} — the offered key {verdict}"
