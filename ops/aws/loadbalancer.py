"""The application load balancer: target group (health check on the application), HTTP→HTTPS
redirect, HTTPS listener with the certificate and a TLS 1.2+ policy, idle timeout ≥ the stack's
nginx timeout, header fields that are not valid HTTP dropped before they reach the host."""

from __future__ import annotations

from collections.abc import Collection
from enum import Enum
from typing import Any

from ops.aws import certificates, compute, tags
from ops.aws.context import Ctx, DnsRecord
from ops.config import Environment
from ops.plan import Action, Change
from ops.stack.override import HEALTH_PORT

# The toolkit's health service on the host (ops.stack.override): /api/health asked through the
# stack's nginx as a user's HTTPS request arrives. The traffic port's every location answers
# 307 to a check without X-Forwarded-Proto: https, which a target group cannot send.
HEALTH = {"HealthCheckProtocol": "HTTP", "HealthCheckPort": str(HEALTH_PORT),
          "HealthCheckPath": "/health", "HealthCheckIntervalSeconds": 30,
          "HealthCheckTimeoutSeconds": 10, "HealthyThresholdCount": 2,
          "UnhealthyThresholdCount": 3, "Matcher": {"HttpCode": "200,429"}}  # 429: warning
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
DROP_INVALID = "routing.http.drop_invalid_header_fields.enabled"
REDIRECT_TO = {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}
REDIRECT = {"Type": "redirect", "RedirectConfig": REDIRECT_TO}


class Op(Enum):
    """The load balancer's changes."""

    LB = "lb"
    IDLE = "idle"
    HEADERS = "headers"
    GROUPS = "groups"
    TG = "tg"
    HEALTH = "health"
    REGISTER = "register"
    DEREGISTER = "deregister"
    HTTP = "http"
    HTTPS = "https"


def names(env: Environment) -> tuple[str, str]:
    """Load balancer and target group names (AWS allows 32 characters)."""
    return f"{env.prefix}-lb"[:32], f"{env.prefix}-host"[:32]


def idle_timeout(env: Environment) -> int:
    return max(60, env.stack.nginx_timeout_s)


def diff(env: Environment, actual: dict[str, Any], cert_issued: bool) -> list[Change[Op]]:
    """`actual`: lb ({} or idle, drop_invalid, groups as roles), tg ({} or health settings),
    registered (bool: every node's instance is), unregistered (the node indices that are not,
    where known), others (ids of other targets not already leaving: a replaced host's, a node's
    above host.count),
    listeners (port → {'redirect': bool} or {'cert': arn, 'forward': bool,
    'target': 'tg' when it forwards to the target group, 'policy': TLS policy})."""
    lb_name, tg_name = names(env)
    changes = []
    lb = actual.get("lb")
    if not lb:
        changes.append(Change(Action.CREATE, f"load balancer {lb_name}",
                              "internet-facing, public subnets", payload=Op.LB))
    if not lb or lb.get("idle") != idle_timeout(env):
        changes.append(Change(Action.UPDATE, f"load balancer {lb_name}",
                              f"idle timeout {idle_timeout(env)}s (nginx: "
                              f"{env.stack.nginx_timeout_s}s)", payload=Op.IDLE))
    if not lb or lb.get("drop_invalid") != "true":
        changes.append(Change(Action.UPDATE, f"load balancer {lb_name}",
                              "drop invalid header fields", payload=Op.HEADERS))
    if lb and lb.get("groups") is not None and lb["groups"] != ["sg.lb"]:
        changes.append(Change(Action.UPDATE, f"load balancer {lb_name}",
                              f"security groups {', '.join(lb['groups'])} → sg.lb (live: "
                              "takes effect on open connections at once)", payload=Op.GROUPS))
    tg = actual.get("tg")
    if not tg:
        changes.append(Change(Action.CREATE, f"target group {tg_name}",
                              f"HTTP:80, health check {HEALTH['HealthCheckPath']}", payload=Op.TG))
    elif any(tg.get(k) != v for k, v in HEALTH.items()):
        changes.append(Change(Action.UPDATE, f"target group {tg_name}",
                              f"health check {HEALTH['HealthCheckPath']}", payload=Op.HEALTH))
    if not actual.get("registered"):
        missing = actual.get("unregistered") or []
        whom = ("the host" if env.host.count == 1 else
                f"nodes {', '.join(map(str, missing))}" if missing else "the nodes")
        changes.append(Change(Action.CREATE, f"target group {tg_name}", f"register {whom}",
                              payload=Op.REGISTER))
    if actual.get("others"):
        changes.append(Change(Action.DELETE, f"target group {tg_name}",
                              f"deregister {', '.join(actual['others'])} "
                              f"(not {'the host' if env.host.count == 1 else 'a node'})",
                              payload=Op.DEREGISTER))
    listeners = actual.get("listeners", {})
    if not listeners.get(80, {}).get("redirect"):
        changes.append(Change(Action.UPDATE if 80 in listeners else Action.CREATE,
                              "listener HTTP:80", "redirect to HTTPS", payload=Op.HTTP))
    https = listeners.get(443)
    if cert_issued and (not https or not https.get("forward")
                        or https.get("target", "tg") != "tg"
                        or https.get("cert") != actual.get("cert")):
        changes.append(Change(Action.UPDATE if https else Action.CREATE, "listener HTTPS:443",
                              f"certificate for {env.domain}, forward to {tg_name}, "
                              f"TLS policy {TLS_POLICY}", payload=Op.HTTPS))
    elif https and https.get("policy", TLS_POLICY) != TLS_POLICY:
        changes.append(Change(Action.UPDATE, "listener HTTPS:443",
                              f"TLS policy {https['policy']} → {TLS_POLICY} (live: new "
                              "connections only; clients older than TLS 1.2 are refused)",
                              payload=Op.HTTPS))
    return changes


def others(described: list[dict[str, Any]], nodes: Collection[str]) -> list[dict[str, Any]]:
    """The targets (Id, Port), of those DescribeTargetHealth lists, that are not a node's
    instance and are not leaving already (pure): a replaced host's, which ELB has not
    deregistered itself, or a node's above host.count."""
    return sorted((t["Target"] for t in described
                   if t["Target"]["Id"] not in nodes and t["TargetHealth"]["State"] != "draining"),
                  key=lambda t: str(t["Id"]))


def warnings(env: Environment, actual: dict[str, Any]) -> list[str]:
    """Differences provision reports but does not change (pure): the scheme cannot change, a
    listener the toolkit did not make may be someone's."""
    lb_name = names(env)[0]
    lb, found = actual.get("lb") or {}, []
    if lb.get("scheme", "internet-facing") != "internet-facing":
        found.append(f"load balancer {lb_name} is {lb['scheme']}, not internet-facing: the "
                     "scheme cannot change; delete it and run provision again")
    extra = sorted(set(actual.get("listeners", {})) - {80, 443})
    if extra:
        found.append(f"load balancer {lb_name} has listeners the toolkit did not make (ports "
                     f"{', '.join(map(str, extra))}): its security group lets no one reach "
                     "them; delete them if nothing needs them")
    return found


def read(ctx: Ctx) -> dict[str, Any]:
    elb, env = ctx.aws("elbv2"), ctx.env
    lb_name, tg_name = names(env)
    actual: dict[str, Any] = {"cert": ctx.ids.get("cert")}
    try:
        tg = elb.describe_target_groups(Names=[tg_name])["TargetGroups"][0]
    except elb.exceptions.TargetGroupNotFoundException:
        tg = None
    if tg:
        ctx.ids["tg"] = tg["TargetGroupArn"]
        actual["tg"] = {k: tg.get(k) for k in HEALTH}
        targets = elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])
        present = {t["Target"]["Id"] for t in targets["TargetHealthDescriptions"]}
        nodes = compute.node_instances(ctx)
        actual["unregistered"] = [i for i in range(1, env.host.count + 1)
                                  if nodes.get(i) not in present]
        actual["registered"] = not actual["unregistered"]
        actual["others"] = [t["Id"] for t in others(targets["TargetHealthDescriptions"],
                                                    set(nodes.values()))]
    try:
        lb = elb.describe_load_balancers(Names=[lb_name])["LoadBalancers"][0]
    except elb.exceptions.LoadBalancerNotFoundException:
        lb = None
    if lb:
        arn = ctx.ids["lb"] = lb["LoadBalancerArn"]
        _alias(ctx, lb)
        attributes = {a["Key"]: a["Value"] for a in elb.describe_load_balancer_attributes(
            LoadBalancerArn=arn)["Attributes"]}
        sg_roles = {ctx.ids.get(k): k for k in ("sg.db", "sg.host", "sg.lb")}
        actual["lb"] = {"idle": int(attributes.get("idle_timeout.timeout_seconds", 60)),
                        "drop_invalid": attributes.get(DROP_INVALID, "false"),
                        "scheme": lb.get("Scheme"),
                        "groups": sorted(sg_roles.get(g, g) for g in lb.get("SecurityGroups", []))}
        actual["listeners"] = {}
        for listener in elb.describe_listeners(LoadBalancerArn=arn)["Listeners"]:
            action = listener["DefaultActions"][0]
            redirect = action.get("RedirectConfig", {})
            actual["listeners"][listener["Port"]] = {
                "arn": listener["ListenerArn"],
                "redirect": action["Type"] == "redirect"
                and all(redirect.get(k) == v for k, v in REDIRECT_TO.items()),
                "forward": action["Type"] == "forward",
                "target": "tg" if action.get("TargetGroupArn") == ctx.ids.get("tg")
                else action.get("TargetGroupArn"),
                "policy": listener.get("SslPolicy"),
                "cert": next((c["CertificateArn"] for c in listener.get("Certificates", [])),
                             None)}
            ctx.ids[f"listener.{listener['Port']}"] = listener["ListenerArn"]
    for text in warnings(env, actual):
        ctx.warn(text)
    return actual


def _alias(ctx: Ctx, lb: dict[str, Any]) -> None:
    ctx.ids["lb.dns"] = lb["DNSName"]
    ctx.record(DnsRecord(ctx.env.domain, "CNAME", lb["DNSName"],
                         "sends the domain to the load balancer",
                         alias_zone=lb["CanonicalHostedZoneId"]))


def plan(ctx: Ctx) -> list[Change[Op]]:
    cert = ctx.ids.get("cert")
    cert_issued = bool(cert) and certificates.issued(ctx)
    if cert and not cert_issued and not ctx.env.route53_zone_id:
        ctx.warn(f"the certificate for {ctx.env.domain} awaits DNS validation: create the "
                 "records listed below, then run provision again to add the HTTPS listener")
    return diff(ctx.env, read(ctx), cert_issued or bool(ctx.env.route53_zone_id))


def apply(ctx: Ctx, op: Op) -> None:
    elb, env = ctx.aws("elbv2"), ctx.env
    lb_name, tg_name = names(env)
    if op is Op.LB:
        lb = elb.create_load_balancer(
            Name=lb_name, Type="application", Scheme="internet-facing", IpAddressType="ipv4",
            Subnets=[ctx.ids["subnet.public-1"], ctx.ids["subnet.public-2"]],
            SecurityGroups=[ctx.ids["sg.lb"]],
            Tags=tags.as_list(tags.tags(env, "lb", lb_name)))["LoadBalancers"][0]
        ctx.ids["lb"] = lb["LoadBalancerArn"]
        _alias(ctx, lb)
    elif op is Op.IDLE:
        elb.modify_load_balancer_attributes(LoadBalancerArn=ctx.ids["lb"], Attributes=[
            {"Key": "idle_timeout.timeout_seconds", "Value": str(idle_timeout(env))}])
    elif op is Op.HEADERS:
        elb.modify_load_balancer_attributes(LoadBalancerArn=ctx.ids["lb"], Attributes=[
            {"Key": DROP_INVALID, "Value": "true"}])
    elif op is Op.GROUPS:
        elb.set_security_groups(LoadBalancerArn=ctx.ids["lb"], SecurityGroups=[ctx.ids["sg.lb"]])
    elif op is Op.TG:
        ctx.ids["tg"] = elb.create_target_group(
            Name=tg_name, Protocol="HTTP", Port=80, VpcId=ctx.ids["vpc"], TargetType="instance",
            Tags=tags.as_list(tags.tags(env, "targets", tg_name)), **HEALTH,
        )["TargetGroups"][0]["TargetGroupArn"]
    elif op is Op.HEALTH:
        elb.modify_target_group(TargetGroupArn=ctx.ids["tg"], **HEALTH)
    elif op is Op.REGISTER:
        elb.register_targets(TargetGroupArn=ctx.ids["tg"], Targets=[
            {"Id": instance, "Port": 80} for instance in compute.node_instances(ctx).values()])
    elif op is Op.DEREGISTER:
        leaving = others(elb.describe_target_health(TargetGroupArn=ctx.ids["tg"])[
            "TargetHealthDescriptions"], set(compute.node_instances(ctx).values()))
        if leaving:
            elb.deregister_targets(TargetGroupArn=ctx.ids["tg"], Targets=leaving)
    elif op is Op.HTTP:
        _listener(ctx, 80, Protocol="HTTP", DefaultActions=[REDIRECT])
    elif op is Op.HTTPS:
        certificates.wait_issued(ctx)
        _listener(ctx, 443, Protocol="HTTPS", SslPolicy=TLS_POLICY,
                  Certificates=[{"CertificateArn": ctx.ids["cert"]}],
                  DefaultActions=[{"Type": "forward", "TargetGroupArn": ctx.ids["tg"]}])


def _listener(ctx: Ctx, port: int, **settings: Any) -> None:
    elb = ctx.aws("elbv2")
    if arn := ctx.ids.get(f"listener.{port}"):
        elb.modify_listener(ListenerArn=arn, Port=port, **settings)
    else:
        ctx.ids[f"listener.{port}"] = elb.create_listener(
            LoadBalancerArn=ctx.ids["lb"], Port=port,
            Tags=tags.as_list(tags.tags(ctx.env, f"listener-{port}")), **settings,
        )["Listeners"][0]["ListenerArn"]
