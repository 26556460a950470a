"""status: every resource of the environment with id, state and endpoints, read-only; each node
(host.count) its instance (availability zone, state, addresses) and Elastic IP."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ops.aws import alarms, dns, mail, tags, topology
from ops.aws.context import Ctx
from ops.config import Environment

KINDS = {"vpc": "vpc", "igw": "internet gateway", "rt": "route table", "key": "key pair",
         "profile": "instance profile", "role": "iam role", "bucket": "s3 bucket",
         "smtp_user": "iam user (smtp)", "smtp_secret": "smtp secret",
         "db_subnets": "db subnet group", "db_params": "db parameter group",
         "topic": "sns topic"}


def collect(env: Environment) -> dict[str, Any]:
    """The environment's resources, pending changes, DNS records to create, warnings."""
    ctx, changes = topology.plan(env, checked=False)
    resources = [_row(ctx, key, value) for key, value in ctx.ids.items()
                 if not key.startswith(("listener.", "lb.", "account"))]
    identity = mail.identity(env)
    ses = ctx.aws("ses").get_identity_verification_attributes(
        Identities=[identity])["VerificationAttributes"].get(identity)
    if ses:
        state = ses["VerificationStatus"]
        if env.mail.verify_domain:
            dkim = ctx.aws("ses").get_identity_dkim_attributes(
                Identities=[identity])["DkimAttributes"].get(identity, {})
            state += f", DKIM {dkim.get('DkimVerificationStatus', 'not set up')}"
        resources.append({"kind": "ses identity", "id": identity, "state": state,
                          "endpoint": env.mail.from_address})
    return {
        "environment": env.name,
        "resources": resources,
        "pending_changes": [c.line() for c in changes],
        "dns_records_to_create": [asdict(r) for r in dns.pending(ctx)],
        "warnings": ctx.warnings,
    }


def _row(ctx: Ctx, key: str, value: str) -> dict[str, str]:
    kind, _, role = key.partition(".")
    row = {"kind": KINDS.get(kind, kind) + (f" {role}" if role else ""), "id": value,
           "state": "present", "endpoint": ""}
    describe = _DESCRIBE.get(kind)
    if describe:
        row.update(describe(ctx, value))
    return row


def _instance(ctx: Ctx, instance: str) -> dict[str, str]:
    found = ctx.aws("ec2").describe_instances(InstanceIds=[instance])["Reservations"][0]
    i = found["Instances"][0]
    return {"kind": "instance host" + _node(ctx, tags.node(i.get("Tags", []))),
            "state": i["State"]["Name"],
            "endpoint": f"{i.get('PublicIpAddress', '')} (private {i.get('PrivateIpAddress')}, "
                        f"{i.get('Placement', {}).get('AvailabilityZone', 'zone unknown')})"}


def _database(ctx: Ctx, name: str) -> dict[str, str]:
    db = ctx.aws("rds").describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
    endpoint = db.get("Endpoint") or {}
    return {"kind": "rds instance", "state": db["DBInstanceStatus"],
            "endpoint": f"{endpoint.get('Address', '')}:{endpoint.get('Port', '')}"}


def _certificate(ctx: Ctx, arn: str) -> dict[str, str]:
    cert = ctx.aws("acm").describe_certificate(CertificateArn=arn)["Certificate"]
    return {"kind": "certificate", "state": cert["Status"], "endpoint": cert["DomainName"]}


def _load_balancer(ctx: Ctx, arn: str) -> dict[str, str]:
    lb = ctx.aws("elbv2").describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"][0]
    return {"kind": "load balancer", "state": lb["State"]["Code"], "endpoint": lb["DNSName"]}


def _targets(ctx: Ctx, arn: str) -> dict[str, str]:
    health = ctx.aws("elbv2").describe_target_health(TargetGroupArn=arn)
    states = [f"{t['Target']['Id']} {t['TargetHealth']['State']}"
              for t in health["TargetHealthDescriptions"]]
    return {"kind": "target group", "state": ", ".join(states) or "no targets"}


def _topic(ctx: Ctx, arn: str) -> dict[str, str]:
    found = [s["SubscriptionArn"] for page in ctx.aws("sns").get_paginator(
        "list_subscriptions_by_topic").paginate(TopicArn=arn) for s in page["Subscriptions"]]
    pending = found.count(alarms.PENDING)
    return {"state": f"{len(found) - pending} confirmed, {pending} pending"}


def _subscription(_: Ctx, arn: str) -> dict[str, str]:
    return {"state": "pending confirmation" if arn == alarms.PENDING else "confirmed"}


def _alarm(ctx: Ctx, name: str) -> dict[str, str]:
    found = ctx.aws("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return {"state": found[0]["StateValue"] if found else "missing"}


def _address(ctx: Ctx, allocation: str) -> dict[str, str]:
    found = ctx.aws("ec2").describe_addresses(AllocationIds=[allocation])["Addresses"][0]
    role = {t["Key"]: t["Value"] for t in found.get("Tags", [])}.get(tags.ROLE, "host-ip")
    node = role.rpartition("-")[2]
    return {"kind": "elastic ip" + _node(ctx, int(node) if node.isdigit() else 1),
            "state": "associated" if found.get("InstanceId") else "free",
            "endpoint": found.get("PublicIp", "")}


def _node(ctx: Ctx, node: int) -> str:
    """' node i' after a node's resource kind, when there are nodes (host.count or left over)."""
    return f" node {node}" if node > 1 or ctx.env.host.count > 1 else ""


_DESCRIBE = {"instance": _instance, "db": _database, "cert": _certificate,
             "lb": _load_balancer, "tg": _targets, "eip": _address, "topic": _topic,
             "subscription": _subscription, "alarm": _alarm}
