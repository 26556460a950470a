"""The host's instance profile: a role only EC2 may assume, allowed exactly what the host's own
scheduled jobs need and nothing else; policies found on it beyond the toolkit's one are removed.

The host adds backups and never removes or replaces one, so a compromised host cannot destroy
the history the versioned bucket keeps:
- deleting needs s3:DeleteObject (a delete marker over the current version; DeleteObjects too)
  or s3:DeleteObjectVersion (a version for good): neither is granted;
- replacing needs a PutObject on an existing key, which adds a current version and leaves the
  old one to the lifecycle's expiry of non-current versions; the host may PutObject only with
  `If-None-Match: *`, which S3 refuses (412) when the key exists: no key it writes had a
  version before;
- the bucket's versioning, lifecycle and policy (s3:PutBucketVersioning,
  s3:PutLifecycleConfiguration, s3:PutBucketPolicy) are not granted: the expiry cannot be
  shortened nor versioning suspended.
What it can still do is add objects under new keys (dumps/, runs/), read dumps and list the
bucket. Retention is the operator's: `inv backup-db` prunes dumps whatever their reason, with the
operator's credentials (ops.db.retention), and the bucket's lifecycle expires old versions
(ops.aws.storage).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ops.aws import policies, tags
from ops.aws.alarms import NAMESPACE
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
    """What the host may do (pure): write new objects under dumps/ and runs/ (never replace
    one), read dumps, list the bucket, publish metrics in the OpenLMIS namespace.

    `s3:if-none-match` is the request's If-None-Match header, a condition key of PutObject and
    CompleteMultipartUpload since S3's conditional writes (2024): "Enforce conditional writes
    on Amazon S3 buckets",
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes-enforce.html.
    AWS's examples there are bucket policies; the key belongs to the request, whose one context
    IAM evaluates against the caller's identity policies too. StringEquals "*" is stricter than
    the examples' Null false, and "*" is the only value S3 takes. CreateMultipartUpload and
    UploadPart cannot carry the header (the page exempts them with s3:ObjectCreationOperation,
    which this policy does not): the host writes each object in one PUT, up to 5 GiB.
    `cloudwatch:namespace` is PutMetricData's Namespace parameter.
    """
    arn = f"arn:aws:s3:::{env.bucket}"
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "WriteOnce", "Effect": "Allow", "Action": "s3:PutObject",
         "Resource": [f"{arn}/dumps/*", f"{arn}/runs/*"],
         "Condition": {"StringEquals": {"s3:if-none-match": "*"}}},
        {"Sid": "ReadDumps", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": f"{arn}/dumps/*"},
        {"Sid": "List", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": arn},
        {"Sid": "Metrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData",
         "Resource": "*", "Condition": {"StringEquals": {"cloudwatch:namespace": NAMESPACE}}}]}


def actions(document: Any) -> set[str]:
    """Every action a document's Allow statements name (pure)."""
    return {a for s in policies.statements(document) if s.get("Effect") == "Allow"
            for a in policies.canonical(s).get("Action", [])}


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
        what = f"write-once backups in s3://{env.bucket}, {NAMESPACE} metrics"
        if actual.get("policy"):
            lost = sorted(actions(actual["policy"]) - actions(policy(env)))
            live = "the host's next request obeys it" + (
                f"; it loses {', '.join(lost)} at once" if lost else "")
            changes.append(Change(Action.UPDATE, f"iam policy {role}/{POLICY}",
                                  f"{what} (live: {live})", payload=Op.POLICY))
        else:
            changes.append(Change(Action.CREATE, f"iam policy {role}/{POLICY}", what,
                                  payload=Op.POLICY))
    for other in sorted(set(actual.get("inline", [])) - {POLICY}):
        changes.append(Change(Action.DELETE, f"iam policy {role}/{other}",
                              f"not the toolkit's: the host needs only {POLICY} (live: the "
                              "host loses it at once)", payload=DeleteInline(other)))
    for arn in sorted(actual.get("managed", [])):
        changes.append(Change(Action.DELETE, f"iam attachment {role} {arn}",
                              f"the host needs only {POLICY} (live: the host loses it at "
                              "once)", payload=Detach(arn)))
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
