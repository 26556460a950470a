"""The one runner: executes built commands on the host over the task's single connection.

Everything else in ops.host, ops.stack and ops.db only BUILDS commands (strings made with `sh`);
this module runs them, uploads files over SFTP and feeds stdin. The security rules live here
and nowhere else:

- secrets travel only on a command's stdin or in a file written over SFTP, never in a command
  line;
- an uploaded file has its final mode (0600 while in transit through sudo) before its first
  byte is written;
- a failed command's error names what failed and where, with the tail of its output in which
  every registered secret is masked (`console.scrub`);
- a connection lost mid-command is an OpsError that says so, never a library's traceback.
"""

from __future__ import annotations

import io
import secrets
import shlex
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

import paramiko
from fabric import Connection

from ops import console
from ops.errors import OpsError

# A step of a change: ("run", command) or ("put", path, content, mode).
Step = tuple[str, str] | tuple[str, str, bytes, int]

RERUN = "fix the cause, then run the same command again: it resumes"
LOST = -1  # the exit code a command gets when its connection goes before it ends
TAIL = 1500  # characters of a failed command's output its error shows


def sh(*argv: str) -> str:
    """One shell command from an argv list, every word quoted."""
    return " ".join(shlex.quote(str(a)) for a in argv)


def as_root(command: str, login: str) -> str:
    """`command` run as root by the login user `login`: through `sudo -n` (never a password
    prompt) unless the login user is root."""
    return command if login == "root" else sh("sudo", "-n", "sh", "-c", command)


@dataclass(frozen=True)
class Outcome:
    """What a command left: its exit code, stdout and stderr."""

    code: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.code == 0


def failure(what: str, address: str, outcome: Outcome, hint: str = RERUN) -> OpsError:
    """The error of a failed command: `what` failed on `address`, its exit code and the tail
    of its output (stdout then stderr), masked BEFORE it is cut so no part of a secret shows."""
    tail = console.scrub((outcome.out + outcome.err).strip())[-TAIL:].strip()
    message = f"{what or 'a command'} failed on {address} (exit {outcome.code})"
    if tail:
        message += (":\n" if "\n" in tail else ": ") + tail
    return OpsError(message, hint=hint)


@dataclass
class Remote:
    """A host reached over one verified connection; `address` names it in messages.

    Commands run as root by default (through `sudo -n` when the login user is not root);
    `root=False` runs them, or writes a file, as the login user.
    """

    connection: Connection
    address: str

    @property
    def sudo(self) -> bool:
        return self.connection.user != "root"

    def wrap(self, command: str) -> str:
        """The command as root: through `sudo -n` when the login user is not root."""
        return as_root(command, self.connection.user)

    def execute(self, command: str, *, what: str = "", root: bool = True, check: bool = True,
                stdin: Iterable[bytes] | None = None, hint: str = RERUN) -> Outcome:
        """Run a shell command (as root unless `root=False`), `stdin` on its standard input
        (sent at once); its outcome. A non-zero exit raises `failure` unless `check=False`."""
        line = self.wrap(command) if root else command
        with self._connected(what):
            if stdin is None:
                result = self.connection.run(line, hide=True, warn=True)
                outcome = Outcome(result.exited, result.stdout, result.stderr)
            else:
                outcome = self._feed(line, stdin)
        if outcome.code == LOST:
            raise self._lost(what)
        if check and not outcome.ok:
            raise failure(what, self.address, outcome, hint)
        return outcome

    def run(self, command: str, *, check: bool = True, what: str = "", root: bool = True,
            hint: str = RERUN) -> str:
        """Run a shell command (as root unless `root=False`); its stdout, or OpsError with the
        tail of its output unless `check=False`."""
        return self.execute(command, what=what, root=root, check=check, hint=hint).out

    def ok(self, command: str, *, root: bool = True) -> bool:
        """Whether a command succeeds (a test, not a change)."""
        return self.execute(command, root=root, check=False).ok

    def put(self, path: str, data: bytes, mode: int = 0o644, *, root: bool = True) -> None:
        """Write a file over SFTP, created with `mode` before any byte is written: root-owned,
        or the login user's with `root=False`.

        A root-owned file without root login goes to a private (0600) temporary file first,
        installed with sudo.
        """
        via_sudo = root and self.sudo
        target = f".ops-upload-{secrets.token_hex(8)}" if via_sudo else path
        with (self._connected(f"writing {path}"),
              self.connection.sftp().open(target, "wb") as handle):
            handle.chmod(0o600 if via_sudo else mode)
            handle.write(data)
        if via_sudo:
            self.run(f"install -m {mode:o} -o root -g root {sh(target)} {sh(path)}; "
                     f"rc=$?; rm -f {sh(target)}; exit $rc", what=f"installing {path}")

    def stream(self, command: str, chunks: Iterable[bytes], *, what: str = "") -> str:
        """Run a command as root fed with `chunks` on its stdin (e.g. `docker load`); its
        output."""
        return self.execute(command, what=what or command, stdin=chunks).out

    def follow(self, command: str, *, what: str = "") -> Iterator[str]:
        """Run a long-lived command as root and yield its output line by line as it comes.

        It runs on a pseudo-terminal: when the connection ends (the task is interrupted or
        killed), the terminal hangs up and the command ends with it instead of lingering.
        """
        channel = self.connection.client.get_transport().open_session()
        try:
            with self._connected(what):
                channel.get_pty()
                channel.exec_command(self.wrap(command))
                pending = b""
                while data := channel.recv(65536):
                    *done, pending = (pending + data).split(b"\n")
                    for raw in done:
                        yield raw.decode(errors="replace").rstrip("\r")
                if pending:
                    yield pending.decode(errors="replace").rstrip("\r")
                code = channel.recv_exit_status()
        finally:
            channel.close()
        if code == LOST:
            raise self._lost(what)
        if code:
            raise failure(what, self.address, Outcome(code, "", ""))

    def _feed(self, command: str, chunks: Iterable[bytes]) -> Outcome:
        """Run a command as it is, `chunks` on its stdin (sent at once, not byte by byte as
        Fabric's in_stream does)."""
        channel = self.connection.client.get_transport().open_session()
        try:
            channel.exec_command(command)
            for chunk in chunks:
                channel.sendall(chunk)
            channel.shutdown_write()
            out = io.BytesIO()
            while data := channel.recv(65536):
                out.write(data)
            err = channel.makefile_stderr("rb").read()
            code = channel.recv_exit_status()
        finally:
            channel.close()
        return Outcome(code, out.getvalue().decode(errors="replace"),
                       err.decode(errors="replace"))

    @contextmanager
    def _connected(self, what: str) -> Iterator[None]:
        """The connection's own failures (reset, closed, timed out) as an OpsError."""
        try:
            yield
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise self._lost(what, f" ({type(exc).__name__}: {exc})") from None

    def _lost(self, what: str, detail: str = "") -> OpsError:
        return OpsError(f"the connection to {self.address} was lost during "
                        f"{what or 'a command'}{detail}",
                        hint="check the network and the host; what ran there may not have "
                        "finished. " + RERUN)

    def apply(self, steps: Iterable[Step], what: str) -> None:
        """Carry out a change's steps in order."""
        for step in steps:
            if step[0] == "put":
                _, path, data, mode = cast(tuple[str, str, bytes, int], step)
                self.put(path, data, mode)
            else:
                self.run(step[1], what=what)

    def close(self) -> None:
        self.connection.close()
