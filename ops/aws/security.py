"""Security groups, least privilege: LB 80/443 from anywhere; host HTTP and the health service's
port from the LB, SSH from the admin networks; database 5432 from the host; with several nodes
(host.count > 1) the swarm's ports between the nodes, from the host group itself. Any other
ingress rule found is revoked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from ops.aws import tags
from ops.aws.context import Ctx
from ops.config import Environment
from ops.plan import Action, Change
from ops.stack.override import HEALTH_PORT

GROUPS = {"lb": "load balancer: HTTP/HTTPS from anywhere",
          "host": "OpenLMIS host: HTTP from the load balancer, SSH from admins",
          "db": "RDS PostgreSQL: 5432 from the host"}
# What Docker Swarm's nodes need of each other (Docker's "Getting started with swarm mode"):
# cluster management, node communication (TCP and UDP), overlay network traffic (VXLAN).
SWARM = (("tcp", 2377), ("tcp", 7946), ("udp", 7946), ("udp", 4789))


class Rule(NamedTuple):
    """One ingress rule; source is 'cidr:<block>' or 'sg:<group role or id>'."""

    protocol: str
    from_port: int
    to_port: int
    source: str

    def text(self) -> str:
        ports = "all" if self.protocol == "-1" else (
            f"{self.from_port}" if self.from_port == self.to_port
            else f"{self.from_port}-{self.to_port}")
        return f"{self.protocol}/{ports} from {self.source.split(':', 1)[1]}"


@dataclass(frozen=True)
class Group:
    """Create the security group of a role."""

    role: str


@dataclass(frozen=True)
class Authorize:
    """Add an ingress rule to a role's group."""

    role: str
    rule: Rule


@dataclass(frozen=True)
class Revoke:
    """Remove an ingress rule from a role's group."""

    role: str
    rule: Rule


Payload = Group | Authorize | Revoke


def desired(env: Environment) -> dict[str, set[Rule]]:
    """Each group's ingress rules (pure)."""
    return {
        "lb": {Rule("tcp", 80, 80, "cidr:0.0.0.0/0"), Rule("tcp", 443, 443, "cidr:0.0.0.0/0")},
        "host": {Rule("tcp", 80, 80, "sg:lb"),
                 Rule("tcp", HEALTH_PORT, HEALTH_PORT, "sg:lb")}  # the target group's check
        | {Rule("tcp", 22, 22, f"cidr:{c}") for c in env.network.admin_cidrs}
        | ({Rule(proto, port, port, "sg:host") for proto, port in SWARM}
           if env.host.swarm else set()),
        "db": {Rule("tcp", 5432, 5432, "sg:host")},
    }


def diff(want: dict[str, set[Rule]],
         have: dict[str, set[Rule] | None]) -> list[Change[Payload]]:
    """Groups to create, rules to add and rules to revoke; have[role] is None when missing."""
    changes: list[Change[Payload]] = [
        Change(Action.CREATE, f"security group {role}", GROUPS[role], payload=Group(role))
        for role in want if have.get(role) is None]
    for role, rules in want.items():
        present = have.get(role) or set()
        for rule in sorted(rules - present):
            changes.append(Change(Action.CREATE, f"rule {role}", rule.text(),
                                  payload=Authorize(role, rule)))
        for rule in sorted(present - rules):
            changes.append(Change(Action.DELETE, f"rule {role}", rule.text(),
                                  payload=Revoke(role, rule)))
    return changes


def parse(permissions: list[dict[str, Any]], roles: dict[str, str]) -> set[Rule]:
    """Rules from EC2 IpPermissions; group ids known in `roles` (id → role) become roles."""
    found: set[Rule] = set()
    for perm in permissions:
        key = (perm["IpProtocol"], perm.get("FromPort", -1), perm.get("ToPort", -1))
        found |= {Rule(*key, f"cidr:{r['CidrIp']}") for r in perm.get("IpRanges", [])}
        found |= {Rule(*key, f"cidr:{r['CidrIpv6']}") for r in perm.get("Ipv6Ranges", [])}
        found |= {Rule(*key, f"sg:{roles.get(p['GroupId'], p['GroupId'])}")
                  for p in perm.get("UserIdGroupPairs", [])}
    return found


def read(ctx: Ctx) -> dict[str, set[Rule] | None]:
    """The groups as they are; sets ctx.ids sg.<role>."""
    if not ctx.ids.get("vpc"):
        return {}
    groups = ctx.aws("ec2").describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [ctx.ids["vpc"]]}, *tags.filters(ctx.env)],
    )["SecurityGroups"]
    found = {}
    for group in groups:
        role = {t["Key"]: t["Value"] for t in group.get("Tags", [])}.get(tags.ROLE, "")
        if role.startswith("sg-"):
            found[role.removeprefix("sg-")] = group
            ctx.ids[f"sg.{role.removeprefix('sg-')}"] = group["GroupId"]
    roles = {g["GroupId"]: role for role, g in found.items()}
    return {role: parse(g["IpPermissions"], roles) for role, g in found.items()}


def plan(ctx: Ctx) -> list[Change[Payload]]:
    return diff(desired(ctx.env), read(ctx))


def apply(ctx: Ctx, payload: Payload) -> None:
    ec2, env, role = ctx.aws("ec2"), ctx.env, payload.role
    if isinstance(payload, Group):
        ctx.ids[f"sg.{role}"] = ec2.create_security_group(
            GroupName=f"{env.prefix}-{role}", Description=GROUPS[role], VpcId=ctx.ids["vpc"],
            TagSpecifications=tags.specifications(env, f"sg-{role}", "security-group"),
        )["GroupId"]
        return
    permission = _permission(ctx, payload.rule)
    call = (ec2.authorize_security_group_ingress if isinstance(payload, Authorize)
            else ec2.revoke_security_group_ingress)
    call(GroupId=ctx.ids[f"sg.{role}"], IpPermissions=[permission])


def _permission(ctx: Ctx, rule: Rule) -> dict[str, Any]:
    kind, _, value = rule.source.partition(":")
    perm: dict[str, Any] = {"IpProtocol": rule.protocol}
    if rule.protocol != "-1":
        perm.update(FromPort=rule.from_port, ToPort=rule.to_port)
    if kind == "sg":
        perm["UserIdGroupPairs"] = [{"GroupId": ctx.ids.get(f"sg.{value}", value)}]
    elif ":" in value:
        perm["Ipv6Ranges"] = [{"CidrIpv6": value}]
    else:
        perm["IpRanges"] = [{"CidrIp": value}]
    return perm
