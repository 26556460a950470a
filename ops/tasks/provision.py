"""provision, resize, destroy, status: the AWS topology of an environment."""

from typing import Any

from ops import console
from ops.config import Environment
from ops.errors import OpsError
from ops.tasks.common import (
    ENV_HELP,
    JSON_HELP,
    PLAN_HELP,
    YES_HELP,
    approving,
    load,
    operation,
    read_only,
    task,
)


@task(help={"env": ENV_HELP, "plan": PLAN_HELP, "yes": YES_HELP, "json": JSON_HELP})
@operation
def provision(c, env=None, plan=False, yes=False, json_=False):
    """Create or converge the environment's AWS resources (network, host, RDS, TLS, mail, S3)."""
    from ops.aws import topology

    with approving(plan=plan, yes=yes, json_=json_) as approval:
        topology.provision(load(env), approval=approval)


@task(help={"env": ENV_HELP, "plan": PLAN_HELP, "yes": YES_HELP, "json": JSON_HELP})
@operation
def resize(c, env=None, plan=False, yes=False, json_=False):
    """Bring the database's class and the host's type to the config's, after a backup, then
    wait for the stack: an outage, for a maintenance window."""
    from ops.aws import resize as aws_resize

    with approving(plan=plan, yes=yes, json_=json_) as approval:
        aws_resize.resize(load(env), approval)


@task(help={"env": ENV_HELP, "yes": "do not ask to type the environment's name",
            "force": "allow destroying a production-tier environment"})
@operation
def destroy(c, env=None, yes=False, force=False):
    """Remove the environment's AWS resources, after a final database snapshot."""
    from ops.aws import teardown

    environment = load(env)
    if environment.is_production and not force:
        raise OpsError(f"{environment.name} is a production-tier environment: destroy refuses it",
                       hint="add --force if you really mean to remove it")
    if not yes:
        typed = console.ask(f"This removes every AWS resource of {environment.name}. "
                            "Type the environment's name to go on: ")
        if typed.strip() != environment.name:
            raise OpsError("not confirmed: nothing was changed")
    for name in teardown.destroy(environment, force=force):
        console.ok(f"final database snapshot: {name}")
    console.ok(f"{environment.name} destroyed")


@task(help={"env": ENV_HELP, "json": "print machine-readable JSON only"})
@read_only
def status(c, env=None, json_=False):
    """Show every resource of the environment with its id, state and endpoints, and the
    stack's containers with their health."""
    from ops.aws import inventory

    if json_:
        console.json_mode()
    environment = load(env)
    found = inventory.collect(environment)
    found["stack"] = _stack(environment)
    if json_:
        console.emit_json(found)
        return
    console.table(f"{found['environment']}: AWS resources", ["resource", "id", "state",
                                                             "endpoint"],
                  [(r["kind"], r["id"], r["state"], r["endpoint"]) for r in found["resources"]])
    console.plan_lines("changes provision would make:", found["pending_changes"] or ["none"])
    records = found["dns_records_to_create"]
    if records:
        console.plan_lines("DNS records still to create:",
                           [f"{r['name']} {r['type']} {r['value']}" for r in records])
    for text in found["warnings"]:
        console.warn(text)
    stack = found["stack"]
    if stack["error"]:
        console.warn(f"stack: {stack['error']}")
    else:
        console.table(f"stack: release {stack['release'] or 'none'}",
                      ["service", "state", "status"],
                      [(c["service"], c["state"], c["status"]) for c in stack["containers"]])


def _stack(environment: Environment) -> dict[str, Any]:
    """The live release's containers, or why they cannot be seen (no host yet, unreachable)."""
    from ops.stack.deploy import stack_status

    try:
        containers = stack_status(environment)
    except OpsError as exc:
        return {"release": None, "containers": [], "error": exc.message}
    release = containers[0]["release"] if containers else None
    return {"release": release, "containers": containers, "error": None}


TASKS = [provision, resize, destroy, status]
