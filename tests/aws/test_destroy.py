"""destroy: final snapshot kept, nothing tagged for the environment left, production refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from invoke import Context, Exit

from ops.aws import calls, teardown, topology
from ops.errors import OpsError
from ops.tasks import provision as tasks
from tests.aws.provisioning import boto, make_env

TAGGED = [{"Name": "tag:openlmis:environment", "Values": ["awstest"]}]


def test_destroy_keeps_a_final_snapshot_and_leaves_nothing_tagged(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = make_env(emulator, monkeypatch, tmp_path)
    topology.provision(env)
    [snapshot] = teardown.destroy(env)
    aws = boto(emulator)
    snapshots = aws("rds").describe_db_snapshots(SnapshotType="manual")["DBSnapshots"]
    assert [s["DBSnapshotIdentifier"] for s in snapshots] == [snapshot]
    assert snapshot.startswith("openlmis-awstest-db-final-")
    ec2 = aws("ec2")
    assert ec2.describe_vpcs(Filters=TAGGED)["Vpcs"] == []
    assert ec2.describe_subnets(Filters=TAGGED)["Subnets"] == []
    assert ec2.describe_security_groups(Filters=TAGGED)["SecurityGroups"] == []
    assert ec2.describe_addresses()["Addresses"] == []
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    assert all(i["State"]["Name"] == "terminated"
               for r in ec2.describe_instances()["Reservations"] for i in r["Instances"])
    assert aws("rds").describe_db_instances()["DBInstances"] == []
    assert aws("elbv2").describe_load_balancers()["LoadBalancers"] == []
    assert aws("elbv2").describe_target_groups()["TargetGroups"] == []
    assert aws("acm").list_certificates()["CertificateSummaryList"] == []
    assert aws("iam").list_roles()["Roles"] == []
    assert aws("iam").list_users()["Users"] == []
    assert aws("s3").list_buckets()["Buckets"] == []
    records = aws("route53").list_resource_record_sets(
        HostedZoneId=env.route53_zone_id)["ResourceRecordSets"]
    assert {r["Type"] for r in records} == {"NS", "SOA"}
    tagged = aws("resourcegroupstaggingapi").get_resources(
        TagFilters=[{"Key": "openlmis:environment", "Values": ["awstest"]}])
    left = {m["ResourceARN"].split(":")[5].split("/")[0]
            for m in tagged["ResourceTagMappingList"]}
    assert left <= {"instance", "snapshot"}  # terminated (listed for a while), final snapshot
    with calls.watch() as again:
        teardown.destroy(env)
    assert again.mutations == []


def test_destroy_refuses_production_without_force(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = make_env(emulator, monkeypatch, tmp_path)
    env = env.model_validate({**env.model_dump(),
                              "database": {**env.database.model_dump(), "tier": "production"}})
    with calls.watch() as log, pytest.raises(OpsError, match="production"):
        teardown.destroy(env)
    assert log.calls == []



def test_destroy_task_lists_then_needs_approval(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    env = make_env(emulator, monkeypatch, tmp_path)
    topology.provision(env)
    monkeypatch.setenv("OPS_CONFIG_DIR", str(tmp_path))
    capsys.readouterr()
    with calls.watch() as log, pytest.raises(Exit) as planned:
        tasks.destroy(Context(), env="awstest", plan=True)
    assert planned.value.code == 2 and log.mutations == []
    assert "- database openlmis-awstest-db (after a final snapshot" in capsys.readouterr().out
    with calls.watch() as log, pytest.raises(Exit) as refused:
        tasks.destroy(Context(), env="awstest")  # pytest's stdin is not a terminal
    assert refused.value.code == 1 and log.mutations == []
    assert "refusing to apply" in capsys.readouterr().err
    tasks.destroy(Context(), env="awstest", yes=True)
    assert boto(emulator)("rds").describe_db_instances()["DBInstances"] == []
