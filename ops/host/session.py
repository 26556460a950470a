"""Open the environment's host: one verified connection, wrapped in the one runner."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ops import targets
from ops.config import Environment
from ops.host.connect import UnknownHost, connect, console_fingerprints
from ops.host.remote import Remote


@contextmanager
def open_host(env: Environment) -> Iterator[Remote]:
    """The environment's host over one connection, closed on exit.

    A first contact with an EC2 host is refused with what the instance printed on its console,
    so the operator can compare fingerprints before accepting the key.
    """
    host = targets.host(env)
    try:
        connection = connect(host.address, user=host.user, key=host.key,
                             known_hosts=host.known_hosts)
    except UnknownHost as exc:
        if host.instance_id:
            exc.hint = f"{_printed_fingerprints(env, host.instance_id, exc.fingerprint)}; " \
                       + exc.hint
        raise
    try:
        yield Remote(connection, host.address)
    finally:
        connection.close()


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
