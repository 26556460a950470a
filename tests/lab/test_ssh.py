"""SSH as an OpenSSH user expects it, against one real lab host: a passphrase-protected key
through a real ssh-agent (never forwarded, whatever ~/.ssh/config says), keepalives, a
command's timeout, a connection dropped mid-command, and Ctrl-C on `inv backup-db` stopping
pg_dump on the host, removing its files and writing the audit log."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ops.config import ROOT
from ops.errors import CUT_SHORT, INTERRUPTED, OpsError
from ops.host import connect as ssh
from ops.host.remote import Remote
from ops.lab.hosts import LabHost
from ops.lab.lab import Lab
from tests.lab.target import ctrl_c_reaches_it, database_config

PASSPHRASE = "correct horse battery staple"
DB = "ssh_open_lmis"
ENV = "sshtest"


@pytest.fixture(scope="module")
def host(lab: Lab) -> LabHost:
    """The one host of these tests (the backup tests' own: its PostgreSQL client is there)."""
    return lab.host("bk1", docker_ready=True)


def on_host(host: LabHost, command: str) -> str:
    """A command's stdout, over a connection of its own with the lab's key."""
    with ssh.connect(host.address, user=host.user, key=host.key,
                     known_hosts=host.known_hosts) as conn:
        return Remote(conn, host.address).run(command, check=False)


@dataclass(frozen=True)
class Agent:
    socket: str
    key: Path


@pytest.fixture(scope="module")
def agent(host: LabHost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    """A running ssh-agent holding a passphrase-protected key the host accepts."""
    here = tmp_path_factory.mktemp("agent")
    key = here / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", PASSPHRASE, "-C", "ssh-test",
                    "-f", str(key)], check=True)
    on_host(host, f"printf '%s\\n' '{key.with_suffix('.pub').read_text().strip()}' "
                  ">> /root/.ssh/authorized_keys")
    sock = str(here / "agent.sock")
    process = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL)
    askpass = here / "askpass"
    askpass.write_text(f"#!/bin/sh\necho '{PASSPHRASE}'\n")
    askpass.chmod(0o700)
    for _ in range(50):
        if Path(sock).exists():
            break
        time.sleep(0.1)
    subprocess.run(["ssh-add", str(key)], check=True, capture_output=True, stdin=subprocess.DEVNULL,
                   env={**os.environ, "SSH_AUTH_SOCK": sock, "SSH_ASKPASS": str(askpass),
                        "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"})
    yield Agent(sock, key)
    process.terminate()
    process.wait()


def test_a_passphrase_protected_key_is_used_through_the_agent_which_is_never_forwarded(
        host: LabHost, agent: Agent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Host *\n  ForwardAgent yes\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SSH_AUTH_SOCK", agent.socket)
    with ssh.connect(host.address, user=host.user, key=agent.key,
                     known_hosts=host.known_hosts) as conn:
        assert conn.ssh_config.get("forwardagent") == "yes"  # read, and overruled
        # Fabric's own runner forwards when asked to; the toolkit's never asks
        fabric_side = conn.run("echo ${SSH_AUTH_SOCK:-none}", hide=True).stdout.strip()
        ours = Remote(conn, host.address).run("echo ${SSH_AUTH_SOCK:-none}").strip()
    assert (fabric_side, ours) == ("none", "none")


def test_a_passphrase_protected_key_no_agent_holds_is_said_plainly(
        host: LabHost, agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(OpsError) as caught:
        ssh.connect(host.address, user=host.user, key=agent.key, known_hosts=host.known_hosts)
    assert caught.value.message == (f"the key {agent.key} is protected by a passphrase and "
                                    "no running ssh-agent holds it")
    assert f"ssh-add {agent.key}" in caught.value.hint
    assert "refused" not in str(caught.value)


def test_keepalives_go_out_while_idle_and_a_silent_peer_is_given_up(
        host: LabHost, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ssh, "KEEPALIVE", 1)
    with ssh.connect(host.address, user=host.user, key=host.key,
                     known_hosts=host.known_hosts) as conn:
        transport = conn.transport
        sent: list[str] = []
        real = transport.global_request

        def counted(kind: str, *args: object, **kwargs: object) -> object:
            sent.append(kind)
            return real(kind, *args, **kwargs)

        monkeypatch.setattr(transport, "global_request", counted)
        time.sleep(2.5)
        assert sent.count("keepalive@lag.net") >= 2
        user_timeout = transport.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)
        assert user_timeout == ssh.DEAD_AFTER * 1000
        assert Remote(conn, host.address).run("echo alive") == "alive\n"


def test_a_command_that_outlives_its_timeout_is_stopped_on_the_host(host: LabHost) -> None:
    with ssh.connect(host.address, user=host.user, key=host.key,
                     known_hosts=host.known_hosts) as conn:
        remote = Remote(conn, host.address)
        started = time.monotonic()
        with pytest.raises(OpsError) as caught:
            remote.run("sleep 97; echo done", what="a wait that hangs", timeout=1)
        assert time.monotonic() - started < 8
        assert caught.value.message.startswith("a wait that hangs did not finish within 1 s "
                                               f"on {host.address}")
        assert caught.value.code == CUT_SHORT
        assert remote.run("pgrep -fx 'sleep 97' || echo gone") == "gone\n"


def test_a_connection_dropped_mid_command_says_the_host_state_is_unknown(
        host: LabHost) -> None:
    with ssh.connect(host.address, user=host.user, key=host.key,
                     known_hosts=host.known_hosts) as conn:
        remote = Remote(conn, host.address)
        with pytest.raises(OpsError) as caught:  # the command kills its own sshd-session
            remote.run("sleep 0.5; kill -9 $PPID; sleep 30", what="a step cut off")
    assert caught.value.message.startswith(f"the connection to {host.address} was lost "
                                           "during a step cut off")
    assert "the host's state is unknown" in caught.value.message
    assert "run the same command again" in caught.value.hint
    assert caught.value.code == CUT_SHORT


def test_ctrl_c_stops_the_dump_on_the_host_cleans_up_and_audits(
        lab: Lab, host: LabHost, tmp_path: Path) -> None:
    """pg_dump waits on a table this test holds locked: a dump that is still running when
    SIGINT reaches `inv backup-db`."""
    (tmp_path / f"{ENV}.yml").write_text(database_config(host, DB))
    with lab.db_connection("postgres") as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DB}")
    audited = len(on_host(host, "cat /opt/openlmis/audit.log 2>/dev/null").splitlines())
    with lab.db_connection(DB) as holder:
        holder.execute("CREATE TABLE held (id int)")
        holder.execute("BEGIN; LOCK TABLE held IN ACCESS EXCLUSIVE MODE")
        task = subprocess.Popen(
            [sys.executable, "-m", "invoke", "backup-db", "--env", ENV, "--method", "dump",
             "--yes"],
            cwd=ROOT, env={**os.environ, "OPS_CONFIG_DIR": str(tmp_path), "COLUMNS": "200"},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            preexec_fn=ctrl_c_reaches_it)
        try:
            deadline = time.monotonic() + 120
            while not holder.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND "
                                     "relation = 'held'::regclass").fetchone()[0]:
                assert task.poll() is None and time.monotonic() < deadline, task.stdout.read()
                time.sleep(0.3)
            task.send_signal(signal.SIGINT)
            output, _ = task.communicate(timeout=60)
        finally:
            task.kill()
    assert task.returncode == INTERRUPTED, output
    assert "Traceback" not in output and "interrupted" in output
    assert on_host(host, "pgrep -a -x pg_dump; pgrep -a -x psql; "
                         "ls -A /var/tmp/openlmis-db") == ""
    entries = [json.loads(line) for line in
               on_host(host, "cat /opt/openlmis/audit.log").splitlines()[audited:]]
    assert [(e["action"], e["result"]) for e in entries] == [("backup-db", "interrupted")]
    assert "the dump (pg_dump)" in entries[0]["during"]
    with lab.db_connection("postgres") as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
