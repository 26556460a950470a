"""The lab's provider: the AWS emulator, lab hosts for emulated instances, the lab PostgreSQL.

Its boto3 session binds emulated EC2 instances to lab hosts as they are launched and
terminated, so every lookup afterwards only reads.
"""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

import boto3
import docker

from ops import console
from ops.aws import tags
from ops.config import Environment
from ops.db.tune import Target
from ops.errors import OpsError
from ops.host.remote import Remote, sh
from ops.lab import ca, images
from ops.lab.emulator import Emulator
from ops.lab.lab import Lab
from ops.lab.metadata import MetadataService
from ops.lab.params import LabParameters
from ops.lab.state import LabState
from ops.stack.images import push
from ops.targets import DatabaseTarget, HostTarget

SECRET_SOURCE = "lab"


class LabProvider:
    snapshot_holds_data = False  # an emulated snapshot holds no data
    any_image_will_do = True  # the emulator has no Ubuntu AMI; a lab host is Debian anyway
    # A lab host is a container of this machine, which cannot raise its hard limit of open
    # files (no CAP_SYS_RESOURCE where the lab runs unprivileged): a container in it asking
    # more (ref-distro's nginx after 3.19.2: 40000) would not start.
    nofile_ceiling: int | None = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    # The emulator serves plain HTTP, and enforces a bucket policy on presigned requests: the
    # TLS-only statement would refuse the dumps' transfers, so the lab's bucket goes without.
    aws_over_tls = False
    # The lab makes as many hosts as asked: the emulator's quotas would bind nothing real.
    service_quotas = False
    # One host per environment on one machine: nothing to spread, and a job runs when due.
    timer_spread_s = 0

    def aws_endpoint(self) -> str | None:
        url = Emulator(LabState.current()).recorded()
        if not url:
            raise OpsError("the lab's AWS emulator is not running", hint="run: inv lab.up")
        return url

    def metadata_url(self) -> str:
        url = MetadataService(LabState.current()).recorded()
        if not url:
            raise OpsError("the lab's instance metadata service is not running",
                           hint="run: inv lab.up")
        return url

    def aws_session(self, region: str, profile: str | None) -> boto3.Session:
        session = boto3.Session(aws_access_key_id="lab", aws_secret_access_key="lab",
                                region_name=region)
        session.events.register("after-call.ec2.RunInstances", _launched)
        session.events.register("after-call.ec2.TerminateInstances", _terminated)
        session.events.register("after-call.ec2.StopInstances", _stopped)
        session.events.register("after-call.ec2.StartInstances", _started)
        return session

    def host(self, env: Environment, instance: dict[str, Any]) -> HostTarget:
        found = Lab.connect().instance_host(instance["InstanceId"])
        # The lab hosts reach each other on the lab network, at the address this machine uses.
        return HostTarget(found.address, found.user, found.key, found.known_hosts,
                          instance["InstanceId"], node=tags.node(instance.get("Tags", [])),
                          private_address=found.address,
                          zone=instance.get("Placement", {}).get("AvailabilityZone"))

    def database(self, env: Environment) -> DatabaseTarget:
        lab = Lab.connect()
        found = lab.running_database()
        return DatabaseTarget(found.address, 5432, env.database.name,
                              env.database.master_username, tags.db_instance_id(env),
                              ca.certificate(lab.state).read_bytes())

    def database_free_bytes(self, env: Environment) -> int | None:
        return Lab.connect().database_free_bytes()

    def secret(self, env: Environment, source: str, name: str) -> str | None:
        if source != SECRET_SOURCE:
            raise OpsError(f"{source}:{name}: the lab has no secret source {source!r}")
        value = LabState.current().read("secrets").get(name)
        if value is None:
            raise OpsError(f"the lab has no secret {name} yet", hint="run: inv lab.up")
        return value

    def public_key(self, env: Environment) -> Path:
        return LabState.current().ensure_key().with_suffix(".pub")

    def parameters(self, env: Environment) -> Target:
        return LabParameters(env)

    def operator_address(self) -> str | None:
        """The lab network's gateway: where this machine meets the lab hosts."""
        return Lab.connect().gateway()

    def build_images(self, stack: str, names: list[str]) -> None:
        images.build_stack(stack, names)

    def scheduled_drill_image(self, env: Environment) -> str:
        """The lab's own, which a lab host cannot pull: verify-backup pushes it there."""
        return images.drill(docker.from_env(), images.POSTGRES_MAJOR)

    def drill_image(self, env: Environment, remote: Remote, major: int) -> str:
        """The lab's own (nothing can be pulled), pushed to the host unless it has it."""
        name = images.drill(docker.from_env(), major)
        if not remote.ok(sh("docker", "image", "inspect", name)):
            console.step(f"pushing {name} to {remote.address}")
            push(remote, [name])
        return name


def _launched(parsed: dict[str, Any], **_: Any) -> None:
    lab = Lab.connect()
    for instance in parsed.get("Instances", []):
        host = lab.serve_instance(instance["InstanceId"])
        profile = instance.get("IamInstanceProfile", {}).get("Arn", "").rpartition("/")[2]
        MetadataService(lab.state).attach_profile(host.address, profile or None)


def _stopped(parsed: dict[str, Any], **_: Any) -> None:
    lab = Lab.connect()
    for instance in parsed.get("StoppingInstances", []):
        lab.stop_instance(instance["InstanceId"])


def _started(parsed: dict[str, Any], **_: Any) -> None:
    lab = Lab.connect()
    for instance in parsed.get("StartingInstances", []):
        lab.start_instance(instance["InstanceId"])


def _terminated(parsed: dict[str, Any], **_: Any) -> None:
    lab = Lab.connect()
    for instance in parsed.get("TerminatingInstances", []):
        lab.retire_instance(instance["InstanceId"])
