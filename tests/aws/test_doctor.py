"""doctor against the emulator: credentials (and their expiry), account and region, the
quotas provision needs, SES's sandbox; provision's preflight stopping before any change."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from invoke import Context, Exit

from ops import config, console
from ops.aws import calls, session
from ops.doctor import diagnose
from ops.doctor.checks import Outcome
from ops.errors import AWS_LOGIN, FAILED
from ops.tasks import doctor as doctor_task
from ops.tasks import provision as tasks
from tests.aws.provisioning import REGION, boto, make_env

ACCOUNT = "123456789012"  # the emulator's


@pytest.fixture(autouse=True)
def _fresh_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's credentials are read anew (sessions keep what they resolved)."""
    monkeypatch.setattr(session, "_SESSIONS", {})
    monkeypatch.setattr(session, "_CLIENTS", {})


def outcomes(report: diagnose.Report) -> dict[str, tuple[Outcome, str]]:
    return {c.name: (c.outcome, c.finding) for c in report.checks}


def test_doctor_on_a_fresh_account_reads_everything_and_says_what_it_cannot_tell(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = make_env(emulator, monkeypatch, tmp_path, zone=False)
    with calls.watch() as log:
        report = diagnose.diagnose(env, diagnose.PROVISION | {diagnose.HOST, diagnose.DATABASE})
    assert log.mutations == []
    assert log.calls.count("sts.GetCallerIdentity") == 1
    found = outcomes(report)
    assert found["aws credentials"] == (
        Outcome.OK, "accepted (env); when they expire cannot be told")
    assert found["aws account and region"][1].startswith(
        f"environment awstest · account {ACCOUNT} · region {REGION} (as arn:aws:")
    assert found["quota: VPCs"] == (Outcome.OK, "1 of 5 in use, provision needs 1 more")
    vcpus = found["quota: On-Demand vCPUs (m6i.xlarge's family)"]
    assert vcpus[0] is Outcome.WARN  # the emulator serves VPC's quotas only
    assert vcpus[1].startswith("cannot be told: Service Quotas gave no value for ec2 "
                               "L-1216C47A (NoSuchResourceException)")
    assert "runs 4 vCPUs" in vcpus[1]
    assert found["ses sandbox"][0] is Outcome.WARN
    assert found["ses sandbox"][1].startswith("cannot be told whether SES in eu-west-1")
    assert found["ssh"] == (Outcome.SKIPPED, "skipped: no host yet")
    assert found["database"] == (Outcome.SKIPPED, "skipped: no host yet")
    assert report.scope is not None and report.scope.account == ACCOUNT
    assert report.failed() == []


def test_a_full_vpc_quota_stops_provision_before_any_change(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    make_env(emulator, monkeypatch, tmp_path, zone=False)
    ec2 = boto(emulator)("ec2")
    for n in range(4):  # beside the default VPC: 5 of 5
        ec2.create_vpc(CidrBlock=f"10.{n + 1}.0.0/16")  # type: ignore[attr-defined]
    monkeypatch.setenv("OPS_CONFIG_DIR", str(tmp_path))
    capsys.readouterr()
    with calls.watch() as log, pytest.raises(Exit) as stopped:
        tasks.provision(Context(), env="awstest", yes=True, json_=True)
    assert stopped.value.code == FAILED and log.mutations == []
    assert log.calls.count("sts.GetCallerIdentity") == 1  # the preflight's, shared by the plan
    said = capsys.readouterr()
    assert ("preflight: quota: VPCs: 5 of 5 in use, provision needs 1 more: provision makes "
            "one VPC") in said.err
    assert ("--service-code vpc --quota-code L-F678F1CE --desired-value 6") in said.err
    record = json.loads(said.out)
    assert "plan" not in record
    assert {"name": "quota: VPCs", "outcome": "fail"}.items() <= record["preflight"][2].items()


def test_provision_shares_the_preflight_sts_call_with_its_plan(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    make_env(emulator, monkeypatch, tmp_path, zone=False)
    monkeypatch.setenv("OPS_CONFIG_DIR", str(tmp_path))
    with calls.watch() as log, pytest.raises(Exit) as planned:
        tasks.provision(Context(), env="awstest", plan=True)
    assert planned.value.code == 2
    assert log.calls.count("sts.GetCallerIdentity") == 1
    said = capsys.readouterr().out
    assert "! ses sandbox: cannot be told" in said  # a warning: provision goes on
    assert f"environment awstest · account {ACCOUNT} · region {REGION}" in said


def test_expired_credentials_fail_with_the_login_status_before_any_call(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    make_env(emulator, monkeypatch, tmp_path, zone=False)
    monkeypatch.setenv("OPS_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    monkeypatch.setenv("AWS_CREDENTIAL_EXPIRATION", "2026-01-01T00:00:00Z")
    capsys.readouterr()
    with calls.watch() as log, pytest.raises(Exit) as stopped:
        doctor_task.doctor(Context(), env="awstest", json_=True)
    assert stopped.value.code == AWS_LOGIN and log.calls == []
    record = json.loads(capsys.readouterr().out)
    first = record["checks"][0]
    assert first == {"name": "aws credentials", "outcome": "fail",
                     "finding": "the AWS credentials expired at 2026-01-01 00:00 UTC (env)",
                     "remedy": first["remedy"]}
    assert first["remedy"].startswith("log in again: aws sso login")
    assert {c["name"]: c["outcome"] for c in record["checks"]}["quotas"] == "skipped"
    assert record["exit_code"] == AWS_LOGIN
    with pytest.raises(Exit) as refused:  # botocore alone would raise a RuntimeError here
        tasks.provision(Context(), env="awstest", yes=True)
    assert refused.value.code == AWS_LOGIN
    assert "preflight: aws credentials: the AWS credentials expired at 2026-01-01 00:00 UTC" \
        in capsys.readouterr().err


def test_a_token_aws_refuses_as_expired_is_the_login_status(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """STS answering ExpiredToken: the emulator never does, so a hook answers for it."""
    env = make_env(emulator, monkeypatch, tmp_path, zone=False)

    def expired(model: Any, **_: Any) -> None:
        if model.name == "GetCallerIdentity":
            raise ClientError({"Error": {"Code": "ExpiredToken", "Message": "The security "
                                         "token included in the request is expired"}},
                              model.name)

    remove = session.add_hook("before-call", expired)
    try:
        report = diagnose.diagnose(env, diagnose.PROVISION)
    finally:
        remove()
    first = report.checks[0]
    assert (first.outcome, first.finding, first.code) == (
        Outcome.FAIL, "AWS refused GetCallerIdentity: the credentials have expired or are not "
        "valid (ExpiredToken)", AWS_LOGIN)
    assert first.remedy.startswith("log in again: aws sso login")
    assert {c.outcome for c in report.checks[1:]} == {Outcome.SKIPPED}
    assert report.scope is None


def test_credentials_ending_within_the_hour_are_a_warning(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = make_env(emulator, monkeypatch, tmp_path, zone=False)
    ends = datetime.now(UTC) + timedelta(minutes=30)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    monkeypatch.setenv("AWS_CREDENTIAL_EXPIRATION", ends.strftime("%Y-%m-%dT%H:%M:%SZ"))
    check = diagnose.diagnose(env, frozenset()).checks[0]
    assert check.outcome is Outcome.WARN
    assert "accepted (env), but they expire in 30 min" in check.finding \
        or "accepted (env), but they expire in 29 min" in check.finding


def test_an_expired_sso_session_says_to_log_in_with_the_profile(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A profile of ~/.aws/config with an sso-session, whose token `aws sso login` left
    expired in botocore's cache: read as botocore reads it."""
    home = tmp_path / "home"
    (home / ".aws" / "sso" / "cache").mkdir(parents=True)
    (home / ".aws" / "config").write_text(
        "[profile openlmis-prod]\nsso_session = corp\nsso_account_id = 123456789012\n"
        "sso_role_name = Ops\nregion = eu-west-1\n\n[sso-session corp]\n"
        "sso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n")
    import hashlib

    (home / ".aws" / "sso" / "cache" / f"{hashlib.sha1(b'corp').hexdigest()}.json").write_text(
        json.dumps({"startUrl": "https://corp.awsapps.com/start", "region": "eu-west-1",
                    "accessToken": "expired", "expiresAt": "2026-11-01T08:00:00Z"}))
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_CONFIG_FILE",
                "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator)
    path = tmp_path / "ssotest.yml"
    path.write_text("kind: aws\ndomain: openlmis.test.example.org\n"
                    "aws: {region: eu-west-1, profile: openlmis-prod}\n"
                    "database: {master_password: 'ssm:/openlmis/test/db'}\n"
                    "mail: {from_address: noreply@openlmis.test.example.org}\n")
    env = config.load(path=path)
    with calls.watch() as log:
        report = diagnose.diagnose(env, diagnose.EVERYTHING - {diagnose.ADMIN})
    assert log.calls == []
    first = report.checks[0]
    assert (first.outcome, first.finding, first.code) == (
        Outcome.FAIL, "the AWS SSO session expired at 2026-11-01 08:00 UTC (sso)", AWS_LOGIN)
    assert first.remedy.startswith("log in again: aws sso login --profile openlmis-prod")
    assert [c.outcome for c in report.checks[1:]] == [Outcome.SKIPPED] * 6
    diagnose.show(report)
    assert "    → log in again: aws sso login --profile openlmis-prod" in capsys.readouterr().out


def test_the_console_shows_every_check_on_one_line(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    env = make_env(emulator, monkeypatch, tmp_path, zone=False)
    monkeypatch.setattr(console, "console", console.console)
    diagnose.show(diagnose.diagnose(env, diagnose.PROVISION))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "✓ aws credentials: accepted (env); when they expire cannot be told"
    assert "✓ quota: VPCs: 1 of 5 in use, provision needs 1 more" in lines
