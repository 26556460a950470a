"""Mail: the SES identity (domain with DKIM, or one from-address) and SMTP credentials for the
stack's MAIL_* settings, kept in Secrets Manager as <prefix>/smtp {"username", "password"}."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from enum import Enum
from typing import Any

from ops import console
from ops.aws import tags
from ops.aws.context import Ctx, DnsRecord
from ops.aws.identity import policy_document
from ops.config import Environment
from ops.plan import Action, Change

SEND = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "ses:SendRawEmail", "Resource": "*"}]}
POLICY = "ses-send"


class Op(Enum):
    """Mail's changes."""

    IDENTITY = "identity"
    DKIM = "dkim"
    USER = "user"
    POLICY = "policy"
    CREDENTIALS = "credentials"


def identity(env: Environment) -> str:
    """What SES verifies: the from-address's domain, or the address itself."""
    domain = env.mail.from_address.split("@", 1)[1].lower()
    return domain if env.mail.verify_domain else env.mail.from_address


def smtp_user(env: Environment) -> str:
    return f"{env.prefix}-smtp"


def secret_name(env: Environment) -> str:
    return f"{env.prefix}/smtp"


def smtp_password(secret_access_key: str, region: str) -> str:
    """The SES SMTP password derived from an IAM secret key (AWS's documented algorithm)."""
    signature = ("AWS4" + secret_access_key).encode()
    for part in ("11111111", region, "ses", "aws4_request", "SendRawEmail"):
        signature = hmac.new(signature, part.encode(), hashlib.sha256).digest()
    return base64.b64encode(bytes([0x04]) + signature).decode()


def records(domain: str, token: str | None, dkim: list[str]) -> list[DnsRecord]:
    """The SES verification TXT and the three DKIM CNAMEs (pure)."""
    found = []
    if token:
        found.append(DnsRecord(f"_amazonses.{domain}", "TXT", token, "verifies the SES domain"))
    found += [DnsRecord(f"{t}._domainkey.{domain}", "CNAME", f"{t}.dkim.amazonses.com",
                        "DKIM signature of the stack's mail") for t in dkim]
    return found


def diff(env: Environment, actual: dict[str, Any]) -> list[Change[Op]]:
    """`actual`: verified (status or None), dkim (tokens), user, policy, credentials (bool)."""
    name = identity(env)
    changes = []
    if actual.get("verification") is None:
        what = "domain identity" if env.mail.verify_domain else "from-address (SES mails a link)"
        changes.append(Change(Action.CREATE, f"ses identity {name}", what,
                              payload=Op.IDENTITY))
    if env.mail.verify_domain and not actual.get("dkim"):
        changes.append(Change(Action.CREATE, f"ses dkim {name}", "three CNAME records",
                              payload=Op.DKIM))
    if env.mail.smtp_password:
        return changes
    user = smtp_user(env)
    if not actual.get("user"):
        changes.append(Change(Action.CREATE, f"iam user {user}", "SES SMTP sender",
                              payload=Op.USER))
    if actual.get("policy") != SEND:
        changes.append(Change(Action.CREATE, f"iam policy {user}/{POLICY}", "ses:SendRawEmail",
                              payload=Op.POLICY))
    if not actual.get("credentials"):
        changes.append(Change(Action.CREATE, f"secret {secret_name(env)}",
                              "SES SMTP credentials (new access key)", payload=Op.CREDENTIALS))
    return changes


def read(ctx: Ctx) -> dict[str, Any]:
    ses, env, name = ctx.aws("ses"), ctx.env, identity(ctx.env)
    actual: dict[str, Any] = {}
    found = ses.get_identity_verification_attributes(
        Identities=[name])["VerificationAttributes"].get(name)
    if found:
        actual["verification"] = found.get("VerificationStatus")
        token = found.get("VerificationToken")
        dkim: list[str] = []
        if env.mail.verify_domain:
            dkim = ses.get_identity_dkim_attributes(
                Identities=[name])["DkimAttributes"].get(name, {}).get("DkimTokens", [])
            actual["dkim"] = dkim
            for record in records(name, token, dkim):
                ctx.record(record)
    if not env.mail.smtp_password:
        actual.update(_read_credentials(ctx))
    return actual


def _read_credentials(ctx: Ctx) -> dict[str, Any]:
    iam, sm, user = ctx.aws("iam"), ctx.aws("secretsmanager"), smtp_user(ctx.env)
    actual: dict[str, Any] = {}
    try:
        iam.get_user(UserName=user)
    except iam.exceptions.NoSuchEntityException:
        return actual
    actual["user"] = ctx.ids["smtp_user"] = user
    with contextlib.suppress(iam.exceptions.NoSuchEntityException):
        actual["policy"] = policy_document(
            iam.get_user_policy(UserName=user, PolicyName=POLICY)["PolicyDocument"])
    keys = {k["AccessKeyId"] for k in
            iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}
    try:
        stored = json.loads(sm.get_secret_value(SecretId=secret_name(ctx.env))["SecretString"])
    except sm.exceptions.ResourceNotFoundException:
        return actual
    actual["credentials"] = stored.get("username") in keys
    ctx.ids["smtp_secret"] = secret_name(ctx.env)
    return actual


def plan(ctx: Ctx) -> list[Change[Op]]:
    return diff(ctx.env, read(ctx))


def apply(ctx: Ctx, op: Op) -> None:
    env, name = ctx.env, identity(ctx.env)
    ses, iam, user = ctx.aws("ses"), ctx.aws("iam"), smtp_user(ctx.env)
    if op is Op.IDENTITY:
        if env.mail.verify_domain:
            ses.verify_domain_identity(Domain=name)
        else:
            ses.verify_email_identity(EmailAddress=name)
    elif op is Op.DKIM:
        ses.verify_domain_dkim(Domain=name)
        read(ctx)
    elif op is Op.USER:
        iam.create_user(UserName=user, Tags=tags.as_list(tags.tags(env, "smtp", user)))
    elif op is Op.POLICY:
        iam.put_user_policy(UserName=user, PolicyName=POLICY, PolicyDocument=json.dumps(SEND))
    elif op is Op.CREDENTIALS:
        _new_credentials(ctx)


def _new_credentials(ctx: Ctx) -> None:
    """A fresh access key stored as SMTP credentials; keys never stored (lost) are removed."""
    iam, sm, env, user = ctx.aws("iam"), ctx.aws("secretsmanager"), ctx.env, smtp_user(ctx.env)
    for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
    key = iam.create_access_key(UserName=user)["AccessKey"]
    password = smtp_password(key["SecretAccessKey"], env.aws.region)
    console.redact(password)
    console.redact(key["SecretAccessKey"])
    value = json.dumps({"username": key["AccessKeyId"], "password": password,
                        "host": f"email-smtp.{env.aws.region}.amazonaws.com"})
    try:
        sm.put_secret_value(SecretId=secret_name(env), SecretString=value)
    except sm.exceptions.ResourceNotFoundException:
        sm.create_secret(Name=secret_name(env), SecretString=value,
                         Description=f"SES SMTP credentials of {env.prefix}",
                         Tags=tags.as_list(tags.tags(env, "smtp-secret", secret_name(env))))
    ctx.ids["smtp_secret"] = secret_name(env)
