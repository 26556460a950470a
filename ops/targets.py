"""Where an environment's host and database are: from config, else asked of its provider."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ops import provider
from ops.aws import tags
from ops.aws.session import client
from ops.config import Environment
from ops.errors import OpsError


class NoHost(OpsError):
    """The environment has no host instance (yet) and no host.address."""


class NoDatabase(OpsError):
    """The environment has no database instance (yet)."""


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
    ca_bundle: bytes | None = field(default=None, repr=False)  # PEM: verify the server with it


def host(env: Environment) -> HostTarget:
    """The host to deploy to: host.address from config, else the provisioned instance's."""
    cfg = env.host
    if cfg.address:
        return HostTarget(cfg.address, cfg.ssh_user, cfg.ssh_private_key.expanduser(),
                          cfg.known_hosts.expanduser())
    return provider.of(env).host(env, instance(env))


def database(env: Environment) -> DatabaseTarget:
    """The environment's database, as its provider finds it."""
    return provider.of(env).database(env)


def has_host(env: Environment) -> bool:
    """Whether the environment has a host: host.address, or a pending or running instance."""
    return bool(env.host.address) or bool(_instances(env))


def _instances(env: Environment) -> list[dict[str, Any]]:
    ec2 = client(env, "ec2")
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[*tags.filters(env, "host"),
                 {"Name": "instance-state-name", "Values": ["pending", "running"]}])
    return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]


def instance(env: Environment) -> dict[str, Any]:
    """The environment's one pending or running host instance, as EC2 describes it."""
    found = _instances(env)
    if not found:
        raise NoHost(f"{env.name} has no host instance and no host.address in its config",
                       hint="run: inv provision, or set host.address for an existing host")
    if len(found) > 1:
        ids = ", ".join(i["InstanceId"] for i in found)
        raise OpsError(f"{env.name} has several host instances ({ids})",
                       hint="terminate the extra ones, or set host.address")
    return found[0]
