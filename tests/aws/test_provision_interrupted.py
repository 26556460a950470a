"""Interruption: provision dies at any mutating call; the next run converges, no duplicates.

Each run here fails at its 2nd mutating call, so it makes exactly one change and dies. Runs
replay the same plan order, so after run k the account holds what a fresh provision holds when
it dies at mutating call k+1 — every interruption point in one pass, instead of a fresh account
and two runs per point (which would take many minutes against the emulator). A step that needs
two calls in one process (a new access key is readable only in the reply that creates it) gets
one more call each time a run fails where an earlier run failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ops.aws import calls, topology
from ops.aws.calls import InjectedFailure
from ops.config import Environment
from tests.aws.provisioning import boto, make_env


def inventory(emulator: str) -> dict[str, Any]:
    """What exists, by kind, in a form comparable between accounts (no generated ids)."""
    aws = boto(emulator)
    ec2, rds, elb = aws("ec2"), aws("rds"), aws("elbv2")
    tagged = [{"Name": "tag:openlmis:environment", "Values": ["awstest"]}]

    def roles(items: list[dict[str, Any]]) -> list[str]:
        return sorted({t["Key"]: t["Value"] for t in i.get("Tags", [])}.get("openlmis:role", "?")
                      for i in items)

    instances = [i for r in ec2.describe_instances(Filters=tagged)["Reservations"]
                 for i in r["Instances"] if i["State"]["Name"] != "terminated"]
    return {
        "vpcs": roles(ec2.describe_vpcs(Filters=tagged)["Vpcs"]),
        "subnets": roles(ec2.describe_subnets(Filters=tagged)["Subnets"]),
        "igws": roles(ec2.describe_internet_gateways(Filters=tagged)["InternetGateways"]),
        "route_tables": roles(ec2.describe_route_tables(Filters=tagged)["RouteTables"]),
        "groups": {g["GroupName"]: len(g["IpPermissions"])
                   for g in ec2.describe_security_groups(Filters=tagged)["SecurityGroups"]},
        "instances": roles(instances),
        "addresses": len(ec2.describe_addresses()["Addresses"]),
        "keys": len(ec2.describe_key_pairs()["KeyPairs"]),
        "databases": [d["DBInstanceIdentifier"]
                      for d in rds.describe_db_instances()["DBInstances"]],
        "load_balancers": [lb["LoadBalancerName"]
                           for lb in elb.describe_load_balancers()["LoadBalancers"]],
        "target_groups": [t["TargetGroupName"]
                          for t in elb.describe_target_groups()["TargetGroups"]],
        "certificates": len(aws("acm").list_certificates()["CertificateSummaryList"]),
        "access_keys": len(aws("iam").list_access_keys(
            UserName="openlmis-awstest-smtp")["AccessKeyMetadata"]),
        "records": sorted((r["Name"], r["Type"]) for r in aws("route53").list_resource_record_sets(
            HostedZoneId=aws("route53").list_hosted_zones()["HostedZones"][0]["Id"],
        )["ResourceRecordSets"]),
    }


@pytest.fixture
def env(emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Environment:
    return make_env(emulator, monkeypatch, tmp_path)


def test_interrupted_after_every_mutating_call_converges_without_duplicates(
        env: Environment, emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with calls.watch() as clean:
        topology.provision(env)
    expected = inventory(emulator)

    env = make_env(emulator, monkeypatch, tmp_path / "again")
    interruptions, fail_at, seen = 0, 2, set()
    while True:
        try:
            with calls.watch(fail_at=fail_at) as log:
                topology.provision(env)
            break
        except InjectedFailure:
            interruptions += 1
            assert interruptions <= 2 * len(clean.mutations), "provision does not converge"
            where = (log.mutations[-1], len(log.calls))
            fail_at = fail_at + 1 if where in seen else 2
            seen.add(where)
    assert interruptions >= len(clean.mutations) - 1
    assert inventory(emulator) == expected
    with calls.watch() as after:
        topology.provision(env)
    assert after.mutations == []


@pytest.mark.parametrize("where", [0.5, 1.0])
def test_fresh_account_interrupted_once_converges_on_the_next_run(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: float) -> None:
    """The literal case, at a middle and at the last mutating call."""
    env = make_env(emulator, monkeypatch, tmp_path / "clean")
    with calls.watch() as clean:
        topology.provision(env)
    expected = inventory(emulator)
    env = make_env(emulator, monkeypatch, tmp_path / "interrupted")
    made = [k for k, call in enumerate(clean.mutations, 1) if not call.startswith("ssm.")]
    k = made[round(where * (len(made) - 1))]  # not the AWS lock's own calls (ops.aws.lock)
    with calls.watch(fail_at=k), pytest.raises(InjectedFailure):
        topology.provision(env)
    topology.provision(env)
    assert inventory(emulator) == expected
