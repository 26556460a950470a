"""RDS manual snapshots of the environment's instance, and restores to a NEW instance.

A restore never modifies the source before the new instance is available and verified; the
cut-over renames the source to <id>-pre-<stamp> (kept until the operator removes it) and the
new instance to the source's id, so the endpoint the stack uses is unchanged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any

from ops import console
from ops.aws import tags
from ops.aws.database import cut_over_left
from ops.aws.session import client
from ops.config import Environment
from ops.db.manifest import SNAPSHOT, Backup, Verification, now
from ops.errors import OpsError

RELEASE, REASON, VERIFIED = "openlmis:release", "openlmis:reason", "openlmis:verified"
TIMEOUT = 3600


def rds(env: Environment) -> Any:
    return client(env, "rds")


def source(env: Environment) -> dict[str, Any]:
    """The environment's RDS instance; OpsError when there is none."""
    api, instance_id = rds(env), tags.db_instance_id(env)
    try:
        return api.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]
    except api.exceptions.DBInstanceNotFoundFault:
        if left := cut_over_left(api, env):
            raise OpsError(f"{instance_id} is missing: a snapshot restore's cut-over stopped "
                           f"between its renames ({left[0]} restored, {left[1]} previous)",
                           hint=f"finish it: inv restore-db --env {env.name} --from SNAPSHOT "
                           "--yes (the snapshot being restored)") from None
        raise OpsError(f"{env.name} has no RDS instance {instance_id} to snapshot",
                       hint="run: inv provision, or use --method dump") from None


def exists(env: Environment) -> bool:
    try:
        source(env)
    except OpsError:
        return False
    return True


def stamp(at: datetime) -> str:
    return at.strftime("%Y%m%d%H%M%S")


def create(env: Environment, *, reason: str, release: str) -> str:
    """A manual snapshot tagged with environment, release and reason; waits until available."""
    instance = source(env)
    snapshot_id = f"{instance['DBInstanceIdentifier']}-{stamp(now())}"
    api = rds(env)
    api.create_db_snapshot(
        DBSnapshotIdentifier=snapshot_id, DBInstanceIdentifier=instance["DBInstanceIdentifier"],
        Tags=tags.as_list({**tags.tags(env, "backup", snapshot_id), RELEASE: release,
                           REASON: reason[:250] or "none"}))
    console.wait_for(f"snapshot {snapshot_id}", lambda: _status(env, snapshot_id) == "available",
                     timeout=TIMEOUT, interval=5, status=lambda: _status(env, snapshot_id))
    return snapshot_id


def _status(env: Environment, snapshot_id: str) -> str:
    found = rds(env).describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"]
    return found[0]["Status"] if found else "missing"


def listed(env: Environment) -> list[Backup]:
    """The environment's manual snapshots (by tag)."""
    api, found = rds(env), []
    pages = api.get_paginator("describe_db_snapshots").paginate(SnapshotType="manual")
    for snap in (s for page in pages for s in page["DBSnapshots"]):
        tag = {t["Key"]: t["Value"] for t in snap.get("TagList") or api.list_tags_for_resource(
            ResourceName=snap["DBSnapshotArn"])["TagList"]}
        if tag.get(tags.ENVIRONMENT) != env.name or tag.get(tags.PROJECT) != env.project:
            continue
        verification = _parse(tag[VERIFIED]) if VERIFIED in tag else None
        found.append(Backup(
            id=snap["DBSnapshotIdentifier"], kind=SNAPSHOT,
            time=snap.get("SnapshotCreateTime") or now(),
            size=snap.get("AllocatedStorage", 0) << 30, release=tag.get(RELEASE, "none"),
            reason=tag.get(REASON, ""), status=snap["Status"], verification=verification,
            extra={"arn": snap["DBSnapshotArn"]}))
    return found


def record(env: Environment, backup: Backup, result: Verification) -> None:
    rds(env).add_tags_to_resource(ResourceName=backup.extra["arn"],
                                  Tags=[{"Key": VERIFIED, "Value": _tag(result)}])


def _tag(result: Verification) -> str:
    """A verification as a tag value (256 characters at most): 'ok|failed TIME detail'."""
    return f"{'ok' if result.ok else 'failed'} {result.time} {result.detail}"[:256]


def _parse(value: str) -> Verification:
    state, _, rest = value.partition(" ")
    time, _, detail = rest.partition(" ")
    return Verification(ok=state == "ok", time=time, detail=detail)


def delete(env: Environment, snapshot_id: str) -> None:
    rds(env).delete_db_snapshot(DBSnapshotIdentifier=snapshot_id)


def like(instance: dict[str, Any]) -> dict[str, Any]:
    """The settings a restored instance must be given explicitly to match `instance`."""
    return {
        "DBInstanceClass": instance["DBInstanceClass"],
        "DBParameterGroupName": instance["DBParameterGroups"][0]["DBParameterGroupName"],
        "DBSubnetGroupName": instance["DBSubnetGroup"]["DBSubnetGroupName"],
        "VpcSecurityGroupIds": [g["VpcSecurityGroupId"] for g in instance["VpcSecurityGroups"]],
        "MultiAZ": instance.get("MultiAZ", False),
        "PubliclyAccessible": instance.get("PubliclyAccessible", False),
    }


def restore_new(env: Environment, snapshot_id: str, new_id: str,
                instance: dict[str, Any]) -> dict[str, Any]:
    """Restore `snapshot_id` to the new instance `new_id` shaped like `instance`; waits."""
    api = rds(env)
    api.restore_db_instance_from_db_snapshot(
        DBInstanceIdentifier=new_id, DBSnapshotIdentifier=snapshot_id, **like(instance),
        Tags=tags.as_list(tags.tags(env, "database", new_id)))
    return wait_available(env, new_id)


def wait_available(env: Environment, instance_id: str) -> dict[str, Any]:
    api = rds(env)

    def state() -> str:
        try:
            return api.describe_db_instances(
                DBInstanceIdentifier=instance_id)["DBInstances"][0]["DBInstanceStatus"]
        except api.exceptions.DBInstanceNotFoundFault:
            return "missing"

    console.wait_for(f"instance {instance_id}", lambda: state() == "available",
                     timeout=TIMEOUT, interval=10, status=state)
    return api.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]


def mismatches(want: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Where a restored instance differs from the settings it was asked for."""
    have = like(got)
    return [f"{key}: wanted {want[key]!r}, got {have[key]!r}" for key in
            ("DBInstanceClass", "DBParameterGroupName", "DBSubnetGroupName")
            if want[key] != have[key]] + (
        [f"security groups: wanted {sorted(want['VpcSecurityGroupIds'])}, "
         f"got {sorted(have['VpcSecurityGroupIds'])}"]
        if sorted(want["VpcSecurityGroupIds"]) != sorted(have["VpcSecurityGroupIds"]) else [])


def restore(env: Environment, snapshot_id: str,
            cut_over: Callable[[], AbstractContextManager[None]] = nullcontext) -> str:
    """Snapshot → new instance → verify → rename swap inside `cut_over` (the stack stopped);
    the id the previous instance now has.

    Run again after dying between the renames, it finishes that cut-over instead."""
    if left := cut_over_left(rds(env), env):
        with cut_over():
            return finish(env, *left)
    instance = source(env)
    current, at = instance["DBInstanceIdentifier"], stamp(now())
    new_id, kept_id = f"{current}-r{at}", f"{current}-pre-{at}"
    console.step(f"restoring {snapshot_id} to a new instance {new_id}")
    restored = restore_new(env, snapshot_id, new_id, instance)
    problems = mismatches(like(instance), restored)
    if problems:
        raise OpsError(f"the restored instance {new_id} does not match {current}: "
                       + "; ".join(problems),
                       hint=f"{current} is untouched; remove {new_id} after looking at it")
    api = rds(env)
    console.step(f"cut-over: {current} → {kept_id} (kept), {new_id} → {current}")
    with cut_over():
        api.modify_db_instance(DBInstanceIdentifier=current, NewDBInstanceIdentifier=kept_id,
                               ApplyImmediately=True)
        wait_available(env, kept_id)
        api.modify_db_instance(DBInstanceIdentifier=new_id, NewDBInstanceIdentifier=current,
                               ApplyImmediately=True)
        wait_available(env, current)
    console.ok(f"{current} now serves {snapshot_id}; the previous instance is kept as {kept_id} "
               "— delete it when you no longer need it")
    return kept_id


def finish(env: Environment, restored: str, previous: str) -> str:
    """The second rename of an interrupted cut-over; the previous instance's id."""
    current = tags.db_instance_id(env)
    console.step(f"finishing an interrupted cut-over: {restored} → {current} "
                 f"(the previous database is kept as {previous})")
    rds(env).modify_db_instance(DBInstanceIdentifier=restored, NewDBInstanceIdentifier=current,
                                ApplyImmediately=True)
    wait_available(env, current)
    console.ok(f"{current} serves the restored database again; {previous} is kept — delete it "
               "when you no longer need it")
    return previous


def drill(env: Environment, backup: Backup) -> Verification:
    """Restore a snapshot to a scratch instance like the source, check it, delete it."""
    instance = source(env)
    scratch = f"{instance['DBInstanceIdentifier']}-verify-{stamp(now())}"
    try:
        restored = restore_new(env, backup.id, scratch, instance)
        problems = mismatches(like(instance), restored)
    finally:
        api = rds(env)
        with contextlib.suppress(api.exceptions.DBInstanceNotFoundFault):
            api.delete_db_instance(DBInstanceIdentifier=scratch, SkipFinalSnapshot=True)
    detail = "; ".join(problems) or f"restored to scratch instance {scratch}: available"
    return Verification(ok=not problems, time=now().isoformat(), detail=detail)
