"""host.count > 1 against the emulator: provision makes every node (spread over both zones, each
with its Elastic IP and target registration, the swarm's ports open between them), a second run
changes nothing, and lowering the count takes the extra nodes away again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ops import targets
from ops.approval import Approval
from ops.aws import calls, compute, inventory, tags, teardown, topology
from ops.config import Environment
from ops.errors import OpsError
from tests.aws.provisioning import boto, groups, make_env, tokens

SWARM = {("tcp", 2377), ("tcp", 7946), ("udp", 7946), ("udp", 4789)}


def _count(env: Environment, count: int) -> Environment:
    return env.model_validate({**env.model_dump(), "host": {**env.host.model_dump(),
                                                            "count": count}})


def _nodes(ec2: Any, env: Environment) -> dict[int, dict[str, Any]]:
    found = [i for r in ec2.describe_instances(Filters=[
        {"Name": "tag:openlmis:environment", "Values": [env.name]},
        {"Name": "tag:openlmis:role", "Values": ["host"]},
        {"Name": "instance-state-name", "Values": compute.LIVE}])["Reservations"]
        for i in r["Instances"]]
    by_node = {tags.node(i["Tags"]): i for i in found}
    assert len(by_node) == len(found)
    return by_node


def _self_rules(group: dict[str, Any]) -> set[tuple[str, int]]:
    """The rules of a group whose source is the group itself."""
    return {(p["IpProtocol"], p["FromPort"]) for p in group["IpPermissions"]
            if any(g["GroupId"] == group["GroupId"] for g in p.get("UserIdGroupPairs", []))}


def test_three_nodes_are_provisioned_across_the_zones_and_shrink_back_to_one(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    one = make_env(emulator, monkeypatch, tmp_path)
    three = _count(one, 3)
    aws = boto(emulator)
    ec2, elb = aws("ec2"), aws("elbv2")
    with tokens() as sent:
        topology.provision(three)

    nodes = _nodes(ec2, three)
    assert sorted(nodes) == [1, 2, 3]
    assert tags.NODE not in {t["Key"] for t in nodes[1]["Tags"]}
    subnets = {s["SubnetId"]: s for s in ec2.describe_subnets()["Subnets"]}
    roles = {1: "subnet-public-1", 2: "subnet-public-2", 3: "subnet-public-1"}
    for i, instance in nodes.items():
        subnet = subnets[instance["SubnetId"]]
        assert {t["Value"] for t in subnet["Tags"] if t["Key"] == tags.ROLE} == {roles[i]}
        assert instance["Placement"]["AvailabilityZone"] == subnet["AvailabilityZone"]
    assert nodes[1]["Placement"] == nodes[3]["Placement"] != nodes[2]["Placement"]
    assert sent == [compute.client_token(three, nodes[i]["SubnetId"], None, i) for i in (1, 2, 3)]
    assert sent[0] == compute.client_token(one, nodes[1]["SubnetId"])  # as with one host

    addresses = {a["InstanceId"]: a for a in ec2.describe_addresses()["Addresses"]}
    assert set(addresses) == {i["InstanceId"] for i in nodes.values()}
    for i, instance in nodes.items():
        address = addresses[instance["InstanceId"]]
        assert {"Key": tags.ROLE, "Value": tags.node_role("host-ip", i)} in address["Tags"]
        assert {"Key": compute.HOST_TAG, "Value": instance["InstanceId"]} in address["Tags"]

    tg = elb.describe_target_groups()["TargetGroups"][0]["TargetGroupArn"]
    registered = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    assert sorted((t["Target"]["Id"], t["Target"]["Port"]) for t in registered) == sorted(
        (i["InstanceId"], 80) for i in nodes.values())
    found = groups(ec2)
    assert _self_rules(found["host"]) == SWARM
    assert not any(_self_rules(g) for role, g in found.items() if role != "host")

    hosts = targets.hosts(three)
    assert [(h.node, h.instance_id, h.address, h.private_address, h.zone) for h in hosts] == [
        (i, n["InstanceId"], n["PublicIpAddress"], n["PrivateIpAddress"],
         n["Placement"]["AvailabilityZone"]) for i, n in sorted(nodes.items())]
    assert targets.host(three) == hosts[0]
    status = {r["kind"]: r for r in inventory.collect(three)["resources"]}
    for i in (1, 2, 3):
        assert status[f"instance host node {i}"]["state"] == "running"
        assert nodes[i]["Placement"]["AvailabilityZone"] in \
            status[f"instance host node {i}"]["endpoint"]
        assert status[f"elastic ip node {i}"]["state"] == "associated"

    with calls.watch() as log:
        topology.provision(three)
    assert log.mutations == []
    capsys.readouterr()

    topology.provision(one, approval=Approval(plan_only=True))
    out = capsys.readouterr().out
    for i in (2, 3):
        assert f"- instance node {i}: {nodes[i]['InstanceId']} terminated" in out
        assert f"- elastic ip node {i}: {nodes[i]['PublicIpAddress']} released" in out
    assert "- rule host: tcp/2377 from host" in out

    topology.provision(one)
    assert sorted(_nodes(ec2, one)) == [1]
    assert [a["InstanceId"] for a in ec2.describe_addresses()["Addresses"]] == [
        nodes[1]["InstanceId"]]
    registered = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    assert [t["Target"]["Id"] for t in registered] == [nodes[1]["InstanceId"]]
    assert not _self_rules(groups(ec2)["host"])  # one host: no swarm rule
    with calls.watch() as log:
        topology.provision(one)
    assert log.mutations == []


def test_node_1_is_the_host_and_two_instances_of_one_node_are_refused(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = _count(make_env(emulator, monkeypatch, tmp_path, zone=False), 2)
    ec2 = boto(emulator)("ec2")
    image = env.host.ami

    def launch(node: int) -> str:
        return str(ec2.run_instances(
            ImageId=image, MinCount=1, MaxCount=1,
            TagSpecifications=tags.specifications(env, "host", "instance", node=node),
        )["Instances"][0]["InstanceId"])

    second, first = launch(2), launch(1)
    assert targets.instance(env)["InstanceId"] == first
    assert [h.node for h in targets.hosts(env)] == [1, 2]
    third = launch(2)
    with pytest.raises(OpsError, match=f"several host instances for node 2: {second}, {third}"):
        targets.hosts(env)
    with pytest.raises(OpsError, match="several host instances for node 2"):
        targets.instance(env)
    with pytest.raises(OpsError, match="several host instances for node 2"):
        topology.plan(env, checked=False)


def test_a_lost_node_is_replaced_after_its_predecessor_and_destroy_removes_every_node(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = _count(make_env(emulator, monkeypatch, tmp_path, zone=False), 2)
    ec2 = boto(emulator)("ec2")
    topology.provision(env)
    old = _nodes(ec2, env)
    ec2.terminate_instances(InstanceIds=[old[2]["InstanceId"]])
    with tokens() as sent:
        topology.provision(env)
    new = _nodes(ec2, env)
    assert new[1] == old[1] and new[2]["InstanceId"] != old[2]["InstanceId"]
    assert sent == [compute.client_token(env, old[2]["SubnetId"], old[2]["InstanceId"], 2)]
    address = next(a for a in ec2.describe_addresses()["Addresses"]
                   if {"Key": tags.ROLE, "Value": "host-ip-2"} in a["Tags"])
    assert address["InstanceId"] == new[2]["InstanceId"]

    teardown.destroy(env)
    assert ec2.describe_addresses()["Addresses"] == []
    assert _nodes(ec2, env) == {}
