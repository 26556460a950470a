"""The one runner (ops.host.remote) and the database tasks built on it: the commands it sends,
the order in which a file gets its mode and its bytes, and what a failure says. A recording
stand-in plays the SSH connection; nothing leaves this process."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import paramiko
import pytest

from ops import console
from ops.db import remote as db
from ops.errors import CUT_SHORT, OpsError
from ops.host import facts
from ops.host.remote import RERUN, TAIL, Outcome, Remote, as_root, failure, stop_command
from ops.targets import DatabaseTarget

DB = DatabaseTarget("db.internal", 5432, "open_lmis", "postgres")
SECRET = "s3cr3t-Pa55w0rd"
DONE = Outcome(0, "", "")


@pytest.fixture(autouse=True)
def registered_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "_secrets", set())
    console.redact(SECRET)


class Channel:
    """A session channel: records the command (without its marker) and stdin, answers with
    canned output at once."""

    def __init__(self, log: list[tuple[Any, ...]], outcome: Outcome) -> None:
        self.log, self.outcome = log, outcome
        self.out = [outcome.out.encode()] if outcome.out else []
        self.err = [outcome.err.encode()] if outcome.err else []
        self.exit_status, self.eof_received, self.closed = outcome.code, True, False

    def exec_command(self, command: str) -> None:
        self.log.append(("exec", unmarked(command)))

    def sendall(self, data: bytes) -> None:
        self.log.append(("stdin", data))

    def shutdown_write(self) -> None:
        self.log.append(("eof",))

    def get_transport(self) -> Any:
        return SimpleNamespace(is_active=lambda: True)

    def recv_ready(self) -> bool:
        return bool(self.out)

    def recv(self, size: int) -> bytes:
        return self.out.pop()

    def recv_stderr_ready(self) -> bool:
        return bool(self.err)

    def recv_stderr(self, size: int) -> bytes:
        return self.err.pop()

    def exit_status_ready(self) -> bool:
        return True

    def close(self) -> None:
        self.log.append(("close",))


def unmarked(command: str) -> str:
    """A command as sent, without the marker that finds its process group."""
    return re.sub(r"export OPS_RUN=[0-9a-f]{16}; ", "", command, count=1)


def commands(log: list[tuple[Any, ...]]) -> list[str]:
    return [entry[1] for entry in log if entry[0] == "exec"]


class Handle:
    def __init__(self, log: list[tuple[Any, ...]], path: str) -> None:
        self.log, self.path = log, path

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.log.append(("closed", self.path))

    def chmod(self, mode: int) -> None:
        self.log.append(("chmod", self.path, mode))

    def write(self, data: bytes) -> None:
        self.log.append(("write", self.path, data))


@dataclass
class Connection:
    """Fabric's Connection as the runner uses it; every call lands in `log`."""

    user: str = "admin"
    outcome: Outcome = DONE
    log: list[tuple[Any, ...]] = field(default_factory=list)

    def sftp(self) -> Any:
        return SimpleNamespace(open=self._open)

    def _open(self, path: str, mode: str) -> Handle:
        assert mode == "wb"
        self.log.append(("open", path))
        return Handle(self.log, path)

    @property
    def client(self) -> Any:
        session = lambda: Channel(self.log, self.outcome)  # noqa: E731
        return SimpleNamespace(get_transport=lambda: SimpleNamespace(open_session=session))


def remote(user: str = "admin", outcome: Outcome = DONE) -> tuple[Remote, list]:
    connection = Connection(user=user, outcome=outcome)
    return Remote(connection, "203.0.113.7"), connection.log  # type: ignore[arg-type]


def test_root_commands_go_through_sudo_unless_logged_in_as_root() -> None:
    assert as_root("echo 'a b' > /x", "root") == "echo 'a b' > /x"
    assert as_root("echo 'a b' > /x", "admin") == \
        "sudo -n sh -c 'echo '\"'\"'a b'\"'\"' > /x'"


@pytest.mark.parametrize(("user", "root", "sent"), [
    ("admin", True, "sudo -n sh -c 'id -u'"),
    ("admin", False, "id -u"),
    ("root", True, "id -u"),
    ("root", False, "id -u")])
def test_a_command_runs_as_root_or_as_the_login_user(user: str, root: bool, sent: str) -> None:
    runner, log = remote(user, Outcome(0, "0\n", ""))
    assert runner.run("id -u", root=root) == "0\n"
    assert commands(log) == [sent]


def test_a_failure_names_what_where_and_the_exit_code_with_secrets_masked() -> None:
    runner, _ = remote(outcome=Outcome(2, f"connecting with {SECRET}\n", "FATAL: no route\n"))
    with pytest.raises(OpsError) as caught:
        runner.run("psql", what="counting rows")
    assert caught.value.message == ("counting rows failed on 203.0.113.7 (exit 2):\n"
                                    "connecting with ****\nFATAL: no route")
    assert caught.value.hint == RERUN
    assert SECRET not in str(caught.value)


def test_an_unchecked_failure_is_returned_not_raised() -> None:
    runner, _ = remote(outcome=Outcome(1, "", "no such file"))
    outcome = runner.execute("test -x /bin/x", check=False)
    assert outcome == Outcome(1, "", "no such file") and not outcome.ok
    assert runner.ok("test -x /bin/x") is False


def test_a_failure_masks_the_secret_before_cutting_the_tail() -> None:
    # the cut falls inside the secret: masking first leaves no piece of it ("w0rd")
    out = SECRET + "x" * (TAIL - 4)
    message = failure("a step", "h", Outcome(1, out, "")).message
    assert message == "a step failed on h (exit 1): " + "****" + "x" * (TAIL - 4)
    assert failure("a step", "h", Outcome(1, " \n", ""), "").message == \
        "a step failed on h (exit 1)"
    assert failure("", "h", Outcome(3, "one line", "")).message == \
        "a command failed on h (exit 3): one line"


def test_stdin_is_sent_at_once_then_closed_and_the_command_wrapped() -> None:
    runner, log = remote(outcome=Outcome(0, "loaded\n", ""))
    assert runner.stream("docker load", [b"layer1", b"layer2"]) == "loaded\n"
    assert log == [("exec", "sudo -n sh -c 'docker load'"), ("stdin", b"layer1"),
                   ("stdin", b"layer2"), ("eof",), ("close",)]


def test_a_failed_stream_is_scrubbed_and_named() -> None:
    runner, _ = remote(outcome=Outcome(1, "", f"bad token {SECRET}"))
    with pytest.raises(OpsError) as caught:
        runner.stream("docker load", [b"x"])
    assert caught.value.message == "docker load failed on 203.0.113.7 (exit 1): bad token ****"


def test_a_root_file_without_root_login_is_private_before_its_first_byte() -> None:
    runner, log = remote("admin")
    runner.put("/opt/openlmis/.env", b"KEY=v", 0o640)
    (_, temp), *rest = log
    assert temp.startswith(".ops-upload-")
    assert rest == [("chmod", temp, 0o600), ("write", temp, b"KEY=v"), ("closed", temp),
                    ("exec", as_root(f"install -m 640 -o root -g root {temp} "
                                     f"/opt/openlmis/.env; rc=$?; rm -f {temp}; exit $rc",
                                     "admin")), ("eof",), ("close",)]


@pytest.mark.parametrize(("user", "root"), [("root", True), ("admin", False), ("root", False)])
def test_a_file_written_directly_has_its_mode_before_its_first_byte(user: str,
                                                                    root: bool) -> None:
    runner, log = remote(user)
    runner.put("/w/pgpass", b"line", 0o600, root=root)
    assert log == [("open", "/w/pgpass"), ("chmod", "/w/pgpass", 0o600),
                   ("write", "/w/pgpass", b"line"), ("closed", "/w/pgpass")]


def test_database_scripts_run_as_the_login_user_with_libpq_settings() -> None:
    runner, log = remote("admin", Outcome(0, "17\n", ""))
    host = db.DbHost(runner, DB, "/var/tmp/w")
    assert host.run("psql -c 'SHOW x'", what="reading") == (0, "17\n")
    assert commands(log) == [host.command("psql -c 'SHOW x'")]
    assert host.command("psql").startswith("bash -o pipefail -c 'export PGPASSFILE=/var/tmp/w/")
    host.run("apt-get install -y curl", what="installing", root=True)
    assert commands(log)[-1] == as_root(host.command("apt-get install -y curl"), "admin")


def test_a_database_script_gets_its_stdin_and_a_failure_says_what_failed() -> None:
    runner, log = remote("root", Outcome(22, "", "curl: (22) 404 Not Found"))
    host = db.DbHost(runner, DB, "/var/tmp/w")
    with pytest.raises(OpsError) as caught:
        host.run("read -r url", what="downloading dump files", stdin="https://signed\n")
    assert log[:3] == [("exec", host.command("read -r url")), ("stdin", b"https://signed\n"),
                       ("eof",)]
    assert caught.value.message == ("downloading dump files failed on 203.0.113.7 (exit 22): "
                                    "curl: (22) 404 Not Found")
    assert caught.value.hint == ""  # rerunning a database task starts it over: no "resumes"
    assert "signed" not in str(caught.value)
    assert host.run("read -r url", what="x", stdin="u\n", warn=True) == (22, "")


def test_session_files_are_the_login_users_and_private() -> None:
    runner, log = remote("admin")
    db.DbHost(runner, DB, "/var/tmp/w").put(b"host:5432:*:u:pw\n", "/var/tmp/w/pgpass")
    assert log[:2] == [("open", "/var/tmp/w/pgpass"), ("chmod", "/var/tmp/w/pgpass", 0o600)]
    assert not commands(log)


def test_the_client_facts_are_one_command_reading_the_os_as_deploy_does() -> None:
    assert db.CLIENT_FACTS.startswith(facts.OS + "; ")
    assert facts.command([], [], "p").startswith(facts.OS + "; ")
    found = db.client_facts("os_id=debian\nos_version=\"13\"\ncurl=/usr/bin/curl\n"
                            "pg_dump=pg_dump (PostgreSQL) 17.6 (Debian 17.6-0+deb13u1)\n")
    assert found == db.ClientFacts("debian-13", True, 17)
    assert db.client_facts("os_id=amzn\nos_version=2023\ncurl=\npg_dump=\n") == \
        db.ClientFacts("amzn-2023", False, None)


class DroppedConnection:
    """A Fabric connection whose SSH session is gone."""

    user = "root"

    @property
    def client(self) -> Any:
        def session() -> None:
            raise paramiko.SSHException("SSH session not active")
        return SimpleNamespace(get_transport=lambda: SimpleNamespace(open_session=session))


def test_a_lost_connection_is_said_plainly_not_as_a_traceback() -> None:
    remote = Remote(DroppedConnection(), "10.0.0.5")  # type: ignore[arg-type]
    with pytest.raises(OpsError) as caught:
        remote.run("pg_restore -j 2 /x", what="pg_restore")
    assert caught.value.message.startswith("the connection to 10.0.0.5 was lost during "
                                           "pg_restore (SSHException: SSH session not active)")
    assert "the host's state is unknown" in caught.value.message
    assert "run the same command again" in caught.value.hint
    assert caught.value.code == CUT_SHORT


class Hanging(Channel):
    """A command that never ends: no output, no exit status (`fileno` never readable)."""

    def __init__(self, log: list[tuple[Any, ...]]) -> None:
        super().__init__(log, DONE)
        self.command = ""
        self.read_end, self.write_end = os.pipe()

    def exec_command(self, command: str) -> None:
        self.command = command
        super().exec_command(command)

    def exit_status_ready(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.read_end

    def close(self) -> None:
        os.close(self.read_end)
        os.close(self.write_end)
        super().close()


@dataclass
class HangingConnection(Connection):
    """Its first command hangs; the next ones (the stop) answer at once."""

    hanging: list[Hanging] = field(default_factory=list)

    @property
    def client(self) -> Any:
        def session() -> Channel:
            if not self.hanging:
                self.hanging.append(Hanging(self.log))
                return self.hanging[0]
            return Channel(self.log, DONE)
        return SimpleNamespace(get_transport=lambda: SimpleNamespace(open_session=session))


def test_a_command_past_its_timeout_is_stopped_by_its_marker_and_named() -> None:
    connection = HangingConnection(user="admin")
    runner = Remote(connection, "203.0.113.7")  # type: ignore[arg-type]
    with pytest.raises(OpsError) as caught:
        runner.run("pg_dump -Fd", what="the dump", timeout=0.05)
    assert caught.value.message == ("the dump did not finish within 0.05 s on 203.0.113.7; "
                                    "it was stopped")
    assert caught.value.code == CUT_SHORT
    token = re.search(r"OPS_RUN=([0-9a-f]{16})", connection.hanging[0].command)
    assert token and commands(connection.log)[1] == as_root(stop_command(token[1]), "admin")


def test_ctrl_c_stops_the_command_then_goes_on() -> None:
    connection = HangingConnection(user="root")
    runner = Remote(connection, "203.0.113.7")  # type: ignore[arg-type]

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("select.select", interrupted)
        with pytest.raises(KeyboardInterrupt):
            runner.run("pg_restore -j 4 /x", what="pg_restore", timeout=None)
    assert runner.stopped == ["pg_restore"]
    assert commands(connection.log)[1].startswith("g=$(for p in $(grep -lsxz OPS_RUN=")
