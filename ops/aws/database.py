"""The database: DB subnet group, custom parameter group (TLS forced), RDS PostgreSQL instance.

Creating the instance is started early and not waited for here: topology waits for it last.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError

from ops import secrets
from ops.aws import tags
from ops.aws.context import Ctx
from ops.config import Environment, least_ceiling
from ops.db import sizing
from ops.errors import OpsError
from ops.plan import Action, Change

MIN_CONNECTIONS = 150
MAX_CONNECTIONS = "200"
PRIVATE = ["subnet.private-1", "subnet.private-2"]
GP3_MAX_GB = 65536  # RDS gp3's largest storage, and so storage autoscaling's highest ceiling
# Classes RDS for PostgreSQL 13+ offers (the documented db.t2/db.m4 ones are retired).
SUPPORTED = re.compile(r"^db\.(t3|t4g|m5|m5d|m6g|m6gd|m6i|m6id|m7g|m7i|r5|r5d|r6g|r6gd|r6i|"
                       r"r6id|r7g|r7i|x2g)\.(micro|small|medium|large|\d*xlarge)$")


class Op(Enum):
    """The database's changes that need no data beyond the environment."""

    SUBNET_GROUP = "subnet_group"
    PARAMETER_GROUP = "parameter_group"
    MAX_CONNECTIONS = "max_connections"
    FORCE_SSL = "force_ssl"
    CREATE = "create"


@dataclass(frozen=True)
class Modify:
    """ModifyDBInstance's settings ("sg.db" stands for the database group's id)."""

    settings: Mapping[str, Any]


Payload = Op | Modify


def instance_class(env: Environment) -> str:
    """database.instance_class, else what size-db recommends for the tier and workload."""
    return sizing.recommended_class(env.database)


def family(env: Environment) -> str:
    return f"postgres{env.database.engine_version.split('.')[0]}"


def check_class(env: Environment, offered: list[str] | None) -> None:
    """OpsError when the engine cannot run on the class; `offered` from RDS when it answered."""
    wanted = instance_class(env)
    if not SUPPORTED.match(wanted) or (offered and wanted not in offered):
        raise OpsError(f"RDS PostgreSQL {env.database.engine_version} cannot use {wanted}",
                       hint="set database.instance_class to a current class such as "
                            "db.t4g.medium or db.m6g.large, or null to size from the tier")


def max_storage(env: Environment) -> int | None:
    """Storage autoscaling's ceiling: database.max_storage_gb, else four times storage_gb (at
    most gp3's largest); None when even that leaves RDS no room to grow (pure)."""
    db = env.database
    ceiling = db.max_storage_gb or min(4 * db.storage_gb, GP3_MAX_GB)
    return ceiling if ceiling >= least_ceiling(db.storage_gb) else None


def ceiling_drift(env: Environment, have: dict[str, Any]) -> str | None:
    """None when the instance's autoscaling ceiling is the wanted one (or was not read);
    "settable" when RDS takes the wanted one; "too low" when the storage has grown past where
    RDS would (pure)."""
    ceiling = max_storage(env)
    if not ceiling or "max_storage" not in have or have["max_storage"] == ceiling:
        return None
    return "settable" if ceiling >= least_ceiling(have.get("storage_gb") or 0) else "too low"


def desired(env: Environment) -> dict[str, Any]:
    """The RDS instance's settings that provision manages (pure)."""
    return {"class": instance_class(env), "encrypted": True, "public": False,
            "retention": env.database.backup_retention_days,
            "deletion_protection": env.is_production, "multi_az": env.is_production,
            "copy_tags": True, "minor_upgrades": True, "max_storage": max_storage(env)}


def diff(env: Environment, actual: dict[str, Any]) -> list[Change[Payload]]:
    """`actual`: subnet_group (subnets as 'subnet.<role>' where known, or None), parameters ({}
    or None), instance ({} or settings read back: class, encrypted, public, retention,
    deletion_protection, groups, parameter_group, and where read: multi_az, copy_tags,
    minor_upgrades, storage_gb, max_storage: the autoscaling ceiling, None when off)."""
    changes: list[Change[Payload]] = []
    name = tags.db_instance_id(env)
    if actual.get("subnet_group") is None:
        changes.append(Change(Action.CREATE, f"db subnet group {name}", "the private subnets",
                              payload=Op.SUBNET_GROUP))
    group = tags.db_parameter_group(env)
    params = actual.get("parameters")
    if params is None:
        changes.append(Change(Action.CREATE, f"db parameter group {group}", family(env),
                              payload=Op.PARAMETER_GROUP))
    current = (params or {}).get("max_connections")
    if not current or not current.isdigit() or int(current) <= MIN_CONNECTIONS:
        changes.append(Change(Action.UPDATE, "db parameter max_connections",
                              f"{current or 'default'} → {MAX_CONNECTIONS} (static: applies "
                              "at creation or next reboot)", payload=Op.MAX_CONNECTIONS))
    if (params or {}).get("rds.force_ssl") != "1":
        changes.append(Change(Action.UPDATE, "db parameter rds.force_ssl",
                              f"{(params or {}).get('rds.force_ssl') or 'default'} → 1 (dynamic: "
                              "clients without TLS are refused at once)", payload=Op.FORCE_SSL))
    want, have = desired(env), actual.get("instance")
    if not have:
        growth = f" (autoscaling to {want['max_storage']} GB)" if want["max_storage"] else ""
        changes.append(Change(Action.CREATE, f"db instance {name}",
                              f"{want['class']}, PostgreSQL {env.database.engine_version}, "
                              f"{env.database.storage_gb} GB encrypted{growth}, private",
                              payload=Op.CREATE))
        return changes
    modify: dict[str, Any] = {}
    if have["public"]:
        modify["PubliclyAccessible"] = False
    if have["retention"] < want["retention"]:
        modify["BackupRetentionPeriod"] = want["retention"]
    if have["deletion_protection"] != want["deletion_protection"]:
        modify["DeletionProtection"] = want["deletion_protection"]
    if have["parameter_group"] != group:
        modify["DBParameterGroupName"] = group
    if have.get("groups") is not None and have["groups"] != ["sg.db"]:
        modify["VpcSecurityGroupIds"] = ["sg.db"]
    if have.get("copy_tags") is False:
        modify["CopyTagsToSnapshot"] = True
    if have.get("minor_upgrades") is False:
        modify["AutoMinorVersionUpgrade"] = True
    if ceiling_drift(env, have) == "settable":
        modify["MaxAllocatedStorage"] = want["max_storage"]
    if modify:
        changes.append(Change(Action.UPDATE, f"db instance {name}",
                              ", ".join(f"{k}={v}" for k, v in modify.items()),
                              payload=Modify(modify)))
    if have.get("multi_az") is not None and have["multi_az"] != want["multi_az"]:
        changes.append(Change(Action.UPDATE, f"db instance {name}",
                              f"MultiAZ={want['multi_az']} ({MULTI_AZ[want['multi_az']]})",
                              payload=Modify({"MultiAZ": want["multi_az"]})))
    return changes


MULTI_AZ = {True: "no restart, but building the standby takes up to an hour and slows I/O "
                  "meanwhile",
            False: "no restart; the standby is removed: no failover from then on"}


def warnings(env: Environment, have: dict[str, Any],
             subnets: list[str] | None = None) -> list[str]:
    """Differences provision reports but does not change on a running database (pure);
    `subnets`: the DB subnet group's, as 'subnet.<role>' where known."""
    found = []
    if subnets is not None and sorted(subnets) != PRIVATE:
        found.append(f"the DB subnet group {tags.db_instance_id(env)} holds "
                     f"{', '.join(sorted(subnets))}, not only the private subnets: RDS may "
                     "place the database there; AWS refuses to remove a subnet the database "
                     "is in, so provision does not: modify the group in a maintenance window")
    if have and not have["encrypted"]:
        found.append(f"database {tags.db_instance_id(env)} is NOT encrypted; RDS cannot encrypt "
                     "in place: snapshot, copy encrypted, restore (inv restore-db)")
    if have and have["class"] != instance_class(env):
        found.append(f"database {tags.db_instance_id(env)} is {have['class']}, the config asks "
                     f"for {instance_class(env)}: run inv resize in a maintenance window")
    if have.get("storage_gb", env.database.storage_gb) < env.database.storage_gb:
        found.append(f"database {tags.db_instance_id(env)} has {have['storage_gb']} GB, the "
                     f"config asks for {env.database.storage_gb} GB: provision does not grow "
                     "storage (it stays busy optimizing for hours); modify it in a quiet hour")
    if ceiling_drift(env, have) == "too low":
        found.append(f"database {tags.db_instance_id(env)} has grown to {have['storage_gb']} GB: "
                     f"a storage autoscaling ceiling of {max_storage(env)} GB is not the 10 % "
                     "above it RDS requires, so provision leaves the ceiling as it is; raise "
                     "database.max_storage_gb")
    if have.get("subnet_group", tags.db_instance_id(env)) != tags.db_instance_id(env):
        found.append(f"database {tags.db_instance_id(env)} is in the DB subnet group "
                     f"{have['subnet_group']}, not {tags.db_instance_id(env)}: moving it means "
                     "another network and an outage; provision does not")
    return found


def read(ctx: Ctx) -> dict[str, Any]:
    rds, env = ctx.aws("rds"), ctx.env
    actual: dict[str, Any] = {}
    try:
        found = rds.describe_db_subnet_groups(DBSubnetGroupName=tags.db_instance_id(env))
        subnet_roles = {ctx.ids.get(f"subnet.{r}"): f"subnet.{r}"
                        for r in ("public-1", "public-2", "private-1", "private-2")}
        actual["subnet_group"] = [subnet_roles.get(s["SubnetIdentifier"], s["SubnetIdentifier"])
                                  for s in found["DBSubnetGroups"][0]["Subnets"]]
        ctx.ids["db_subnets"] = tags.db_instance_id(env)
    except rds.exceptions.DBSubnetGroupNotFoundFault:
        pass
    try:
        # Source=user: only what was set (all the emulator knows; the engine defaults are
        # not this module's business).
        pages = rds.get_paginator("describe_db_parameters").paginate(
            DBParameterGroupName=tags.db_parameter_group(env), Source="user")
        actual["parameters"] = {p["ParameterName"]: p.get("ParameterValue")
                                for page in pages for p in page["Parameters"]}
        ctx.ids["db_params"] = tags.db_parameter_group(env)
    except rds.exceptions.DBParameterGroupNotFoundFault:
        pass
    try:
        db = rds.describe_db_instances(
            DBInstanceIdentifier=tags.db_instance_id(env))["DBInstances"][0]
    except rds.exceptions.DBInstanceNotFoundFault:
        return actual
    ctx.ids["db"] = db["DBInstanceIdentifier"]
    sg_roles = {ctx.ids.get(k): k for k in ("sg.db", "sg.host", "sg.lb")}
    actual["instance"] = {
        "class": db["DBInstanceClass"], "encrypted": db.get("StorageEncrypted", False),
        "public": db.get("PubliclyAccessible", False),
        "retention": db.get("BackupRetentionPeriod", 0),
        "deletion_protection": db.get("DeletionProtection", False),
        "status": db["DBInstanceStatus"],
        "parameter_group": next((g["DBParameterGroupName"] for g in db["DBParameterGroups"]),
                                None),
        "groups": sorted(sg_roles.get(g["VpcSecurityGroupId"], g["VpcSecurityGroupId"])
                         for g in db["VpcSecurityGroups"]),
        # A Multi-AZ change is pending for a while after it is asked for: the pending value
        # is what will be, and asking again would change nothing.
        "multi_az": db.get("PendingModifiedValues", {}).get("MultiAZ", db.get("MultiAZ")),
        "copy_tags": db.get("CopyTagsToSnapshot"),
        "minor_upgrades": db.get("AutoMinorVersionUpgrade"),
        "storage_gb": db.get("AllocatedStorage"),
        "max_storage": db.get("MaxAllocatedStorage"),
        "subnet_group": db.get("DBSubnetGroup", {}).get("DBSubnetGroupName"),
    }
    for text in warnings(env, actual["instance"], actual.get("subnet_group")):
        ctx.warn(text)
    return actual


def check(ctx: Ctx) -> None:
    """Before anything changes: the class suits the engine, the master password resolves."""
    env, rds = ctx.env, ctx.aws("rds")
    try:
        offered = [o["DBInstanceClass"] for o in rds.describe_orderable_db_instance_options(
            Engine="postgres", EngineVersion=env.database.engine_version,
            DBInstanceClass=instance_class(env), MaxRecords=20)["OrderableDBInstanceOptions"]]
    except ClientError:
        offered = []
    # An empty answer is no verdict: the emulator knows no orderable options at all, and
    # RDS lists them per full version; the pattern check still applies.
    check_class(env, offered)
    if left := cut_over_left(rds, env):
        name = tags.db_instance_id(env)
        raise OpsError(f"{name} is missing while a snapshot restore's instances remain "
                       f"({left[0]} restored, {left[1]} previous): provision would create an "
                       f"EMPTY {name}", hint=f"finish the cut-over: inv restore-db --env "
                       f"{env.name} --from SNAPSHOT --yes (the snapshot being restored)")
    password = secrets.resolve(env, "database.master_password", env.database.master_password)
    if problem := password_problem(password):
        raise OpsError(f"the secret behind database.master_password {problem}",
                       hint="store a new value under the same reference")


def cut_over_left(rds: Any, env: Environment) -> tuple[str, str] | None:
    """(restored, previous) when a snapshot restore's cut-over stopped between its renames:
    the environment's instance is gone while the restore's two instances remain."""
    name = tags.db_instance_id(env)
    ids = [i["DBInstanceIdentifier"] for page in
           rds.get_paginator("describe_db_instances").paginate() for i in page["DBInstances"]]
    if name in ids:
        return None
    restored = sorted(i for i in ids if re.fullmatch(rf"{re.escape(name)}-r\d{{14}}", i))
    previous = sorted(i for i in ids if re.fullmatch(rf"{re.escape(name)}-pre-\d{{14}}", i))
    return (restored[-1], previous[-1]) if restored and previous else None


def password_problem(password: str) -> str | None:
    """Why RDS would refuse a master password (8 to 128 printable ASCII, none of / @ " space)."""
    if not 8 <= len(password) <= 128:
        return "must be 8 to 128 characters long"
    if any(c in '/@" ' or not c.isprintable() or not c.isascii() for c in password):
        return "may not contain /, @, \", a space or non-printable characters"
    return None


def plan(ctx: Ctx) -> list[Change[Payload]]:
    return diff(ctx.env, read(ctx))


def apply(ctx: Ctx, payload: Payload) -> None:
    rds, env = ctx.aws("rds"), ctx.env
    name, group = tags.db_instance_id(env), tags.db_parameter_group(env)
    if payload is Op.SUBNET_GROUP:
        rds.create_db_subnet_group(
            DBSubnetGroupName=name, DBSubnetGroupDescription=f"{env.prefix} database",
            SubnetIds=[ctx.ids["subnet.private-1"], ctx.ids["subnet.private-2"]],
            Tags=tags.as_list(tags.tags(env, "db-subnets", name)))
    elif payload is Op.PARAMETER_GROUP:
        rds.create_db_parameter_group(
            DBParameterGroupName=group, DBParameterGroupFamily=family(env),
            Description=f"{env.prefix} PostgreSQL", Tags=tags.as_list(tags.tags(env, "db-params",
                                                                                group)))
    elif payload is Op.MAX_CONNECTIONS:
        rds.modify_db_parameter_group(DBParameterGroupName=group, Parameters=[
            {"ParameterName": "max_connections", "ParameterValue": MAX_CONNECTIONS,
             "ApplyMethod": "pending-reboot"}])
    elif payload is Op.FORCE_SSL:
        rds.modify_db_parameter_group(DBParameterGroupName=group, Parameters=[
            {"ParameterName": "rds.force_ssl", "ParameterValue": "1",
             "ApplyMethod": "immediate"}])
    elif payload is Op.CREATE:
        want = desired(env)
        password = secrets.resolve(env, "database.master_password", env.database.master_password)
        rds.create_db_instance(
            DBInstanceIdentifier=name, DBInstanceClass=want["class"], Engine="postgres",
            EngineVersion=env.database.engine_version, AllocatedStorage=env.database.storage_gb,
            StorageType="gp3", StorageEncrypted=True, DBName=env.database.name,
            MasterUsername=env.database.master_username, MasterUserPassword=password,
            DBSubnetGroupName=name, VpcSecurityGroupIds=[ctx.ids["sg.db"]],
            DBParameterGroupName=group, PubliclyAccessible=False,
            BackupRetentionPeriod=want["retention"], DeletionProtection=want["deletion_protection"],
            MultiAZ=env.is_production, CopyTagsToSnapshot=True, AutoMinorVersionUpgrade=True,
            **({"MaxAllocatedStorage": want["max_storage"]} if want["max_storage"] else {}),
            Tags=tags.as_list(tags.tags(env, "database", name)))
        ctx.ids["db"] = name
    elif isinstance(payload, Modify):
        settings = dict(payload.settings)
        if "VpcSecurityGroupIds" in settings:
            settings["VpcSecurityGroupIds"] = [ctx.ids["sg.db"]]
        rds.modify_db_instance(DBInstanceIdentifier=name, ApplyImmediately=True, **settings)


def available(ctx: Ctx) -> str | None:
    """The instance's endpoint once it is available, else None."""
    db = ctx.aws("rds").describe_db_instances(
        DBInstanceIdentifier=tags.db_instance_id(ctx.env))["DBInstances"][0]
    if db["DBInstanceStatus"] != "available":
        return None
    return db.get("Endpoint", {}).get("Address") or None


def status(ctx: Ctx) -> str:
    return ctx.aws("rds").describe_db_instances(
        DBInstanceIdentifier=tags.db_instance_id(ctx.env))["DBInstances"][0]["DBInstanceStatus"]
