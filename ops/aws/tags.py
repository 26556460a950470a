"""How the toolkit finds its own resources again: every one carries these tags."""

from __future__ import annotations

from typing import Any

from ops.config import Environment
from ops.errors import OpsError

PROJECT = "openlmis:project"
ENVIRONMENT = "openlmis:environment"
ROLE = "openlmis:role"
TIER = "openlmis:tier"  # database.tier: what destroy's production guard reads (ops.aws.tier)
NODE = "openlmis:node"  # on host instances of nodes 2..N (host.count); node 1 carries none


def tags(env: Environment, role: str, name: str | None = None, *,
         node: int = 1) -> dict[str, str]:
    """The tags of one resource of `env` playing `role` (host, database, vpc, ...); a node
    above 1 (a host instance of a swarm's node) is named and tagged with its index."""
    found = {
        "Name": name or f"{env.prefix}-{node_role(role, node)}",
        PROJECT: env.project,
        ENVIRONMENT: env.name,
        ROLE: role,
        TIER: env.database.tier,
    }
    return found if node == 1 else {**found, NODE: str(node)}


def node_role(role: str, node: int) -> str:
    """A role per node: node 1's is the role itself (as before there were nodes), node i's
    has -i appended (`host-ip-2`)."""
    return role if node == 1 else f"{role}-{node}"


def node(found: list[dict[str, str]] | dict[str, str]) -> int:
    """The node index tags read back (list of Key/Value, or a mapping) give: NODE, else 1."""
    values = found if isinstance(found, dict) else {t["Key"]: t["Value"] for t in found}
    value = values.get(NODE, "1")
    return int(value) if value.isdigit() and int(value) >= 1 else 1


def as_list(values: dict[str, str]) -> list[dict[str, str]]:
    """Tags in the [{'Key': ..., 'Value': ...}] form most AWS APIs take."""
    return [{"Key": k, "Value": v} for k, v in values.items()]


def by_node(env: Environment, instances: list[dict[str, Any]],
            hint: str) -> dict[int, dict[str, Any]]:
    """Host instances as EC2 describes them, by node index (pure); OpsError (with `hint`) when
    two claim the same node."""
    found: dict[int, list[dict[str, Any]]] = {}
    for instance in instances:
        found.setdefault(node(instance.get("Tags", [])), []).append(instance)
    for i, claims in sorted(found.items()):
        if len(claims) > 1:
            raise OpsError(f"{env.name} has several host instances for node {i}: "
                           + ", ".join(c["InstanceId"] for c in claims), hint=hint)
    return {i: claims[0] for i, claims in found.items()}


def filters(env: Environment, *roles: str) -> list[dict[str, object]]:
    """EC2 describe filters matching the environment's resources (of one of `roles`)."""
    found: list[dict[str, object]] = [{"Name": f"tag:{PROJECT}", "Values": [env.project]},
             {"Name": f"tag:{ENVIRONMENT}", "Values": [env.name]}]
    if roles:
        found.append({"Name": f"tag:{ROLE}", "Values": list(roles)})
    return found


def db_instance_id(env: Environment) -> str:
    return f"{env.prefix}-db"


def db_parameter_group(env: Environment) -> str:
    return f"{env.prefix}-postgres{env.database.engine_version.split('.')[0]}"


def specifications(env: Environment, role: str, *types: str,
                   node: int = 1) -> list[dict[str, object]]:
    """EC2 TagSpecifications tagging the resources of `types` at creation (atomic with it)."""
    return [{"ResourceType": t, "Tags": as_list(tags(env, role, node=node))} for t in types]


def is_ours(env: Environment, found: list[dict[str, str]] | dict[str, str]) -> bool:
    """Whether tags read back (list of Key/Value, or a mapping) mark a resource of `env`."""
    values = found if isinstance(found, dict) else {t["Key"]: t["Value"] for t in found}
    return values.get(PROJECT) == env.project and values.get(ENVIRONMENT) == env.name
