"""Where an environment's host (its nodes) and database are: from config, else asked of its
provider."""

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
    node: int = 1  # its index among the nodes (host.count); 1 is the host of one-host setups
    private_address: str | None = None  # where the other nodes reach it
    zone: str | None = None  # the instance's availability zone


@dataclass(frozen=True)
class DatabaseTarget:
    address: str
    port: int
    name: str
    user: str
    instance_id: str | None = None
    ca_bundle: bytes | None = field(default=None, repr=False)  # PEM: verify the server with it


def host(env: Environment) -> HostTarget:
    """The host to deploy to (node 1): host.address from config, else the provisioned
    instance's."""
    cfg = env.host
    if cfg.address:
        return HostTarget(cfg.address, cfg.ssh_user, cfg.ssh_private_key.expanduser(),
                          cfg.known_hosts.expanduser(), private_address=cfg.address)
    return provider.of(env).host(env, instance(env))


def hosts(env: Environment) -> list[HostTarget]:
    """Every node, ordered by node index: host.address's one host, else the provisioned
    instances'."""
    if env.host.address:
        return [host(env)]
    found = nodes(env)
    if 1 not in found:
        raise _no_host(env)
    return [provider.of(env).host(env, found[i]) for i in sorted(found)]


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
    """The environment's pending or running host instance of node 1, as EC2 describes it."""
    found = nodes(env).get(1)
    if found is None:
        raise _no_host(env)
    return found


def nodes(env: Environment) -> dict[int, dict[str, Any]]:
    """The pending or running host instances by node index; OpsError when two claim one."""
    return tags.by_node(env, _instances(env), "terminate the extra ones, or set host.address")


def _no_host(env: Environment) -> NoHost:
    return NoHost(f"{env.name} has no host instance and no host.address in its config",
                  hint="run: inv provision, or set host.address for an existing host")
