"""Pure planning of the AWS topology: desired state and diffs, no I/O."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

import pytest

from ops import config
from ops.aws import (
    calls,
    certificates,
    compute,
    database,
    dns,
    identity,
    loadbalancer,
    mail,
    network,
    policies,
    security,
    storage,
)
from ops.aws.context import DnsRecord
from ops.aws.security import Rule
from ops.config import ROOT, Environment
from ops.errors import OpsError
from ops.plan import Action


def environment(**changes: Any) -> Environment:
    env = config.load(path=ROOT / "config/example.yml")
    data = env.model_dump()
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            data[section] = {**data[section], field: value}
        else:
            data[section] = value
    return Environment.model_validate(data)


def test_layout_quarters_the_vpc_over_two_zones() -> None:
    found = network.layout(IPv4Network("10.40.0.0/16"), ["eu-west-1a", "eu-west-1b"])
    assert found == {"public-1": ("10.40.0.0/18", "eu-west-1a"),
                     "public-2": ("10.40.64.0/18", "eu-west-1b"),
                     "private-1": ("10.40.128.0/18", "eu-west-1a"),
                     "private-2": ("10.40.192.0/18", "eu-west-1b")}
    with pytest.raises(OpsError, match="too small"):
        network.layout(IPv4Network("10.40.0.0/27"), ["a", "b"])
    with pytest.raises(OpsError, match="two availability zones"):
        network.layout(IPv4Network("10.40.0.0/16"), ["a"])


def test_overlap_names_the_clashing_vpcs() -> None:
    others = {"vpc-1": "172.31.0.0/16", "vpc-2": "10.40.128.0/17"}
    assert network.overlaps(IPv4Network("10.40.0.0/16"), others) == ["vpc-2 (10.40.128.0/17)"]


def test_network_diff_from_nothing_and_when_complete() -> None:
    zones = ["a", "b"]
    fresh = network.diff("10.40.0.0/16", zones, {})
    assert [c.line() for c in fresh][:2] == ["+ vpc: 10.40.0.0/16", "~ vpc: enable DNS host names"]
    assert len(fresh) == 12
    assert fresh[2].payload == network.Subnet("public-1", "10.40.0.0/18", "a")
    assert fresh[-1].payload == network.Associate("public-2")
    complete = {"vpc": "v", "dns_hostnames": True, "igw": "i", "igw_attached": True,
                "route_table": "r", "default_route": True,
                "associated": {"public-1": "a-1", "public-2": "a-2"},
                "subnets": {r: {} for r in network.SUBNETS}}
    assert network.diff("10.40.0.0/16", zones, complete) == []


def test_security_rules_are_least_privilege() -> None:
    want = security.desired(environment())
    assert want["lb"] == {Rule("tcp", 80, 80, "cidr:0.0.0.0/0"),
                          Rule("tcp", 443, 443, "cidr:0.0.0.0/0")}
    assert want["host"] == {Rule("tcp", 80, 80, "sg:lb"), Rule("tcp", 8081, 8081, "sg:lb"),
                            Rule("tcp", 22, 22, "cidr:203.0.113.0/24")}
    assert want["db"] == {Rule("tcp", 5432, 5432, "sg:host")}


def test_security_diff_revokes_anything_else() -> None:
    want = security.desired(environment())
    have: dict[str, Any] = {role: set(rules) for role, rules in want.items()}
    have["db"] = have["db"] | {Rule("tcp", 5432, 5432, "cidr:0.0.0.0/0")}
    [change] = security.diff(want, have)
    assert change.line() == "- rule db: tcp/5432 from 0.0.0.0/0"
    assert [c.payload for c in security.diff(want, {})][:3] == [
        security.Group("lb"), security.Group("host"), security.Group("db")]


def test_parse_maps_group_ids_to_roles() -> None:
    perms = [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
              "UserIdGroupPairs": [{"GroupId": "sg-1"}, {"GroupId": "sg-x"}],
              "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    assert security.parse(perms, {"sg-1": "lb"}) == {
        Rule("tcp", 80, 80, "sg:lb"), Rule("tcp", 80, 80, "sg:sg-x"),
        Rule("tcp", 80, 80, "cidr:0.0.0.0/0")}


@pytest.mark.parametrize(("changes", "expected"), [
    ({"database__tier": "dev", "database__workload": {}}, "db.t4g.micro"),
    ({"database__tier": "uat", "database__workload": {}}, "db.t4g.medium"),
    ({"database__tier": "dev"}, "db.m6g.large"),  # the workload outweighs the tier
    ({"database__tier": "production", "database__workload": {}}, "db.t4g.medium"),
    ({"database__tier": "production"}, "db.m6g.large"),  # example: 600 products, busy
    ({"database__instance_class": "db.r6g.large"}, "db.r6g.large"),
])
def test_instance_class_from_tier_and_workload(changes: dict[str, Any], expected: str) -> None:
    assert database.instance_class(environment(**changes)) == expected


def test_engine_class_check() -> None:
    database.check_class(environment(database__instance_class="db.m6g.large"), [])
    with pytest.raises(OpsError, match=r"cannot use db\.t2\.micro"):
        database.check_class(environment(database__instance_class="db.t2.micro"), [])
    with pytest.raises(OpsError, match=r"cannot use db\.m6g\.large"):
        database.check_class(environment(database__instance_class="db.m6g.large"),
                             ["db.t4g.micro"])


def test_database_diff() -> None:
    env = environment(database__tier="production")
    fresh = database.diff(env, {})
    Op = database.Op
    assert [c.payload for c in fresh] == [Op.SUBNET_GROUP, Op.PARAMETER_GROUP,
                                          Op.MAX_CONNECTIONS, Op.FORCE_SSL, Op.CREATE]
    have = {"class": "db.m6g.xlarge", "encrypted": True, "public": True, "retention": 1,
            "deletion_protection": False, "parameter_group": "default.postgres17",
            "groups": ["sg.db"]}
    actual = {"subnet_group": database.PRIVATE,
              "parameters": {"max_connections": "400", "rds.force_ssl": "1"},
              "instance": have}
    [modify] = database.diff(env, actual)
    assert modify.payload == database.Modify({
        "PubliclyAccessible": False, "BackupRetentionPeriod": 7, "DeletionProtection": True,
        "DBParameterGroupName": "openlmis-example-postgres17"})
    low = {**actual, "parameters": {"max_connections": "100", "rds.force_ssl": "1"}}
    assert Op.MAX_CONNECTIONS in [c.payload for c in database.diff(env, low)]


def test_database_warns_about_what_it_cannot_change_in_place() -> None:
    env = environment(database__tier="dev")
    found = database.warnings(env, {"encrypted": False, "class": "db.t3.micro"})
    assert len(found) == 2 and "NOT encrypted" in found[0]


def test_compute_diff() -> None:
    env = environment()
    Op = compute.Op
    assert [c.payload for c in compute.diff(env, {}, "key.pub")] == [Op.KEY, Op.INSTANCE, Op.EIP,
                                                                      Op.ASSOCIATE]
    done = {"key": "k", "instance": {"id": "i-1", "metadata": compute.METADATA},
            "eip": {"id": "e", "instance": "i-1"}}
    assert compute.diff(env, done, "key.pub") == []
    loose = {**done, "instance": {"id": "i-1",
                                  "metadata": {**compute.METADATA, "HttpTokens": "optional"}}}
    assert [c.payload for c in compute.diff(env, loose, "key.pub")] == [Op.IMDS]
    assert len(compute.client_token(env, "subnet-" + "x" * 80)) <= 64


def test_host_policy_is_the_contract_and_nothing_else() -> None:
    env = environment()
    arn = "arn:aws:s3:::openlmis-example-backups"
    assert policies.same(identity.policy(env), {"Statement": [
        {"Sid": "WriteOnce", "Effect": "Allow", "Action": "s3:PutObject",
         "Resource": [f"{arn}/dumps/*", f"{arn}/runs/*"],
         "Condition": {"StringEquals": {"s3:if-none-match": "*"}}},
        {"Sid": "ReadDumps", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": f"{arn}/dumps/*"},
        {"Sid": "List", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": arn},
        {"Sid": "Metrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData",
         "Resource": "*", "Condition": {"StringEquals": {"cloudwatch:namespace": "OpenLMIS"}}}]})
    assert identity.diff(env, {"role": True, "policy": identity.policy(env), "profile": True,
                               "attached": True}) == []


def test_bucket_diff() -> None:
    env = environment()
    Op = storage.Op
    assert [c.payload for c in storage.diff(env, {})] == [
        Op.CREATE, Op.VERSIONING, Op.ENCRYPTION, Op.PUBLIC, Op.LIFECYCLE, Op.POLICY]
    done = {"tagged": True, "versioning": "Enabled", "encryption": {"Rules": []},
            "public_access_block": storage.BLOCK_ALL, "lifecycle": storage.lifecycle(env),
            "policy": {"Statement": storage.statements(env)}}
    assert storage.diff(env, done) == []
    assert [c.payload for c in storage.diff(env, {**done, "tagged": False})] == [Op.TAG]


def test_load_balancer_diff() -> None:
    env = environment()
    fresh = loadbalancer.diff(env, {}, cert_issued=True)
    Op = loadbalancer.Op
    assert [c.payload for c in fresh] == [Op.LB, Op.IDLE, Op.HEADERS, Op.TG, Op.REGISTER,
                                          Op.HTTP, Op.HTTPS]
    assert [c.payload for c in loadbalancer.diff(env, {}, cert_issued=False)][-1] == Op.HTTP
    assert loadbalancer.idle_timeout(env) >= env.stack.nginx_timeout_s
    done = {"lb": {"idle": 300, "drop_invalid": "true"}, "tg": dict(loadbalancer.HEALTH),
            "registered": True,
            "cert": "arn:c", "listeners": {80: {"redirect": True},
                                           443: {"forward": True, "cert": "arn:c"}}}
    assert loadbalancer.diff(env, done, cert_issued=True) == []
    ssh_check = {**done, "tg": {**loadbalancer.HEALTH, "HealthCheckPath": None}}
    assert [c.payload for c in loadbalancer.diff(env, ssh_check, True)] == [Op.HEALTH]


def test_certificate_request_is_idempotent_per_environment() -> None:
    env = environment()
    token = certificates.idempotency_token(env)
    assert token.isalnum() and len(token) <= 32
    assert certificates.diff(env, {"arn": "a"}) == []
    [change] = certificates.diff(env, {})
    assert change.action is Action.CREATE and "printed" in change.detail


def test_mail_records_and_smtp_password() -> None:
    found = mail.records("example.org", "tok", ["a", "b", "c"])
    assert [r.type for r in found] == ["TXT", "CNAME", "CNAME", "CNAME"]
    assert found[1].value == "a.dkim.amazonses.com"
    password = mail.smtp_password("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1")
    assert len(password) == 44 and password.startswith("B")
    assert password != mail.smtp_password("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                          "eu-west-1")


def test_mail_diff_with_and_without_configured_smtp_secret() -> None:
    env = environment()
    Op = mail.Op
    assert [c.payload for c in mail.diff(env, {})] == [Op.IDENTITY, Op.DKIM, Op.USER, Op.POLICY,
                                                       Op.CREDENTIALS]
    own = environment(mail__smtp_password="ssm:/x")
    assert [c.payload for c in mail.diff(own, {"verification": "Pending",
                                                  "dkim": ["a"]})] == []
    address = environment(mail__verify_domain=False)
    assert mail.identity(address) == "noreply@openlmis.example.org"


def test_dns_diff_upserts_missing_and_changed_records() -> None:
    wanted = [DnsRecord("a.example.org", "CNAME", "x.aws", "p"),
              DnsRecord("b.example.org", "TXT", "tok", "q"),
              DnsRecord("example.org", "CNAME", "lb.aws", "r", alias_zone="Z1")]
    existing = {("a.example.org.", "CNAME"): "x.aws.", ("b.example.org.", "TXT"): "old",
                ("example.org.", "A"): "lb.aws."}
    [change] = dns.diff(wanted, existing)
    assert change.line() == "~ dns b.example.org TXT: q"


def test_mutating_operations() -> None:
    assert calls.is_mutating("CreateVpc") and calls.is_mutating("ModifyDBInstance")
    assert not any(calls.is_mutating(op) for op in ("DescribeVpcs", "GetRole",
                                                     "ListCertificates", "HeadBucket"))


def test_master_password_rules() -> None:
    assert database.password_problem("s3cret-enough") is None
    assert "8 to 128" in (database.password_problem("short") or "")
    assert database.password_problem("has/slash-in-it")
    assert database.password_problem("has space in it")
