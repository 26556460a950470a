"""settings.env: rendered from the stack's template, the environment's resources and secrets.

Pure. Values are written single-quoted, so Compose never interpolates a `$` in a password.
"""

from __future__ import annotations

from ops.config import Environment
from ops.errors import OpsError
from ops.stack import credentials, override
from ops.stack.compose import parse_env
from ops.targets import DatabaseTarget

TLS_MODE = "spring.datasource.hikari.dataSourceProperties.sslmode"
TLS_ROOT_CERT = "spring.datasource.hikari.dataSourceProperties.sslrootcert"


def check_profiles(env: Environment) -> None:
    """Refuse a profile without `production` (every start wipes the schemas) unless a demo."""
    profiles = [p.strip() for p in env.stack.spring_profiles_active.split(",")]
    if "production" not in profiles and not env.stack.demo_may_be_wiped:
        raise OpsError(
            f"stack.spring_profiles_active is {env.stack.spring_profiles_active!r}: without "
            "'production' every OpenLMIS service WIPES its database schema on each start",
            hint="add production to stack.spring_profiles_active, or, for a demo whose data "
            "may be lost, set stack.demo_may_be_wiped: true",
        )


def check_database(env: Environment) -> None:
    """Refuse to deploy without the stack's own database password: never the master's."""
    if not env.database.app_password:
        raise OpsError(
            "database.app_password is not set: the stack connects to the database as its own "
            f"role ({env.database.app_username}), never as the master user",
            hint="add a secret reference, e.g. app_password: "
            f"ssm:/openlmis/{env.name}/db-app-password (deploy creates the role with it)")


def dotenv(release_env: str, env: Environment, compose_file: str) -> str:
    """The release's `.env`: its pinned versions, the profile for `${spring_profiles_active}`,
    and the compose files in COMPOSE_FILE (the toolkit's own among them).

    Upstream compose files interpolate that variable into some services' environment, which
    overrides settings.env: left unset, those services would start WITHOUT `production`.
    """
    return (f"{release_env.rstrip()}\n# set by inv deploy (compose interpolates it)\n"
            f"spring_profiles_active={env.stack.spring_profiles_active}\n"
            f"COMPOSE_FILE={compose_file}\n")


def values(env: Environment, template: str, db: DatabaseTarget,
           secrets: dict[str, str]) -> dict[str, str]:
    """Every setting: template defaults < resources and config < stack.settings < secrets.

    `secrets` holds resolved values by key path (database.app_password, mail.smtp_username,
    mail.smtp_password, stack.secrets.NAME, stack.trusted_client_secret): the stack connects
    as its own role, never as the master.
    """
    scheme = "https" if env.stack.https else "http"
    result = parse_env(template)
    result.update({
        "BASE_URL": f"{scheme}://{env.domain}",
        "PUBLIC_URL": f"{scheme}://{env.domain}",
        "VIRTUAL_HOST": env.domain,
        "REQUIRE_SSL": "true" if env.stack.https else "false",
        "spring_profiles_active": env.stack.spring_profiles_active,
        "NGINX_TIMEOUT": f"{env.stack.nginx_timeout_s}s",
        "DATABASE_URL": f"jdbc:postgresql://{db.address}:{db.port}/{db.name}",
        # OpenLMIS appends its own `?stringtype=…` to DATABASE_URL, so the driver's TLS
        # settings go to the pool's data source properties (Spring Boot, HikariCP): the
        # server is verified against the CA bundle the toolkit's override mounts.
        TLS_MODE: "verify-full",
        TLS_ROOT_CERT: override.CA_PATH,
        "POSTGRES_USER": env.database.app_username,
        "POSTGRES_PASSWORD": secrets["database.app_password"],
        "MAIL_ADDRESS": env.mail.from_address,
        "MAIL_HOST": env.mail.smtp_host or f"email-smtp.{env.aws.region}.amazonaws.com",
        "MAIL_PORT": str(env.mail.smtp_port),
    })
    username = secrets.get("mail.smtp_username", env.mail.smtp_username)
    if username:
        result["MAIL_USERNAME"] = username
    if "mail.smtp_password" in secrets:
        result["MAIL_PASSWORD"] = secrets["mail.smtp_password"]
    result.update(env.stack.settings)
    result.update({k.removeprefix("stack.secrets."): v for k, v in secrets.items()
                   if k.startswith("stack.secrets.")})
    if "stack.trusted_client_secret" in secrets:  # the services' auth.server.clientSecret
        result[credentials.SETTING] = secrets["stack.trusted_client_secret"]
    return result


def render(settings: dict[str, str]) -> bytes:
    lines = ["# Rendered by `inv deploy`: do not edit on the host (mode 0600, root only)."]
    for key, value in settings.items():
        if "\n" in value or "'" in value:
            raise OpsError(f"setting {key} contains a newline or a single quote, which "
                           "settings.env cannot carry")
        lines.append(f"{key}='{value}'")
    return ("\n".join(lines) + "\n").encode()
