"""provision against the emulator once, then the resulting AWS state read back with boto3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from ops.aws import calls, loadbalancer, mail, topology
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
    resources = {r for s in policy["PolicyDocument"]["Statement"]
                 for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])}
    assert resources == {"arn:aws:s3:::openlmis-awstest-backups",
                         "arn:aws:s3:::openlmis-awstest-backups/dumps/*",
                         "arn:aws:s3:::openlmis-awstest-backups/runs/*", "*"}


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


# The environment read the way a security reviewer reads an account: every group, attachment and
# document as the emulator holds it, judged against what the design allows, not against what the
# toolkit's own modules compute.

WORLD = {"0.0.0.0/0", "::/0"}
# What the design allows the host, and nothing else: each action with the resources it may
# name (under the bucket's ARN, or any for CloudWatch) and the condition it must carry. Nothing
# deletes, nothing replaces (write only with If-None-Match: *), nothing configures the bucket.
HOST_GRANTS: dict[str, tuple[set[str], dict[str, Any] | None]] = {
    "s3:PutObject": ({"/dumps/*", "/runs/*"}, {"StringEquals": {"s3:if-none-match": "*"}}),
    "s3:GetObject": ({"/dumps/*"}, None),
    "s3:ListBucket": ({""}, None),
    "cloudwatch:PutMetricData": ({"*"}, {"StringEquals": {"cloudwatch:namespace": "OpenLMIS"}}),
}


def _covers(perm: dict[str, Any], port: int) -> bool:
    return perm["IpProtocol"] == "-1" or perm.get("FromPort", 0) <= port <= perm.get("ToPort", 0)


def _sources(perm: dict[str, Any]) -> set[str]:
    return ({r["CidrIp"] for r in perm.get("IpRanges", [])}
            | {r["CidrIpv6"] for r in perm.get("Ipv6Ranges", [])}
            | {p["GroupId"] for p in perm.get("UserIdGroupPairs", [])})


def _host(ec2: Any) -> dict[str, Any]:
    reservations = ec2.describe_instances(Filters=[
        {"Name": "tag:openlmis:role", "Values": ["host"]},
        {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"]
    [instance] = [i for r in reservations for i in r["Instances"]]
    return instance


def test_review_no_group_in_the_vpc_opens_more_than_the_design(provisioned: Environment,
                                                               emulator: str) -> None:
    """Every group of the VPC (the default one too): the world reaches only 80/443 of the load
    balancer's group, SSH only from admin_cidrs, PostgreSQL only from the host's group."""
    ec2 = boto(emulator)("ec2")
    ours = groups(ec2)
    vpc = ours["lb"]["VpcId"]
    admins = {str(c) for c in provisioned.network.admin_cidrs}
    every = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
    assert len(every) >= 3
    for group in every:
        for perm in group["IpPermissions"]:
            sources = _sources(perm)
            if sources & WORLD:
                assert group["GroupId"] == ours["lb"]["GroupId"], group["GroupName"]
                assert (perm["IpProtocol"], perm["FromPort"], perm["ToPort"]) in {
                    ("tcp", 80, 80), ("tcp", 443, 443)}, perm
            if _covers(perm, 22):  # a group's members may reach each other (the default's)
                assert sources <= admins | {group["GroupId"]}, (group["GroupName"], perm)
    [db] = ours["db"]["IpPermissions"]
    assert (db["IpProtocol"], db["FromPort"], db["ToPort"], _sources(db)) == (
        "tcp", 5432, 5432, {ours["host"]["GroupId"]})


def test_review_each_resource_wears_only_its_own_group(provisioned: Environment,
                                                       emulator: str) -> None:
    """Rules mean nothing unless the right group is on the right resource, alone."""
    aws = boto(emulator)
    ours = {role: g["GroupId"] for role, g in groups(aws("ec2")).items()}
    assert [g["GroupId"] for g in _host(aws("ec2"))["SecurityGroups"]] == [ours["host"]]
    db = aws("rds").describe_db_instances(
        DBInstanceIdentifier="openlmis-awstest-db")["DBInstances"][0]
    assert [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]] == [ours["db"]]
    lb = aws("elbv2").describe_load_balancers(Names=["openlmis-awstest-lb"])["LoadBalancers"][0]
    assert lb["SecurityGroups"] == [ours["lb"]]


def test_review_database_sits_in_subnets_without_a_route_to_the_internet(
        provisioned: Environment, emulator: str) -> None:
    """Each subnet the database may be placed in routes (explicitly, or through the VPC's main
    table) to no internet gateway."""
    aws = boto(emulator)
    ec2 = aws("ec2")
    db = aws("rds").describe_db_instances(
        DBInstanceIdentifier="openlmis-awstest-db")["DBInstances"][0]
    [group] = aws("rds").describe_db_subnet_groups(
        DBSubnetGroupName=db["DBSubnetGroup"]["DBSubnetGroupName"])["DBSubnetGroups"]
    subnets = {s["SubnetIdentifier"] for s in group["Subnets"]}
    assert len(subnets) == 2
    tables = ec2.describe_route_tables(Filters=[
        {"Name": "vpc-id", "Values": [group["VpcId"]]}])["RouteTables"]
    main = next(t for t in tables if any(a.get("Main") for a in t["Associations"]))
    for subnet in subnets:
        table = next((t for t in tables if any(a.get("SubnetId") == subnet
                                               for a in t["Associations"])), main)
        assert not any(r.get("GatewayId", "").startswith("igw-") for r in table["Routes"]), subnet


def test_review_host_requires_imdsv2_and_encrypts_its_root(provisioned: Environment,
                                                          emulator: str) -> None:
    ec2 = boto(emulator)("ec2")
    instance = _host(ec2)
    # The emulator serves no metadata endpoint to try a token-less request against: the options
    # it records for the instance are what is checked.
    metadata = instance["MetadataOptions"]
    assert metadata["HttpTokens"] == "required"
    # 1: the role's only consumer is the host's own scheduled job; a container is one hop
    # further and gets no token.
    assert metadata["HttpPutResponseHopLimit"] == 1
    root = next(m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"]
                if m["DeviceName"] == instance["RootDeviceName"])
    assert ec2.describe_volumes(VolumeIds=[root])["Volumes"][0]["Encrypted"] is True


def test_review_database_is_private_encrypted_kept_and_forces_tls(provisioned: Environment,
                                                                 emulator: str) -> None:
    rds = boto(emulator)("rds")
    db = rds.describe_db_instances(DBInstanceIdentifier="openlmis-awstest-db")["DBInstances"][0]
    assert db["PubliclyAccessible"] is False
    assert db["StorageEncrypted"] is True
    assert db["BackupRetentionPeriod"] >= provisioned.database.backup_retention_days >= 7
    # On where the tier is production (a dev tier may go without ceremony; the production
    # tier's test in test_provision sees it on).
    assert db["DeletionProtection"] is provisioned.is_production
    group = db["DBParameterGroups"][0]["DBParameterGroupName"]
    # The emulator lists only parameters set on the group (no engine defaults): rds.force_ssl
    # shows only because the toolkit sets it, as it must for the check to mean anything.
    params = {p["ParameterName"]: p.get("ParameterValue") for p in rds.describe_db_parameters(
        DBParameterGroupName=group)["Parameters"]}
    assert params.get("rds.force_ssl") == "1"


def test_review_load_balancer_speaks_only_modern_tls(provisioned: Environment,
                                                     emulator: str) -> None:
    elb = boto(emulator)("elbv2")
    lb = elb.describe_load_balancers(Names=["openlmis-awstest-lb"])["LoadBalancers"][0]
    listeners = {x["Port"]: x for x in elb.describe_listeners(
        LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]}
    assert set(listeners) == {80, 443}
    http = listeners[80]
    rules = elb.describe_rules(ListenerArn=http["ListenerArn"])["Rules"]
    assert [r["IsDefault"] for r in rules] == [True]  # HTTP forwards nothing anywhere
    [redirect] = http["DefaultActions"]
    assert redirect["Type"] == "redirect"
    assert (redirect["RedirectConfig"]["Protocol"], redirect["RedirectConfig"]["Port"]) == (
        "HTTPS", "443")
    https = listeners[443]
    assert https["Protocol"] == "HTTPS"
    assert https["SslPolicy"] == loadbalancer.TLS_POLICY
    [policy] = elb.describe_ssl_policies(Names=[https["SslPolicy"]])["SslPolicies"]
    assert set(policy["SslProtocols"]) <= {"TLSv1.2", "TLSv1.3"}
    attributes = {a["Key"]: a["Value"] for a in elb.describe_load_balancer_attributes(
        LoadBalancerArn=lb["LoadBalancerArn"])["Attributes"]}
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"


def test_review_bucket_is_private_encrypted_and_tls_only(provisioned: Environment,
                                                         emulator: str) -> None:
    s3, bucket = boto(emulator)("s3"), provisioned.bucket
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                     "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    [rule] = s3.get_bucket_encryption(Bucket=bucket)[
        "ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    grantees = {g["Grantee"].get("URI") for g in s3.get_bucket_acl(Bucket=bucket)["Grants"]}
    assert not any(uri and ("AllUsers" in uri or "AuthenticatedUsers" in uri)
                   for uri in grantees)
    # The emulator stores the bucket policy but does not evaluate it (a plain-HTTP request to it
    # succeeds): the document is what is checked.
    statements = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert not [s for s in statements if s["Effect"] == "Allow"]
    arn = f"arn:aws:s3:::{bucket}"
    tls = [s for s in statements if s["Effect"] == "Deny"
           and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"]
    assert tls, statements
    assert tls[0]["Principal"] in ("*", {"AWS": "*"})
    assert tls[0]["Action"] in ("s3:*", ["s3:*"])
    assert set(tls[0]["Resource"]) == {arn, f"{arn}/*"}


def test_review_host_role_grants_only_the_backups_bucket(provisioned: Environment,
                                                         emulator: str) -> None:
    iam, role = boto(emulator)("iam"), "openlmis-awstest-host"
    trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    assert [(s["Effect"], s["Principal"], s["Action"]) for s in trust["Statement"]] == [
        ("Allow", {"Service": "ec2.amazonaws.com"}, "sts:AssumeRole")]
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["backups-bucket"]
    document = iam.get_role_policy(RoleName=role, PolicyName="backups-bucket")["PolicyDocument"]
    arn = f"arn:aws:s3:::{provisioned.bucket}"
    granted = set()
    for statement in document["Statement"]:
        actions = statement["Action"]
        actions = {actions} if isinstance(actions, str) else set(actions)
        resources = statement["Resource"]
        resources = {resources} if isinstance(resources, str) else set(resources)
        assert statement["Effect"] == "Allow", statement
        for action in actions:
            assert action in HOST_GRANTS, action
            allowed, condition = HOST_GRANTS[action]
            assert resources <= {r if r == "*" else arn + r for r in allowed}, resources
            assert statement.get("Condition") == condition, statement
        granted |= actions
    assert granted == set(HOST_GRANTS)
