"""The Reference Distribution v3.19.2 deployed by `inv deploy` onto its double: the upstream
compose files unedited, the toolkit's own file beside them, a fresh RDS-like database, TLS at
a load balancer (REQUIRE_SSL=true), auth's bootstrap credentials replaced by the configured
ones. Then the host restarts as a machine restarts.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Callable

import pytest

from ops.errors import OpsError
from ops.lab.lab import Lab
from ops.stack import override
from tests.lab.target import Target

DATABASE = "refdistro"
STACK = ("{name: ref-distro, release: '3.19.2', https: yes, push_images: yes, "
         "health_timeout_s: 300, admin_password: 'lab:admin_password', "
         "trusted_client_secret: 'lab:trusted_client_secret'}")
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
    assert result.returncode == 0 and "no changes" in output(result), output(result)
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
    assert "no changes" in output(target.inv("deploy", "--plan"))


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
