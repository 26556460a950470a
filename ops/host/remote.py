"""The one runner: executes built commands on the host over the task's single connection.

Everything else in ops.host and ops.stack only BUILDS commands (strings made with `sh`); this
module runs them, uploads files over SFTP and feeds stdin (secrets travel only those two
ways, never in a command line).
"""

from __future__ import annotations

import io
import secrets
import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from fabric import Connection
from invoke.exceptions import UnexpectedExit

from ops import console
from ops.errors import OpsError

# A step of a change: ("run", command) or ("put", path, content, mode).
Step = tuple[str, str] | tuple[str, str, bytes, int]


def sh(*argv: str) -> str:
    """One shell command from an argv list, every word quoted."""
    return " ".join(shlex.quote(str(a)) for a in argv)


@dataclass
class Remote:
    """A host reached over one verified connection; `address` names it in messages."""

    connection: Connection
    address: str

    @property
    def sudo(self) -> bool:
        return self.connection.user != "root"

    def wrap(self, command: str) -> str:
        """The command as root: through `sudo -n` when the login user is not root."""
        return sh("sudo", "-n", "sh", "-c", command) if self.sudo else command

    def run(self, command: str, *, check: bool = True, what: str = "") -> str:
        """Run a shell command as root; its stdout, or OpsError with the tail of its output."""
        try:
            result = self.connection.run(self.wrap(command), hide=True, warn=not check)
        except UnexpectedExit as exc:
            out = (exc.result.stdout + exc.result.stderr).strip()[-1500:]
            raise OpsError(f"{what or 'a command'} failed on {self.address} "
                           f"(exit {exc.result.exited}):\n{console.scrub(out)}",
                           hint="fix the cause, then run the same command again: it resumes"
                           ) from None
        return result.stdout

    def ok(self, command: str) -> bool:
        """Whether a command succeeds (a test, not a change)."""
        return self.connection.run(self.wrap(command), hide=True, warn=True).ok

    def put(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write a root-owned file over SFTP, created with `mode` before any byte is written.

        Without root login it goes to a private temporary file first, installed with sudo.
        """
        target = f".ops-upload-{secrets.token_hex(8)}" if self.sudo else path
        with self.connection.sftp().open(target, "wb") as handle:
            handle.chmod(0o600 if self.sudo else mode)
            handle.write(data)
        if self.sudo:
            self.run(f"install -m {mode:o} -o root -g root {sh(target)} {sh(path)}; "
                     f"rc=$?; rm -f {sh(target)}; exit $rc", what=f"installing {path}")

    def stream(self, command: str, chunks: Iterable[bytes]) -> str:
        """Run a command as root fed with `chunks` on its stdin (e.g. `docker load`); its
        output."""
        code, out, err = self.feed(self.wrap(command), chunks)
        if code != 0:
            raise OpsError(f"{command} failed on {self.address} (exit {code}): {err[-800:]}")
        return out

    def feed(self, command: str, chunks: Iterable[bytes]) -> tuple[int, str, str]:
        """Run a command as it is, `chunks` on its stdin (sent at once, not byte by byte as
        Fabric's in_stream does); its exit code, stdout and stderr."""
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
        return code, out.getvalue().decode(errors="replace"), err.decode(errors="replace")

    def apply(self, steps: Iterable[Step], what: str) -> None:
        """Carry out a change's steps in order."""
        for step in steps:
            if step[0] == "put":
                _, path, data, mode = step
                self.put(path, data, mode)
            else:
                self.run(step[1], what=what)

    def close(self) -> None:
        self.connection.close()
