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
- a connection lost mid-command is an OpsError that says so, never a library's traceback;
- every command has a timeout (QUICK unless its caller names a longer one, or none for work
  that legitimately runs long); one that outlives it is stopped, and its error says so;
- Ctrl-C stops what the task started on the host, not only the task.

How a command is stopped: sshd runs each exec channel in a session and process group of its
own (it calls setsid() for the child), so the whole tree a command starts (sudo, the shell,
pg_dump and its workers, what psql's shell escapes start) shares one process group. Each
command exports a random marker first (`export OPS_RUN=TOKEN;`: unlike a word of the command
line, which a shell's exec of its last command drops, the environment is inherited through
exec and fork), by which a second channel finds that group and sends it SIGTERM, then SIGKILL
(`stop_command`). No pty (which would merge stderr into stdout and mangle binary stdin such
as `docker load`'s), and no pid file to leave behind.
"""

from __future__ import annotations

import secrets
import select
import shlex
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import cast

import paramiko
from fabric import Connection

from ops import console
from ops.errors import CUT_SHORT, OpsError

# A step of a change: ("run", command) or ("put", path, content, mode).
Step = tuple[str, str] | tuple[str, str, bytes, int]

RERUN = "fix the cause, then run the same command again: it resumes"
LOST = -1  # the exit code a command gets when its connection goes before it ends
SIGNALLED = -2  # the exit code of a command a signal ended (sshd sends no exit status then)
TAIL = 1500  # characters of a failed command's output its error shows

# Timeouts (seconds) of remote commands, by what they do. None: no limit (dumps, restores,
# image streaming, compose up: their length grows with the data, and Ctrl-C stops them).
QUICK = 300.0  # the default: reading state, small changes, psql queries
SLOW = 1800.0  # installing packages, pulling an image, stopping or starting a stack
UNLIMITED = None
MARK = "OPS_RUN"  # the variable every command exports: finds its process group (stop_command)
GRACE = 5  # seconds between SIGTERM and SIGKILL when a command is stopped


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


def marked(command: str, token: str) -> str:
    """`command` exporting its marker first, for every process it starts."""
    return f"export {MARK}={token}; {command}"


def stop_command(token: str) -> str:
    """A command that stops the process group of the command marked with `token`: SIGTERM,
    then SIGKILL after GRACE seconds (it does not export the marker: it never finds itself)."""
    found = (f"grep -lsxz {sh(f'{MARK}={token}')} /proc/[0-9]*/environ | cut -d/ -f3")
    return (f"g=$(for p in $({found}); do ps -o pgid= -p $p; done | sort -u); "
            "[ -n \"$g\" ] || exit 0; for s in $g; do kill -TERM -- -$s; done 2>/dev/null; "
            f"i=0; while [ $i -lt {GRACE * 5} ]; do alive=; "
            "for s in $g; do kill -0 -- -$s 2>/dev/null && alive=1; done; "
            "[ -z \"$alive\" ] && exit 0; sleep 0.2; i=$((i+1)); done; "
            "for s in $g; do kill -KILL -- -$s; done 2>/dev/null; exit 0")


def timed_out(what: str, address: str, timeout: float) -> OpsError:
    """The error of a command stopped because it outlived its timeout."""
    return OpsError(f"{what or 'a command'} did not finish within {timeout:g} s on {address}; "
                    "it was stopped",
                    hint="look at the host (load, disk, network, a lock held elsewhere), then "
                    "run the same command again: it converges from where the host is",
                    code=CUT_SHORT)


def failure(what: str, address: str, outcome: Outcome, hint: str = RERUN) -> OpsError:
    """The error of a failed command: `what` failed on `address`, its exit code and the tail
    of its output (stdout then stderr), masked BEFORE it is cut so no part of a secret shows."""
    tail = console.scrub((outcome.out + outcome.err).strip())[-TAIL:].strip()
    status = "killed by a signal" if outcome.code == SIGNALLED else f"exit {outcome.code}"
    message = f"{what or 'a command'} failed on {address} ({status})"
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
    _running: dict[str, tuple[bool, str]] = field(default_factory=dict, repr=False)
    stopped: list[str] = field(default_factory=list, repr=False)  # what stop_running ended
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def sudo(self) -> bool:
        return self.connection.user != "root"

    def wrap(self, command: str) -> str:
        """The command as root: through `sudo -n` when the login user is not root."""
        return as_root(command, self.connection.user)

    def execute(self, command: str, *, what: str = "", root: bool = True, check: bool = True,
                stdin: Iterable[bytes] | None = None, hint: str = RERUN,
                timeout: float | None = QUICK) -> Outcome:
        """Run a shell command (as root unless `root=False`), `stdin` on its standard input
        (sent at once); its outcome. Stopped on the host, with an OpsError naming `what`, after
        `timeout` seconds (None: no limit) or on Ctrl-C (then KeyboardInterrupt again). A
        non-zero exit raises `failure` unless `check=False`."""
        token = secrets.token_hex(8)
        line = marked(command, token)
        with self._connected(what):
            channel = self.connection.client.get_transport().open_session()
        with self._lock:
            self._running[token] = (root, what or "a command")
        try:
            with self._connected(what):
                outcome = self._exchange(channel, self.wrap(line) if root else line, stdin,
                                         timeout)
        except _Expired:
            self.stop(token)
            raise timed_out(what, self.address, timeout or 0) from None
        except KeyboardInterrupt:
            self.stop_running()
            raise
        finally:
            channel.close()
            with self._lock:
                self._running.pop(token, None)
        if outcome.code == LOST:
            raise self._lost(what)
        if check and not outcome.ok:
            raise failure(what, self.address, outcome, hint)
        return outcome

    def run(self, command: str, *, check: bool = True, what: str = "", root: bool = True,
            hint: str = RERUN, timeout: float | None = QUICK) -> str:
        """Run a shell command (as root unless `root=False`); its stdout, or OpsError with the
        tail of its output unless `check=False`. `timeout` as in `execute`."""
        return self.execute(command, what=what, root=root, check=check, hint=hint,
                            timeout=timeout).out

    def ok(self, command: str, *, root: bool = True, timeout: float | None = QUICK) -> bool:
        """Whether a command succeeds (a test, not a change)."""
        return self.execute(command, root=root, check=False, timeout=timeout).ok

    def put(self, path: str, data: bytes, mode: int = 0o644, *, root: bool = True) -> None:
        """Write a file over SFTP, created with `mode` before any byte is written: root-owned,
        or the login user's with `root=False`.

        A root-owned file without root login goes to a private (0600) temporary file first,
        installed with sudo.
        """
        via_sudo = root and self.sudo
        target = f".ops-upload-{secrets.token_hex(8)}" if via_sudo else path
        try:
            with (self._connected(f"writing {path}"),
                  self.connection.sftp().open(target, "wb") as handle):
                handle.chmod(0o600 if via_sudo else mode)
                handle.write(data)
        except KeyboardInterrupt:
            if via_sudo:  # the temporary copy; a partial `path` is its caller's to remove
                with suppress(OSError, paramiko.SSHException):
                    self.connection.sftp().remove(target)
            raise
        if via_sudo:
            self.run(f"install -m {mode:o} -o root -g root {sh(target)} {sh(path)}; "
                     f"rc=$?; rm -f {sh(target)}; exit $rc", what=f"installing {path}")

    def stream(self, command: str, chunks: Iterable[bytes], *, what: str = "") -> str:
        """Run a command as root fed with `chunks` on its stdin (e.g. `docker load`); its
        output."""
        return self.execute(command, what=what or command, stdin=chunks,
                            timeout=UNLIMITED).out

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

    def stop(self, token: str) -> None:
        """Stop the command marked `token` on the host (its whole process group); quietly
        nothing when the connection is gone."""
        root, _ = self._running.get(token, (True, ""))
        line = stop_command(token)
        with suppress(OSError, EOFError, paramiko.SSHException):
            channel = self.connection.client.get_transport().open_session()
            try:
                self._exchange(channel, self.wrap(line) if root else line, None, GRACE + 10)
            except _Expired:
                pass
            finally:
                channel.close()

    def stop_running(self) -> None:
        """Stop every command this connection is running, from any thread (Ctrl-C: the work a
        task started on the host ends with it); what they were doing is added to `stopped`."""
        with self._lock:
            running = dict(self._running)
        for token, (_, what) in running.items():
            self.stop(token)
            self.stopped.append(what)

    @contextmanager
    def stopped_on_interrupt(self) -> Iterator[None]:
        """Around threads running commands: Ctrl-C in this (main) thread stops their commands,
        so that waiting for the threads does not wait for the commands."""
        try:
            yield
        except KeyboardInterrupt:
            self.stop_running()
            raise

    def _exchange(self, channel: paramiko.Channel, command: str,
                  chunks: Iterable[bytes] | None, timeout: float | None) -> Outcome:
        """Run a command as it is on `channel`, `chunks` on its stdin (sent at once, not byte
        by byte as Fabric's in_stream does); its outcome, LOST as its code if the connection
        went first, SIGNALLED if a signal ended it. _Expired after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        channel.exec_command(command)
        for chunk in chunks or ():
            channel.sendall(chunk)
        channel.shutdown_write()
        transport = channel.get_transport()
        out, err = bytearray(), bytearray()
        while True:
            if channel.recv_ready():
                out += channel.recv(65536)
            elif channel.recv_stderr_ready():
                err += channel.recv_stderr(65536)
            elif (channel.exit_status_ready() and channel.eof_received) or channel.closed \
                    or not transport.is_active():
                break
            else:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise _Expired
                select.select([channel], [], [], min(left or 1.0, 1.0))
        code = channel.exit_status  # paramiko's -1 (LOST) until an exit-status arrives
        if code == LOST and transport.is_active():  # a signal's end has no exit-status
            code = SIGNALLED
        return Outcome(code, out.decode(errors="replace"), err.decode(errors="replace"))

    @contextmanager
    def _connected(self, what: str) -> Iterator[None]:
        """The connection's own failures (reset, closed, timed out) as an OpsError."""
        try:
            yield
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise self._lost(what, f" ({type(exc).__name__}: {exc})") from None

    def _lost(self, what: str, detail: str = "") -> OpsError:
        return OpsError(f"the connection to {self.address} was lost during "
                        f"{what or 'a command'}{detail}: the host's state is unknown (that "
                        "work may have finished, failed or still be running)",
                        hint="check the network and that the host is up, then run the same "
                        "command again: it converges from wherever the host was left",
                        code=CUT_SHORT)

    def apply(self, steps: Iterable[Step], what: str) -> None:
        """Carry out a change's steps in order (SLOW: they install packages)."""
        for step in steps:
            if step[0] == "put":
                _, path, data, mode = cast(tuple[str, str, bytes, int], step)
                self.put(path, data, mode)
            else:
                self.run(step[1], what=what, timeout=SLOW)

    def close(self) -> None:
        self.connection.close()


class _Expired(Exception):
    """A command outlived its timeout."""
