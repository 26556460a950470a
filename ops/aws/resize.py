"""resize: the database's class and the host's instance type, brought to the config's.

Provision creates both at the configured size but never changes them on a running system:
each change is an outage, for a maintenance window. resize backs the database up first, then:
- the database's class changes with ApplyImmediately: RDS restarts it (minutes of downtime);
- the host is stopped, retyped and started: an EC2 type changes only while the instance is
  stopped; its disk and elastic IP stay. Several nodes (host.count) change one at a time, each
  running again before the next one stops.
Then it waits for the stack's health gate: the stack's restart policies bring it back with no
deploy. A run interrupted anywhere converges when run again: it starts from what AWS reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ops import console, targets
from ops.approval import Approval, granted, scope
from ops.aws import database, lock, tags
from ops.aws.session import client
from ops.config import Environment
from ops.db import backup
from ops.errors import OpsError
from ops.plan import Action, Change, Plan

DB_TIMEOUT_S = 3600
HOST_TIMEOUT_S = 900


@dataclass(frozen=True)
class Backup:
    method: str


@dataclass(frozen=True)
class Database:
    instance_id: str
    wanted: str


@dataclass(frozen=True)
class Host:
    instance_id: str
    wanted: str
    state: str


Payload = Backup | Database | Host


def plan(env: Environment, db: dict[str, Any] | None, hosts: list[dict[str, Any]],
         backup_method: str) -> Plan[Payload]:
    """What resize would change, from what AWS reports (pure); `hosts`: the nodes' instances
    as described, in node order."""
    changes: Plan[Payload] = Plan()
    wanted_class = database.instance_class(env)
    if db and db["DBInstanceClass"] != wanted_class:
        changes.add(Change(Action.RUN, "backup", f"a {backup_method} before the class change",
                           payload=Backup(backup_method)))
        changes.add(Change(
            Action.UPDATE, f"database {db['DBInstanceIdentifier']}",
            f"class {db['DBInstanceClass']} → {wanted_class} (RDS restarts it: minutes of "
            "downtime)", payload=Database(db["DBInstanceIdentifier"], wanted_class)))
    wanted_type = env.host.instance_type
    down = ("OpenLMIS is down meanwhile" if len(hosts) < 2
            else "one node at a time: the others serve meanwhile")
    for host in hosts:
        if host["InstanceType"] != wanted_type:
            node = tags.node(host.get("Tags", []))
            changes.add(Change(
                Action.UPDATE, f"host {host['InstanceId']}" + (f" (node {node})"
                                                              if len(hosts) > 1 else ""),
                f"type {host['InstanceType']} → {wanted_type} (stopped, retyped, started: "
                f"{down}; disk and elastic IP stay)",
                payload=Host(host["InstanceId"], wanted_type, host["State"]["Name"])))
    return changes


def resize(env: Environment, approval: Approval | None = None, *, lock_wait: float = 0,
           break_lock: bool = False) -> Plan[Payload]:
    """The resize task: show the plan; once approved, apply it under the AWS lock (as
    provision and destroy) and wait for the stack."""
    approval = approval or granted()
    method = backup.before_change_method(env)
    changes = plan(env, _database(env), _hosts(env), method)
    if not approval.review(scope(env), f"{env.name}: resize", changes.changed()):
        return changes
    with lock.held(env, "resize", wait=lock_wait, break_lock=break_lock):
        for change in changes:
            console.step(change.line())
            _apply(env, change.payload)
    if changes and targets.has_host(env):
        _stack_serves(env)
    approval.outcome(resized=[c.target for c in changes if not isinstance(c.payload, Backup)])
    return changes


def _apply(env: Environment, payload: Payload) -> None:
    if isinstance(payload, Backup):
        taken = backup.take(env, method=payload.method, reason="before resize")
        console.ok(f"backed up: {taken[-1]}")
    elif isinstance(payload, Database):
        rds = client(env, "rds")
        rds.modify_db_instance(DBInstanceIdentifier=payload.instance_id,
                               DBInstanceClass=payload.wanted, ApplyImmediately=True)
        console.wait_for(f"database {payload.instance_id} as {payload.wanted}",
                         lambda: _resized(_database(env), payload.wanted),
                         timeout=DB_TIMEOUT_S, interval=15)
    else:
        ec2 = client(env, "ec2")
        if payload.state != "stopped":
            ec2.stop_instances(InstanceIds=[payload.instance_id])
            ec2.get_waiter("instance_stopped").wait(
                InstanceIds=[payload.instance_id],
                WaiterConfig={"Delay": 5, "MaxAttempts": HOST_TIMEOUT_S // 5})
        ec2.modify_instance_attribute(InstanceId=payload.instance_id,
                                      InstanceType={"Value": payload.wanted})
        ec2.start_instances(InstanceIds=[payload.instance_id])
        ec2.get_waiter("instance_running").wait(
            InstanceIds=[payload.instance_id],
            WaiterConfig={"Delay": 5, "MaxAttempts": HOST_TIMEOUT_S // 5})
        console.ok(f"host {payload.instance_id} runs as {payload.wanted}")


def _stack_serves(env: Environment) -> None:
    """Wait until the host answers over SSH, then for the stack's health gate."""
    from ops.host.session import open_host
    from ops.stack import deploy

    def reachable() -> bool:
        try:
            with open_host(env) as remote:
                return remote.ok("true")
        except OpsError:
            return False

    console.wait_for("SSH on the host", reachable, timeout=HOST_TIMEOUT_S, interval=5)
    with open_host(env) as remote:
        deploy.settle(env, remote)


def _resized(found: dict[str, Any] | None, wanted: str) -> bool:
    """Whether one description shows the instance available as the wanted class."""
    return found is not None and found.get("DBInstanceClass") == wanted \
        and found.get("DBInstanceStatus") == "available"


def _database(env: Environment) -> dict[str, Any] | None:
    rds = client(env, "rds")
    try:
        return rds.describe_db_instances(
            DBInstanceIdentifier=tags.db_instance_id(env))["DBInstances"][0]
    except rds.exceptions.DBInstanceNotFoundFault:
        return None


def _hosts(env: Environment) -> list[dict[str, Any]]:
    """The nodes' instances up to host.count, in node order (those above it provision
    terminates)."""
    if env.host.address:  # a host the toolkit does not manage: not resized here
        return []
    found = tags.by_node(env, [i for r in client(env, "ec2").describe_instances(Filters=[
        *tags.filters(env, "host"),
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
    ])["Reservations"] for i in r["Instances"]],
        "terminate the extra ones, then run provision again")
    return [found[i] for i in sorted(found) if i <= env.host.count]
