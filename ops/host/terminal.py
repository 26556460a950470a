"""An operator's own terminal on the host: the system `ssh`, holding the same trust as deploy.

Interactive work (a shell, `docker compose exec`, psql) runs through OpenSSH's client rather
than a paramiko channel: it already does what a terminal needs (raw mode, window resizes,
escape sequences, standard input streamed both with and without a terminal) and passes the
remote command's exit status back, as Kamal's `app exec -i` runs `ssh -t`. It is held to what
deploy's connection (ops.host.connect) holds: the environment's key only (no agent, no other
identity, no password prompt), the toolkit's known_hosts only with StrictHostKeyChecking,
nothing forwarded, no user or system ssh_config in between. Tasks open their own verified
connection first, so an unknown or changed host key is refused with deploy's message.

`argv` is pure; `attached` runs it on this process's terminal; `shell` is `inv ssh`.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys

from ops import targets
from ops.config import Environment
from ops.errors import OpsError
from ops.host.session import open_host
from ops.targets import HostTarget

CONNECT_TIMEOUT = 15  # seconds, as ops.host.connect


def argv(host: HostTarget, command: str | None = None, *, tty: bool) -> list[str]:
    """The `ssh` command line reaching `host` as its login user: a login shell without
    `command`, else that shell command; a pseudo-terminal exactly when `tty`. Pure."""
    options = {
        "StrictHostKeyChecking": "yes",
        "UserKnownHostsFile": str(host.known_hosts),
        "GlobalKnownHostsFile": "/dev/null",
        "UpdateHostKeys": "no",
        "IdentitiesOnly": "yes",
        "IdentityAgent": "none",
        "PasswordAuthentication": "no",
        "KbdInteractiveAuthentication": "no",
        "ForwardAgent": "no",
        "ForwardX11": "no",
        "ClearAllForwardings": "yes",
        "ConnectTimeout": str(CONNECT_TIMEOUT),
        "ServerAliveInterval": "30",
        "LogLevel": "ERROR",
    }
    line = ["ssh", "-F", "none", "-i", str(host.key), "-l", host.user, "-p", "22"]
    for name, value in options.items():
        line += ["-o", f"{name}={value}"]
    # `--` ends ssh's options: neither the host nor the command is read as one
    line += ["-t" if tty else "-T", "--", host.address]
    return [*line, command] if command else line


def interactive() -> bool:
    """Whether this process's standard input is a terminal (a person types into it)."""
    return sys.stdin.isatty()


def attached(line: list[str]) -> int:
    """Run an ssh command line on this process's own standard input, output and error; its
    exit status (the remote command's, or 255 when ssh itself failed).

    Ctrl-C belongs to what runs remotely while it runs (ssh passes it on, or ends): this
    process only waits for ssh. Its handler is a Python function, not SIG_IGN, so ssh starts
    with the default disposition."""
    if not shutil.which(line[0]):
        raise OpsError("the ssh client is not installed on this machine",
                       hint="install it (Debian, Ubuntu: apt-get install openssh-client)")
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        return subprocess.run(line, check=False).returncode
    finally:
        signal.signal(signal.SIGINT, previous)


def shell(env: Environment, command: str | None = None) -> int:
    """A login shell on the environment's host (or `command` in one), on this terminal, once
    the toolkit's own connection has verified the host's key; its exit status."""
    host = targets.host(env)
    with open_host(env):  # refuses an unknown or changed key with deploy's message and hint
        pass
    return attached(argv(host, command, tty=interactive()))
