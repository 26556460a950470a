"""The backups bucket: versioned, encrypted, public access blocked, TLS only, lifecycle by
retention.

Current objects are pruned by the backup tasks (backups.keep_last / keep_days); the lifecycle
expires what they leave behind: non-current versions after keep_days, unfinished uploads.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError

from ops import provider
from ops.aws import policies, tags
from ops.aws.context import Ctx
from ops.config import Environment
from ops.errors import OpsError
from ops.plan import Action, Change

TLS_ONLY = "DenyInsecureTransport"
BLOCK_ALL = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
             "RestrictPublicBuckets": True}


class Op(Enum):
    """The bucket's changes."""

    CREATE = "create"
    TAG = "tag"
    VERSIONING = "versioning"
    ENCRYPTION = "encryption"
    PUBLIC = "public"
    LIFECYCLE = "lifecycle"
    POLICY = "policy"


def lifecycle(env: Environment) -> list[dict[str, Any]]:
    """The bucket's lifecycle rules (pure)."""
    return [{"ID": "retention", "Status": "Enabled", "Filter": {"Prefix": ""},
             "NoncurrentVersionExpiration": {"NoncurrentDays": env.backups.keep_days},
             "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}]


def statements(env: Environment) -> list[dict[str, Any]]:
    """The statements the toolkit puts in the bucket policy, each under its own Sid: any
    request not made over TLS is denied, on the bucket and on its objects (none where the
    provider reaches AWS without TLS: it could not transfer a thing)."""
    if not provider.of(env).aws_over_tls:
        return []
    arn = f"arn:aws:s3:::{env.bucket}"
    return [{"Sid": TLS_ONLY, "Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": [arn, f"{arn}/*"],
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]


def diff(env: Environment, actual: dict[str, Any]) -> list[Change[Op]]:
    """What the bucket lacks; `actual` is {} when it does not exist."""
    name = env.bucket
    if not actual:
        return [Change(Action.CREATE, f"bucket {name}", "versioned, encrypted, private",
                       payload=Op.CREATE),
                *(Change(Action.UPDATE, f"bucket {name}", what, payload=op)
                  for op, what in _SETTINGS.items())]
    changes = []
    if not actual.get("tagged"):
        changes.append(Change(Action.UPDATE, f"bucket {name}", "tag", payload=Op.TAG))
    if actual.get("versioning") != "Enabled":
        changes.append(Change(Action.UPDATE, f"bucket {name}", _SETTINGS[Op.VERSIONING],
                              payload=Op.VERSIONING))
    if not actual.get("encryption"):
        changes.append(Change(Action.UPDATE, f"bucket {name}", _SETTINGS[Op.ENCRYPTION],
                              payload=Op.ENCRYPTION))
    if actual.get("public_access_block") != BLOCK_ALL:
        changes.append(Change(Action.UPDATE, f"bucket {name}", _SETTINGS[Op.PUBLIC],
                              payload=Op.PUBLIC))
    if _comparable(actual.get("lifecycle")) != _comparable(lifecycle(env)):
        changes.append(Change(Action.UPDATE, f"bucket {name}", _SETTINGS[Op.LIFECYCLE],
                              payload=Op.LIFECYCLE))
    if policies.lacking(actual.get("policy"), statements(env)):
        changes.append(Change(Action.UPDATE, f"bucket {name}", _SETTINGS[Op.POLICY],
                              payload=Op.POLICY))
    return changes


_SETTINGS = {Op.VERSIONING: "enable versioning", Op.ENCRYPTION: "default encryption (SSE-S3)",
             Op.PUBLIC: "block all public access",
             Op.LIFECYCLE: "lifecycle: expire old versions after backups.keep_days",
             Op.POLICY: "policy: deny requests without TLS (other statements kept)"}


def _comparable(rules: list[dict[str, Any]] | None) -> list[tuple[Any, ...]]:
    return sorted((r.get("ID"), r.get("Status"),
                   r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays"),
                   r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation"))
                  for r in rules or [])


def read(ctx: Ctx) -> dict[str, Any]:
    s3, env, name = ctx.aws("s3"), ctx.env, ctx.env.bucket
    try:
        found = s3.get_bucket_tagging(Bucket=name)["TagSet"]
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code in ("NoSuchBucket", "404"):
            return {}
        if code != "NoSuchTagSet":
            raise
        found = []
    if found and not tags.is_ours(env, found):
        raise OpsError(f"bucket {name} exists and is tagged for another environment",
                       hint="set backups.bucket to a bucket of this environment's own")
    ctx.ids["bucket"] = name
    actual: dict[str, Any] = {
        "tagged": bool(found),
        "versioning": s3.get_bucket_versioning(Bucket=name).get("Status"),
        "encryption": _get(s3.get_bucket_encryption, name, "ServerSideEncryptionConfiguration"),
        "public_access_block": _get(s3.get_public_access_block, name,
                                    "PublicAccessBlockConfiguration"),
        "lifecycle": _get(s3.get_bucket_lifecycle_configuration, name, "Rules"),
        "policy": policies.parsed(_get(s3.get_bucket_policy, name, "Policy")),
    }
    return actual


def _get(call: Any, bucket: str, key: str) -> Any:
    try:
        return call(Bucket=bucket)[key]
    except ClientError as exc:
        if exc.response["Error"]["Code"].startswith("NoSuch") or "NotFound" in str(exc):
            return None
        raise


def plan(ctx: Ctx) -> list[Change[Op]]:
    return diff(ctx.env, read(ctx))


def apply(ctx: Ctx, op: Op) -> None:
    s3, env, name = ctx.aws("s3"), ctx.env, ctx.env.bucket
    if op is Op.CREATE:
        where = ({} if env.aws.region == "us-east-1"
                 else {"CreateBucketConfiguration": {"LocationConstraint": env.aws.region}})
        try:
            s3.create_bucket(Bucket=name, **where)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
                raise OpsError(f"cannot create bucket {name}: {exc}",
                               hint="bucket names are global: set backups.bucket") from None
        ctx.ids["bucket"] = name
        _tag(s3, env, name)
    elif op is Op.TAG:
        _tag(s3, env, name)
    elif op is Op.VERSIONING:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    elif op is Op.ENCRYPTION:
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
             "BucketKeyEnabled": True}]})
    elif op is Op.PUBLIC:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=BLOCK_ALL)
    elif op is Op.LIFECYCLE:
        s3.put_bucket_lifecycle_configuration(Bucket=name,
                                              LifecycleConfiguration={"Rules": lifecycle(env)})
    elif op is Op.POLICY:
        # Read again at the moment of writing: statements others set meanwhile are kept too.
        current = policies.parsed(_get(s3.get_bucket_policy, name, "Policy"))
        s3.put_bucket_policy(Bucket=name,
                             Policy=json.dumps(policies.merged(current, statements(env))))


def _tag(s3: Any, env: Environment, name: str) -> None:
    s3.put_bucket_tagging(Bucket=name,
                          Tagging={"TagSet": tags.as_list(tags.tags(env, "backups", name))})
