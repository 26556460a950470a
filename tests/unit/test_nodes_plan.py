"""Several nodes (host.count > 1), planned purely: placement, launch tokens, the plan that grows
and shrinks the nodes, the swarm's security group rules, target registration, alarms, resize."""

from __future__ import annotations

from typing import Any

import pytest

from ops.aws import alarms, compute, loadbalancer, resize, security, tags
from ops.aws.security import Authorize, Revoke, Rule
from ops.errors import OpsError
from ops.plan import Action
from tests.unit.test_aws_plan import environment

SUBNET = "subnet-0123456789abcdef0"
Op, Node = compute.Op, compute.Node
SWARM = {Rule("tcp", 2377, 2377, "sg:host"), Rule("tcp", 7946, 7946, "sg:host"),
         Rule("udp", 7946, 7946, "sg:host"), Rule("udp", 4789, 4789, "sg:host")}


def _done(instance: str, eip: str) -> dict[str, Any]:
    """A node as provision leaves it."""
    return {"instance": {"id": instance, "metadata": compute.METADATA, "groups": ["sg.host"]},
            "eip": {"id": eip, "ip": "198.51.100.7", "instance": instance, "recorded": instance}}


def test_odd_nodes_go_to_public_1_and_even_ones_to_public_2() -> None:
    assert [compute.subnet_role(i) for i in range(1, 6)] == [
        "public-1", "public-2", "public-1", "public-2", "public-1"]
    assert [compute.key("instance", i) for i in (1, 2)] == ["instance", "instance.2"]


def test_each_node_has_its_own_token_and_node_1_keeps_todays() -> None:
    env = environment()
    assert compute.client_token(env, SUBNET, node=1) == f"{env.prefix}-host-{SUBNET}"
    assert compute.client_token(env, SUBNET, "i-1", node=1) == compute.client_token(
        env, SUBNET, "i-1")
    found = {compute.client_token(env, SUBNET, lost, node)
             for node in range(1, 10) for lost in (None, "i-0aaaaaaaaaaaaaaa1")}
    assert len(found) == 18
    second = compute.client_token(env, SUBNET, None, 2)
    assert "-n2-" in second and second == compute.client_token(env, SUBNET, None, 2)
    assert "-n2-" in compute.client_token(env, SUBNET, "i-0aaaaaaaaaaaaaaa1", 2)
    long = environment(name="a" * 40)
    assert all(len(compute.client_token(long, "subnet-" + "x" * 80, f"i-{n:017x}", node)) <= 64
               for n in range(3) for node in (1, 2, 9))


def test_count_3_from_nothing_plans_every_node_with_its_address() -> None:
    env = environment(host__count=3)
    found = compute.diff(env, {}, "key.pub")
    assert [c.payload for c in found] == [
        Op.KEY, Op.INSTANCE, Op.EIP, Op.ASSOCIATE,
        Node(Op.INSTANCE, 2), Node(Op.EIP, 2), Node(Op.ASSOCIATE, 2),
        Node(Op.INSTANCE, 3), Node(Op.EIP, 3), Node(Op.ASSOCIATE, 3)]
    lines = [c.line() for c in found]
    assert lines[1].startswith("+ instance host: ") and "subnet" not in lines[1]
    assert lines[4].startswith("+ instance node 2: ") and lines[4].endswith("subnet public-2")
    assert lines[5] == "+ elastic ip node 2"


def test_a_lost_node_is_replaced_and_its_address_follows() -> None:
    env = environment(host__count=2)
    lost = {"key": "k", **_done("i-1", "e-1"),
            "nodes": {2: {"replaces": "i-old2", "eip": {"id": "e-2", "instance": None,
                                                        "recorded": "i-old2"}}}}
    found = compute.diff(env, lost, "key.pub")
    assert [c.payload for c in found] == [Node(Op.INSTANCE, 2), Node(Op.ASSOCIATE, 2)]
    assert "replaces i-old2, which is gone" in found[0].line()


def test_lowering_the_count_releases_and_terminates_the_nodes_above_it() -> None:
    env = environment(host__count=1)
    three = {"key": "k", **_done("i-1", "e-1"),
             "nodes": {2: _done("i-2", "e-2"), 3: _done("i-3", "e-3")}}
    found = compute.diff(env, three, "key.pub")
    assert [c.payload for c in found] == [Node(Op.RELEASE, 2), Node(Op.TERMINATE, 2),
                                          Node(Op.RELEASE, 3), Node(Op.TERMINATE, 3)]
    assert all(c.action is Action.DELETE for c in found)
    assert found[1].line() == ("- instance node 2: i-2 terminated (node 2 is above host.count "
                               "1; its disk goes with it)")
    assert found[2].line().startswith("- elastic ip node 3: 198.51.100.7 released")
    assert compute.diff(environment(host__count=3), three, "key.pub") == []
    # An address left without its instance (a shrink interrupted between the two): released.
    [left] = compute.diff(env, {**three, "nodes": {2: {"eip": {"id": "e-2"}}}}, "key.pub")
    assert left.payload == Node(Op.RELEASE, 2) and "e-2 released" in left.line()


def test_instances_are_told_apart_by_their_node_tag() -> None:
    env = environment()
    one = {"InstanceId": "i-1", "Tags": [{"Key": tags.ROLE, "Value": "host"}]}
    two = {"InstanceId": "i-2", "Tags": [{"Key": tags.NODE, "Value": "2"}]}
    assert tags.by_node(env, [two, one], "hint") == {1: one, 2: two}
    with pytest.raises(OpsError, match="several host instances for node 2: i-2, i-3"):
        tags.by_node(env, [one, two, {**two, "InstanceId": "i-3"}], "hint")
    assert tags.tags(env, "host")["Name"] == f"{env.prefix}-host"
    assert tags.NODE not in tags.tags(env, "host")  # node 1 carries no node tag
    assert tags.tags(env, "host", node=2)[tags.NODE] == "2"
    assert tags.tags(env, "host", node=2)["Name"] == f"{env.prefix}-host-2"
    assert tags.node_role("host-ip", 3) == "host-ip-3"


def test_the_swarm_ports_open_between_nodes_only_with_several() -> None:
    one, three = environment(), environment(host__count=3)
    base = security.desired(one)["host"]
    assert not any(r.source == "sg:host" for r in base)
    assert security.desired(three)["host"] - base == SWARM
    assert {k: v for k, v in security.desired(three).items() if k != "host"} == {
        k: v for k, v in security.desired(one).items() if k != "host"}
    grow = security.diff(security.desired(three), security.desired(one))
    assert {c.payload for c in grow} == {Authorize("host", r) for r in SWARM}
    assert "+ rule host: udp/4789 from host" in [c.line() for c in grow]
    shrink = security.diff(security.desired(one), security.desired(three))
    assert {c.payload for c in shrink} == {Revoke("host", r) for r in SWARM}
    assert all(c.action is Action.DELETE for c in shrink)


def test_every_node_is_registered_and_what_is_no_node_deregistered() -> None:
    env = environment(host__count=3)
    done = {"tg": dict(loadbalancer.HEALTH), "registered": True, "unregistered": [], "others": [],
            "lb": {"idle": 300, "drop_invalid": "true"}, "listeners": {80: {"redirect": True}}}
    assert loadbalancer.diff(env, done, cert_issued=False) == []
    found = loadbalancer.diff(env, {**done, "registered": False, "unregistered": [2, 3],
                                    "others": ["i-4"]}, False)
    assert [c.line() for c in found] == [
        "+ target group openlmis-example-host: register nodes 2, 3",
        "- target group openlmis-example-host: deregister i-4 (not a node)"]
    described = [{"Target": {"Id": i, "Port": 80}, "TargetHealth": {"State": "healthy"}}
                 for i in ("i-1", "i-2", "i-4")]
    assert loadbalancer.others(described, {"i-1", "i-2"}) == [{"Id": "i-4", "Port": 80}]


def test_nodes_above_1_have_their_own_status_check_alarms() -> None:
    env = environment(host__count=3)
    size = alarms.Sizing(host_gib=16, db_gib=8, max_connections=200)
    found = alarms.definitions(env, {"instance": "i-1", "instance.2": "i-2"}, size)
    for what in ("host-system", "host-instance"):
        assert found[alarms.name(env, what)] is not None  # node 1's names as ever
        assert found[alarms.name(env, f"{what}-3")] is None  # node 3 not launched yet
        alarm = found[alarms.name(env, f"{what}-2")]
        assert alarm is not None and alarm.request["Dimensions"] == [
            {"Name": "InstanceId", "Value": "i-2"}]
        assert "node 2" in alarm.request["AlarmDescription"]
    one = alarms.definitions(environment(), {"instance": "i-1", "instance.2": "i-2"}, size)
    assert not [n for n in one if n.endswith("-2")]


def test_resize_changes_the_nodes_one_at_a_time() -> None:
    env = environment(host__count=2)
    nodes = [{"InstanceId": "i-1", "InstanceType": "m5.large", "State": {"Name": "running"}},
             {"InstanceId": "i-2", "InstanceType": "m5.large", "State": {"Name": "stopped"},
              "Tags": [{"Key": tags.NODE, "Value": "2"}]}]
    found = resize.plan(env, None, nodes, "snapshot")
    assert found.payloads() == [resize.Host("i-1", env.host.instance_type, "running"),
                                resize.Host("i-2", env.host.instance_type, "stopped")]
    assert found.changes[1].target == "host i-2 (node 2)"
    assert "one node at a time" in found.changes[0].detail
