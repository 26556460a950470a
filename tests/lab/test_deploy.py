"""deploy, rollback, logs on a lab host, end to end: Docker installed by the deploy itself.

One bare host serves the whole module, in order: first deploy, no-op, secrets, a broken
release, rollback, the lock, a cut connection, an unknown host key; then the operator's access
commands on the deployed stack (ssh, exec, psql, audit, releases, lock).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from fabric import Connection

from ops.config import ROOT
from ops.host import facts as host_facts
from ops.host.connect import connect
from ops.lab.lab import Lab
from ops.stack import lock
from tests.lab.target import ADMIN_PASSWORD, Target

DATABASE = "deploytest"
ROLE = f"{DATABASE}_app"  # the stack's own role, which deploy creates
STACK = ("{name: lab, release: '1', health_timeout_s: 20, health_stable_s: 2, keep_releases: 3, "
         "https: no, secrets: {ADMIN_PASSWORD: 'env:OPS_TEST_ADMIN_PASSWORD'}}")


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def extensions(lab: Lab) -> set[str]:
    with _master(lab, DATABASE) as conn:
        return {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}


def _master(lab: Lab, dbname: str) -> psycopg.Connection:
    return lab.db_connection(dbname)


@pytest.fixture(scope="module")
def target(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Target:
    target = Target(lab.host("deploy-bare"), tmp_path_factory.mktemp("config"), "deploytest",
                    DATABASE, STACK)
    target.fresh_database(lab)
    target.write_config()
    return target


RUNS: dict[str, str] = {}


def test_bare_host_deploy_installs_docker_and_the_stack_answers(target: Target,
                                                                 lab: Lab) -> None:
    assert "no-docker" in target.sh("command -v docker || echo no-docker")
    assert extensions(lab) == {"plpgsql"}
    result = target.inv("deploy", "--yes", "--push-images", timeout=900)
    RUNS["first"] = output(result)
    assert result.returncode == 0, output(result)
    assert "+ packages: docker.io docker-cli docker-compose postgresql-client-17" in output(result)
    assert f"+ extensions uuid-ossp, postgis in {DATABASE}" in output(result)
    assert {"uuid-ossp", "postgis"} <= extensions(lab)  # the stand-in's schema uses both
    assert f"+ database role {ROLE}: if missing: owner of {DATABASE}" in output(result)
    with _master(lab, DATABASE) as conn:  # the stack made its schemas as its own role
        owners = dict(conn.execute(
            "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname IN "
            "('referencedata', 'requisition', 'diagnostics') UNION ALL SELECT '', "
            "pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"))
        flags = conn.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
                             "WHERE rolname = %s", (ROLE,)).fetchone()
    assert owners == dict.fromkeys(["", "referencedata", "requisition", "diagnostics"], ROLE)
    assert flags == (False, False, False)
    status, body = target.api_health()
    assert status == 200 and body["release"] == "1"
    assert body["services"] == {"referencedata": "UP", "requisition": "UP"}
    assert json.loads(target.sh("cat /etc/docker/daemon.json"))["live-restore"] is True
    assert target.sh("stat -c %a /opt/openlmis/current/settings.env").strip() == "600"


def test_second_deploy_changes_nothing_and_restarts_nothing(target: Target) -> None:
    before = target.containers(), target.sh("wc -l < /var/log/dpkg.log"), target.audit()
    result = target.inv("deploy", "--push-images")  # nothing to approve: no --yes needed
    RUNS["second"] = output(result)
    assert result.returncode == 0, output(result)
    assert "no changes" in output(result)
    assert (target.containers(), target.sh("wc -l < /var/log/dpkg.log"), target.audit()) == before
    planned = target.inv("deploy", "--plan", "--release", "2")
    RUNS["plan"] = output(planned)
    assert planned.returncode == 2 and "~ current: 1-" in RUNS["plan"]  # changes pending


def test_secrets_appear_in_no_output_log_or_audit_line(target: Target, lab: Lab) -> None:
    secrets = [lab.state.secret("db_app_password"), ADMIN_PASSWORD]
    settings = target.sh("cat /opt/openlmis/current/settings.env")
    assert all(s in settings for s in secrets)  # they did reach the host, in the 0600 file
    assert lab.state.secret("db_master_password") not in settings  # the stack's role's only
    secrets.append(lab.state.secret("db_master_password"))
    places = {
        **RUNS,
        "audit": target.sh("cat /opt/openlmis/audit.log"),
        "service logs": target.sh("cd /opt/openlmis/current && docker compose -p openlmis logs"),
        "journal": target.sh("journalctl --no-pager -q"),
        "logs task": output(target.inv("logs", "diagnostics")),
    }
    for where, text in places.items():
        assert text.strip(), where
        for secret in secrets:
            assert secret not in text, f"a secret appears in {where}"


def test_broken_release_fails_and_the_previous_one_serves_again(target: Target) -> None:
    result = target.inv("deploy", "--yes", "--push-images", "--release", "broken")
    RUNS["broken"] = output(result)
    assert result.returncode != 0
    assert re.search(r"last log lines of [a-z, ]*referencedata", output(result))
    assert "rolled back: 1-" in output(result)
    status, body = target.api_health()
    assert status == 200 and body["release"] == "1"
    last = target.audit()[-2:]
    assert [(a["action"], a["release"].split("-")[0], a["result"]) for a in last] == [
        ("deploy", "broken", "failed"), ("rollback", "1", "ok")]


def test_rollback_task_returns_to_the_previous_release(target: Target) -> None:
    assert target.inv("deploy", "--yes", "--release", "2").returncode == 0
    assert target.api_health()[1]["release"] == "2"
    result = target.inv("rollback", "--yes")
    assert result.returncode == 0, output(result)
    assert target.api_health()[1]["release"] == "1"
    assert "release 1 listening" in output(target.inv("logs", "referencedata"))
    assert target.audit()[-1]["action"] == "rollback"


def _wait_for_lock(target: Target, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while "held" not in target.sh("test -d /opt/openlmis/deploy.lock && echo held"):
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert time.monotonic() < deadline, "the first deploy never took the lock"
        time.sleep(0.2)


def test_two_deploys_at_once_one_fails_on_the_lock_one_waits(target: Target) -> None:
    first = target.popen("deploy", "--yes", "--release", "2")
    _wait_for_lock(target, first)
    refused = target.inv("deploy", "--yes", "--release", "2")
    waiting = target.popen("deploy", "--yes", "--release", "2", "--lock-wait", "300")
    assert first.wait(timeout=300) == 0
    assert waiting.wait(timeout=300) == 0, waiting.stdout.read() if waiting.stdout else ""
    assert refused.returncode != 0
    assert "another deploy holds the lock" in output(refused)
    assert "(deploy 2-" in output(refused) and "@" in output(refused)
    assert target.api_health()[1]["release"] == "2"


def test_connection_cut_mid_deploy_then_the_next_deploy_converges(target: Target) -> None:
    cut = target.popen("deploy", "--yes", "--release", "1")
    _wait_for_lock(target, cut)
    cut.send_signal(signal.SIGKILL)
    cut.wait()
    stale = target.inv("deploy", "--yes", "--release", "1")
    assert stale.returncode != 0
    assert "is stale" in output(stale) and "--break-lock" in output(stale)
    result = target.inv("deploy", "--yes", "--release", "1", "--break-lock")
    assert result.returncode == 0, output(result)
    assert target.api_health()[1]["release"] == "1"
    assert "no changes" in output(target.inv("deploy", "--yes", "--release", "1"))


def test_unknown_host_key_is_refused_with_its_fingerprint(target: Target, tmp_path: Path) -> None:
    try:
        target.write_config(known_hosts=str(tmp_path / "empty"))
        result = target.inv("deploy", "--yes")
    finally:
        target.write_config()
    assert result.returncode != 0
    assert f"{target.host.address} is not a known host: it offers ssh-ed25519 SHA256:" \
        in output(result)
    assert "ssh-keyscan" in output(result)


def test_doctor_passes_ssh_host_key_and_database_and_fails_a_changed_host_key(
        target: Target, tmp_path: Path) -> None:
    result = target.inv("doctor", "--json")
    assert result.returncode == 0, output(result)
    found = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert {name: found[name]["outcome"] for name in ("ssh", "host key", "database")} == {
        "ssh": "ok", "host key": "ok", "database": "ok"}, found
    assert found["database"]["finding"].endswith(
        "over TLS, the server's certificate verified (verify-full)")
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"{target.host.address} {other.with_suffix('.pub').read_text()}")
    try:
        target.write_config(known_hosts=str(wrong))
        refused = target.inv("doctor", "--json")
    finally:
        target.write_config()
    assert refused.returncode == 1, output(refused)
    checks = {c["name"]: c for c in json.loads(refused.stdout)["checks"]}
    assert checks["host key"]["outcome"] == "fail"
    assert checks["host key"]["finding"].startswith(
        f"{target.host.address}'s host key CHANGED: it now offers ssh-ed25519 SHA256:")
    assert f"ssh-keygen -R {target.host.address}" in checks["host key"]["remedy"]
    assert checks["ssh"]["outcome"] == checks["database"]["outcome"] == "skipped"
    assert "Traceback" not in output(refused)


def test_ssh_runs_a_command_as_the_login_user_and_passes_its_status_back(
        target: Target) -> None:
    result = target.inv("ssh", "--command", "id -un; tty; exit 7", input="")
    assert (result.returncode, result.stdout.split("\n")) == (7, ["root", "not a tty", ""])


def test_exec_runs_in_a_running_service_container(target: Target) -> None:
    result = target.inv("exec", "diagnostics", "--", "sh", "-c",
                        'echo "$SERVICE_NAME"; cat; tty; exit 3', input="fed on stdin\n")
    assert (result.returncode, result.stdout.split("\n")) == (
        3, ["diagnostics", "fed on stdin", "not a tty", ""]), output(result)
    on_terminal = target.on_terminal("exec", "nginx", "--", "tty")  # ssh -t, compose's tty
    assert on_terminal.returncode == 0 and "/dev/pts/" in on_terminal.stdout, on_terminal
    unknown = target.inv("exec", "nosuchservice", "--", "true", input="")
    assert unknown.returncode == 1 and "Traceback" not in output(unknown)
    assert "has no service 'nosuchservice'\n  → its services: diagnostics, health, nginx, " \
        "referencedata, requisition" in output(unknown)


def test_psql_is_tls_verified_and_no_process_on_the_host_holds_the_password(
        target: Target, lab: Lab) -> None:
    password = lab.state.secret("db_master_password")
    sql = ("SELECT 'tls=' || ssl || ' user=' || current_user, pg_sleep(2) FROM pg_stat_ssl "
           "WHERE pid = pg_backend_pid()")
    psql = subprocess.Popen(target.command("psql", "--command", sql), cwd=ROOT,
                            env=target.environ(), text=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = []
    while psql.poll() is None:  # every process's command line and environment, as root
        seen.append(target.sh("ps -eww -o args; cat /proc/[0-9]*/environ 2>/dev/null "
                              "| tr '\\0' '\\n'"))
    said = psql.communicate()[0]
    assert psql.returncode == 0, said
    assert "tls=true user=postgres" in said
    assert any("pg_sleep" in snapshot and "PGSSLMODE=verify-full" in snapshot
               for snapshot in seen), "psql was never seen running"
    assert not any(password in snapshot for snapshot in [*seen, said])
    assert "session." not in target.sh("ls -a /var/tmp/openlmis-db")  # pgpass removed


def test_audit_shows_the_host_log_newest_first(target: Target) -> None:
    result = target.inv("audit", "--lines", "3", "--json")
    assert result.returncode == 0, output(result)
    assert json.loads(result.stdout) == target.audit()[-3:][::-1]


def test_releases_lists_the_live_one_and_the_images_each_pins(target: Target) -> None:
    result = target.inv("releases", "--json")
    assert result.returncode == 0, output(result)
    found = json.loads(result.stdout)
    assert [r["release"] for r in found] == target.sh("ls -1t /opt/openlmis/releases").split()
    live = [r["release"] for r in found if r["live"]]
    assert live == [target.sh("basename $(readlink /opt/openlmis/current)").strip()]
    assert live[0].startswith("1-")
    assert found[0]["images"]["referencedata"] == "openlmis-lab/app:1"
    assert found[0]["images"]["health"].startswith("nginx:")  # the toolkit's own file's
    assert all(r["age_s"] >= 0 for r in found)


def _hold_lock(target: Target) -> tuple[Connection, int]:
    """A connection to the host holding the deploy lock, as deploy takes it."""
    conn = connect(target.host.address, user=target.host.user, key=target.host.key,
                   known_hosts=target.host.known_hosts)
    found = host_facts.parse(conn.run(host_facts.command([], [], "openlmis"), hide=True).stdout)
    holder = lock.Holder("tester@lab", "deploy", "held-by-test", "2026-01-01T00:00:00Z",
                         found.session_pid, found.boot_id)
    assert lock.parse_acquire(conn.run(lock.acquire_command(holder), hide=True).stdout)[0]
    return conn, found.session_pid


def test_lock_shows_its_holder_and_breaks_only_a_stale_one(target: Target) -> None:
    conn, pid = _hold_lock(target)
    try:
        held = json.loads(target.inv("lock", "--json").stdout)
        assert (held["state"], held["holder"]["release"]) == ("alive", "held-by-test")
        refused = target.inv("lock", "--break")
        assert refused.returncode == 1
        assert "held by tester@lab since 2026-01-01T00:00:00Z (deploy held-by-test), whose " \
            "connection is alive" in output(refused)
    finally:
        conn.close()
    deadline = time.monotonic() + 10
    while target.sh(f"test -d /proc/{pid} && echo running").strip():
        assert time.monotonic() < deadline, "the holder's session did not end"
        time.sleep(0.2)
    stale = target.inv("lock")
    assert "is STALE: held by tester@lab" in output(stale) and "--break" in output(stale)
    broken = target.inv("lock", "--break")
    assert broken.returncode == 0, output(broken)
    assert "broke the stale deploy lock of tester@lab" in output(broken)
    assert not target.sh("test -d /opt/openlmis/deploy.lock && echo kept").strip()
    last = target.audit()[-1]
    assert (last["action"], last["release"], last["result"]) == ("break-lock", "held-by-test",
                                                                 "ok")
