"""The access tasks' pure parts: the ssh command line (read back by OpenSSH itself), the
exec and psql commands, and reading the audit log, the releases and the lock."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ops.db.psql import command as psql_command
from ops.db.remote import DbHost
from ops.errors import OpsError
from ops.host import terminal
from ops.stack import audit, lock, release_list, service_exec
from ops.targets import DatabaseTarget, HostTarget
from ops.tasks import access

HOST = HostTarget("10.0.0.5", "admin", Path("/keys/id_ed25519"), Path("/keys/known_hosts"))


def effective(line: list[str], key: Path) -> dict[str, list[str]]:
    """What OpenSSH makes of a command line (`ssh -G`: evaluated, nothing connected)."""
    line = [line[0], "-G", *[key.as_posix() if w == str(HOST.key) else w for w in line[1:]]]
    out = subprocess.run(line, capture_output=True, text=True, check=True,
                         stdin=subprocess.DEVNULL).stdout
    found: dict[str, list[str]] = {}
    for row in out.splitlines():
        name, _, value = row.partition(" ")
        found.setdefault(name, []).append(value)
    return found


def test_ssh_holds_deploys_trust_and_forwards_nothing(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    key.write_text("")
    line = terminal.argv(HOST, tty=True)
    assert line[-2:] == ["--", "10.0.0.5"] and "-t" in line and "-A" not in line
    config = effective(line, key)
    assert config["user"] == ["admin"] and config["hostname"] == ["10.0.0.5"]
    assert config["identityfile"] == [str(key)]  # the environment's key, and no other
    assert config["stricthostkeychecking"] == ["true"]
    assert config["userknownhostsfile"] == ["/keys/known_hosts"]
    assert config["globalknownhostsfile"] == ["/dev/null"]
    assert (config["identitiesonly"], config["identityagent"]) == (["yes"], ["none"])
    assert config["forwardagent"] == config["forwardx11"] == ["no"]
    assert config["clearallforwardings"] == ["yes"]
    assert config["passwordauthentication"] == config["kbdinteractiveauthentication"] == ["no"]
    assert config["requesttty"] == ["true"]


def test_ssh_without_a_terminal_runs_one_command() -> None:
    line = terminal.argv(HOST, "echo -n 'a b'", tty=False)
    assert line[-4:] == ["-T", "--", "10.0.0.5", "echo -n 'a b'"]  # never read as an option


def test_attached_returns_the_commands_status() -> None:
    assert terminal.attached([sys.executable, "-c", "raise SystemExit(4)"]) == 4
    with pytest.raises(OpsError, match="ssh client is not installed"):
        terminal.attached(["no-such-ssh-client"])


def test_exec_is_compose_exec_in_the_live_release_as_root() -> None:
    as_user = service_exec.exec_command("openlmis", "referencedata", ["sh", "-c", "echo $HOME"],
                                        tty=False, login="admin")
    assert as_user == ("sudo -n sh -c 'cd /opt/openlmis/current && docker compose --ansi never "
                       "-p openlmis exec -T -- referencedata sh -c '\"'\"'echo $HOME'\"'\"''")
    assert service_exec.exec_command("openlmis", "nginx", ["nginx", "-T"], tty=True,
                                     login="root") == (
        "cd /opt/openlmis/current && docker compose --ansi never -p openlmis exec -- nginx "
        "nginx -T")


SERVICES = "release\t3.19.2-abc\nservice\tnginx\nservice\tauth\nservice\tlog\n" \
           "running\tnginx\nrunning\tlog\n"


def test_an_unknown_or_stopped_service_is_refused_naming_what_there_is() -> None:
    found = service_exec.parse(SERVICES)
    assert found == service_exec.Services("3.19.2-abc", ("nginx", "auth", "log"),
                                          ("nginx", "log"))
    service_exec.check(found, "nginx", "10.0.0.5", "prod")
    with pytest.raises(OpsError) as unknown:
        service_exec.check(found, "nosuchservice", "10.0.0.5", "prod")
    assert str(unknown.value) == ("release 3.19.2-abc has no service 'nosuchservice'\n"
                                  "  → its services: auth, log, nginx")
    with pytest.raises(OpsError, match=r"auth of release 3\.19\.2-abc is not running") as stopped:
        service_exec.check(found, "auth", "10.0.0.5", "prod")
    assert "running: log, nginx" in stopped.value.hint
    with pytest.raises(OpsError, match=r"nothing is deployed on 10\.0\.0\.5"):
        service_exec.check(service_exec.parse(""), "nginx", "10.0.0.5", "prod")


def test_psql_verifies_the_server_and_reads_the_password_from_a_file_only(
        tmp_path: Path) -> None:
    db = DatabaseTarget("db.example.internal", 5432, "open_lmis", "postgres")
    host = DbHost(remote=None, db=db, work="/var/tmp/openlmis-db/session.x1")  # type: ignore[arg-type]
    interactive = psql_command(host, None)
    assert "PGPASSWORD" not in interactive and "password" not in interactive.lower()
    # what psql is started with: the command run by a shell, a psql that prints its arguments
    # and its libpq environment
    (tmp_path / "psql").write_text("#!/bin/sh\nprintf '%s\\n' \"$@\"; env | grep ^PG | sort\n")
    (tmp_path / "psql").chmod(0o755)

    def started(command: str) -> list[str]:
        return subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True,
                              env={"PATH": f"{tmp_path}:/usr/bin:/bin"}).stdout.splitlines()

    libpq = ["PGCONNECT_TIMEOUT=10", "PGHOST=db.example.internal",
             "PGPASSFILE=/var/tmp/openlmis-db/session.x1/pgpass", "PGPORT=5432",
             "PGSSLMODE=verify-full", "PGSSLROOTCERT=/var/tmp/openlmis-db/session.x1/ca.pem",
             "PGUSER=postgres"]
    assert started(interactive) == ["-d", "open_lmis", *libpq]
    assert started(psql_command(host, "SELECT 'it''s' AS \"a b\"")) == [
        "-X", "-v", "ON_ERROR_STOP=1", "-d", "open_lmis", "-c", "SELECT 'it''s' AS \"a b\"",
        *libpq]


LOG = "\n".join([
    json.dumps({"time": "2026-03-01T10:00:00+00:00", "who": "ana@ops", "action": "deploy",
                "release": "3.19.2-abc", "result": "ok", "previous": ""}),
    "not json",
    json.dumps({"time": "2026-03-02T10:00:00+00:00", "who": "ben@ops", "action": "rollback",
                "release": "3.19.1-def", "result": "failed", "failed": "3.19.2-abc"}),
    "",
])


def test_the_audit_log_is_read_newest_first_keeping_what_is_not_json() -> None:
    records = audit.parse(LOG)
    assert [r.get("action") for r in records] == ["rollback", None, "deploy"]
    assert records[1] == {"raw": "not json"}
    assert audit.detail(records[0]) == "failed=3.19.2-abc"
    assert audit.detail(records[2]) == "previous="
    assert audit.read_command(5) == "tail -n 5 /opt/openlmis/audit.log 2>/dev/null || true"


def _file(release: str, name: str, text: str) -> str:
    return f"file\t{release}\t{name}\t{base64.b64encode(text.encode()).decode()}"


COMPOSE = "services:\n  auth:\n    image: openlmis/auth:${OL_AUTH_VERSION}\n" \
          "  config:\n    build: ./config\n"
RELEASES = "\n".join([
    "now\t1772400000",
    "current\t3.19.2-abc",
    "release\t3.19.2-abc\t1772399100",
    _file("3.19.2-abc", "docker-compose.yml", COMPOSE),
    _file("3.19.2-abc", ".env", "OL_AUTH_VERSION=4.4.0\n"),
    _file("3.19.2-abc", "docker-compose.ops.yml",
          "services:\n  health:\n    image: nginx:1.27-alpine\n"),
    "release\t3.19.1-def\t1772040000",
    _file("3.19.1-def", "docker-compose.yml", COMPOSE),
    _file("3.19.1-def", ".env", "OL_AUTH_VERSION=4.3.3\n"),
    "release\t3.19.0-bad\t1771000000",
    _file("3.19.0-bad", "docker-compose.yml", "services: [unclosed"),
])


def test_releases_are_read_with_the_live_one_and_the_images_they_pin() -> None:
    now, found = release_list.parse(RELEASES)
    assert now == 1772400000
    assert [(r.id, r.live) for r in found] == [("3.19.2-abc", True), ("3.19.1-def", False),
                                              ("3.19.0-bad", False)]
    assert found[0].images == {"auth": "openlmis/auth:4.4.0", "health": "nginx:1.27-alpine"}
    assert found[1].images == {"auth": "openlmis/auth:4.3.3"}
    assert found[2].images == {}  # unreadable files: listed, without images
    assert found[0].as_dict(now) == {"release": "3.19.2-abc", "live": True,
                                     "time": "2026-03-01T21:05:00+00:00", "age_s": 900,
                                     "images": found[0].images}
    assert release_list.parse("now\t1\ncurrent\t\n") == (1, [])


@pytest.mark.parametrize(("seconds", "shown"), [(-3, "0s"), (45, "45s"), (720, "12m"),
                                                (18180, "5h 3m"), (273600, "3d 4h")])
def test_ages_read_as_an_operator_reads_them(seconds: int, shown: str) -> None:
    assert release_list.age(seconds) == shown


HOLDER = json.dumps({"who": "ana@laptop", "action": "deploy", "release": "3.19.2-abc",
                     "since": "2026-03-01T10:00:00Z", "session_pid": 4242,
                     "boot_id": "b-1"}, sort_keys=True)


@pytest.mark.parametrize("state", ["alive", "stale", "broken"])
def test_a_held_lock_is_read_with_its_holder(state: str) -> None:
    found = lock.parse_state(f"held\n{HOLDER}\n\n{state}\n")
    assert found.state == state
    assert found.holder and found.holder.describe() == \
        "ana@laptop since 2026-03-01T10:00:00Z (deploy 3.19.2-abc)"
    assert found.as_dict()["stale"] is (state == "stale")
    assert found.as_dict()["held"] is (state != "broken")


def test_a_free_lock_and_an_unreadable_holder() -> None:
    assert lock.parse_state("free\n") == lock.State("free")
    assert lock.State("free").as_dict() == {"state": "free", "held": False, "stale": False,
                                            "holder": None}
    assert lock.parse_state("held\n{oops\n\nstale\n") == lock.State("stale")
    assert "rm -rf" not in lock.state_command()  # reading never breaks it
    assert "rm -rf /opt/openlmis/deploy.lock" in lock.break_command()


def test_exec_reads_its_command_as_typed_after_the_dashes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["inv", "exec", "nginx", "--", "sh", "-c", "echo 'a  b'"])
    assert access._after_dashes() == ["sh", "-c", "echo 'a  b'"]
    monkeypatch.setattr(sys, "argv", ["inv", "exec", "nginx"])
    assert access._after_dashes() == []
