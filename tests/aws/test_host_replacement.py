"""provision replaces a terminated host: a new launch token, the Elastic IP and the target group
follow the new instance, and a second run changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ops.approval import Approval
from ops.aws import calls, compute, topology
from ops.config import Environment
from tests.aws.provisioning import boto, make_env, tokens


def _host(ec2: Any, env: Environment) -> list[dict[str, Any]]:
    return [i for r in ec2.describe_instances(Filters=[
        {"Name": "tag:openlmis:environment", "Values": [env.name]},
        {"Name": "instance-state-name", "Values": compute.LIVE}])["Reservations"]
        for i in r["Instances"]]


def test_a_terminated_host_is_replaced_and_everything_follows_it(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    env = make_env(emulator, monkeypatch, tmp_path)
    aws = boto(emulator)
    ec2, elb = aws("ec2"), aws("elbv2")
    with tokens() as sent:
        topology.provision(env)
        [old] = _host(ec2, env)
        [address] = ec2.describe_addresses()["Addresses"]
        assert {"Key": compute.HOST_TAG, "Value": old["InstanceId"]} in address["Tags"]
        # AWS keeps a terminated instance registered (unused, Target.InvalidState) until it
        # is deregistered; the emulator deregisters it at once and refuses to register one
        # that is not running. A running instance that is not the host stands in for it.
        stray = ec2.run_instances(ImageId=old["ImageId"], MinCount=1, MaxCount=1,
                                  SubnetId=old["SubnetId"])["Instances"][0]["InstanceId"]
        tg = elb.describe_target_groups()["TargetGroups"][0]["TargetGroupArn"]
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": stray, "Port": 80}])
        ec2.terminate_instances(InstanceIds=[old["InstanceId"]])
        capsys.readouterr()

        topology.provision(env, approval=Approval(plan_only=True))
        out = capsys.readouterr().out
        assert f"replaces {old['InstanceId']}, which is gone" in out
        assert "~ elastic ip host: associate with the instance" in out
        assert "register the host" in out
        assert f"- target group openlmis-awstest-host: deregister {stray} (not the host)" in out

        topology.provision(env)
    [new] = _host(ec2, env)
    assert new["InstanceId"] != old["InstanceId"]
    assert sent == [compute.client_token(env, old["SubnetId"]),
                    compute.client_token(env, old["SubnetId"], old["InstanceId"])]
    [address] = ec2.describe_addresses()["Addresses"]
    assert address["InstanceId"] == new["InstanceId"]
    assert {"Key": compute.HOST_TAG, "Value": new["InstanceId"]} in address["Tags"]
    targets = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    assert [t["Target"]["Id"] for t in targets] == [new["InstanceId"]]

    with calls.watch() as log:
        topology.provision(env)
    assert log.mutations == []
    assert "no changes" in capsys.readouterr().out
