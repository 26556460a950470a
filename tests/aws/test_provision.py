"""provision against the emulator: second run, --plan, drift, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ops.approval import Approval
from ops.aws import calls, inventory, teardown, topology
from ops.config import Environment
from ops.errors import OpsError
from tests.aws.provisioning import PASSWORD, boto, groups, ingress, make_env


@pytest.fixture
def env(emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Environment:
    return make_env(emulator, monkeypatch, tmp_path)


@pytest.fixture
def provisioned(env: Environment, capsys: pytest.CaptureFixture[str]) -> Environment:
    with calls.watch() as log:
        topology.provision(env)
    assert PASSWORD not in capsys.readouterr().out
    # The slow parts start first: the database before the host, the certificate's validation
    # record before anything waits for the certificate (the HTTPS listener).
    made = log.mutations
    assert made.index("rds.CreateDBInstance") < made.index("ec2.RunInstances")
    assert made.index("route53.ChangeResourceRecordSets") < made.index("ec2.RunInstances")
    return env



def test_second_run_prints_no_changes_and_makes_no_mutating_call(
        provisioned: Environment, capsys: pytest.CaptureFixture[str]) -> None:
    with calls.watch() as log:
        topology.provision(provisioned)
    assert log.calls and log.mutations == []
    assert "no changes" in capsys.readouterr().out


def test_plan_lists_changes_and_makes_no_mutating_call(
        env: Environment, capsys: pytest.CaptureFixture[str]) -> None:
    with calls.watch() as log:
        topology.provision(env, approval=Approval(plan_only=True))
    assert log.mutations == []
    out = capsys.readouterr().out
    assert "+ vpc: 10.40.0.0/16" in out
    assert "+ db instance openlmis-awstest-db" in out
    assert "+ listener HTTPS:443" in out


def test_drift_is_planned_and_repaired(provisioned: Environment, emulator: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    ec2 = boto(emulator)("ec2")
    db_group = groups(ec2)["db"]["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=db_group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    capsys.readouterr()
    topology.provision(provisioned, approval=Approval(plan_only=True))
    assert "- rule db: tcp/5432 from 0.0.0.0/0" in capsys.readouterr().out
    topology.provision(provisioned)
    names = {g["GroupId"]: n for n, g in groups(ec2).items()}
    assert ingress(groups(ec2)["db"], names) == {(5432, "host")}


def test_bad_input_stops_before_the_first_mutating_call(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = make_env(emulator, monkeypatch, tmp_path,
                   extra="backups: {bucket: openlmis-other}\n")
    boto(emulator)("ec2").create_vpc(CidrBlock="10.40.128.0/17")
    with calls.watch() as log, pytest.raises(OpsError, match="overlaps"):
        topology.provision(env)
    assert log.mutations == []


@pytest.mark.parametrize(("extra", "message"), [
    ("database: {master_password: 'ssm:/missing', instance_class: db.t4g.micro}", "is not set"),
    ("database: {master_password: 'ssm:/openlmis/test/db', instance_class: db.t2.micro}",
     "cannot use db.t2.micro"),
    ("aws: {region: eu-west-9}", "not an AWS region"),
])
def test_bad_settings_are_one_clear_message(emulator: str, monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path, extra: str, message: str) -> None:
    env = make_env(emulator, monkeypatch, tmp_path)
    env = env.model_validate({**env.model_dump(), **_yaml(extra)})
    with calls.watch() as log, pytest.raises(OpsError, match=message):
        topology.provision(env)
    assert log.mutations == []


def test_domain_outside_the_zone_is_refused(emulator: str, monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    env = make_env(emulator, monkeypatch, tmp_path)
    env = env.model_validate({**env.model_dump(), "domain": "openlmis.elsewhere.org"})
    with calls.watch() as log, pytest.raises(OpsError, match="not in the Route 53 zone"):
        topology.provision(env)
    assert log.mutations == []


def _yaml(text: str) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(text)


def test_existing_vpc_is_used_and_left_in_place(emulator: str, monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    env = make_env(emulator, monkeypatch, tmp_path)
    ec2 = boto(emulator)("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.50.{i}.0/24",
                                 AvailabilityZone=f"eu-west-1{'ab'[i % 2]}")["Subnet"]["SubnetId"]
               for i in range(4)]
    env = env.model_validate({**env.model_dump(), "network": {
        **env.network.model_dump(), "existing_vpc_id": vpc,
        "existing_public_subnet_ids": subnets[:2], "existing_private_subnet_ids": subnets[2:]}})
    topology.provision(env)
    with calls.watch() as log:
        topology.provision(env)
    assert log.mutations == []
    assert [v["VpcId"] for v in ec2.describe_vpcs(
        Filters=[{"Name": "tag:openlmis:role", "Values": ["vpc"]}])["Vpcs"]] == []
    assert {g["VpcId"] for g in ec2.describe_security_groups(
        Filters=[{"Name": "tag:openlmis:environment", "Values": ["awstest"]}])[
        "SecurityGroups"]} == {vpc}
    teardown.destroy(env)
    assert ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"]
    assert len(ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])[
        "Subnets"]) == 4


def test_status_of_an_environment_not_provisioned_yet(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = make_env(emulator, monkeypatch, tmp_path)
    with calls.watch() as log:
        found = inventory.collect(env)
    assert log.mutations == []
    assert found["resources"] == []
    assert "+ vpc: 10.40.0.0/16" in found["pending_changes"]


def test_from_address_mail_and_operator_smtp_secret(emulator: str,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    env = make_env(emulator, monkeypatch, tmp_path, extra="backups: {keep_days: 14}\n")
    env = env.model_validate({**env.model_dump(), "mail": {
        **env.mail.model_dump(), "verify_domain": False, "smtp_password": "ssm:/smtp"}})
    topology.provision(env)
    aws = boto(emulator)
    identities = aws("ses").list_identities()["Identities"]
    assert identities == ["noreply@openlmis.test.example.org"]
    assert aws("iam").list_users()["Users"] == []
    rules = aws("s3").get_bucket_lifecycle_configuration(Bucket=env.bucket)["Rules"]
    assert rules[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 14


def test_production_tier_is_protected_until_destroy_is_forced(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = make_env(emulator, monkeypatch, tmp_path)
    env = env.model_validate({**env.model_dump(), "database": {
        **env.database.model_dump(), "tier": "production", "workload": {"products": 800}}})
    topology.provision(env)
    rds = boto(emulator)("rds")
    db = rds.describe_db_instances(DBInstanceIdentifier="openlmis-awstest-db")["DBInstances"][0]
    assert (db["DeletionProtection"], db["MultiAZ"]) == (True, True)
    assert db["DBInstanceClass"] == "db.t4g.large"  # size-db's: > 500 products, idle by default
    with pytest.raises(OpsError, match="production"):
        teardown.destroy(env)
    with pytest.raises(OpsError, match="deletion protection is on for database"):
        teardown.destroy(env, force=True)
    [snapshot] = teardown.destroy(env, force=True, remove_protection=True)
    assert rds.describe_db_instances()["DBInstances"] == []
    assert rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot)["DBSnapshots"]
