"""destroy: remove what carries this environment's tags, after a final database snapshot.

Every step re-reads before it acts, so an interrupted destroy resumes where it stopped. The
backups bucket is removed only when empty: backups outlive the environment unless deleted.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from ops import console
from ops.aws import dns, identity, mail, network, tags, topology
from ops.aws.context import Ctx
from ops.config import Environment
from ops.errors import OpsError

TIMEOUT_S = 3600


def snapshot_name(env: Environment, now: float | None = None) -> str:
    """A final snapshot name no earlier destroy used: the instance id and the UTC time."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"{tags.db_instance_id(env)}-final-{stamp}"


def destroy(env: Environment, *, force: bool = False) -> list[str]:
    """Remove the environment; returns the final snapshot's name (if a database existed)."""
    if env.is_production and not force:
        raise OpsError(f"{env.name} is a production-tier environment: destroy refuses it",
                       hint="add --force if you really mean to remove it")
    ctx, _ = topology.plan(env, checked=False)
    snapshots: list[str] = []
    for what, step in _STEPS:
        step(ctx, snapshots)
        console.ok(what)
    return snapshots


def _dns(ctx: Ctx, _: list[str]) -> None:
    zone = ctx.env.route53_zone_id
    if not zone:
        return
    for rrset in dns.record_sets(ctx):
        if any(dns.ours(record, rrset) for record in ctx.records):
            ctx.aws("route53").change_resource_record_sets(HostedZoneId=zone, ChangeBatch={
                "Changes": [{"Action": "DELETE", "ResourceRecordSet": rrset}]})


def _load_balancer(ctx: Ctx, _: list[str]) -> None:
    elb = ctx.aws("elbv2")
    if arn := ctx.ids.get("lb"):
        _require_tags(ctx, elb.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"],
                      arn)
        elb.delete_load_balancer(LoadBalancerArn=arn)
        console.wait_for("load balancer deleted", lambda: not _exists(
            lambda: elb.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"]),
            timeout=600, interval=5)
    if arn := ctx.ids.get("tg"):
        elb.delete_target_group(TargetGroupArn=arn)


def _host(ctx: Ctx, _: list[str]) -> None:
    ec2 = ctx.aws("ec2")
    if allocation := ctx.ids.get("eip"):
        found = ec2.describe_addresses(AllocationIds=[allocation])["Addresses"][0]
        if found.get("AssociationId"):
            ec2.disassociate_address(AssociationId=found["AssociationId"])
        ec2.release_address(AllocationId=allocation)
    if instance := ctx.ids.get("instance"):
        ec2.terminate_instances(InstanceIds=[instance])
        console.wait_for(f"instance {instance} terminated", lambda: ec2.describe_instances(
            InstanceIds=[instance])["Reservations"][0]["Instances"][0]["State"]["Name"]
            == "terminated", timeout=900, interval=5)
    if key := ctx.ids.get("key"):
        ec2.delete_key_pair(KeyName=key)


def _database(ctx: Ctx, snapshots: list[str]) -> None:
    rds, env = ctx.aws("rds"), ctx.env
    name = tags.db_instance_id(env)
    if ctx.ids.get("db"):
        db = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
        _require_tags(ctx, db.get("TagList", []), name)
        if db["DBInstanceStatus"] != "deleting":
            if db.get("DeletionProtection"):
                rds.modify_db_instance(DBInstanceIdentifier=name, DeletionProtection=False,
                                       ApplyImmediately=True)
            final = snapshot_name(env)
            rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=False,
                                   FinalDBSnapshotIdentifier=final, DeleteAutomatedBackups=False)
            snapshots.append(final)
        console.wait_for(f"database {name} deleted (final snapshot first)",
                         lambda: not _exists(lambda: rds.describe_db_instances(
                             DBInstanceIdentifier=name)["DBInstances"]),
                         timeout=TIMEOUT_S, interval=15)
    if _exists(lambda: rds.describe_db_subnet_groups(DBSubnetGroupName=name)):
        rds.delete_db_subnet_group(DBSubnetGroupName=name)
    group = tags.db_parameter_group(env)
    if _exists(lambda: [g for g in rds.describe_db_parameter_groups(
            DBParameterGroupName=group)["DBParameterGroups"]
            if g["DBParameterGroupName"] == group]):
        rds.delete_db_parameter_group(DBParameterGroupName=group)


def _certificate_and_mail(ctx: Ctx, _: list[str]) -> None:
    env = ctx.env
    if arn := ctx.ids.get("cert"):
        ctx.aws("acm").delete_certificate(CertificateArn=arn)
    ses = ctx.aws("ses")
    name = mail.identity(env)
    if ses.get_identity_verification_attributes(Identities=[name])["VerificationAttributes"]:
        ses.delete_identity(Identity=name)
    if ctx.ids.get("smtp_secret"):
        ctx.aws("secretsmanager").delete_secret(SecretId=mail.secret_name(env),
                                                ForceDeleteWithoutRecovery=True)
    iam, user = ctx.aws("iam"), mail.smtp_user(env)
    if not _exists(lambda: iam.get_user(UserName=user)):
        return
    _require_tags(ctx, iam.get_user(UserName=user)["User"].get("Tags", []), f"user {user}")
    for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
    _gone(lambda: iam.delete_user_policy(UserName=user, PolicyName=mail.POLICY))
    iam.delete_user(UserName=user)


def _instance_profile(ctx: Ctx, _: list[str]) -> None:
    iam, role = ctx.aws("iam"), identity.name(ctx.env)
    if ctx.ids.get("profile"):
        profile = iam.get_instance_profile(InstanceProfileName=role)["InstanceProfile"]
        if profile["Roles"]:
            iam.remove_role_from_instance_profile(InstanceProfileName=role, RoleName=role)
        iam.delete_instance_profile(InstanceProfileName=role)
    if not _exists(lambda: iam.get_role(RoleName=role)):
        return
    _require_tags(ctx, iam.get_role(RoleName=role)["Role"].get("Tags", []), f"role {role}")
    if iam.list_role_policies(RoleName=role)["PolicyNames"]:
        iam.delete_role_policy(RoleName=role, PolicyName=identity.POLICY)
    iam.delete_role(RoleName=role)


def _network(ctx: Ctx, _: list[str]) -> None:
    ec2 = ctx.aws("ec2")
    groups = [ctx.ids[f"sg.{r}"] for r in ("db", "host", "lb") if f"sg.{r}" in ctx.ids]
    for group in groups:
        found = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
        if found["IpPermissions"]:
            ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=found["IpPermissions"])
    for group in groups:
        _when_released(f"security group {group}",
                       functools.partial(ec2.delete_security_group, GroupId=group))
    if ctx.env.network.existing_vpc_id:
        return
    if table := ctx.ids.get("rt"):
        found = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]
        for association in found["Associations"]:
            if not association.get("Main"):
                ec2.disassociate_route_table(
                    AssociationId=association["RouteTableAssociationId"])
        ec2.delete_route_table(RouteTableId=table)
    for role in network.SUBNETS:
        if subnet := ctx.ids.get(f"subnet.{role}"):
            _when_released(f"subnet {subnet}",
                           functools.partial(ec2.delete_subnet, SubnetId=subnet))
    if gateway := ctx.ids.get("igw"):
        if vpc := ctx.ids.get("vpc"):
            _when_released(f"internet gateway {gateway}", lambda: _gone(
                lambda: ec2.detach_internet_gateway(InternetGatewayId=gateway, VpcId=vpc)))
        ec2.delete_internet_gateway(InternetGatewayId=gateway)
    if vpc := ctx.ids.get("vpc"):
        ec2.delete_vpc(VpcId=vpc)


def _bucket(ctx: Ctx, _: list[str]) -> None:
    if not ctx.ids.get("bucket"):
        return
    s3, name = ctx.aws("s3"), ctx.env.bucket
    versions = s3.list_object_versions(Bucket=name, MaxKeys=1)
    if versions.get("Versions") or versions.get("DeleteMarkers"):
        ctx.warn(f"bucket {name} still holds backups: kept (delete it yourself if you mean to)")
        console.warn(ctx.warnings[-1])
        return
    s3.delete_bucket(Bucket=name)


def _when_released(what: str, call: Callable[[], Any]) -> None:
    """Delete once nothing uses it: load balancer and database interfaces linger a few minutes."""
    def attempt() -> bool:
        try:
            call()
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "DependencyViolation":
                raise
            return False
        return True

    console.wait_for(f"{what} released and deleted", attempt, timeout=900, interval=15)


def _require_tags(ctx: Ctx, found: list[dict[str, str]], what: str) -> None:
    if not tags.is_ours(ctx.env, found):
        raise OpsError(f"{what} is not tagged for {ctx.env.name}: destroy leaves it alone",
                       hint="remove it yourself if it should go")


def _exists(call: Callable[[], Any]) -> bool:
    try:
        return bool(call())
    except ClientError as exc:
        if "NotFound" in exc.response["Error"]["Code"] or "NoSuch" in exc.response["Error"][
                "Code"]:
            return False
        raise


def _gone(call: Callable[[], Any]) -> None:
    """Run a delete call; a resource already gone is fine (an earlier destroy removed it)."""
    try:
        call()
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if not ("NotFound" in code or "NoSuch" in code or code == "Gateway.NotAttached"):
            raise


_STEPS: list[tuple[str, Callable[[Ctx, list[str]], None]]] = [
    ("dns records removed", _dns),
    ("load balancer removed", _load_balancer),
    ("host removed", _host),
    ("database removed (final snapshot kept)", _database),
    ("certificate and mail removed", _certificate_and_mail),
    ("instance profile removed", _instance_profile),
    ("network removed", _network),
    ("backups bucket handled", _bucket),
]
