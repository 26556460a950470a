"""Shared by the provision/status/destroy tests: a clean emulator and an environment for it."""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import settings as moto_settings

from ops import config
from ops.aws import session
from ops.config import Environment

REGION = "eu-west-1"
PASSWORD = "db-master-Secret-123"


def reset(emulator: str) -> None:
    """Forget everything the emulator holds (each test starts from an empty account)."""
    request = urllib.request.Request(f"{emulator}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()


def make_env(emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
             *, zone: bool = True, extra: str = "") -> Environment:
    """A fresh account with the environment's prerequisites (secret, key, AMI, zone)."""
    reset(emulator)
    tmp_path.mkdir(parents=True, exist_ok=True)
    # The emulator issues certificates after ACM_VALIDATION_WAIT seconds (60 by default).
    monkeypatch.setattr(moto_settings, "ACM_VALIDATION_WAIT", 0)
    for key, value in {"AWS_ENDPOINT_URL": emulator, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    aws = boto3.Session(region_name=REGION)
    aws.client("ssm", endpoint_url=emulator).put_parameter(
        Name="/openlmis/test/db", Value=PASSWORD, Type="SecureString", Overwrite=True)
    image = aws.client("ec2", endpoint_url=emulator).describe_images(
        Owners=["099720109477"])["Images"][0]["ImageId"]
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    zone_line = ""
    if zone:
        zone_id = aws.client("route53", endpoint_url=emulator).create_hosted_zone(
            Name="test.example.org", CallerReference="tests")["HostedZone"]["Id"]
        zone_line = f"route53_zone_id: {zone_id.split('/')[-1]}\n"
    path = tmp_path / "awstest.yml"
    path.write_text(f"""
kind: aws
domain: openlmis.test.example.org
{zone_line}aws: {{region: {REGION}}}
network: {{admin_cidrs: [203.0.113.0/24]}}
host: {{ami: {image}, ssh_public_key: {key}.pub, instance_type: m6i.xlarge}}
database: {{master_password: "ssm:/openlmis/test/db"}}
mail: {{from_address: noreply@openlmis.test.example.org}}
{extra}""")
    return config.load(path=path)


def boto(emulator: str) -> Callable[[str], object]:
    """Plain boto3 clients for reading the result back, independent of the toolkit."""
    session = boto3.Session(region_name=REGION, aws_access_key_id="testing",
                            aws_secret_access_key="testing")
    return lambda service: session.client(service, endpoint_url=emulator)


def groups(ec2: Any) -> dict[str, dict[str, Any]]:
    """The environment's security groups by role (lb, host, db)."""
    found = ec2.describe_security_groups(
        Filters=[{"Name": "tag:openlmis:environment", "Values": ["awstest"]}])["SecurityGroups"]
    return {g["GroupName"].removeprefix("openlmis-awstest-"): g for g in found}


def ingress(group: dict[str, Any], names: dict[str, str]) -> set[tuple[int, str]]:
    """A group's ingress rules as (port, source CIDR or group role); TCP, single ports, no IPv6."""
    rules = set()
    for perm in group["IpPermissions"]:
        assert perm["IpProtocol"] == "tcp"
        assert perm["FromPort"] == perm["ToPort"]
        rules |= {(perm["FromPort"], r["CidrIp"]) for r in perm.get("IpRanges", [])}
        rules |= {(perm["FromPort"], names[p["GroupId"]])
                  for p in perm.get("UserIdGroupPairs", [])}
        assert not perm.get("Ipv6Ranges")
    return rules


@contextmanager
def tokens() -> Iterator[list[str]]:
    """The ClientToken of every RunInstances sent while inside."""
    sent: list[str] = []

    def before(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "RunInstances":
            sent.append(params["body"]["ClientToken"])

    remove = session.add_hook("before-call", before)
    try:
        yield sent
    finally:
        remove()
