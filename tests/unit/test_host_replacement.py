"""A lost host is replaced: the launch token of each host generation, the plan that follows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ops.aws import compute, loadbalancer
from ops.errors import OpsError
from tests.unit.test_aws_plan import environment

SUBNET = "subnet-0123456789abcdef0"


def test_each_generation_has_its_own_token_and_a_retry_the_same() -> None:
    env = environment()
    first = compute.client_token(env, SUBNET)
    assert first == f"{env.prefix}-host-{SUBNET}"  # what hosts launched so far carry
    second = compute.client_token(env, SUBNET, "i-0aaaaaaaaaaaaaaa1")
    third = compute.client_token(env, SUBNET, "i-0aaaaaaaaaaaaaaa2")
    assert len({first, second, third}) == 3
    assert second == compute.client_token(env, SUBNET, "i-0aaaaaaaaaaaaaaa1")
    assert second.endswith("-after-i-0aaaaaaaaaaaaaaa1")
    assert compute.client_token(env, "subnet-0123456789abcdef1", "i-0aaaaaaaaaaaaaaa1") != second
    long = environment(name="a" * 40)
    tokens = {compute.client_token(long, SUBNET, f"i-{n:017x}") for n in range(50)}
    assert len(tokens) == 50 and max(map(len, tokens)) <= 64
    assert len(compute.client_token(long, "subnet-" + "x" * 80)) <= 64


def _at(instance: str, hour: int) -> dict[str, Any]:
    return {"InstanceId": instance, "LaunchTime": datetime(2026, 1, 1, hour, tzinfo=UTC)}


def test_the_predecessor_is_read_from_what_outlives_the_host() -> None:
    assert compute.predecessor([], None) is None  # the first host
    # AWS shows a terminated instance for about an hour; the Elastic IP's record stays.
    assert compute.predecessor([], "i-old") == "i-old"
    assert compute.predecessor([_at("i-old", 1)], "i-old") == "i-old"
    # A replacement lost before its address recorded it is newer than the record.
    assert compute.predecessor([_at("i-old", 1), _at("i-lost", 3), _at("i-older", 0)],
                               "i-old") == "i-lost"


def test_a_token_spent_on_a_host_lost_since_moves_on_to_the_next_generation() -> None:
    """EC2 answers a token it already used with that launch's instance for 24 hours after
    the instance is terminated (the emulator forgets tokens: this is EC2's side, recorded)."""
    env = environment()
    launched: dict[str, dict[str, Any]] = {
        compute.client_token(env, SUBNET, "i-1"): {"InstanceId": "i-2",
                                                   "State": {"Name": "terminated"}}}
    tokens: list[str] = []

    def run(token: str) -> dict[str, Any]:
        tokens.append(token)
        return launched.setdefault(token, {"InstanceId": f"i-{len(launched) + 2}",
                                           "State": {"Name": "pending"}})

    assert compute.launch(env, SUBNET, "i-1", run) == "i-3"
    assert tokens == [compute.client_token(env, SUBNET, "i-1"),
                      compute.client_token(env, SUBNET, "i-2")]
    tokens.clear()
    assert compute.launch(env, SUBNET, "i-1", run) == "i-3"  # a retry: the same instance
    assert len(launched) == 2

    def gone(token: str) -> dict[str, Any]:
        return {"InstanceId": f"i-{token[-4:]}", "State": {"Name": "shutting-down"}}

    with pytest.raises(OpsError, match="with instances that are gone"):
        compute.launch(env, SUBNET, None, gone)


def test_a_lost_host_is_planned_as_a_replacement_and_the_address_follows() -> None:
    env = environment()
    Op = compute.Op
    lost = {"key": "k", "replaces": "i-old", "eip": {"id": "e", "instance": None,
                                                     "recorded": "i-old"}}
    found = compute.diff(env, lost, "key.pub")
    assert [c.payload for c in found] == [Op.INSTANCE, Op.ASSOCIATE]
    assert "replaces i-old, which is gone (a new SSH host key)" in found[0].line()
    replaced = {"key": "k", "instance": {"id": "i-new", "metadata": compute.METADATA},
                "eip": {"id": "e", "instance": "i-new", "recorded": "i-new"}}
    assert compute.diff(env, replaced, "key.pub") == []
    # An address associated before the toolkit recorded it: recorded once, shown.
    unrecorded = {**replaced, "eip": {"id": "e", "instance": "i-new", "recorded": None}}
    [change] = compute.diff(env, unrecorded, "key.pub")
    assert change.payload is Op.RECORD and f"i-new in tag {compute.HOST_TAG}" in change.line()


def _health(instance: str, state: str) -> dict[str, Any]:
    return {"Target": {"Id": instance, "Port": 80}, "TargetHealth": {"State": state}}


def test_the_replaced_hosts_target_is_deregistered_unless_already_leaving() -> None:
    described = [_health("i-old", "unused"), _health("i-new", "initial"),
                 _health("i-older", "draining")]
    assert loadbalancer.others(described, {"i-new"}) == [{"Id": "i-old", "Port": 80}]
    assert loadbalancer.others(described, set()) == [{"Id": "i-new", "Port": 80},
                                                    {"Id": "i-old", "Port": 80}]
    env = environment()
    done = {"tg": dict(loadbalancer.HEALTH), "registered": True, "others": [],
            "lb": {"idle": 300, "drop_invalid": "true"},
            "listeners": {80: {"redirect": True}}}
    assert loadbalancer.diff(env, done, cert_issued=False) == []
    found = loadbalancer.diff(env, {**done, "registered": False, "others": ["i-old"]}, False)
    assert [c.payload for c in found] == [loadbalancer.Op.REGISTER, loadbalancer.Op.DEREGISTER]
    assert found[1].line().startswith("- target group") and "deregister i-old" in found[1].line()
