"""AWS failures as one message and an exit code each (ops.aws.failures, through the tasks'
guard). Real botocore where the failure can be caused here: an expired SSO token in a real
token cache, a read that times out against a socket that never answers. Injected (botocore's
Stubber, or the exception botocore raises) where it cannot: a throttle, an expired session
token, a token that cannot be retrieved."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.credentials import SSOProvider
from botocore.exceptions import (
    ReadTimeoutError,
    SSOTokenLoadError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)
from botocore.stub import Stubber
from invoke import Collection, Context, Program

from ops.aws import failures, session
from ops.config import Environment
from ops.errors import AWS_LOGIN, EXIT_CODES, FAILED, INTERRUPTED, TRANSIENT, OpsError
from ops.tasks.common import operation, read_only, task

START_URL = "https://ops-test.awsapps.com/start"


def ec2() -> Any:
    return boto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x",
                         region_name="us-east-1").client("ec2")


def guarded_exit(exc: BaseException, capsys: pytest.CaptureFixture[str], *,
                 changes: bool = False) -> tuple[int, str]:
    """The exit status and output of a task that meets `exc`, run as `inv` runs it."""
    def fails(c: Context) -> None:
        raise exc

    body = task(operation(fails) if changes else read_only(fails), name="fails")
    with pytest.raises(SystemExit) as exited:
        Program(namespace=Collection(body), version="test").run(["inv", "fails"])
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out + captured.err


@pytest.fixture
def expired_sso_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A profile whose SSO login has expired, as `aws sso login` leaves its token cache."""
    config = tmp_path / "config"
    config.write_text("[profile ops-prod]\n"
                      f"sso_start_url = {START_URL}\nsso_region = eu-west-1\n"
                      "sso_account_id = 123456789012\nsso_role_name = Operator\n"
                      "region = eu-west-1\n")
    cache = tmp_path / "sso-cache"  # ~/.aws/sso/cache, which botocore reads at import
    cache.mkdir()
    monkeypatch.setattr(SSOProvider, "_SSO_TOKEN_CACHE_DIR", str(cache))
    name = hashlib.sha1(START_URL.encode()).hexdigest()
    (cache / f"{name}.json").write_text(json.dumps({
        "startUrl": START_URL, "region": "eu-west-1", "accessToken": "expired-token",
        "expiresAt": "2020-01-01T00:00:00Z"}))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                     "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    return "ops-prod"


def test_an_expired_sso_login_says_to_log_in_again(
        expired_sso_profile: str, capsys: pytest.CaptureFixture[str]) -> None:
    sts = boto3.Session(profile_name=expired_sso_profile).client("sts")
    with pytest.raises(UnauthorizedSSOTokenError) as raised:
        sts.get_caller_identity()
    explained = failures.explain(raised.value, expired_sso_profile)
    assert explained is not None and explained.code == AWS_LOGIN
    assert explained.message.startswith("the AWS SSO session has expired or cannot be read")
    assert "aws sso login --profile ops-prod" in explained.hint
    code, out = guarded_exit(raised.value, capsys)
    assert code == AWS_LOGIN and "Traceback" not in out
    assert out.startswith("✗ the AWS SSO session has expired")


@pytest.mark.parametrize("exc", [
    TokenRetrievalError(provider="sso", error_msg="the refresh token has expired"),
    SSOTokenLoadError(error_msg="no token in the cache"),
    UnauthorizedSSOTokenError(),
])
def test_every_sso_failure_is_a_login_to_do(exc: Exception,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "ops-staging")
    monkeypatch.setattr(session, "_PROFILES", [])
    explained = failures.explain(exc, session.profile())
    assert explained is not None and explained.code == AWS_LOGIN
    assert "aws sso login --profile ops-staging" in explained.hint


def test_an_expired_session_token_says_to_log_in_again() -> None:
    client = ec2()
    with Stubber(client) as stub:
        stub.add_client_error("describe_vpcs", service_error_code="ExpiredToken",
                              service_message="The security token included in the request "
                              "is expired", http_status_code=400)
        with pytest.raises(Exception) as raised:
            client.describe_vpcs()
    explained = failures.explain(raised.value, None)
    assert explained is not None and explained.code == AWS_LOGIN
    assert explained.message == ("AWS refused DescribeVpcs: the credentials have expired or "
                                 "are not valid (ExpiredToken)")
    assert "aws sso login (" in explained.hint  # no profile to name


def test_credentials_still_expired_after_a_refresh_say_to_log_in_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """botocore raises a bare RuntimeError when a credential process hands out expired
    credentials: one message too, not a traceback."""
    answer = json.dumps({"Version": 1, "AccessKeyId": "AKIDEXAMPLE", "SecretAccessKey": "x",
                         "SessionToken": "y", "Expiration": "2020-01-01T00:00:00Z"})
    config = tmp_path / "config"
    config.write_text(f"[profile ops-prod]\ncredential_process = echo '{answer}'\n"
                      "region = eu-west-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                     "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_PROFILE", "ops-prod")
    monkeypatch.setattr(session, "_PROFILES", [])
    with pytest.raises(RuntimeError) as raised:
        boto3.Session().client("sts").get_caller_identity()
    code, out = guarded_exit(raised.value, capsys)
    assert code == AWS_LOGIN and "Traceback" not in out
    assert out.startswith("✗ the AWS credentials have expired")
    assert "aws sso login --profile ops-prod" in out


def test_a_throttle_that_outlasts_the_retries_is_one_message(
        capsys: pytest.CaptureFixture[str]) -> None:
    client = ec2()
    with Stubber(client) as stub:
        stub.add_client_error("describe_instances", service_error_code="RequestLimitExceeded",
                              http_status_code=503,
                              response_meta={"RetryAttempts": session.MAX_ATTEMPTS - 1})
        with pytest.raises(Exception) as raised:
            client.describe_instances()
    explained = failures.explain(raised.value, None)
    assert explained is not None and explained.code == TRANSIENT
    assert explained.message == (f"AWS is throttling DescribeInstances (RequestLimitExceeded), "
                                 f"still after {session.MAX_ATTEMPTS - 1} retries")
    code, out = guarded_exit(raised.value, capsys, changes=True)
    assert code == TRANSIENT and "Traceback" not in out
    assert out.startswith("✗ AWS is throttling DescribeInstances")


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """An HTTP endpoint that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def test_an_api_that_does_not_answer_in_time_is_one_message(silent_endpoint: str) -> None:
    client = boto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x",
                           region_name="us-east-1").client(
        "ec2", endpoint_url=silent_endpoint,
        config=Config(read_timeout=0.2, retries={"mode": "standard", "max_attempts": 1}))
    with pytest.raises(ReadTimeoutError) as raised:
        client.describe_vpcs()
    explained = failures.explain(raised.value, None)
    assert explained is not None and explained.code == TRANSIENT
    assert explained.message.startswith("the AWS API did not answer in time: Read timeout")


def test_clients_retry_in_standard_mode_with_timeouts(
        monkeypatch: pytest.MonkeyPatch) -> None:
    made: dict[str, object] = {}

    class Where:
        def aws_endpoint(self) -> str:
            return "http://127.0.0.1:9"

        def aws_session(self, region: str, profile: str | None) -> boto3.Session:
            made["profile"] = profile
            return boto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x",
                                 region_name=region)

    monkeypatch.setattr(session.provider, "of", lambda env: Where())
    monkeypatch.setattr(session, "_CLIENTS", {})
    monkeypatch.setattr(session, "_SESSIONS", {})
    monkeypatch.setattr(session, "_PROFILES", [])
    env = Environment.model_validate({
        "name": "t", "kind": "aws", "domain": "x.example.org",
        "aws": {"region": "eu-west-1", "profile": "ops-prod"},
        "host": {"ssh_public_key": "ssh-ed25519 AAAA", "ssh_private_key": "~/.ssh/k"},
        "database": {"master_password": "env:X"}, "mail": {"from_address": "a@x.example.org"}})
    for service in ("ec2", "s3"):
        config = session.client(env, service).meta.config
        assert config.retries == {"mode": "standard", "total_max_attempts": session.MAX_ATTEMPTS}
        assert (config.connect_timeout, config.read_timeout) == (session.CONNECT_TIMEOUT,
                                                                 session.READ_TIMEOUT)
    assert session.profile() == "ops-prod" == made["profile"]


def test_the_exit_codes_are_one_table() -> None:
    assert EXIT_CODES[FAILED] and EXIT_CODES[AWS_LOGIN] and EXIT_CODES[TRANSIENT]
    assert EXIT_CODES[INTERRUPTED] == "interrupted by Ctrl-C"
    assert OpsError("x").code == FAILED
