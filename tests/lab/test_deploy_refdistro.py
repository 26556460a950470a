"""The Reference Distribution v3.19.2 deployed by `inv deploy` onto its double: the upstream
compose files unedited, the toolkit's own file beside them, a fresh RDS-like database, TLS at
a load balancer (REQUIRE_SSL=true), auth's bootstrap credentials replaced by the configured
ones. Then the host restarts as a machine restarts, an edit of `config/` is deployed, the stack
is upgraded to a release whose compose files differ, and an upgrade fails.

The environment reads its releases from a copy (stack.releases_dir), which the tests edit as
an operator edits theirs.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ops.config import ROOT
from ops.errors import OpsError
from ops.lab.lab import Lab
from ops.stack import override
from tests.lab.target import Target

DATABASE = "refdistro"
STACK = ("{{name: ref-distro, release: '3.19.2', https: yes, push_images: yes, "
         "health_timeout_s: {timeout}, releases_dir: '{releases}', "
         "admin_password: 'lab:admin_password', "
         "trusted_client_secret: 'lab:trusted_client_secret'}}")
NEXT = "3.20.0-SNAPSHOT"
STATUS = "curl -s -o /dev/null -w '%{http_code}' "
# "password", as openlmis-auth's bootstrap data migration stores it
BOOTSTRAP_HASH = "$2a$10$4IZfidcJzbR5Krvj87ZJdOZvuQoD/kvPAJe549rUNoP3N3uH0Lq2G"
RUNS: dict[str, str] = {}


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


def service_says(target: Target, service: str, command: str) -> str:
    """`command`'s output in the running container of `service`."""
    return target.sh("docker exec $(docker ps -q --filter label=com.docker.compose.project=openlmis"
                     f" --filter label=com.docker.compose.service={service}) {command}")


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The environment's own copy of the stack's releases."""
    copy = tmp_path_factory.mktemp("releases") / "releases"
    shutil.copytree(ROOT / "compose" / "ref-distro" / "releases", copy)
    return copy


@pytest.fixture(scope="module")
def target(lab: Lab, tmp_path_factory: pytest.TempPathFactory, releases: Path) -> Target:
    target = Target(lab.host("refdistro", docker_ready=True), tmp_path_factory.mktemp("config"),
                    "refdistro", DATABASE, STACK.format(timeout=300, releases=releases))
    target.fresh_database(lab)
    target.write_config()
    return target


def test_first_deploy_brings_the_reference_distribution_up_behind_tls(target: Target,
                                                                      lab: Lab) -> None:
    result = target.inv("deploy", timeout=1200)
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
    result = target.inv("deploy", timeout=600)
    assert result.returncode == 0, output(result)
    assert login(target, "password")[0] == 400 and facilities(target, password) == 200
    assert not credential_changes(output(target.inv("deploy", "--plan")))


def test_a_host_reboot_brings_openlmis_back_without_an_operator(target: Target,
                                                               lab: Lab) -> None:
    machine = lab.client.containers.get(f"{lab.state.name}-refdistro")
    machine.restart(timeout=30)
    machine.reload()
    addresses = [n["IPAddress"] for n in machine.attrs["NetworkSettings"]["Networks"].values()]
    assert target.host.address in addresses  # as an EC2 instance keeps its Elastic IP
    eventually("/api/health after the reboot", lambda: health(target) == "200")
    result = target.inv("deploy", "--plan")
    assert result.returncode == 0 and "no changes" in output(result), output(result)


def test_deploy_starts_what_a_dead_restore_left_stopped(target: Target) -> None:
    """Runbook 08: a restore killed during its swap may leave the stack stopped."""
    target.sh("docker ps -q --filter label=com.docker.compose.project=openlmis | xargs docker stop")
    assert health(target) != "200"
    plan = target.inv("deploy", "--plan")
    assert "docker compose up: " in output(plan), output(plan)
    result = target.inv("deploy", timeout=600)
    assert result.returncode == 0, output(result)
    assert health(target) == "200"


def test_an_edit_under_config_reaches_the_running_services(target: Target,
                                                           releases: Path) -> None:
    logback = releases / "3.19.2" / "config" / "log" / "logback.xml"
    logback.write_text(logback.read_text().replace(
        "<configuration>", "<configuration>\n    <!-- edited by the operator -->", 1))
    result = target.inv("deploy", timeout=900)
    assert result.returncode == 0, output(result)
    for service in ("referencedata", "requisition", "auth"):
        assert "edited by the operator" in service_says(target, service,
                                                        "cat /config/log/logback.xml")
    assert health(target) == "200"


def test_an_upgrade_to_a_release_whose_compose_files_differ(target: Target) -> None:
    plan = target.inv("deploy", "--release", NEXT, "--plan")
    said = " ".join(output(plan).split())
    assert "> back up the database: dump, before " in said, said
    assert "referencedata 15.4.0 → 15.5.0-SNAPSHOT" in said
    assert "consul gliderlabs/consul-server → hashicorp/consul:1.15" in said
    result = target.inv("deploy", "--release", NEXT, timeout=1200)
    assert result.returncode == 0, output(result)
    assert "backed up: " in output(result)
    states = target.sh("docker ps --filter label=com.docker.compose.project=openlmis --format "
                       "'{{.Image}} {{.Status}}'")
    assert "hashicorp/consul:1.15 Up" in states and "(healthy)" in states, states
    assert "(unhealthy)" not in states and "(health: starting)" not in states, states
    assert health(target) == "200"
    # this release's config image copies its files into the volume each time it runs
    assert service_says(target, "referencedata", "ls /config/reports") != ""


def test_a_failed_upgrade_rolls_back_and_names_the_backup_to_restore(target: Target,
                                                                     releases: Path) -> None:
    broken = releases / "3.20.1-broken"
    shutil.copytree(releases / NEXT, broken)
    env = broken / ".env"
    env.write_text(env.read_text().replace("OL_REFERENCEDATA_VERSION=15.5.0-SNAPSHOT",
                                           "OL_REFERENCEDATA_VERSION=15.5.1-SNAPSHOT"))
    (broken / "config" / "log" / "logback.xml").write_text("<configuration>\n  <root")
    impatient = dataclasses.replace(target, stack=STACK.format(timeout=60, releases=releases))
    impatient.write_config()
    try:
        result = target.inv("deploy", "--release", broken.name, timeout=1200)
    finally:
        target.write_config()
    assert result.returncode == 1, output(result)
    said = " ".join(output(result).split())
    assert f"rolled back: {NEXT}-" in said and "is serving again" in said, said
    assert "may already have migrated the database schema" in said
    assert "inv restore-db --env refdistro --from " in said
    assert "Logging system failed to initialize" in said  # the failing service's own words
    assert health(target) == "200"
