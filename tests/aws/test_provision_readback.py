"""provision against the emulator once, then the resulting AWS state read back with boto3."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ops.aws import calls, mail, topology
from ops.config import Environment
from tests.aws.provisioning import PASSWORD, boto, groups, ingress, make_env


@pytest.fixture(scope="module")
def provisioned(emulator: str, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[Environment]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        env = make_env(emulator, monkeypatch, tmp_path_factory.mktemp("readback"))
        with calls.watch() as log:
            topology.provision(env)
        assert log.mutations
        yield env



def test_security_groups_are_least_privilege(provisioned: Environment, emulator: str) -> None:
    found = groups(boto(emulator)("ec2"))
    names = {g["GroupId"]: name for name, g in found.items()}
    assert ingress(found["lb"], names) == {(80, "0.0.0.0/0"), (443, "0.0.0.0/0")}
    assert ingress(found["host"], names) == {(80, "lb"), (8081, "lb"), (22, "203.0.113.0/24")}
    assert ingress(found["db"], names) == {(5432, "host")}


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
    sg = groups(boto(emulator)("ec2"))["db"]["GroupId"]
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
    assert (tg["HealthCheckProtocol"], tg["HealthCheckPort"], tg["HealthCheckPath"]) == (
        "HTTP", "8081", "/health")  # the health service, asking /api/health as users arrive
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


def test_password_is_never_printed(provisioned: Environment,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    topology.provision(provisioned)
    assert PASSWORD not in capsys.readouterr().out
