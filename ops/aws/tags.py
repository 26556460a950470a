"""How the toolkit finds its own resources again: every one carries these tags."""

from __future__ import annotations

from ops.config import Environment

PROJECT = "openlmis:project"
ENVIRONMENT = "openlmis:environment"
ROLE = "openlmis:role"
TIER = "openlmis:tier"  # database.tier: what destroy's production guard reads (ops.aws.tier)


def tags(env: Environment, role: str, name: str | None = None) -> dict[str, str]:
    """The tags of one resource of `env` playing `role` (host, database, vpc, ...)."""
    return {
        "Name": name or f"{env.prefix}-{role}",
        PROJECT: env.project,
        ENVIRONMENT: env.name,
        ROLE: role,
        TIER: env.database.tier,
    }


def as_list(values: dict[str, str]) -> list[dict[str, str]]:
    """Tags in the [{'Key': ..., 'Value': ...}] form most AWS APIs take."""
    return [{"Key": k, "Value": v} for k, v in values.items()]


def filters(env: Environment, role: str | None = None) -> list[dict[str, object]]:
    """EC2 describe filters matching the environment's resources (of one role)."""
    found: list[dict[str, object]] = [{"Name": f"tag:{PROJECT}", "Values": [env.project]},
             {"Name": f"tag:{ENVIRONMENT}", "Values": [env.name]}]
    if role:
        found.append({"Name": f"tag:{ROLE}", "Values": [role]})
    return found


def db_instance_id(env: Environment) -> str:
    return f"{env.prefix}-db"


def db_parameter_group(env: Environment) -> str:
    return f"{env.prefix}-postgres{env.database.engine_version.split('.')[0]}"


def specifications(env: Environment, role: str, *types: str) -> list[dict[str, object]]:
    """EC2 TagSpecifications tagging the resources of `types` at creation (atomic with it)."""
    return [{"ResourceType": t, "Tags": as_list(tags(env, role))} for t in types]


def is_ours(env: Environment, found: list[dict[str, str]] | dict[str, str]) -> bool:
    """Whether tags read back (list of Key/Value, or a mapping) mark a resource of `env`."""
    values = found if isinstance(found, dict) else {t["Key"]: t["Value"] for t in found}
    return values.get(PROJECT) == env.project and values.get(ENVIRONMENT) == env.name
