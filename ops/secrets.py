"""Resolve secret references (env:, ssm:, secretsmanager:, or the provider's own) at run time.

Every resolved value is registered with the console's redactor, so it is masked wherever it
would be printed. A missing secret is an OpsError naming the key that refers to it.
"""

from __future__ import annotations

import json
import os

from botocore.exceptions import BotoCoreError, ClientError

from ops import console, provider
from ops.config import Environment
from ops.errors import OpsError


def references(env: Environment) -> dict[str, str]:
    """Every secret the environment refers to, by key path.

    Without mail.smtp_password and mail.smtp_host, the SMTP credentials are the ones provision
    derived for SES and keeps in Secrets Manager.
    """
    refs = {"database.master_password": env.database.master_password}
    if env.database.app_password:
        refs["database.app_password"] = env.database.app_password
    if env.mail.smtp_password:
        refs["mail.smtp_password"] = env.mail.smtp_password
    elif env.mail.smtp_host is None:
        from ops.aws.mail import secret_name

        refs["mail.smtp_username"] = f"secretsmanager:{secret_name(env)}#username"
        refs["mail.smtp_password"] = f"secretsmanager:{secret_name(env)}#password"
    refs.update({f"stack.secrets.{k}": v for k, v in env.stack.secrets.items()})
    for key in ("admin_password", "trusted_client_secret"):
        if ref := getattr(env.stack, key):
            refs[f"stack.{key}"] = ref
    return refs


def resolve(env: Environment, key: str, ref: str) -> str:
    """The value behind one reference; OpsError when it cannot be found."""
    source, _, name = ref.partition(":")
    try:
        value = _fetch(env, source, name)
    except (ClientError, BotoCoreError) as exc:
        raise OpsError(
            f"secret {key} ({ref}) could not be read: {exc}",
            hint="check the name and that your AWS credentials may read it",
        ) from None
    if not value:
        raise OpsError(f"secret {key} ({ref}) is not set", hint=_how_to_set(source, name))
    console.redact(value)
    return value


def resolve_all(env: Environment) -> dict[str, str]:
    """Resolve every reference up front, before anything changes."""
    return {key: resolve(env, key, ref) for key, ref in references(env).items()}


def _fetch(env: Environment, source: str, name: str) -> str | None:
    if source == "env":
        return os.environ.get(name)
    if source not in ("ssm", "secretsmanager"):
        return provider.of(env).secret(env, source, name)
    from ops.aws.session import client

    if source == "ssm":
        try:
            response = client(env, "ssm").get_parameter(Name=name, WithDecryption=True)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ParameterNotFound":
                return None
            raise
        return response["Parameter"]["Value"]
    secret_id, _, field = name.partition("#")
    try:
        text = client(env, "secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            return None
        raise
    return json.loads(text).get(field) if field else text


def _how_to_set(source: str, name: str) -> str:
    return {
        "env": f"export {name}=... in the shell that runs the task",
        "ssm": f"aws ssm put-parameter --type SecureString --name {name} --value ...",
        "secretsmanager": f"aws secretsmanager create-secret --name {name.partition('#')[0]} ...",
    }.get(source, "check the reference's name")
