"""The host's instance profile: a role only EC2 may assume, allowed exactly the backups bucket
and nothing else: policies found on it beyond the toolkit's one are removed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ops.aws import policies, tags
from ops.aws.context import Ctx
from ops.config import Environment
from ops.plan import Action, Change

POLICY = "backups-bucket"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
     "Action": "sts:AssumeRole"}]}


class Op(Enum):
    """The instance profile's changes."""

    ROLE = "role"
    POLICY = "policy"
    PROFILE = "profile"
    ATTACH = "attach"
    TRUST = "trust"


@dataclass(frozen=True)
class DeleteInline:
    """Remove an inline policy the toolkit did not put on the role."""

    policy: str


@dataclass(frozen=True)
class Detach:
    """Detach a managed policy from the role."""

    arn: str


Payload = Op | DeleteInline | Detach


def name(env: Environment) -> str:
    return f"{env.prefix}-host"


def policy(env: Environment) -> dict[str, Any]:
    """What the host may do: list, read, write and delete objects of the backups bucket (pure)."""
    arn = f"arn:aws:s3:::{env.bucket}"
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
         "Resource": arn},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
         "Resource": f"{arn}/*"}]}


def diff(env: Environment, actual: dict[str, Any]) -> list[Change[Payload]]:
    """`actual`: role (bool), trust (document), policy (document or None), inline (names of
    every inline policy), managed (ARNs of attached policies), profile (bool), attached (bool).
    Keys a reader could not fill are left out and not compared."""
    role = name(env)
    changes: list[Change[Payload]] = []
    if not actual.get("role"):
        changes.append(Change(Action.CREATE, f"iam role {role}", "assumed by EC2",
                              payload=Op.ROLE))
    elif "trust" in actual and not policies.same(actual["trust"], TRUST):
        changes.append(Change(Action.UPDATE, f"iam role {role}",
                              "trust policy: only EC2 may assume it (live: anyone else "
                              "loses the role at once)", payload=Op.TRUST))
    if not policies.same(actual.get("policy"), policy(env)):
        changes.append(Change(Action.UPDATE if actual.get("policy") else Action.CREATE,
                              f"iam policy {role}/{POLICY}", f"only s3://{env.bucket}",
                              payload=Op.POLICY))
    for other in sorted(set(actual.get("inline", [])) - {POLICY}):
        changes.append(Change(Action.DELETE, f"iam policy {role}/{other}",
                              "not the toolkit's: the host needs only the backups bucket "
                              "(live: the host loses it at once)", payload=DeleteInline(other)))
    for arn in sorted(actual.get("managed", [])):
        changes.append(Change(Action.DELETE, f"iam attachment {role} {arn}",
                              "the host needs only the backups bucket (live: the host loses it "
                              "at once)", payload=Detach(arn)))
    if not actual.get("profile"):
        changes.append(Change(Action.CREATE, f"instance profile {role}", payload=Op.PROFILE))
    if not actual.get("attached"):
        changes.append(Change(Action.UPDATE, f"instance profile {role}", f"add role {role}",
                              payload=Op.ATTACH))
    return changes


def read(ctx: Ctx) -> dict[str, Any]:
    iam, role = ctx.aws("iam"), name(ctx.env)
    actual: dict[str, Any] = {}
    try:
        found = iam.get_role(RoleName=role)["Role"]
        actual["role"] = ctx.ids["role"] = role
        actual["trust"] = policies.parsed(found["AssumeRolePolicyDocument"])
        actual["inline"] = [n for page in iam.get_paginator("list_role_policies").paginate(
            RoleName=role) for n in page["PolicyNames"]]
        actual["managed"] = [p["PolicyArn"] for page in iam.get_paginator(
            "list_attached_role_policies").paginate(RoleName=role)
            for p in page["AttachedPolicies"]]
        if POLICY in actual["inline"]:
            actual["policy"] = policies.parsed(
                iam.get_role_policy(RoleName=role, PolicyName=POLICY)["PolicyDocument"])
    except iam.exceptions.NoSuchEntityException:
        pass
    try:
        profile = iam.get_instance_profile(InstanceProfileName=role)["InstanceProfile"]
        actual["profile"] = True
        actual["attached"] = any(r["RoleName"] == role for r in profile["Roles"])
        ctx.ids["profile"] = role
    except iam.exceptions.NoSuchEntityException:
        pass
    return actual


def policy_document(doc: Any) -> Any:
    """An IAM policy document as read back: a JSON string, or already parsed."""
    return policies.parsed(doc)


def plan(ctx: Ctx) -> list[Change[Payload]]:
    return diff(ctx.env, read(ctx))


def apply(ctx: Ctx, op: Payload) -> None:
    iam, env, role = ctx.aws("iam"), ctx.env, name(ctx.env)
    if isinstance(op, DeleteInline):
        iam.delete_role_policy(RoleName=role, PolicyName=op.policy)
    elif isinstance(op, Detach):
        iam.detach_role_policy(RoleName=role, PolicyArn=op.arn)
    elif op is Op.TRUST:
        iam.update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps(TRUST))
    elif op is Op.ROLE:
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST),
                        Description=f"OpenLMIS host of {env.name}",
                        Tags=tags.as_list(tags.tags(env, "host-role", role)))
    elif op is Op.POLICY:
        iam.put_role_policy(RoleName=role, PolicyName=POLICY,
                            PolicyDocument=json.dumps(policy(env)))
    elif op is Op.PROFILE:
        iam.create_instance_profile(InstanceProfileName=role,
                                    Tags=tags.as_list(tags.tags(env, "host-profile", role)))
        ctx.ids["profile"] = role
    elif op is Op.ATTACH:
        iam.add_role_to_instance_profile(InstanceProfileName=role, RoleName=role)
