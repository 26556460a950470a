"""The tier tag on the environment's live resources: what destroy's production guard reads.

Every resource is created with `openlmis:tier` (ops.aws.tags). Resources made before the tag
existed, or whose environment has changed tier since, converge here: this area lists what the
Resource Groups Tagging API holds for the environment and re-tags each live resource (one whose
id the other areas found: not a snapshot, not a terminated instance) whose tag differs. It
runs after the other areas, which record the ids.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ops.aws import tags
from ops.aws.context import Ctx
from ops.config import Environment
from ops.errors import OpsError
from ops.plan import Action, Change

PRODUCTION = "production"


@dataclass(frozen=True)
class Retag:
    """Set the tier tag on one resource."""

    arn: str


def resource(arn: str) -> str:
    """An ARN's resource part, as operators read it: `vpc/vpc-0a1…`, `db:openlmis-x-db`."""
    return arn.split(":", 5)[-1]


def live(arn: str, ids: dict[str, Any]) -> bool:
    """Whether an ARN is one of the resources the areas found (by ARN, name or id)."""
    known = {v for v in ids.values() if isinstance(v, str)}
    part = resource(arn)
    return arn in known or part in known or part.replace(":", "/").rsplit("/", 1)[-1] in known


def values(mapping: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in mapping.get("Tags", [])}


def diff(env: Environment, mappings: Iterable[dict[str, Any]],
         ids: dict[str, Any]) -> list[Change[Retag]]:
    """A change for each live resource whose tier tag is not the environment's (pure)."""
    want = env.database.tier
    return [Change(Action.UPDATE, resource(m["ResourceARN"]),
                   f"tag {tags.TIER}={want} (was {values(m).get(tags.TIER, 'untagged')})",
                   payload=Retag(m["ResourceARN"]))
            for m in mappings
            if live(m["ResourceARN"], ids) and values(m).get(tags.TIER) != want]


def production(mappings: Iterable[dict[str, Any]], ids: dict[str, Any]) -> list[str]:
    """The live resources whose tag says production-tier (pure)."""
    return [resource(m["ResourceARN"]) for m in mappings
            if live(m["ResourceARN"], ids) and values(m).get(tags.TIER) == PRODUCTION]


def read(ctx: Ctx) -> list[dict[str, Any]]:
    """What the tagging API holds for the environment, with its tags."""
    env = ctx.env
    pages = ctx.aws("resourcegroupstaggingapi").get_paginator("get_resources").paginate(
        TagFilters=[{"Key": tags.PROJECT, "Values": [env.project]},
                    {"Key": tags.ENVIRONMENT, "Values": [env.name]}])
    return [m for page in pages for m in page["ResourceTagMappingList"]]


def plan(ctx: Ctx) -> list[Change[Retag]]:
    return diff(ctx.env, read(ctx), ctx.ids)


def apply(ctx: Ctx, payload: Retag) -> None:
    """Tag through the tagging API; load balancers, alarms and topics through their own API,
    which every AWS-compatible endpoint implements. An alarm deleted meanwhile (the alarms
    area removes those no longer wanted) needs no tag."""
    tier: dict[str, str] = {tags.TIER: ctx.env.database.tier}
    if ":elasticloadbalancing:" in payload.arn:
        ctx.aws("elbv2").add_tags(ResourceArns=[payload.arn], Tags=tags.as_list(tier))
        return
    if ":cloudwatch:" in payload.arn:
        cloudwatch = ctx.aws("cloudwatch")
        with contextlib.suppress(cloudwatch.exceptions.ResourceNotFoundException):
            cloudwatch.tag_resource(ResourceARN=payload.arn, Tags=tags.as_list(tier))
        return
    if ":sns:" in payload.arn:
        ctx.aws("sns").tag_resource(ResourceArn=payload.arn, Tags=tags.as_list(tier))
        return
    failed = ctx.aws("resourcegroupstaggingapi").tag_resources(
        ResourceARNList=[payload.arn], Tags=tier)["FailedResourcesMap"]
    if failed:
        error = failed[payload.arn]
        raise OpsError(f"could not tag {payload.arn} with {tags.TIER}: "
                       f"{error.get('ErrorCode')} {error.get('ErrorMessage')}",
                       hint="tag it by hand in the console, then run provision again")
