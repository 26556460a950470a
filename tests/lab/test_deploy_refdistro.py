"""The Reference Distribution v3.19.2 deployed by `inv deploy` onto its double: the upstream
compose files unedited, the toolkit's own file beside them, a fresh RDS-like database, TLS at
a load balancer (REQUIRE_SSL=true), auth's bootstrap credentials replaced by the configured
ones; its logs, their rotation, the images kept for rollback. (The rehearsal, on the same
double, restarts the host, deploys an edit of `config/`, an upgrade and a failed one.)
"""

from __future__ import annotations

import dataclasses
import json
import queue
import shlex
import subprocess
import threading
import time
from collections.abc import Callable

import pytest

from ops.errors import OpsError
from ops.host import logrotate
from ops.host.connect import connect
from ops.host.remote import Remote, sh
from ops.lab.lab import Lab
from ops.stack import logs, override
from tests.lab.target import Target

DATABASE = "refdistro"
STACK = ("{name: ref-distro, release: '3.19.2', https: yes, push_images: yes, "
         "health_timeout_s: 300, admin_password: 'lab:admin_password', "
         "trusted_client_secret: 'lab:trusted_client_secret'}")
STATUS = "curl -s -o /dev/null -w '%{http_code}' "
# "password", as openlmis-auth's bootstrap data migration stores it
BOOTSTRAP_HASH = "$2a$10$4IZfidcJzbR5Krvj87ZJdOZvuQoD/kvPAJe549rUNoP3N3uH0Lq2G"
RUNS: dict[str, str] = {}
SYSLOG = "/var/lib/docker/volumes/openlmis_syslog/_data"
RELEASES = "/opt/openlmis/releases"
# A line referencedata sends as its own logger does: through logback's rules, to syslog only.
PROBE = ("from double import logs; import logging, sys; "
         "logs.setup(open('/config/log/logback.xml').read()); "
         "logging.getLogger('org.openlmis.referencedata.Probe').info(sys.argv[1])")


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def health(target: Target) -> str:
    """What the load balancer's health check gets (the health service on the host)."""
    return target.sh(STATUS + "http://127.0.0.1:8081/health")


def plain_http(target: Target) -> str:
    """What a request that did not come through the load balancer's HTTPS listener gets."""
    return target.sh(STATUS + "-H 'Host: openlmis.lab.internal' http://127.0.0.1/api/health")


def api(target: Target, path: str, *, basic: str = "",
        bearer: str = "") -> tuple[int, dict]:
    """POST (GET with a bearer token) to the stack's nginx on the host, as the load balancer
    forwards a user's HTTPS request; the status and the JSON body."""
    flags = "-H 'Host: openlmis.lab.internal' -H 'X-Forwarded-Proto: https'"
    flags += f" -u {shlex.quote(basic)} -X POST" if basic else ""
    flags += f" -H {shlex.quote('Authorization: Bearer ' + bearer)}" if bearer else ""
    out = target.sh(f"curl -s -w '\\n%{{http_code}}' {flags} "
                    f"{shlex.quote('http://127.0.0.1' + path)}")
    body, _, code = out.rpartition("\n")
    try:
        found = json.loads(body) if body.strip() else {}
    except json.JSONDecodeError:
        found = {}
    return int(code or 0), found


def login(target: Target, password: str) -> tuple[int, dict]:
    """The reference UI's login: admin's password grant, as user-client (secret unchanged)."""
    return api(target, f"/api/oauth/token?grant_type=password&username=admin&password={password}",
               basic="user-client:changeme")


def service_token(target: Target, secret: str) -> int:
    return api(target, "/api/oauth/token?grant_type=client_credentials",
               basic=f"trusted-client:{secret}")[0]


def facilities(target: Target, password: str) -> int:
    """referencedata's answer to admin's request: it checks the token with auth as
    trusted-client, with the secret settings.env gave it."""
    return api(target, "/api/facilities", bearer=login(target, password)[1]["access_token"])[0]


def credential_changes(plan: str) -> list[str]:
    """The plan's lines about auth's credentials (other labs on this machine may rebuild the
    double's images meanwhile, which the plan would push again: not asserted here)."""
    return [line for line in plan.splitlines()
            if "OAuth client" in line or "OpenLMIS user" in line]


def eventually(what: str, probe: Callable[[], bool], seconds: float = 240) -> None:
    """Wait until `probe()`; an OpsError (the host still booting) counts as not yet."""
    def answered() -> bool:
        try:
            return probe()
        except OpsError:
            return False

    deadline = time.monotonic() + seconds
    while not answered():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(2)


@pytest.fixture(scope="module")
def target(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Target:
    target = Target(lab.host("refdistro", docker_ready=True), tmp_path_factory.mktemp("config"),
                    "refdistro", DATABASE, STACK)
    target.fresh_database(lab)
    target.write_config()
    return target


def test_first_deploy_brings_the_reference_distribution_up_behind_tls(target: Target,
                                                                      lab: Lab) -> None:
    result = target.inv("deploy", "--yes", timeout=1200)
    RUNS["first"] = output(result)
    assert result.returncode == 0, output(result)
    assert f"+ database role {target.role}" in output(result)
    assert "~ OAuth client trusted-client: secret set to stack.trusted_client_secret (now " \
        "upstream's default)" in output(result)
    assert "~ OpenLMIS user admin: password set to stack.admin_password (now upstream's " \
        "default)" in output(result)
    assert f"+ extensions uuid-ossp, postgis in {DATABASE}" in output(result)
    # the health gate passed through nginx, as the load balancer asks it; users get HTTPS only
    assert health(target) == "200" and plain_http(target) == "307"
    with lab.db_connection(DATABASE) as conn:  # the services made their schemas as the role
        owners = {r[0] for r in conn.execute(
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname IN "
            "('referencedata', 'requisition', 'auth', 'notification')")}
    assert owners == {target.role}
    policies = dict(line.split() for line in target.sh(
        "docker ps -aq --filter label=com.docker.compose.project=openlmis | xargs docker inspect "
        "-f '{{index .Config.Labels \"com.docker.compose.service\"}} "
        "{{.HostConfig.RestartPolicy.Name}}'").splitlines())
    assert policies["hapifhir"] == "always"  # the stack's own, kept
    assert policies["service-configuration"] == "no"  # a one-shot build
    assert {policies[s] for s in ("consul", "nginx", "log", "referencedata", "auth")} == {
        override.RESTART}
    published = target.sh("for s in consul ftp; do docker port $(docker ps -q --filter "
                          "label=com.docker.compose.project=openlmis --filter "
                          "label=com.docker.compose.service=$s); done").splitlines()
    assert {line.split(" -> ")[0] for line in published} >= {"8500/tcp", "20/tcp", "21/tcp"} \
        and all(line.split(" -> ")[1].startswith("127.0.0.1:") for line in published), published


def test_the_bootstrap_credentials_no_longer_work_and_the_configured_ones_do(
        target: Target, lab: Lab) -> None:
    password, secret = lab.state.secret("admin_password"), lab.state.secret(
        "trusted_client_secret")
    assert login(target, "password")[0] == 400
    assert service_token(target, "secret") == 401
    status, token = login(target, password)
    assert status == 200 and token["username"] == "admin"
    assert service_token(target, secret) == 200
    assert facilities(target, password) == 200  # the services' secret is the one auth holds
    assert f"AUTH_SERVER_CLIENTSECRET='{secret}'" in target.sh(
        "cat /opt/openlmis/current/settings.env")
    assert health(target) == "200" and target.sh(
        STATUS + "-H 'Host: openlmis.lab.internal' -H 'X-Forwarded-Proto: https' "
        "http://127.0.0.1/api/health") == "200"
    result = target.inv("deploy", "--plan")
    RUNS["plan"] = output(result)
    assert result.returncode == 0 and not credential_changes(output(result)), output(result)
    for text in (*RUNS.values(), target.sh("cat /opt/openlmis/audit.log")):
        assert password not in text and secret not in text


def test_deploy_replaces_credentials_found_back_at_their_defaults(target: Target,
                                                                  lab: Lab) -> None:
    """As a deploy that died after `up` leaves auth (or a hand edit, or a restore)."""
    with lab.db_connection(DATABASE) as conn:
        conn.execute("UPDATE auth.oauth_client_details SET clientsecret = 'secret' "
                     "WHERE clientid = 'trusted-client'")
        conn.execute("UPDATE auth.auth_users SET password = %s WHERE username = 'admin'",
                     (BOOTSTRAP_HASH,))
    password = lab.state.secret("admin_password")
    assert facilities(target, "password") == 500  # auth refuses the services' secret
    plan = target.inv("deploy", "--plan")
    assert "~ OAuth client trusted-client" in output(plan), output(plan)
    assert "~ OpenLMIS user admin" in output(plan)
    assert "+ release" not in output(plan) and "~ current" not in output(plan)
    result = target.inv("deploy", "--yes", timeout=600)
    assert result.returncode == 0, output(result)
    assert login(target, "password")[0] == 400 and facilities(target, password) == 200
    assert not credential_changes(output(target.inv("deploy", "--plan")))


def log_from_referencedata(target: Target, text: str) -> None:
    """referencedata logs `text` at INFO under its own logger (so to syslog only)."""
    target.sh(f"docker exec openlmis-referencedata-1 python3 -c {sh(PROBE)} {sh(text)}")


def test_logs_show_what_a_service_sent_only_to_syslog(target: Target) -> None:
    result = target.inv("logs", "referencedata")
    assert result.returncode == 0, output(result)
    shown = output(result)
    # its own logger's lines reach only syslog (logback.xml: additivity=false) ...
    assert "org.openlmis.referencedata.Application Started Application on port" in shown
    assert "org.openlmis.referencedata" not in target.sh(
        "docker logs openlmis-referencedata-1 2>&1")
    # ... beside what its container printed, in time order; no other service's lines
    assert "(stand-in) starting" in shown and " syslog " in shown and " docker " in shown
    assert "org.openlmis.requisition" not in shown
    assert len(output(target.inv("logs", "referencedata", "--lines", "3")).splitlines()) == 3
    unknown = target.inv("logs", "nosuchservice")
    assert unknown.returncode != 0
    assert "has no service 'nosuchservice'" in output(unknown)
    assert "referencedata" in output(unknown) and "Traceback" not in output(unknown)


def test_logs_follow_streams_new_lines_until_stopped(target: Target) -> None:
    process = target.popen("logs", "referencedata", "--follow", "--lines", "1")
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    threading.Thread(target=lambda: [lines.put(x) for x in process.stdout], daemon=True).start()
    token = f"follow-probe-{time.time_ns()}"
    try:
        first = lines.get(timeout=60)  # the last line so far, then the stream
        assert first.strip(), first
        deadline = time.monotonic() + 60
        seen = ""
        while token not in seen:
            log_from_referencedata(target, token)
            try:
                seen = lines.get(timeout=5)
            except queue.Empty:
                assert time.monotonic() < deadline, "the new line never came"
        assert " syslog " in seen and "org.openlmis.referencedata.Probe" in seen
    finally:
        process.terminate()
        process.wait(timeout=30)
    # the connection went with the task, and the follow commands on the host with it
    eventually("the follow commands to end", lambda: "tail -F" not in target.sh("ps -eo args"),
               seconds=30)


def test_the_gate_report_reads_a_services_syslog_lines(target: Target) -> None:
    release_id = target.sh("basename \"$(readlink /opt/openlmis/current)\"").strip()
    host = target.host
    with connect(host.address, user=host.user, key=host.key,
                 known_hosts=host.known_hosts) as conn:
        report = logs.recent(Remote(conn, host.address), "openlmis", release_id,
                             "referencedata", 20)
    assert 0 < len(report) <= 20
    assert any(" syslog " in line and "org.openlmis.referencedata" in line for line in report)


def test_syslog_files_are_rotated_in_place_by_the_hosts_logrotate(target: Target) -> None:
    assert f"{SYSLOG}/messages" in target.sh(f"cat {logrotate.CONF_PATH}")
    assert target.sh("systemctl is-enabled logrotate.timer; systemctl is-active logrotate.timer"
                     ).split() == ["enabled", "active"]
    assert "OnCalendar=hourly" in target.sh("systemctl cat logrotate.timer")
    dry = target.sh(f"logrotate -d {logrotate.CONF_PATH} 2>&1; echo rc=$?")
    assert "rc=0" in dry and "error" not in dry.lower(), dry
    target.sh(f"logrotate -f {logrotate.CONF_PATH}")
    assert target.sh(f"test -s {SYSLOG}/messages.1 && echo rotated").strip() == "rotated"
    token = f"after-rotation-{time.time_ns()}"
    log_from_referencedata(target, token)  # rsyslogd writes on into the file it holds open
    eventually("the new line", lambda: token in target.sh(f"cat {SYSLOG}/messages"), seconds=30)
    shown = output(target.inv("logs", "referencedata", "--lines", "500"))
    assert token in shown and "Started Application on port" in shown  # messages.1 is read too
    assert logrotate.CONF_PATH not in output(target.inv("deploy", "--plan"))  # converged


def test_a_deploy_removes_the_images_only_pruned_releases_used(target: Target) -> None:
    """Two older releases beside the live one, each pinning referencedata to its own tag: with
    keep_releases 2 the oldest goes, and its image with it; the kept one's stays."""
    current = target.sh("basename \"$(readlink /opt/openlmis/current)\"").strip()
    live = target.sh(f"sed -n 's/^OL_REFERENCEDATA_VERSION=//p' {RELEASES}/{current}/.env"
                     ).strip()
    assert live, "the live release pins no referencedata version"
    for version, age in (("0.0.1-kept", "1 hour ago"), ("0.0.0-old", "2 hours ago")):
        target.sh(f"cp -a {RELEASES}/{current} {RELEASES}/{version} && sed -i "
                  f"'s/^OL_REFERENCEDATA_VERSION=.*/OL_REFERENCEDATA_VERSION={version}/' "
                  f"{RELEASES}/{version}/.env && touch -d '{age}' {RELEASES}/{version} && "
                  f"docker tag openlmis/referencedata:{live} openlmis/referencedata:{version}")
    keep_two = dataclasses.replace(target, stack=STACK.replace("}", ", keep_releases: 2}"))
    try:
        keep_two.write_config()
        plan = output(target.inv("deploy", "--plan"))
        assert "- release 0.0.0-old: keep the last 2" in plan, plan
        assert "- image openlmis/referencedata:0.0.0-old: no kept release uses it" in plan
        assert "- image" not in plan.replace("- image openlmis/referencedata:0.0.0-old", "")
        result = target.inv("deploy", "--yes", timeout=600)
        assert result.returncode == 0, output(result)
        assert "removed image openlmis/referencedata:0.0.0-old" in output(result)
        tags = target.sh("docker image ls --format '{{.Tag}}' openlmis/referencedata").split()
        assert sorted(tags) == sorted(["0.0.1-kept", live])
        again = output(target.inv("deploy", "--plan"))
        assert "- image" not in again and "- release" not in again, again
    finally:
        target.write_config()
        target.sh(f"rm -rf {RELEASES}/0.0.1-kept {RELEASES}/0.0.0-old; "
                  "docker image rm openlmis/referencedata:0.0.1-kept "
                  "openlmis/referencedata:0.0.0-old 2>/dev/null")


def test_deploy_starts_what_a_dead_restore_left_stopped(target: Target) -> None:
    """Runbook 08: a restore killed during its swap may leave the stack stopped."""
    target.sh("docker ps -q --filter label=com.docker.compose.project=openlmis | xargs docker stop")
    assert health(target) != "200"
    plan = target.inv("deploy", "--plan")
    assert "docker compose up: " in output(plan), output(plan)
    result = target.inv("deploy", "--yes", timeout=600)
    assert result.returncode == 0, output(result)
    assert health(target) == "200"

