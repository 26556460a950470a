"""IAM's verdict on a request from one identity policy: the part the emulator leaves out.

moto's server enforces IAM once INITIAL_NO_AUTH_ACTION_COUNT requests have passed: it checks
the signature and matches each request's action and resource against the caller's policies,
but gives those policies no request context (moto/iam/access_control.py,
IAMRequestBase.check_action_permitted passes none), so every Condition holds. Nor can it judge
CloudWatch: it names the action after the signing name, monitoring:PutMetricData, which no
policy written for AWS grants.

`allowed` follows IAM's evaluation logic for one identity policy in its own account (an
explicit Deny wins; else an Allow whose action, resource and every condition match; else
denied: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html)
for the grammar the host's policy uses and nothing more: any other element or condition
operator raises, so a policy that outgrows it fails its test rather than passing it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse

from ops.aws import policies

ELEMENTS = {"Sid", "Effect", "Action", "Resource", "Condition"}
# Condition operators: (the request's value, one of the policy's) -> match. A key the request
# lacks matches no operator of these (they are not ...IfExists, not negated).
OPERATORS: dict[str, Callable[[str, str], bool]] = {"StringEquals": lambda have, want: have == want}
# What the gate knows of S3 requests: the IAM action of each operation it may see.
S3_ACTIONS = {"PutObject": "s3:PutObject", "CreateMultipartUpload": "s3:PutObject",
              "GetObject": "s3:GetObject", "ListObjectsV2": "s3:ListBucket",
              "DeleteObject": "s3:DeleteObject", "DeleteObjects": "s3:DeleteObject",
              "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
              "PutBucketPolicy": "s3:PutBucketPolicy",
              "PutBucketVersioning": "s3:PutBucketVersioning"}


def allowed(document: Any, action: str, resource: str, context: dict[str, str], *,
            conditions: bool = True) -> bool:
    """Whether `document` lets a request do `action` on `resource`, its condition keys
    (lower case) valued as in `context`; `conditions=False` judges as if every Condition held,
    as the emulator does."""
    applying = [s for s in policies.statements(document) if _applies(s, action, resource)
                and (not conditions or _holds(s.get("Condition", {}), context))]
    if any(s["Effect"] == "Deny" for s in applying):
        return False
    return any(s["Effect"] == "Allow" for s in applying)


def gate(client: Any, document: Any) -> None:
    """Answer as AWS would (403 AccessDenied) each S3 request of `client` that only a Condition
    of `document` denies; every other request goes on to the emulator, which judges its action
    and resource itself."""
    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["api_params"] = dict(params)

    def answer(model: Any, params: dict[str, Any], context: dict[str, Any],
               **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        action, resources = _s3_request(model.name, context["api_params"])
        values = {"s3:if-none-match": params["headers"].get("If-None-Match")}
        keys = {k: v for k, v in values.items() if v is not None}
        if any(allowed(document, action, r, keys, conditions=False)
               and not allowed(document, action, r, keys) for r in resources):
            message = f"{action} on {resources[0]} is denied by a condition of the policy"
            return (AWSResponse("", 403, {}, None),
                    {"Error": {"Code": "AccessDenied", "Message": message},
                     "ResponseMetadata": {"HTTPStatusCode": 403}})
        return None

    client.meta.events.register("before-parameter-build.s3", remember)
    client.meta.events.register("before-call.s3", answer)


def _s3_request(operation: str, params: dict[str, Any]) -> tuple[str, list[str]]:
    """The IAM action of an S3 request and the resources it acts on."""
    if operation not in S3_ACTIONS:
        raise NotImplementedError(f"the gate does not know S3's {operation}")
    bucket = f"arn:aws:s3:::{params['Bucket']}"
    if operation == "DeleteObjects":
        return S3_ACTIONS[operation], [f"{bucket}/{o['Key']}"
                                       for o in params["Delete"]["Objects"]]
    if operation == "DeleteObject" and params.get("VersionId"):
        return "s3:DeleteObjectVersion", [f"{bucket}/{params['Key']}"]
    return S3_ACTIONS[operation], [f"{bucket}/{params['Key']}" if "Key" in params else bucket]


def _applies(statement: dict[str, Any], action: str, resource: str) -> bool:
    if unknown := set(statement) - ELEMENTS:
        raise NotImplementedError(f"policy elements not evaluated here: {sorted(unknown)}")
    found = policies.canonical(statement)
    return (any(_matches(p, action, fold=True) for p in found["Action"])
            and any(_matches(p, resource) for p in found["Resource"]))


def _holds(condition: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    """Every operator's every key holds (a key's values are alternatives)."""
    for operator, keys in condition.items():
        if operator not in OPERATORS:
            raise NotImplementedError(f"condition operator not evaluated here: {operator}")
        for key, wanted in keys.items():
            have = context.get(key.lower())  # condition key names are case-insensitive
            values = wanted if isinstance(wanted, list) else [wanted]
            if have is None or not any(OPERATORS[operator](have, w) for w in values):
                return False
    return True


def _matches(pattern: str, value: str, *, fold: bool = False) -> bool:
    """IAM's wildcards: * any run of characters, ? one; actions ignore case, ARNs do not."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value, re.IGNORECASE if fold else 0) is not None
