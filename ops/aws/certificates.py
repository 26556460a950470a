"""The TLS certificate: ACM, DNS validation (record upserted by the dns area or printed)."""

from __future__ import annotations

import hashlib
from enum import Enum
from typing import Any

from ops import console
from ops.aws import dns, tags
from ops.aws.context import Ctx, DnsRecord
from ops.config import Environment
from ops.errors import OpsError
from ops.plan import Action, Change

USABLE = ["PENDING_VALIDATION", "ISSUED"]


class Op(Enum):
    """The certificate's one change."""

    REQUEST = "request"


def idempotency_token(env: Environment) -> str:
    """request_certificate token (alphanumeric, ≤ 32): a retried request returns the same one."""
    return hashlib.sha256(f"{env.prefix}:{env.domain}".encode()).hexdigest()[:32]


def diff(env: Environment, actual: dict[str, Any]) -> list[Change[Op]]:
    if actual.get("arn"):
        return []
    how = (f"DNS validation in zone {env.route53_zone_id}" if env.route53_zone_id
           else "DNS validation: records printed for your DNS provider")
    return [Change(Action.CREATE, f"certificate {env.domain}", how, payload=Op.REQUEST)]


def read(ctx: Ctx) -> dict[str, Any]:
    acm, env = ctx.aws("acm"), ctx.env
    pages = acm.get_paginator("list_certificates").paginate(CertificateStatuses=USABLE)
    for page in pages:
        for summary in page["CertificateSummaryList"]:
            if summary["DomainName"] != env.domain:
                continue
            arn = summary["CertificateArn"]
            if tags.is_ours(env, acm.list_tags_for_certificate(CertificateArn=arn)["Tags"]):
                ctx.ids["cert"] = arn
                return describe(ctx)
    return {}


def describe(ctx: Ctx) -> dict[str, Any]:
    """The certificate's status; records its validation record in ctx."""
    cert = ctx.aws("acm").describe_certificate(CertificateArn=ctx.ids["cert"])["Certificate"]
    actual = {"arn": cert["CertificateArn"], "status": cert["Status"]}
    for option in cert.get("DomainValidationOptions", []):
        if record := option.get("ResourceRecord"):
            actual["record"] = record
            ctx.record(DnsRecord(record["Name"].rstrip("."), record["Type"],
                                 record["Value"].rstrip("."),
                                 f"validates the certificate for {option['DomainName']}"))
    return actual


def plan(ctx: Ctx) -> list[Change[Op]]:
    return diff(ctx.env, read(ctx))


def apply(ctx: Ctx, op: Op) -> None:
    """Request the certificate (Op.REQUEST, the only change) and upsert its validation record."""
    env, acm = ctx.env, ctx.aws("acm")
    ctx.ids["cert"] = acm.request_certificate(
        DomainName=env.domain, ValidationMethod="DNS",
        IdempotencyToken=idempotency_token(env),
        Tags=tags.as_list(tags.tags(env, "certificate")))["CertificateArn"]
    # ACM adds the validation record a few seconds after the request.
    console.wait_for("certificate validation record", lambda: describe(ctx).get("record"),
                     timeout=180, interval=3)
    if env.route53_zone_id:
        # Now, not with the other records: validation takes minutes and overlaps the rest.
        for record in ctx.records:
            if record.purpose.startswith("validates the certificate"):
                dns.upsert(ctx, record)


def issued(ctx: Ctx) -> bool:
    return describe(ctx)["status"] == "ISSUED"


def wait_issued(ctx: Ctx) -> None:
    """Wait for validation (with a Route 53 zone the records are in place; AWS takes minutes)."""
    if issued(ctx):
        return
    if not ctx.env.route53_zone_id:
        raise OpsError("the certificate is not validated yet")
    console.wait_for(f"certificate for {ctx.env.domain} to be issued", lambda: issued(ctx),
                     timeout=1800, interval=15,
                     status=lambda: describe(ctx)["status"].lower().replace("_", " "))
