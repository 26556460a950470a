"""Where an environment's host and database are: from config, AWS, or the lab's stand-ins."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ops.aws import tags
from ops.aws.session import client
from ops.config import Environment
from ops.errors import OpsError


@dataclass(frozen=True)
class HostTarget:
    address: str
    user: str
    key: Path
    known_hosts: Path
    instance_id: str | None = None


@dataclass(frozen=True)
class DatabaseTarget:
    address: str
    port: int
    name: str
    user: str
    instance_id: str | None = None


def host(env: Environment) -> HostTarget:
    """The host to deploy to: host.address from config, else the provisioned instance."""
    cfg = env.host
    if cfg.address:
        return HostTarget(cfg.address, cfg.ssh_user, cfg.ssh_private_key.expanduser(),
                          cfg.known_hosts.expanduser())
    instance = _instance(env)
    if env.kind == "lab":
        from ops.lab.lab import Lab

        lab_host = Lab.connect().host_for_instance(instance["InstanceId"])
        return HostTarget(lab_host.address, lab_host.user, lab_host.key, lab_host.known_hosts,
                          instance["InstanceId"])
    address = instance.get("PublicIpAddress")
    if not address:
        raise OpsError(f"instance {instance['InstanceId']} of {env.name} has no public address",
                       hint="run: inv provision (it attaches an Elastic IP)")
    return HostTarget(address, cfg.ssh_user, cfg.ssh_private_key.expanduser(),
                      cfg.known_hosts.expanduser(), instance["InstanceId"])


def database(env: Environment) -> DatabaseTarget:
    """The database: the RDS instance of the environment (the lab's PostgreSQL in the lab)."""
    instance_id = tags.db_instance_id(env)
    if env.kind == "lab":
        from ops.lab.lab import Lab

        lab_db = Lab.connect().database()
        return DatabaseTarget(lab_db.address, 5432, env.database.name,
                              env.database.master_username, instance_id)
    rds = client(env, "rds")
    try:
        found = rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]
    except rds.exceptions.DBInstanceNotFoundFault:
        raise OpsError(f"{env.name} has no database instance {instance_id}",
                       hint="run: inv provision") from None
    endpoint = found.get("Endpoint") or {}
    if not endpoint.get("Address"):
        raise OpsError(f"database {instance_id} has no endpoint yet ({found['DBInstanceStatus']})",
                       hint="wait for it to become available: inv status")
    return DatabaseTarget(endpoint["Address"], endpoint.get("Port", 5432), env.database.name,
                          env.database.master_username, instance_id)


def _instance(env: Environment) -> dict:
    ec2 = client(env, "ec2")
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[*tags.filters(env, "host"),
                 {"Name": "instance-state-name", "Values": ["pending", "running"]}])
    found = [i for page in pages for r in page["Reservations"] for i in r["Instances"]]
    if not found:
        raise OpsError(f"{env.name} has no host instance and no host.address in its config",
                       hint="run: inv provision, or set host.address for an existing host")
    if len(found) > 1:
        ids = ", ".join(i["InstanceId"] for i in found)
        raise OpsError(f"{env.name} has several host instances ({ids})",
                       hint="terminate the extra ones, or set host.address")
    return found[0]
