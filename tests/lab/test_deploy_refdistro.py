"""The Reference Distribution v3.19.2 deployed by `inv deploy` onto its double: the upstream
compose files unedited, the toolkit's own file beside them, a fresh RDS-like database, TLS at
a load balancer (REQUIRE_SSL=true). Then the host restarts as a machine restarts.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import pytest

from ops.errors import OpsError
from ops.lab.lab import Lab
from ops.stack import override
from tests.lab.target import Target

DATABASE = "refdistro"
STACK = "{name: ref-distro, release: '3.19.2', https: yes, push_images: yes, health_timeout_s: 300}"
STATUS = "curl -s -o /dev/null -w '%{http_code}' "


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def health(target: Target) -> str:
    """What the load balancer's health check gets (the health service on the host)."""
    return target.sh(STATUS + "http://127.0.0.1:8081/health")


def plain_http(target: Target) -> str:
    """What a request that did not come through the load balancer's HTTPS listener gets."""
    return target.sh(STATUS + "-H 'Host: openlmis.lab.internal' http://127.0.0.1/api/health")


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
    assert result.returncode == 0, output(result)
    assert f"+ database role {target.role}" in output(result)
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
