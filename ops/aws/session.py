"""boto3 clients for an environment: the normal credential chain on AWS, the emulator in the lab."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from ops.config import Environment
from ops.errors import OpsError

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, s3={"addressing_style": "path"})


def emulator_url() -> str:
    """The lab's AWS API emulator; OpsError when the lab is not up."""
    from ops.lab.emulator import Emulator
    from ops.lab.state import LabState

    url = Emulator(LabState.current()).url()
    if not url:
        raise OpsError("the lab's AWS emulator is not running", hint="run: inv lab.up")
    return url


@cache
def _session(kind: str, region: str, profile: str | None, endpoint: str | None) -> boto3.Session:
    if kind == "lab":
        return boto3.Session(aws_access_key_id="lab", aws_secret_access_key="lab",
                             region_name=region)
    return boto3.Session(profile_name=profile, region_name=region)


def client(env: Environment, service: str) -> Any:
    """A boto3 client for `service` in the environment's account and region."""
    endpoint = emulator_url() if env.kind == "lab" else None
    session = _session(env.kind, env.aws.region, env.aws.profile, endpoint)
    return session.client(service, endpoint_url=endpoint, config=_CONFIG)
