"""The stack file for a swarm, from real compose models: pure.

The fixtures are `docker compose -p openlmis config --format json` (Compose 2.26.1, Docker
26.1.5 in the lab's docker host image) run in release directories rendered as deploy renders
them (ref-distro 3.19.2, lab release 1) under /opt/openlmis/releases/, with placeholder
secrets and each service's environment trimmed to a few keys.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ops.errors import OpsError
from ops.stack import swarm_stack
from ops.stack.override import HEALTH_PORT, INTERNAL
from ops.stack.swarm_stack import Seed

FIXTURES = Path(__file__).parent / "fixtures"
REF = json.loads((FIXTURES / "compose-config-ref-distro-3.19.2.json").read_text())
LAB = json.loads((FIXTURES / "compose-config-lab-1.json").read_text())
READY = "openlmis.ready"


def stack(config: dict[str, Any], routing: swarm_stack.Routing = "host") -> dict[str, Any]:
    text = swarm_stack.render(config, project="openlmis", routing=routing, ready_label=READY,
                              release="r-1")
    return yaml.safe_load(text)


def changed(service: str, **fields: Any) -> dict[str, Any]:
    """The ref-distro model with one service's fields replaced (None removes one)."""
    config = copy.deepcopy(REF)
    spec = config["services"][service]
    spec.update(fields)
    for key in [k for k, v in fields.items() if v is None]:
        del spec[key]
    return config


@pytest.mark.parametrize("config", [REF, LAB], ids=["ref-distro", "lab"])
@pytest.mark.parametrize("routing", ["host", "mesh"])
def test_the_file_is_format_3_8_without_compose_only_keys(config: dict[str, Any],
                                                          routing: swarm_stack.Routing) -> None:
    result = stack(config, routing)
    assert result["version"] == "3.8"
    assert set(result) <= {"version", "services", "networks", "volumes"}
    for name, spec in result["services"].items():
        assert not {"build", "depends_on", "mem_limit", "cpus", "restart", "container_name",
                    "pull_policy", "profiles"} & set(spec), name
        assert None not in spec.values(), name


def test_built_services_are_left_out_and_their_volumes_are_external() -> None:
    result = stack(REF)
    assert "service-configuration" not in result["services"]
    assert result["volumes"]["service-config"] == {
        "external": True, "name": "openlmis_service-config-0ad7076416"}
    assert result["volumes"]["syslog"] == {"name": "openlmis_syslog"}
    mounts = result["services"]["requisition"]["volumes"]
    assert {"type": "volume", "source": "service-config", "target": "/config"} in mounts


def test_seeds_are_the_built_services_with_their_volumes() -> None:
    assert swarm_stack.seeds(REF) == [Seed(
        "service-configuration", "openlmis-service-configuration:0ad7076416",
        "/opt/openlmis/releases/3.19.2/config",
        (("openlmis_service-config-0ad7076416", "/config"),))]
    assert swarm_stack.seeds(LAB) == []


def test_services_are_named_as_swarm_names_them() -> None:
    assert swarm_stack.services(LAB) == [
        "openlmis_diagnostics", "openlmis_health", "openlmis_nginx", "openlmis_referencedata",
        "openlmis_requisition"]
    names = swarm_stack.services(REF)
    assert "openlmis_service-configuration" not in names
    assert len(names) == len(REF["services"]) - 1


@pytest.mark.parametrize(("restart", "condition"), [
    ("no", "none"), ("on-failure", "on-failure"), ("always", "any"), ("unless-stopped", "any")])
def test_restart_becomes_a_restart_policy(restart: str, condition: str) -> None:
    policy = stack(changed("redis", restart=restart))["services"]["redis"]["deploy"][
        "restart_policy"]
    assert policy == {"condition": condition, "delay": swarm_stack.RESTART_DELAY}


def test_restart_on_failure_with_a_count_keeps_the_count() -> None:
    policy = stack(changed("redis", restart="on-failure:3"))["services"]["redis"]["deploy"][
        "restart_policy"]
    assert policy == {"condition": "on-failure", "delay": "5s", "max_attempts": 3}


def test_restart_from_the_stacks_own_files_and_the_toolkits() -> None:
    services = stack(REF)["services"]
    assert services["hapifhir"]["deploy"]["restart_policy"]["condition"] == "any"  # always
    assert services["auth"]["deploy"]["restart_policy"]["condition"] == "any"  # toolkit's


def test_mem_limit_is_the_limit_and_the_reservation_and_cpus_the_limit() -> None:
    resources = stack(REF)["services"]["requisition"]["deploy"]["resources"]
    assert resources == {"limits": {"memory": "1395864371", "cpus": "2"},
                         "reservations": {"memory": "1395864371"}}
    assert "resources" not in stack(REF)["services"]["redis"]["deploy"]


@pytest.mark.parametrize("key", ["privileged", "network_mode", "devices", "pid"])
def test_a_key_the_swarm_cannot_run_is_refused_naming_service_and_key(key: str) -> None:
    with pytest.raises(OpsError) as raised:
        stack(changed("nginx", **{key: "host" if key != "privileged" else True}))
    assert f"service nginx sets {key}" in raised.value.message
    assert "host.count: 1" in raised.value.hint


def test_internal_services_publish_nothing() -> None:
    services = stack(REF)["services"]
    for name in INTERNAL:
        assert REF["services"][name]["ports"]
        assert "ports" not in services[name]
        assert "mode" not in services[name]["deploy"]


def test_ports_without_a_published_host_port_are_dropped() -> None:
    config = changed("redis", ports=[{"mode": "ingress", "target": 6379, "protocol": "tcp"}])
    redis = stack(config)["services"]["redis"]
    assert "ports" not in redis
    assert "mode" not in redis["deploy"]


def test_a_port_bound_to_one_address_or_a_port_range_is_refused() -> None:
    config = changed("redis", ports=[{"mode": "ingress", "host_ip": "127.0.0.1",
                                      "target": 6379, "published": "6379", "protocol": "tcp"}])
    with pytest.raises(OpsError, match=r"service redis publishes 127\.0\.0\.1:6379:6379"):
        stack(config)
    config = changed("redis", ports=[{"mode": "ingress", "target": 6379,
                                      "published": "6379-6380", "protocol": "tcp"}])
    with pytest.raises(OpsError, match="service redis publishes the port range 6379-6380"):
        stack(config)


def test_a_healthcheck_or_deploy_key_beyond_format_3_8_is_refused() -> None:
    check = {**LAB["services"]["nginx"]["healthcheck"], "start_interval": "1s"}
    config = copy.deepcopy(LAB)
    config["services"]["nginx"]["healthcheck"] = check
    with pytest.raises(OpsError, match=r"service nginx sets healthcheck\.start_interval"):
        stack(config)
    with pytest.raises(OpsError, match=r"service redis sets deploy\.devices"):
        stack(changed("redis", deploy={"devices": []}))


def test_a_deploy_section_of_the_stacks_own_is_kept_under_the_toolkits() -> None:
    config = changed("redis", deploy={"update_config": {"order": "start-first"},
                                      "resources": {"limits": {"memory": 268435456}}})
    deploy = stack(config)["services"]["redis"]["deploy"]
    assert deploy["update_config"] == {"order": "start-first"}
    assert deploy["resources"] == {"limits": {"memory": "268435456"}}
    assert deploy["restart_policy"]["condition"] == "any"


@pytest.mark.parametrize("config", [REF, LAB], ids=["ref-distro", "lab"])
def test_host_routing_publishes_on_the_node_and_resolves_by_dns(config: dict[str, Any]) -> None:
    services = stack(config, "host")["services"]
    assert services["nginx"]["ports"] == [
        {"target": 80, "published": 80, "protocol": "tcp", "mode": "host"}]
    assert services["health"]["ports"] == [
        {"target": HEALTH_PORT, "published": HEALTH_PORT, "protocol": "tcp", "mode": "host"}]
    for name, spec in services.items():
        assert spec["deploy"]["endpoint_mode"] == "dnsrr", name


@pytest.mark.parametrize("config", [REF, LAB], ids=["ref-distro", "lab"])
def test_mesh_routing_keeps_swarms_defaults(config: dict[str, Any]) -> None:
    services = stack(config, "mesh")["services"]
    assert services["nginx"]["ports"] == [{"target": 80, "published": 80, "protocol": "tcp"}]
    for name, spec in services.items():
        assert "endpoint_mode" not in spec["deploy"], name


@pytest.mark.parametrize("routing", ["host", "mesh"])
def test_every_publishing_service_runs_on_every_node(routing: swarm_stack.Routing) -> None:
    services = stack(REF, routing)["services"]
    globals_ = {name for name, spec in services.items() if spec["deploy"].get("mode")}
    assert globals_ == {"nginx", "health"}
    assert {services[name]["deploy"]["mode"] for name in globals_} == {"global"}


@pytest.mark.parametrize("config", [REF, LAB], ids=["ref-distro", "lab"])
def test_every_service_waits_for_ready_nodes_spread_over_zones_and_names_its_release(
        config: dict[str, Any]) -> None:
    for name, spec in stack(config)["services"].items():
        assert spec["deploy"]["placement"] == {
            "constraints": ["node.labels.openlmis.ready == true"],
            "preferences": [{"spread": "node.labels.openlmis.zone"}]}, name
        assert spec["deploy"]["labels"] == {"openlmis.release": "r-1"}, name


def test_bind_mounts_keep_their_absolute_source_without_compose_options() -> None:
    health = stack(REF)["services"]["health"]
    assert health["volumes"] == [{
        "type": "bind", "source": "/opt/openlmis/releases/3.19.2/health.conf",
        "target": "/etc/nginx/conf.d/default.conf", "read_only": True}]


def test_the_default_network_is_an_attachable_overlay() -> None:
    result = stack(LAB)
    assert result["networks"] == {"default": {"driver": "overlay", "attachable": True}}
    assert all("networks" not in spec for spec in result["services"].values())


def test_passed_keys_stay_as_compose_resolved_them() -> None:
    nginx = stack(LAB)["services"]["nginx"]
    source = LAB["services"]["nginx"]
    assert nginx["healthcheck"] == source["healthcheck"]
    assert nginx["command"] == source["command"]
    assert nginx["image"] == "openlmis-lab/app:1"
    requisition = stack(REF)["services"]["requisition"]
    assert requisition["environment"] == REF["services"]["requisition"]["environment"]
    assert requisition["environment"]["CURRENCY_SYMBOL"] == "$$"  # docker stack unescapes


def test_services_behind_a_profile_are_left_out() -> None:
    config = changed("redis", profiles=["debug"])
    assert "redis" not in stack(config)["services"]
    assert "openlmis_redis" not in swarm_stack.services(config)
