"""Network: a VPC (or an existing one), two public and two private subnets, gateway, routes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Network, ip_network
from typing import Any

from ops.aws import tags
from ops.aws.context import Ctx
from ops.errors import OpsError
from ops.plan import Action, Change

SUBNETS = ("public-1", "public-2", "private-1", "private-2")


class Op(Enum):
    """The network's changes that need no data beyond the ids in the context."""

    VPC = "vpc"
    DNS = "dns"
    IGW = "igw"
    ATTACH = "attach"
    RT = "rt"
    ROUTE = "route"


@dataclass(frozen=True)
class Subnet:
    """Create the subnet of a role."""

    role: str
    cidr: str
    zone: str


@dataclass(frozen=True)
class Associate:
    """Route a public subnet through the public route table."""

    role: str


@dataclass(frozen=True)
class Disassociate:
    """Take a private subnet out of the public route table (its association id)."""

    role: str
    association: str


Payload = Op | Subnet | Associate | Disassociate


def layout(cidr: IPv4Network, zones: list[str]) -> dict[str, tuple[str, str]]:
    """Each subnet role's (CIDR, zone): the VPC in quarters, one public and one private per zone."""
    if cidr.prefixlen > 26:
        raise OpsError(f"network.vpc_cidr {cidr} is too small: use a /26 or larger (e.g. a /16)")
    if len(zones) < 2:
        raise OpsError("the region offers fewer than two availability zones")
    quarters = list(cidr.subnets(prefixlen_diff=2))
    return {role: (str(quarters[i]), zones[i % 2]) for i, role in enumerate(SUBNETS)}


def overlaps(cidr: IPv4Network, others: dict[str, str]) -> list[str]:
    """The VPCs (id → CIDR) whose range overlaps `cidr`, as 'id (cidr)'."""
    return [f"{vpc} ({block})" for vpc, block in others.items()
            if ip_network(block).overlaps(cidr)]


def diff(cidr: str, zones: list[str], actual: dict[str, Any]) -> list[Change[Payload]]:
    """What the network lacks. `actual`: vpc, dns_hostnames, subnets (role → {cidr, zone}), igw,
    igw_attached, route_table, default_route, associated (subnet role → association id)."""
    changes: list[Change[Payload]] = []
    if not actual.get("vpc"):
        changes.append(Change(Action.CREATE, "vpc", cidr, payload=Op.VPC))
    if not actual.get("dns_hostnames"):
        changes.append(Change(Action.UPDATE, "vpc", "enable DNS host names", payload=Op.DNS))
    want = layout(IPv4Network(cidr), zones)
    for role, (block, zone) in want.items():
        if role not in actual.get("subnets", {}):
            changes.append(Change(Action.CREATE, f"subnet {role}", f"{block} in {zone}",
                                  payload=Subnet(role, block, zone)))
    if not actual.get("igw"):
        changes.append(Change(Action.CREATE, "internet gateway", payload=Op.IGW))
    if not actual.get("igw_attached"):
        changes.append(Change(Action.UPDATE, "internet gateway", "attach to the vpc",
                              payload=Op.ATTACH))
    if not actual.get("route_table"):
        changes.append(Change(Action.CREATE, "route table public", payload=Op.RT))
    if not actual.get("default_route"):
        changes.append(Change(Action.CREATE, "route 0.0.0.0/0", "via the internet gateway",
                              payload=Op.ROUTE))
    for role in ("public-1", "public-2"):
        if role not in actual.get("associated", []):
            changes.append(Change(Action.UPDATE, f"subnet {role}", "use the public route table",
                                  payload=Associate(role)))
    for role in ("private-1", "private-2"):
        if association := actual.get("associated", {}).get(role):
            changes.append(Change(Action.UPDATE, f"subnet {role}",
                                  "leave the public route table (live: the database's subnet "
                                  "stops routing to the internet)",
                                  payload=Disassociate(role, association)))
    return changes


def warnings(cidr: str, zones: list[str], actual: dict[str, Any]) -> list[str]:
    """What provision reports about the network but cannot change (pure): a VPC's or a subnet's
    range and zone are fixed at creation, and the host and database live in them."""
    found = []
    if actual.get("cidr", cidr) != cidr:
        found.append(f"vpc {actual['vpc']} is {actual['cidr']}, network.vpc_cidr says {cidr}: "
                     "a VPC's range cannot change; set network.vpc_cidr to it")
    want = layout(IPv4Network(actual.get("cidr", cidr)), zones)
    for role, have in sorted(actual.get("subnets", {}).items()):
        if role in want and (have.get("cidr"), have.get("zone")) != want[role]:
            found.append(f"subnet {role} is {have.get('cidr')} in {have.get('zone')}, the layout "
                         f"says {want[role][0]} in {want[role][1]}: subnets cannot change in "
                         "place; the resources in it would have to move")
    return found


def zones(ctx: Ctx) -> list[str]:
    found = ctx.aws("ec2").describe_availability_zones(
        Filters=[{"Name": "state", "Values": ["available"]},
                 {"Name": "zone-type", "Values": ["availability-zone"]}])["AvailabilityZones"]
    return sorted(z["ZoneName"] for z in found)[:2]


def read(ctx: Ctx) -> dict[str, Any]:
    """The network as it is; sets ctx.ids vpc and subnet.<role>."""
    ec2, env = ctx.aws("ec2"), ctx.env
    vpcs = ec2.describe_vpcs(Filters=tags.filters(env, "vpc"))["Vpcs"]
    if len(vpcs) > 1:
        raise OpsError(f"several VPCs are tagged for {env.name}: "
                       + ", ".join(v["VpcId"] for v in vpcs),
                       hint="delete the extra ones (inv status lists them)")
    if not vpcs:
        return {}
    vpc = ctx.ids["vpc"] = vpcs[0]["VpcId"]
    actual: dict[str, Any] = {"vpc": vpc, "cidr": vpcs[0]["CidrBlock"]}
    actual["dns_hostnames"] = ec2.describe_vpc_attribute(
        VpcId=vpc, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                            *tags.filters(env)])["Subnets"]
    actual["subnets"] = {}
    for subnet in subnets:
        role = _role(subnet).removeprefix("subnet-")
        ctx.ids[f"subnet.{role}"] = subnet["SubnetId"]
        actual["subnets"][role] = {"cidr": subnet["CidrBlock"], "zone": subnet["AvailabilityZone"]}
    igws = ec2.describe_internet_gateways(Filters=tags.filters(env, "igw"))["InternetGateways"]
    if igws:
        ctx.ids["igw"] = igws[0]["InternetGatewayId"]
        actual["igw"] = ctx.ids["igw"]
        actual["igw_attached"] = any(a["VpcId"] == vpc for a in igws[0].get("Attachments", []))
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                *tags.filters(env, "rt-public")])["RouteTables"]
    if tables:
        table = tables[0]
        ctx.ids["rt"] = actual["route_table"] = table["RouteTableId"]
        actual["default_route"] = any(r.get("DestinationCidrBlock") == "0.0.0.0/0"
                                      and r.get("GatewayId", "").startswith("igw-")
                                      for r in table["Routes"])
        ids = {ctx.ids.get(f"subnet.{r}"): r for r in SUBNETS}
        actual["associated"] = {ids[a["SubnetId"]]: a["RouteTableAssociationId"]
                                for a in table["Associations"]
                                if a.get("SubnetId") and a["SubnetId"] in ids}
    return actual


def read_existing(ctx: Ctx) -> None:
    """An existing VPC and subnets named in config: check them and record their ids."""
    net, ec2 = ctx.env.network, ctx.aws("ec2")
    if len(net.existing_public_subnet_ids) != 2 or len(net.existing_private_subnet_ids) != 2:
        raise OpsError("network.existing_vpc_id needs two existing_public_subnet_ids and two "
                       "existing_private_subnet_ids")
    ids = net.existing_public_subnet_ids + net.existing_private_subnet_ids
    try:
        found = ec2.describe_subnets(SubnetIds=ids)["Subnets"]
    except ec2.exceptions.ClientError as exc:
        raise OpsError(f"the subnets named in network.existing_*_subnet_ids: {exc}") from None
    stray = [s["SubnetId"] for s in found if s["VpcId"] != net.existing_vpc_id]
    if stray:
        raise OpsError(f"subnets {', '.join(stray)} are not in {net.existing_vpc_id}")
    ctx.ids["vpc"] = net.existing_vpc_id
    for role, subnet in zip(SUBNETS, ids, strict=True):
        ctx.ids[f"subnet.{role}"] = subnet


def plan(ctx: Ctx) -> list[Change[Payload]]:
    if ctx.env.network.existing_vpc_id:
        read_existing(ctx)
        return []
    cidr, found, actual = str(ctx.env.network.vpc_cidr), zones(ctx), read(ctx)
    for text in warnings(cidr, found, actual):
        ctx.warn(text)
    return diff(cidr, found, actual)


def check(ctx: Ctx) -> None:
    """Before a VPC is created: it must not overlap another VPC of the account."""
    if ctx.env.network.existing_vpc_id or read(ctx):
        return
    ec2 = ctx.aws("ec2")
    others = {v["VpcId"]: v["CidrBlock"] for v in ec2.describe_vpcs()["Vpcs"]}
    clash = overlaps(ctx.env.network.vpc_cidr, others)
    if clash:
        raise OpsError(f"network.vpc_cidr {ctx.env.network.vpc_cidr} overlaps "
                       + ", ".join(clash),
                       hint="choose another range, or set network.existing_vpc_id")


def apply(ctx: Ctx, payload: Payload) -> None:
    ec2, env = ctx.aws("ec2"), ctx.env
    if payload is Op.VPC:
        ctx.ids["vpc"] = ec2.create_vpc(
            CidrBlock=str(env.network.vpc_cidr),
            TagSpecifications=tags.specifications(env, "vpc", "vpc"))["Vpc"]["VpcId"]
    elif payload is Op.DNS:
        ec2.modify_vpc_attribute(VpcId=ctx.ids["vpc"], EnableDnsHostnames={"Value": True})
    elif isinstance(payload, Subnet):
        role = payload.role
        ctx.ids[f"subnet.{role}"] = ec2.create_subnet(
            VpcId=ctx.ids["vpc"], CidrBlock=payload.cidr, AvailabilityZone=payload.zone,
            TagSpecifications=tags.specifications(env, f"subnet-{role}", "subnet"),
        )["Subnet"]["SubnetId"]
    elif payload is Op.IGW:
        ctx.ids["igw"] = ec2.create_internet_gateway(
            TagSpecifications=tags.specifications(env, "igw", "internet-gateway"),
        )["InternetGateway"]["InternetGatewayId"]
    elif payload is Op.ATTACH:
        ec2.attach_internet_gateway(InternetGatewayId=ctx.ids["igw"], VpcId=ctx.ids["vpc"])
    elif payload is Op.RT:
        ctx.ids["rt"] = ec2.create_route_table(
            VpcId=ctx.ids["vpc"],
            TagSpecifications=tags.specifications(env, "rt-public", "route-table"),
        )["RouteTable"]["RouteTableId"]
    elif payload is Op.ROUTE:
        ec2.create_route(RouteTableId=ctx.ids["rt"], DestinationCidrBlock="0.0.0.0/0",
                         GatewayId=ctx.ids["igw"])
    elif isinstance(payload, Associate):
        ec2.associate_route_table(RouteTableId=ctx.ids["rt"],
                                  SubnetId=ctx.ids[f"subnet.{payload.role}"])
    elif isinstance(payload, Disassociate):
        ec2.disassociate_route_table(AssociationId=payload.association)


def _role(resource: dict[str, Any]) -> str:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}.get(tags.ROLE, "")
