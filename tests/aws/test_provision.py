"""provision against the emulator: the full topology, read back with plain boto3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ops.aws import calls, mail, topology
from ops.config import Environment
from ops.errors import OpsError
from tests.aws.provisioning import PASSWORD, boto, make_env


@pytest.fixture
def env(emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Environment:
    return make_env(emulator, monkeypatch, tmp_path)


@pytest.fixture
def provisioned(env: Environment, capsys: pytest.CaptureFixture[str]) -> Environment:
    with calls.watch() as log:
        topology.provision(env)
    assert log.mutations
    out = capsys.readouterr().out
    assert PASSWORD not in out
    return env


def _groups(ec2: Any) -> dict[str, dict[str, Any]]:
    found = ec2.describe_security_groups(
        Filters=[{"Name": "tag:openlmis:environment", "Values": ["awstest"]}])["SecurityGroups"]
    return {g["GroupName"].removeprefix("openlmis-awstest-"): g for g in found}


def _ingress(group: dict[str, Any], names: dict[str, str]) -> set[tuple[int, str]]:
    rules = set()
    for perm in group["IpPermissions"]:
        assert perm["IpProtocol"] == "tcp"
        assert perm["FromPort"] == perm["ToPort"]
        rules |= {(perm["FromPort"], r["CidrIp"]) for r in perm.get("IpRanges", [])}
        rules |= {(perm["FromPort"], names[p["GroupId"]])
                  for p in perm.get("UserIdGroupPairs", [])}
        assert not perm.get("Ipv6Ranges")
    return rules


def test_security_groups_are_least_privilege(provisioned: Environment, emulator: str) -> None:
    groups = _groups(boto(emulator)("ec2"))
    names = {g["GroupId"]: name for name, g in groups.items()}
    assert _ingress(groups["lb"], names) == {(80, "0.0.0.0/0"), (443, "0.0.0.0/0")}
    assert _ingress(groups["host"], names) == {(80, "lb"), (22, "203.0.113.0/24")}
    assert _ingress(groups["db"], names) == {(5432, "host")}


def test_network_has_two_zones_public_and_private(provisioned: Environment,
                                                  emulator: str) -> None:
    ec2 = boto(emulator)("ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:openlmis:role", "Values": ["vpc"]}])["Vpcs"]
    assert [v["CidrBlock"] for v in vpcs] == ["10.40.0.0/16"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}])
    zones = {s["CidrBlock"]: s["AvailabilityZone"] for s in subnets["Subnets"]}
    assert len(zones) == 4 and len(set(zones.values())) == 2
    table = ec2.describe_route_tables(
        Filters=[{"Name": "tag:openlmis:role", "Values": ["rt-public"]}])["RouteTables"][0]
    assert any(r.get("GatewayId", "").startswith("igw-") for r in table["Routes"])
    assert len([a for a in table["Associations"] if a.get("SubnetId")]) == 2


def test_database_is_private_encrypted_with_custom_parameters(provisioned: Environment,
                                                              emulator: str) -> None:
    rds = boto(emulator)("rds")
    db = rds.describe_db_instances(DBInstanceIdentifier="openlmis-awstest-db")["DBInstances"][0]
    assert db["DBInstanceClass"] == "db.t4g.micro"
    assert db["StorageEncrypted"] is True
    assert db["PubliclyAccessible"] is False
    assert db["BackupRetentionPeriod"] >= 7
    assert db["DeletionProtection"] is False  # dev tier
    assert db["DBParameterGroups"][0]["DBParameterGroupName"] == "openlmis-awstest-postgres17"
    sg = _groups(boto(emulator)("ec2"))["db"]["GroupId"]
    assert [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]] == [sg]
    params = {p["ParameterName"]: p["ParameterValue"] for p in rds.describe_db_parameters(
        DBParameterGroupName="openlmis-awstest-postgres17")["Parameters"]}
    assert int(params["max_connections"]) > 150
    group = rds.describe_db_subnet_groups(DBSubnetGroupName="openlmis-awstest-db")
    assert len(group["DBSubnetGroups"][0]["Subnets"]) == 2


def test_host_instance_is_hardened(provisioned: Environment, emulator: str) -> None:
    ec2, iam = boto(emulator)("ec2"), boto(emulator)("iam")
    reservations = ec2.describe_instances(Filters=[
        {"Name": "tag:openlmis:role", "Values": ["host"]},
        {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"]
    [instance] = [i for r in reservations for i in r["Instances"]]
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["InstanceType"] == "m6i.xlarge"
    assert instance["KeyName"] == "openlmis-awstest"
    assert instance["IamInstanceProfile"]["Arn"].endswith("/openlmis-awstest-host")
    volume = ec2.describe_volumes(VolumeIds=[
        instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]])["Volumes"][0]
    assert (volume["Encrypted"], volume["VolumeType"], volume["Size"]) == (True, "gp3", 30)
    [address] = ec2.describe_addresses()["Addresses"]
    assert address["InstanceId"] == instance["InstanceId"]
    policy = iam.get_role_policy(RoleName="openlmis-awstest-host", PolicyName="backups-bucket")
    resources = {r for s in policy["PolicyDocument"]["Statement"] for r in [s["Resource"]]}
    assert resources == {"arn:aws:s3:::openlmis-awstest-backups",
                         "arn:aws:s3:::openlmis-awstest-backups/*"}


def test_load_balancer_serves_https_and_redirects_http(provisioned: Environment,
                                                       emulator: str) -> None:
    elb, acm = boto(emulator)("elbv2"), boto(emulator)("acm")
    lb = elb.describe_load_balancers(Names=["openlmis-awstest-lb"])["LoadBalancers"][0]
    assert lb["Scheme"] == "internet-facing"
    attributes = {a["Key"]: a["Value"] for a in elb.describe_load_balancer_attributes(
        LoadBalancerArn=lb["LoadBalancerArn"])["Attributes"]}
    assert int(attributes["idle_timeout.timeout_seconds"]) >= 300
    listeners = {x["Port"]: x for x in elb.describe_listeners(
        LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]}
    assert set(listeners) == {80, 443}
    redirect = listeners[80]["DefaultActions"][0]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"]["Protocol"] == "HTTPS"
    https = listeners[443]
    assert https["Protocol"] == "HTTPS"
    cert = acm.describe_certificate(
        CertificateArn=https["Certificates"][0]["CertificateArn"])["Certificate"]
    assert cert["DomainName"] == "openlmis.test.example.org"
    assert cert["Status"] == "ISSUED"
    tg = elb.describe_target_groups(Names=["openlmis-awstest-host"])["TargetGroups"][0]
    assert https["DefaultActions"][0]["TargetGroupArn"] == tg["TargetGroupArn"]
    assert (tg["HealthCheckProtocol"], tg["HealthCheckPath"]) == ("HTTP", "/api/health")
    health = elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])
    assert len(health["TargetHealthDescriptions"]) == 1


def test_dns_bucket_and_mail(provisioned: Environment, emulator: str) -> None:
    aws = boto(emulator)
    zone = provisioned.route53_zone_id
    records = {(r["Name"], r["Type"]) for r in aws("route53").list_resource_record_sets(
        HostedZoneId=zone)["ResourceRecordSets"]}
    assert ("openlmis.test.example.org.", "A") in records  # alias to the load balancer
    assert ("_amazonses.openlmis.test.example.org.", "TXT") in records
    assert len([r for r in records if "._domainkey." in r[0]]) == 3
    assert len([r for r in records if r[0].startswith("_") and r[1] == "CNAME"]) == 1  # ACM
    s3, bucket = aws("s3"), "openlmis-awstest-backups"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert rules[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    dkim = aws("ses").get_identity_dkim_attributes(Identities=["openlmis.test.example.org"])
    assert dkim["DkimAttributes"]["openlmis.test.example.org"]["DkimEnabled"]
    secret = json.loads(aws("secretsmanager").get_secret_value(
        SecretId="openlmis-awstest/smtp")["SecretString"])
    keys = aws("iam").list_access_keys(UserName="openlmis-awstest-smtp")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [secret["username"]]
    assert secret["password"].startswith(mail.smtp_password("x", "eu-west-1")[:1])


def test_second_run_prints_no_changes_and_makes_no_mutating_call(
        provisioned: Environment, capsys: pytest.CaptureFixture[str]) -> None:
    with calls.watch() as log:
        topology.provision(provisioned)
    assert log.calls and log.mutations == []
    assert "no changes" in capsys.readouterr().out


def test_plan_lists_changes_and_makes_no_mutating_call(
        env: Environment, capsys: pytest.CaptureFixture[str]) -> None:
    with calls.watch() as log:
        topology.provision(env, dry_run=True)
    assert log.mutations == []
    out = capsys.readouterr().out
    assert "+ vpc: 10.40.0.0/16" in out
    assert "+ db instance openlmis-awstest-db" in out
    assert "+ listener HTTPS:443" in out


def test_drift_is_planned_and_repaired(provisioned: Environment, emulator: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    ec2 = boto(emulator)("ec2")
    db_group = _groups(ec2)["db"]["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=db_group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    capsys.readouterr()
    topology.provision(provisioned, dry_run=True)
    assert "- rule db: tcp/5432 from 0.0.0.0/0" in capsys.readouterr().out
    topology.provision(provisioned)
    names = {g["GroupId"]: n for n, g in _groups(ec2).items()}
    assert _ingress(_groups(ec2)["db"], names) == {(5432, "host")}


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
