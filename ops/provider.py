"""The seam between the toolkit and its surroundings, chosen once per environment.

Production code asks `of(env)` what it needs from where the environment lives: the AWS API
(endpoint and credentials), read-only lookups of the host and the database, extra secret
sources, the operator's public key, the database parameter target, whether a snapshot holds the
data, the image of verify-backup's scratch server, and the address this machine is seen from.
AWS is one provider (ops.aws.provider); another (the local lab, an on-premises host) registers
itself where a task starts, with `register(kind, make)`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ops.config import Environment
from ops.errors import OpsError

if TYPE_CHECKING:
    import boto3

    from ops.db.tune import Target
    from ops.host.remote import Remote
    from ops.targets import DatabaseTarget, HostTarget


class Provider(Protocol):
    """What the toolkit needs from an environment's surroundings."""

    # Whether an RDS snapshot holds the database's data (else backup-db falls back to dumps).
    snapshot_holds_data: bool
    # Whether any image the AWS API offers will do for the host (no Ubuntu AMI to look for).
    any_image_will_do: bool
    # The most open files the host's containers may be given (None: what the stack asks).
    nofile_ceiling: int | None
    # Whether the AWS API and presigned transfers go over TLS (else a TLS-only bucket policy
    # would refuse every transfer).
    aws_over_tls: bool
    # Whether the account's service quotas bind what provision makes (doctor checks them).
    service_quotas: bool
    # Up to how many seconds a host's scheduled jobs are delayed at random (RandomizedDelaySec).
    timer_spread_s: int

    def aws_endpoint(self) -> str | None:
        """The AWS API endpoint; None for boto3's own (which honours AWS_ENDPOINT_URL)."""

    def metadata_url(self) -> str:
        """Where the host's scheduled job asks the instance metadata service (IMDSv2) for its
        role's credentials."""

    def aws_session(self, region: str, profile: str | None) -> boto3.Session:
        """A session with the credentials to use."""

    def host(self, env: Environment, instance: dict[str, Any]) -> HostTarget:
        """How to reach the host (a node) serving a described EC2 instance: its node index
        (tag openlmis:node), the address the other nodes reach it at, its availability zone.
        Read-only."""

    def database(self, env: Environment) -> DatabaseTarget:
        """Where the environment's database answers. Read-only."""

    def secret(self, env: Environment, source: str, name: str) -> str | None:
        """A secret from a source of this provider's own (`lab:`); OpsError for others."""

    def public_key(self, env: Environment) -> Path:
        """The public key the host accepts."""

    def database_free_bytes(self, env: Environment) -> int | None:
        """The database server's free storage; None when it cannot be told."""

    def parameters(self, env: Environment) -> Target:
        """Where the database's parameters live."""

    def build_images(self, stack: str, images: list[str]) -> None:
        """Make the stack's images on this machine before they are pushed (if it builds any)."""

    def scheduled_drill_image(self, env: Environment) -> str:
        """The image the host's scheduled drill runs ({major}: the server's major version),
        which the host pulls when it lacks it."""

    def drill_image(self, env: Environment, remote: Remote, major: int) -> str:
        """An image of PostgreSQL `major` with PostGIS for verify-backup's scratch server, made
        present on the host; its name."""

    def operator_address(self) -> str | None:
        """The address the environment's hosts see this machine connect from (what
        network.admin_cidrs must hold); None when it cannot be told."""


def _aws() -> Provider:
    from ops.aws.provider import AwsProvider

    return AwsProvider()


_MAKERS: dict[str, Callable[[], Provider]] = {"aws": _aws}


def register(kind: str, make: Callable[[], Provider]) -> None:
    """Serve environments of `kind` with the provider `make` returns."""
    _MAKERS[kind] = make


def of(env: Environment) -> Provider:
    """The provider of the environment's kind."""
    make = _MAKERS.get(env.kind)
    if make is None:
        raise OpsError(f"{env.name} is of kind {env.kind!r}, which nothing here provides",
                       hint="run the task through inv, which registers every provider")
    return make()
