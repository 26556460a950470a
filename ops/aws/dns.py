"""DNS records the topology needs: upserted in the Route 53 zone when one is configured,
otherwise listed for the operator's DNS provider (provision and status print them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ops.aws.context import Ctx, DnsRecord
from ops.errors import OpsError
from ops.plan import Action, Change


@dataclass(frozen=True)
class Upsert:
    """Create or update a record in the configured zone."""

    record: DnsRecord


def fqdn(name: str) -> str:
    return name if name.endswith(".") else f"{name}."


def diff(wanted: list[DnsRecord],
         existing: dict[tuple[str, str], str]) -> list[Change[Upsert]]:
    """Records missing or different in the zone; existing maps (fqdn, type) → value (pure)."""
    changes = []
    for record in wanted:
        have = existing.get((fqdn(record.name), _type(record)))
        if have is None or have.rstrip(".") != record.value.rstrip("."):
            kind = "A alias" if record.alias_zone else record.type
            changes.append(Change(Action.UPDATE if have else Action.CREATE,
                                  f"dns {record.name} {kind}", record.purpose,
                                  payload=Upsert(record)))
    return changes


def record_sets(ctx: Ctx) -> list[dict[str, Any]]:
    """Every record set of the configured zone, as Route 53 returns them."""
    pages = ctx.aws("route53").get_paginator("list_resource_record_sets").paginate(
        HostedZoneId=ctx.env.route53_zone_id)
    return [rrset for page in pages for rrset in page["ResourceRecordSets"]]


def value(rrset: dict[str, Any]) -> str:
    """A record set's value: an alias's target, else its first record (TXT unquoted)."""
    values = [r["Value"].strip('"') for r in rrset.get("ResourceRecords", [])]
    return rrset.get("AliasTarget", {}).get("DNSName") or (values[0] if values else "")


def read(ctx: Ctx) -> dict[tuple[str, str], str]:
    """The zone's records (name, type) → value."""
    return {(fqdn(r["Name"]), r["Type"]): value(r) for r in record_sets(ctx)}


def ours(record: DnsRecord, rrset: dict[str, Any]) -> bool:
    """Whether a record set in the zone is the one `record` describes (same name, type, value)."""
    return ((fqdn(record.name), _type(record)) == (rrset["Name"], rrset["Type"])
            and value(rrset).rstrip(".") == record.value.rstrip("."))


def check(ctx: Ctx) -> None:
    """Before anything changes: the configured zone exists and holds the domain."""
    zone = ctx.env.route53_zone_id
    if not zone:
        return
    r53 = ctx.aws("route53")
    try:
        name = r53.get_hosted_zone(Id=zone)["HostedZone"]["Name"].rstrip(".")
    except r53.exceptions.NoSuchHostedZone:
        raise OpsError(f"route53_zone_id {zone} does not exist in this account") from None
    if ctx.env.domain != name and not ctx.env.domain.endswith(f".{name}"):
        raise OpsError(f"domain {ctx.env.domain} is not in the Route 53 zone {zone} ({name})",
                       hint="set route53_zone_id to the zone of the domain, or null")


def plan(ctx: Ctx) -> list[Change[Upsert]]:
    if not ctx.env.route53_zone_id or not ctx.records:
        return []
    return diff(ctx.records, read(ctx))


def apply(ctx: Ctx, payload: Upsert) -> None:
    upsert(ctx, payload.record)


def upsert(ctx: Ctx, record: DnsRecord) -> None:
    """Create or update one record in the configured zone."""
    rrset: dict[str, Any] = {"Name": fqdn(record.name), "Type": _type(record)}
    if record.alias_zone:
        rrset["AliasTarget"] = {"HostedZoneId": record.alias_zone, "DNSName": record.value,
                                "EvaluateTargetHealth": False}
    else:
        value = f'"{record.value}"' if record.type == "TXT" else record.value
        rrset.update(TTL=300, ResourceRecords=[{"Value": value}])
    ctx.aws("route53").change_resource_record_sets(
        HostedZoneId=ctx.env.route53_zone_id,
        ChangeBatch={"Comment": record.purpose,
                     "Changes": [{"Action": "UPSERT", "ResourceRecordSet": rrset}]})


def pending(ctx: Ctx) -> list[DnsRecord]:
    """Records the operator still has to create (all of them when no zone is configured)."""
    if not ctx.env.route53_zone_id:
        return list(ctx.records)
    return [c.payload.record for c in diff(ctx.records, read(ctx))]


def _type(record: DnsRecord) -> str:
    return "A" if record.alias_zone else record.type
