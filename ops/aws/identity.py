"""The host's instance profile: a role allowed exactly the backups bucket, nothing else."""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from ops.aws import tags
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


def diff(env: Environment, actual: dict[str, Any]) -> list[Change[Op]]:
    """`actual`: role (bool), policy (document or None), profile (bool), attached (bool)."""
    role = name(env)
    changes = []
    if not actual.get("role"):
        changes.append(Change(Action.CREATE, f"iam role {role}", "assumed by EC2",
                              payload=Op.ROLE))
    if actual.get("policy") != policy(env):
        changes.append(Change(Action.UPDATE if actual.get("policy") else Action.CREATE,
                              f"iam policy {role}/{POLICY}", f"only s3://{env.bucket}",
                              payload=Op.POLICY))
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
        iam.get_role(RoleName=role)
        actual["role"] = ctx.ids["role"] = role
        actual["policy"] = policy_document(
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
    return json.loads(doc) if isinstance(doc, str) else doc


def plan(ctx: Ctx) -> list[Change[Op]]:
    return diff(ctx.env, read(ctx))


def apply(ctx: Ctx, op: Op) -> None:
    iam, env, role = ctx.aws("iam"), ctx.env, name(ctx.env)
    if op is Op.ROLE:
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
