"""destroy: remove what carries this environment's tags, after a final database snapshot.

First a survey (read only) and its listing: everything destroy will remove and everything it
leaves, and why. Then the guards, before anything changes: a production tier, in the file or on
any live resource's tier tag, needs `force`; deletion protection on the database or the load
balancer is switched off only with `remove_protection`. An SES identity another environment's
file names (same identity, same region) is left with its DNS records: deleting it would stop
that environment's mail. The run holds the environment's AWS lock (ops.aws.lock).

Every step re-reads before it acts, so an interrupted destroy resumes where it stopped. The
backups bucket is removed only when empty: backups outlive the environment unless deleted.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ops import config, console
from ops.approval import Approval, granted, scope
from ops.aws import alarms, compute, dns, identity, lock, mail, network, tags, tier, topology
from ops.aws.context import Ctx, DnsRecord
from ops.config import Environment
from ops.errors import OpsError

TIMEOUT_S = 3600
PROTECTION_FLAG = "--remove-protection"


@dataclass(frozen=True)
class Survey:
    """What destroy found, read only: ids of the live resources and what guards them."""

    ids: dict[str, Any]
    records: list[str] = field(default_factory=list)  # record sets of ours in the zone
    production: list[str] = field(default_factory=list)  # live resources tagged production
    protected: list[str] = field(default_factory=list)  # deletion protection on
    mail_identity: str = ""  # the SES identity, when it exists
    shared_with: list[str] = field(default_factory=list)  # environments naming it too
    backups_kept: bool = False  # the bucket holds backups


@dataclass(frozen=True)
class Listing:
    remove: list[str]
    keep: list[str]


def snapshot_name(env: Environment, now: float | None = None) -> str:
    """A final snapshot name no earlier destroy used: the instance id and the UTC time."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"{tags.db_instance_id(env)}-final-{stamp}"


def sharing(env: Environment, others: list[Environment]) -> list[str]:
    """The other environments whose mail uses the same SES identity in the same region (pure)."""
    return sorted(o.name for o in others if o.name != env.name
                  and o.aws.region == env.aws.region and mail.identity(o) == mail.identity(env))


def mail_record(record: DnsRecord, name: str) -> bool:
    """Whether a DNS record belongs to the SES identity `name` (verification TXT, DKIM)."""
    return record.name == f"_amazonses.{name}" or record.name.endswith(f"._domainkey.{name}")


def listing(env: Environment, survey: Survey) -> Listing:
    """Everything destroy removes, and everything it leaves with the reason (pure)."""
    ids, keep = survey.ids, []
    remove = [f"dns records {', '.join(survey.records)}"] if survey.records else []
    if found := sorted(v for k, v in ids.items() if k.startswith("alarm.")):
        remove.append(f"alarms {', '.join(found)}")
    if ids.get("topic"):
        emails = sorted(k.removeprefix("subscription.") for k in ids
                        if k.startswith("subscription."))
        remove.append(f"sns topic {alarms.topic_name(env)}"
                      + (f" and its subscriptions ({', '.join(emails)})" if emails else ""))
    named = [("lb", "load balancer"), ("tg", "target group"),
             *((compute.key(kind, i), f"{what}{'' if i == 1 else f' (node {i})'}")
               for i in _nodes(ids) for kind, what in (("eip", "elastic ip"),
                                                       ("instance", "instance"))),
             ("key", "key pair")]
    remove += [f"{what} {tier.resource(str(ids[key])) if key in ('lb', 'tg') else ids[key]}"
               for key, what in named if ids.get(key)]
    if ids.get("db"):
        remove.append(f"database {ids['db']} (after a final snapshot, which is kept)")
    remove += [f"{what} {ids[key]}" for key, what in [
        ("db_subnets", "db subnet group"), ("db_params", "db parameter group")] if ids.get(key)]
    if ids.get("cert"):
        remove.append(f"certificate {tier.resource(ids['cert'])}")
    if survey.mail_identity and survey.shared_with:
        keep.append(f"ses identity {survey.mail_identity} and its DNS records: also the mail "
                    f"of {', '.join(survey.shared_with)} (config/NAME.yml)")
    elif survey.mail_identity:
        remove.append(f"ses identity {survey.mail_identity}")
    remove += [f"{what} {ids[key]}" for key, what in [
        ("smtp_secret", "secret"), ("smtp_user", "iam user"), ("profile", "instance profile"),
        ("role", "iam role")] if ids.get(key)]
    remove += [f"security group {ids[f'sg.{r}']}" for r in ("db", "host", "lb")
               if ids.get(f"sg.{r}")]
    if env.network.existing_vpc_id:
        keep.append(f"vpc {env.network.existing_vpc_id}: network.existing_vpc_id, not ours")
    else:
        remove += [f"route table {ids['rt']}"] if ids.get("rt") else []
        remove += [f"subnet {ids[f'subnet.{r}']}" for r in network.SUBNETS
                   if ids.get(f"subnet.{r}")]
        remove += [f"{what} {ids[key]}" for key, what in [("igw", "internet gateway"),
                                                          ("vpc", "vpc")] if ids.get(key)]
    if ids.get("bucket") and survey.backups_kept:
        keep.append(f"bucket {env.bucket}: it holds backups (delete it yourself if you mean to)")
    elif ids.get("bucket"):
        remove.append(f"bucket {env.bucket} (empty)")
    if ids.get("db"):
        keep.append("the final database snapshot, and earlier snapshots")
    return Listing(remove, keep)


def _nodes(ids: dict[str, Any]) -> list[int]:
    """The node indices whose instance or Elastic IP the ids hold, in order."""
    return sorted({1} | {int(k.partition(".")[2]) for k in ids
                         if k.startswith(("instance.", "eip."))})


def refusal(env: Environment, survey: Survey, *, force: bool,
            remove_protection: bool) -> OpsError | None:
    """Why destroy must not go on, if it must not (pure)."""
    if survey.production and not force:
        return OpsError(f"{env.name} is production-tier on AWS, whatever its file says "
                        f"({env.database.tier}): {tags.TIER}=production on "
                        f"{_some(survey.production)}; destroy refuses it",
                        hint="add --force if you really mean to remove it (if its tier was "
                        "lowered on purpose, inv provision re-tags the resources first)")
    if survey.protected and not remove_protection:
        return OpsError(f"deletion protection is on for {', '.join(survey.protected)}: "
                        "destroy changed nothing",
                        hint=f"add {PROTECTION_FLAG} to switch it off and remove them")
    return None


def _some(names: list[str], shown: int = 3) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def survey(env: Environment) -> tuple[Ctx, Survey]:
    """Read what destroy would remove and what guards it (no mutating call)."""
    ctx, _ = topology.plan(env, checked=False)
    ids = ctx.ids
    protected = []
    if ids.get("db"):
        db = ctx.aws("rds").describe_db_instances(DBInstanceIdentifier=ids["db"])["DBInstances"][0]
        if db.get("DeletionProtection"):
            protected.append(f"database {ids['db']}")
    if ids.get("lb"):
        attributes = ctx.aws("elbv2").describe_load_balancer_attributes(
            LoadBalancerArn=ids["lb"])["Attributes"]
        if {a["Key"]: a["Value"] for a in attributes}.get("deletion_protection.enabled") == "true":
            protected.append(f"load balancer {tier.resource(ids['lb'])}")
    name = mail.identity(env)
    exists = bool(ctx.aws("ses").get_identity_verification_attributes(
        Identities=[name])["VerificationAttributes"])
    shared = sharing(env, _others(env)) if exists else []
    ours = [r for r in ctx.records if not (shared and mail_record(r, name))]
    records = []
    if env.route53_zone_id:
        records = [rrset["Name"] for rrset in dns.record_sets(ctx)
                   if any(dns.ours(record, rrset) for record in ours)]
    backups = False
    if ids.get("bucket"):
        versions = ctx.aws("s3").list_object_versions(Bucket=env.bucket, MaxKeys=1)
        backups = bool(versions.get("Versions") or versions.get("DeleteMarkers"))
    return ctx, Survey(ids, records, tier.production(tier.read(ctx), ids), protected,
                       name if exists else "", shared, backups)


def destroy(env: Environment, *, force: bool = False, remove_protection: bool = False,
            approval: Approval | None = None, lock_wait: float = 0,
            break_lock: bool = False) -> list[str]:
    """Remove the environment; returns the final snapshot's name (if a database existed).
    What stays is shown, the guards pass (--plan shows their refusal) and the removals are
    approved before the AWS lock is taken and the survey, read again, acted on."""
    approval = approval or granted()
    if env.is_production and not force:
        raise OpsError(f"{env.name} is a production-tier environment: destroy refuses it",
                       hint="add --force if you really mean to remove it")
    _, found = survey(env)
    shown = listing(env, found)
    if shown.keep:
        console.plan_lines(f"{env.name}: destroy leaves", shown.keep)
    problem = refusal(env, found, force=force, remove_protection=remove_protection) \
        if shown.remove else None
    if problem and not approval.plan_only:
        raise problem
    if not approval.review(scope(env), f"{env.name}: destroy removes",
                           [f"- {what}" for what in shown.remove]):
        if problem:
            console.warn(f"destroy would refuse: {problem}")
        return []
    with lock.held(env, "destroy", wait=lock_wait, break_lock=break_lock):
        ctx, found = survey(env)  # again under the lock: another run may have gone first
        if problem := refusal(env, found, force=force, remove_protection=remove_protection):
            raise problem
        run = _Run(found, remove_protection)
        for what, step in _STEPS:
            step(ctx, run)
            console.ok(what)
    approval.outcome(destroyed=True, final_snapshots=run.snapshots)
    return run.snapshots


@dataclass
class _Run:
    survey: Survey
    remove_protection: bool
    snapshots: list[str] = field(default_factory=list)


def _unprotect(run: _Run, what: str) -> None:
    """Protection found on by a step: switch it off only if asked (it may have been switched
    on since the survey)."""
    if not run.remove_protection:
        raise OpsError(f"deletion protection is on for {what}: destroy stopped before it",
                       hint=f"add {PROTECTION_FLAG} to switch it off and remove it")
    console.warn(f"switching deletion protection off for {what} ({PROTECTION_FLAG})")


def _dns(ctx: Ctx, run: _Run) -> None:
    zone, shared = ctx.env.route53_zone_id, run.survey.shared_with
    if not zone:
        return
    ours = [r for r in ctx.records if not (shared and mail_record(r, mail.identity(ctx.env)))]
    for rrset in dns.record_sets(ctx):
        if any(dns.ours(record, rrset) for record in ours):
            ctx.aws("route53").change_resource_record_sets(HostedZoneId=zone, ChangeBatch={
                "Changes": [{"Action": "DELETE", "ResourceRecordSet": rrset}]})


def _alarms(ctx: Ctx, _: _Run) -> None:
    """The alarms first (nothing notifies a topic being deleted), then the confirmed
    subscriptions and the topic; SNS removes pending ones with it."""
    names = [v for k, v in ctx.ids.items() if k.startswith("alarm.")]
    for start in range(0, len(names), 100):  # DeleteAlarms takes at most 100 names
        ctx.aws("cloudwatch").delete_alarms(AlarmNames=names[start:start + 100])
    if not (arn := ctx.ids.get("topic")):
        return
    sns = ctx.aws("sns")
    _require_tags(ctx, sns.list_tags_for_resource(ResourceArn=arn)["Tags"],
                  f"sns topic {alarms.topic_name(ctx.env)}")
    for key, subscription in ctx.ids.items():
        if key.startswith("subscription.") and subscription != alarms.PENDING:
            _gone(functools.partial(sns.unsubscribe, SubscriptionArn=subscription))
    sns.delete_topic(TopicArn=arn)


def _load_balancer(ctx: Ctx, run: _Run) -> None:
    elb = ctx.aws("elbv2")
    if arn := ctx.ids.get("lb"):
        _require_tags(ctx, elb.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"],
                      arn)
        attributes = elb.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]
        if {a["Key"]: a["Value"] for a in attributes}.get("deletion_protection.enabled") == "true":
            _unprotect(run, f"load balancer {tier.resource(arn)}")
            elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
                {"Key": "deletion_protection.enabled", "Value": "false"}])
        elb.delete_load_balancer(LoadBalancerArn=arn)
        console.wait_for("load balancer deleted", lambda: not _exists(
            lambda: elb.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"]),
            timeout=600, interval=5)
    if arn := ctx.ids.get("tg"):
        elb.delete_target_group(TargetGroupArn=arn)


def _host(ctx: Ctx, _: _Run) -> None:
    """Every node: its Elastic IP released, its instance terminated."""
    ec2 = ctx.aws("ec2")
    nodes = _nodes(ctx.ids)
    for i in nodes:
        if allocation := ctx.ids.get(compute.key("eip", i)):
            compute.release(ec2, allocation)
    instances = [ctx.ids[compute.key("instance", i)] for i in nodes
                 if ctx.ids.get(compute.key("instance", i))]
    if instances:
        ec2.terminate_instances(InstanceIds=instances)
        console.wait_for(f"instance{'s' if len(instances) > 1 else ''} "
                         f"{', '.join(instances)} terminated", lambda: all(
                             i["State"]["Name"] == "terminated" for r in ec2.describe_instances(
                                 InstanceIds=instances)["Reservations"] for i in r["Instances"]),
                         timeout=900, interval=5)
    if key := ctx.ids.get("key"):
        ec2.delete_key_pair(KeyName=key)


def _database(ctx: Ctx, run: _Run) -> None:
    rds, env = ctx.aws("rds"), ctx.env
    name = tags.db_instance_id(env)
    if ctx.ids.get("db"):
        db = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
        _require_tags(ctx, db.get("TagList", []), name)
        if db["DBInstanceStatus"] != "deleting":
            if db.get("DeletionProtection"):
                _unprotect(run, f"database {name}")
                rds.modify_db_instance(DBInstanceIdentifier=name, DeletionProtection=False,
                                       ApplyImmediately=True)
            final = snapshot_name(env)
            rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=False,
                                   FinalDBSnapshotIdentifier=final, DeleteAutomatedBackups=False)
            run.snapshots.append(final)
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


def _certificate_and_mail(ctx: Ctx, run: _Run) -> None:
    env = ctx.env
    if arn := ctx.ids.get("cert"):
        ctx.aws("acm").delete_certificate(CertificateArn=arn)
    ses = ctx.aws("ses")
    name = mail.identity(env)
    if run.survey.shared_with:
        console.ok(f"ses identity {name} kept: {', '.join(run.survey.shared_with)} use it too")
    elif ses.get_identity_verification_attributes(Identities=[name])["VerificationAttributes"]:
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


def _instance_profile(ctx: Ctx, _: _Run) -> None:
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


def _network(ctx: Ctx, _: _Run) -> None:
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


def _bucket(ctx: Ctx, _: _Run) -> None:
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


def _others(env: Environment) -> list[Environment]:
    """The other environments of the configuration directory; a file that does not load is
    not an environment any task could act on."""
    found = []
    for path in sorted(config.config_dir().glob("*.yml")):
        if path.stem not in (env.name, "example"):
            try:
                found.append(config.load(path=path))
            except OpsError:
                continue
    return found


_STEPS: list[tuple[str, Callable[[Ctx, _Run], None]]] = [
    ("dns records removed", _dns),
    ("alarms and their topic removed", _alarms),
    ("load balancer removed", _load_balancer),
    ("host removed", _host),
    ("database removed (final snapshot kept)", _database),
    ("certificate and mail removed", _certificate_and_mail),
    ("instance profile removed", _instance_profile),
    ("network removed", _network),
    ("backups bucket handled", _bucket),
]
