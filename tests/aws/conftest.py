"""The aws tier: a real AWS API emulator over HTTP, started once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from ops import config
from ops.config import Environment
from tests.aws.provisioning import reset

ENV_YML = """
kind: aws
domain: openlmis.test.example.org
aws: {region: eu-west-1}
network: {admin_cidrs: [203.0.113.0/24]}
database: {master_password: "ssm:/openlmis/test/db"}
mail: {from_address: noreply@openlmis.test.example.org}
"""


@pytest.fixture(scope="session")
def emulator() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Environment:
    """An `aws` environment whose credential chain and endpoint lead to the emulator, which
    holds nothing yet."""
    reset(emulator)
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    path = tmp_path / "awstest.yml"
    path.write_text(ENV_YML)
    return config.load(path=path)
