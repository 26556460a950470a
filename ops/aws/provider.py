"""The AWS provider: the normal credential chain, EC2 and RDS as they describe themselves."""

from __future__ import annotations

import ipaddress
import os
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from ops import console
from ops.aws import tags
from ops.aws.session import client
from ops.config import Environment
from ops.db.tune import Target
from ops.errors import OpsError
from ops.host.remote import SLOW, Remote, sh
from ops.targets import DatabaseTarget, HostTarget, NoDatabase

# The bundle AWS documents for verifying any RDS instance's certificate (UsingWithRDS.SSL).
RDS_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
RDS_BUNDLE_DAYS = 30
# AWS's own answer to "what is my public address" (what the AWS CLI's documentation uses), and
# how long to wait for it: a machine without internet access only loses that one check.
CHECKIP_URL = "https://checkip.amazonaws.com"
CHECKIP_TIMEOUT = 3

def _bundle(env: Environment) -> bytes:
    """database.ca_bundle's content, else RDS's global CA bundle; OpsError when neither can be
    read."""
    path = env.database.ca_bundle
    if path is None:
        return rds_bundle()
    try:
        return path.expanduser().read_bytes()
    except OSError as exc:
        raise OpsError(f"database.ca_bundle {path} cannot be read: {exc.strerror}",
                       hint="download the RDS CA bundle (global-bundle.pem) to that path") \
            from None


def rds_bundle() -> bytes:
    """RDS's global CA bundle, downloaded from AWS once and cached for RDS_BUNDLE_DAYS."""
    cached = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "openlmis-ops" \
        / "rds-global-bundle.pem"
    if cached.is_file() and time.time() - cached.stat().st_mtime < RDS_BUNDLE_DAYS * 86400:
        return cached.read_bytes()
    try:
        with urllib.request.urlopen(RDS_BUNDLE_URL, timeout=30) as response:
            data = response.read()
    except OSError as exc:
        raise OpsError(f"the RDS CA bundle could not be downloaded from {RDS_BUNDLE_URL}: "
                       f"{exc}", hint="download it yourself and set database.ca_bundle to "
                       "its path") from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise OpsError(f"{RDS_BUNDLE_URL} did not answer with PEM certificates",
                       hint="download the bundle yourself and set database.ca_bundle")
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(data)
    return data


def public_address(text: str) -> str | None:
    """checkip's answer as an IP address; None when it is not one."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


class AwsProvider:
    snapshot_holds_data = True
    any_image_will_do = False
    nofile_ceiling: int | None = None  # dockerd on the host runs with LimitNOFILE=infinity
    aws_over_tls = True
    service_quotas = True
    timer_spread_s = 300  # a few minutes: environments' hosts do not all start at once

    def aws_endpoint(self) -> str | None:
        return None

    def metadata_url(self) -> str:
        return "http://169.254.169.254"  # the instance metadata service's link-local address

    def aws_session(self, region: str, profile: str | None) -> boto3.Session:
        return boto3.Session(profile_name=profile, region_name=region)

    def host(self, env: Environment, instance: dict[str, Any]) -> HostTarget:
        address = instance.get("PublicIpAddress")
        if not address:
            raise OpsError(f"instance {instance['InstanceId']} of {env.name} has no public "
                           "address", hint="run: inv provision (it attaches an Elastic IP)")
        cfg = env.host
        return HostTarget(address, cfg.ssh_user, cfg.ssh_private_key.expanduser(),
                          cfg.known_hosts.expanduser(), instance["InstanceId"],
                          node=tags.node(instance.get("Tags", [])),
                          private_address=instance.get("PrivateIpAddress"),
                          zone=instance.get("Placement", {}).get("AvailabilityZone"))

    def database(self, env: Environment) -> DatabaseTarget:
        instance_id = tags.db_instance_id(env)
        rds = client(env, "rds")
        try:
            found = rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]
        except rds.exceptions.DBInstanceNotFoundFault:
            raise NoDatabase(f"{env.name} has no database instance {instance_id}",
                           hint="run: inv provision") from None
        endpoint = found.get("Endpoint") or {}
        if not endpoint.get("Address"):
            raise OpsError(f"database {instance_id} has no endpoint yet "
                           f"({found['DBInstanceStatus']})",
                           hint="wait for it to become available: inv status")
        return DatabaseTarget(endpoint["Address"], endpoint.get("Port", 5432), env.database.name,
                              env.database.master_username, instance_id, _bundle(env))

    def database_free_bytes(self, env: Environment) -> int | None:
        """The lowest FreeStorageSpace CloudWatch saw in the last 15 minutes."""
        end = datetime.now(UTC)
        points = client(env, "cloudwatch").get_metric_statistics(
            Namespace="AWS/RDS", MetricName="FreeStorageSpace",
            Dimensions=[{"Name": "DBInstanceIdentifier", "Value": tags.db_instance_id(env)}],
            StartTime=end - timedelta(minutes=15), EndTime=end, Period=60,
            Statistics=["Minimum"])["Datapoints"]
        return int(min(p["Minimum"] for p in points)) if points else None

    def secret(self, env: Environment, source: str, name: str) -> str | None:
        raise OpsError(f"{source}:{name}: {env.name} has no secret source {source!r}",
                       hint="use env:, ssm: or secretsmanager: references")

    def public_key(self, env: Environment) -> Path:
        return env.host.ssh_public_key.expanduser()

    def parameters(self, env: Environment) -> Target:
        from ops.db.rds_params import RdsParameters

        return RdsParameters(env)

    def operator_address(self) -> str | None:
        """This machine's public address, as AWS sees it (checkip); None when unreachable."""
        try:
            with urllib.request.urlopen(CHECKIP_URL, timeout=CHECKIP_TIMEOUT) as response:
                return public_address(response.read(64).decode(errors="replace"))
        except OSError:
            return None

    def build_images(self, stack: str, images: list[str]) -> None:
        """Nothing to build: AWS hosts pull the stack's published images."""

    def scheduled_drill_image(self, env: Environment) -> str:
        return env.backups.drill_image

    def drill_image(self, env: Environment, remote: Remote, major: int) -> str:
        """backups.drill_image for `major`, pulled on the host unless it has it already."""
        image = env.backups.drill_image.format(major=major)
        if not remote.ok(sh("docker", "image", "inspect", image)):
            console.step(f"pulling {image} on {remote.address}")
            remote.run(sh("docker", "pull", "-q", image), what=f"pulling {image}", timeout=SLOW,
                       hint="check that the host reaches the registry, or set "
                       f"backups.drill_image to an image of PostgreSQL {major} with PostGIS "
                       "that it can pull")
        return image
