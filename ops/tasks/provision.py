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
    seconds,
    task,
)

LOCK_HELP = ("seconds to wait for another run's AWS lock (provision, resize, destroy; default: "
             "fail at once)")
BREAK_HELP = ("break the environment's AWS lock when its holder no longer runs (stale on this "
              "machine, or on another machine you have checked)")


@task(help={"env": ENV_HELP, "plan": PLAN_HELP, "yes": YES_HELP, "json": JSON_HELP,
            "lock_wait": LOCK_HELP, "break_lock": BREAK_HELP})
@operation
def provision(c, env=None, plan=False, yes=False, json_=False, lock_wait="0", break_lock=False):
    """Create or converge the environment's AWS resources (network, host, RDS, TLS, mail, S3),
    after doctor's checks of the credentials, account, quotas and SES."""
    from ops.aws import topology
    from ops.doctor import diagnose

    wait = seconds(lock_wait, "lock-wait")
    with approving(plan=plan, yes=yes, json_=json_) as approval:
        environment = load(env)
        where = diagnose.preflight(environment, diagnose.PROVISION, approval)
        topology.provision(environment, approval=approval, lock_wait=wait,
                           break_lock=break_lock, account=where.account)


@task(help={"env": ENV_HELP, "plan": PLAN_HELP, "yes": YES_HELP, "json": JSON_HELP,
            "lock_wait": LOCK_HELP, "break_lock": BREAK_HELP})
@operation
def resize(c, env=None, plan=False, yes=False, json_=False, lock_wait="0", break_lock=False):
    """Bring the database's class and the host's type to the config's, after a backup, then
    wait for the stack: an outage, for a maintenance window."""
    from ops.aws import resize as aws_resize

    with approving(plan=plan, yes=yes, json_=json_) as approval:
        aws_resize.resize(load(env), approval, lock_wait=seconds(lock_wait, "lock-wait"),
                          break_lock=break_lock)


@task(help={"env": ENV_HELP, "plan": PLAN_HELP, "yes": YES_HELP, "json": JSON_HELP,
            "force": "allow destroying a production-tier environment (by its file or its tags)",
            "remove_protection": "switch deletion protection off where it is on (database, "
                                 "load balancer), then remove",
            "lock_wait": LOCK_HELP, "break_lock": BREAK_HELP})
@operation
def destroy(c, env=None, plan=False, yes=False, json_=False, force=False,
            remove_protection=False, lock_wait="0", break_lock=False):
    """List what would go and what stays, then remove the environment's AWS resources, after a
    final database snapshot."""
    from ops.aws import teardown

    with approving(plan=plan, yes=yes, json_=json_) as approval:
        for name in teardown.destroy(load(env), force=force, remove_protection=remove_protection,
                                     approval=approval, lock_wait=seconds(lock_wait, "lock-wait"),
                                     break_lock=break_lock):
            console.ok(f"final database snapshot: {name}")


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
    found["scheduled_backups"] = _scheduled(environment, found["resources"])
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
        if stack.get("nodes"):
            console.table("swarm nodes", ["node", "hostname", "zone", "status", "availability",
                                          "role"],
                          [(n["node"], n["hostname"], n["zone"], n["status"], n["availability"],
                            n["role"]) for n in stack["nodes"]])
        where = ["node"] if environment.host.swarm else []
        console.table(f"stack: release {stack['release'] or 'none'}",
                      ["service", *where, "state", "status"],
                      [(c["service"], *(c[k] for k in where), c["state"], c["status"])
                       for c in stack["containers"]])
    _show_scheduled(found["scheduled_backups"])


def _stack(environment: Environment) -> dict[str, Any]:
    """The live release's containers (a swarm's tasks, and its nodes), or why they cannot be
    seen (no host yet, unreachable)."""
    from ops.stack.deploy import stack_status

    try:
        containers, nodes = stack_status(environment)
    except OpsError as exc:
        return {"release": None, "containers": [], "nodes": [], "error": exc.message}
    release = containers[0]["release"] if containers else None
    return {"release": release, "containers": containers, "nodes": nodes, "error": None}


def _scheduled(environment: Environment, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """The host's scheduled backups: last runs and the backup-age condition, beside the state
    of the CloudWatch alarms that watch the same (None where there is none), or why they
    cannot be read."""
    from ops.db import runs
    from ops.db.manifest import now

    states = {r["id"]: r["state"] for r in resources}
    alarms = {what: states.get(f"{environment.prefix}-{what}")
              for what in ("backup-age", "drill-failed")}
    try:
        return {**runs.scheduled(environment, now()),
                "alarms": alarms, "error": None}
    except OpsError as exc:
        return {"alarms": alarms, "error": exc.message}


def _show_scheduled(found: dict[str, Any]) -> None:
    if found["error"]:
        console.warn(f"scheduled backups: {found['error']}")
        return
    alarms = found["alarms"]
    rows = []
    for kind, run in found["last_runs"].items():
        when = found["schedule"][kind] or "not scheduled"
        outcome = "no run yet" if run is None else (
            f"ok {run['finished']} ({run['backup_id']})" if run["ok"]
            else f"FAILED {run['finished']}: {run['error']}")
        rows.append((f"last {kind}", when, outcome,
                     alarms["drill-failed"] or "none" if kind == "drill" else ""))
    age = found["backup_age"]
    rows.append(("backup age", f"within {age['max_age_hours']} h",
                 ("FIRING: " if age["firing"] else "ok: ") + (
                     f"newest dump {age['newest']} is {age['age_hours']:.1f} h old"
                     if age["newest"] else "no dump at all"), alarms["backup-age"] or "none"))
    console.table("scheduled backups (outcome: the toolkit's own reading)",
                  ["what", "schedule", "outcome", "CloudWatch alarm"], rows)


TASKS = [provision, resize, destroy, status]
