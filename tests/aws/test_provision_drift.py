"""Drift provision did not compare before: planned as `~`/`-` lines that say what goes live,
converged by the next run, and statements others put in the bucket policy kept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from ops.approval import Approval
from ops.aws import calls, loadbalancer, topology
from ops.config import Environment
from tests.aws.provisioning import boto, groups, make_env

ROLE = "openlmis-awstest-host"
OLD_TLS = "ELBSecurityPolicy-2016-08"
# The host's policy as provisioned before it became write-once: read, write and delete backups.
BEFORE = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
     "Resource": "arn:aws:s3:::openlmis-awstest-backups"},
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
     "Resource": "arn:aws:s3:::openlmis-awstest-backups/*"}]}
# Someone else's statement in the bucket policy: an account's read access, not public.
THEIRS = {"Sid": "AuditorsRead", "Effect": "Allow",
          "Principal": {"AWS": "arn:aws:iam::210987654321:root"}, "Action": "s3:GetObject",
          "Resource": "arn:aws:s3:::openlmis-awstest-backups/*"}


@pytest.fixture(scope="module")
def drifted(emulator: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    """A provisioned environment, then changed behind the toolkit's back (once: the plan test
    reads it, the converge test after it repairs it)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        env = make_env(emulator, monkeypatch, tmp_path_factory.mktemp("drift"))
        topology.provision(env)
        _drift(env, emulator)
        yield env


def _drift(env: Environment, emulator: str) -> None:
    aws = boto(emulator)
    iam, ec2, rds, elb = aws("iam"), aws("ec2"), aws("rds"), aws("elbv2")
    iam.update_assume_role_policy(RoleName=ROLE, PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
             "Action": "sts:AssumeRole"}]}))
    admin = iam.create_policy(PolicyName="admin", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*",
                                                "Resource": "*"}]}))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=ROLE, PolicyArn=admin)
    iam.put_role_policy(RoleName=ROLE, PolicyName="backups-bucket",
                        PolicyDocument=json.dumps(BEFORE))
    iam.put_role_policy(RoleName=ROLE, PolicyName="extra", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:*",
                                                "Resource": "*"}]}))
    rds.modify_db_instance(DBInstanceIdentifier="openlmis-awstest-db", MultiAZ=True,
                           ApplyImmediately=True)
    rds.modify_db_parameter_group(DBParameterGroupName="openlmis-awstest-postgres17", Parameters=[
        {"ParameterName": "rds.force_ssl", "ParameterValue": "0", "ApplyMethod": "immediate"}])
    public = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[
        {"Name": "tag:openlmis:role", "Values": ["subnet-public-1", "subnet-public-2"]}])[
        "Subnets"]]
    # Put back with other subnets (the emulator's modify_db_subnet_group drops the group).
    rds.delete_db_subnet_group(DBSubnetGroupName="openlmis-awstest-db")
    rds.create_db_subnet_group(DBSubnetGroupName="openlmis-awstest-db", SubnetIds=public,
                               DBSubnetGroupDescription="moved")
    lb = elb.describe_load_balancers(Names=["openlmis-awstest-lb"])["LoadBalancers"][0]
    https = next(x for x in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])[
        "Listeners"] if x["Port"] == 443)
    elb.modify_listener(ListenerArn=https["ListenerArn"], SslPolicy=OLD_TLS)
    elb.modify_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"], Attributes=[
        {"Key": loadbalancer.DROP_INVALID, "Value": "false"}])
    sg = {role: g["GroupId"] for role, g in groups(ec2).items()}
    elb.set_security_groups(LoadBalancerArn=lb["LoadBalancerArn"],
                            SecurityGroups=[sg["lb"], sg["host"]])
    instance = _host(ec2)["InstanceId"]
    ec2.modify_instance_metadata_options(InstanceId=instance, HttpTokens="optional",
                                         HttpPutResponseHopLimit=2)
    ec2.modify_instance_attribute(InstanceId=instance, Groups=[sg["lb"]])
    table = ec2.describe_route_tables(Filters=[
        {"Name": "tag:openlmis:role", "Values": ["rt-public"]}])["RouteTables"][0]["RouteTableId"]
    [private] = ec2.describe_subnets(Filters=[
        {"Name": "tag:openlmis:role", "Values": ["subnet-private-1"]}])["Subnets"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=private["SubnetId"])
    aws("s3").put_bucket_policy(Bucket=env.bucket, Policy=json.dumps(
        {"Version": "2012-10-17", "Statement": [THEIRS]}))


def _host(ec2: Any) -> dict[str, Any]:
    return next(i for r in ec2.describe_instances(Filters=[
        {"Name": "tag:openlmis:role", "Values": ["host"]},
        {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"]
        for i in r["Instances"])


def test_drift_is_planned_with_what_goes_live(drifted: Environment,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    with calls.watch() as log:
        topology.provision(drifted, approval=Approval(plan_only=True))
    assert log.mutations == []
    out = capsys.readouterr().out
    for line in [
        f"~ iam role {ROLE}: trust policy: only EC2 may assume it",
        f"- iam policy {ROLE}/extra: not the toolkit's",
        f"- iam attachment {ROLE} arn:aws:iam::123456789012:policy/admin",
        "~ db instance openlmis-awstest-db: MultiAZ=False (no restart; the standby is removed",
        "~ db parameter rds.force_ssl: 0 → 1 (dynamic: clients without TLS are refused at once)",
        f"~ listener HTTPS:443: TLS policy {OLD_TLS} → {loadbalancer.TLS_POLICY} (live",
        "~ load balancer openlmis-awstest-lb: drop invalid header fields",
        "~ load balancer openlmis-awstest-lb: security groups sg.host, sg.lb → sg.lb (live",
        "metadata HttpTokens optional → required, HttpPutResponseHopLimit 2 → 1 (live",
        "its containers lose the metadata service and the instance role)",
        f"~ iam policy {ROLE}/backups-bucket: write-once backups in s3://openlmis-awstest-backups"
        ", OpenLMIS metrics (live: the host's next request obeys it; it loses s3:DeleteObject, "
        "s3:GetBucketLocation at once)",
        "security groups sg.lb → sg.host (live",
        "~ bucket openlmis-awstest-backups: policy: deny requests without TLS",
        "~ subnet private-1: leave the public route table (live:",
    ]:
        assert line in out, out
    # Not converged (AWS refuses to take a subnet the database is in from its group): warned.
    assert ("the DB subnet group openlmis-awstest-db holds subnet.public-1, subnet.public-2, "
            "not only the private subnets") in " ".join(out.split())

def test_drift_is_converged_and_others_statements_are_kept(drifted: Environment,
                                                           emulator: str) -> None:
    topology.provision(drifted)  # raises when anything still differs afterwards
    with calls.watch() as log:
        topology.provision(drifted)
    assert log.mutations == []
    aws = boto(emulator)
    iam, ec2 = aws("iam"), aws("ec2")
    assert iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"] == []
    assert iam.list_role_policies(RoleName=ROLE)["PolicyNames"] == ["backups-bucket"]
    assert "Delete" not in json.dumps(iam.get_role_policy(
        RoleName=ROLE, PolicyName="backups-bucket")["PolicyDocument"])
    principals = [s["Principal"] for s in iam.get_role(RoleName=ROLE)["Role"][
        "AssumeRolePolicyDocument"]["Statement"]]
    assert principals == [{"Service": "ec2.amazonaws.com"}]
    db = aws("rds").describe_db_instances(
        DBInstanceIdentifier="openlmis-awstest-db")["DBInstances"][0]
    assert db["MultiAZ"] is False
    instance = _host(ec2)
    assert (instance["MetadataOptions"]["HttpTokens"],
            instance["MetadataOptions"]["HttpPutResponseHopLimit"]) == ("required", 1)
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [groups(ec2)["host"]["GroupId"]]
    statements = json.loads(aws("s3").get_bucket_policy(Bucket=drifted.bucket)["Policy"])[
        "Statement"]
    assert [s["Sid"] for s in statements] == ["AuditorsRead", "DenyInsecureTransport"]
    assert statements[0] == THEIRS
    [table] = ec2.describe_route_tables(Filters=[
        {"Name": "tag:openlmis:role", "Values": ["rt-public"]}])["RouteTables"]
    assert len([a for a in table["Associations"] if a.get("SubnetId")]) == 2
