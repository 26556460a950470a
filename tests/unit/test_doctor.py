"""doctor's checks: each one's ok / warn / fail / skipped wording, and the exit status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import ip_network

from ops.doctor import checks
from ops.doctor.checks import Outcome, Quota
from ops.doctor.reads import STANDARD_VCPUS, vcpu_quota
from ops.errors import AWS_LOGIN, FAILED, OK

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
LOGIN = "log in again: aws sso login --profile prod"


def test_credentials_without_an_expiry_are_ok_and_say_it_cannot_be_told() -> None:
    found = checks.credentials("shared-credentials-file", None, NOW, login=LOGIN)
    assert (found.outcome, found.finding) == (
        Outcome.OK, "accepted (shared-credentials-file); when they expire cannot be told")


def test_an_sso_session_ending_within_the_hour_is_a_warning_with_the_login_command() -> None:
    found = checks.credentials("sso", NOW + timedelta(minutes=42), NOW, login=LOGIN)
    assert found.outcome is Outcome.WARN
    assert found.finding == ("accepted (sso), but the SSO session expires in 42 min (at "
                             "2026-11-29 12:42 UTC): a long provision or deploy may be cut off")
    assert found.remedy == f"{LOGIN} now, before starting"


def test_credentials_lasting_longer_are_ok_with_their_expiry() -> None:
    found = checks.credentials("env", NOW + timedelta(hours=7, minutes=5), NOW, login=LOGIN)
    assert (found.outcome, found.finding) == (
        Outcome.OK, "accepted (env); they expire in 7 h 05 min (at 2026-11-29 19:05 UTC)")


def test_an_sso_token_that_renews_itself_is_ok_even_near_its_expiry() -> None:
    found = checks.credentials("sso", NOW + timedelta(minutes=5), NOW, login=LOGIN, renews=True)
    assert found.outcome is Outcome.OK and "renews itself" in found.finding


def test_expired_credentials_fail_with_the_login_exit_status() -> None:
    found = checks.credentials("sso", NOW - timedelta(minutes=1), NOW, login=LOGIN)
    assert (found.outcome, found.finding, found.remedy, found.code) == (
        Outcome.FAIL, "the AWS SSO session expired at 2026-11-29 11:59 UTC (sso)", LOGIN,
        AWS_LOGIN)


VPCS = Quota("VPCs", "vpc", "L-F678F1CE", "provision makes one VPC")


def test_a_quota_with_room_is_ok_and_one_without_fails_with_the_increase_command() -> None:
    assert checks.quota(VPCS, 5, 3, 1).finding == "3 of 5 in use, provision needs 1 more"
    assert checks.quota(VPCS, 5, 5, 0).outcome is Outcome.OK  # the environment's own is there
    full = checks.quota(VPCS, 5, 5, 1)
    assert (full.name, full.outcome) == ("quota: VPCs", Outcome.FAIL)
    assert full.finding == "5 of 5 in use, provision needs 1 more: provision makes one VPC"
    assert full.remedy == ("request an increase: aws service-quotas "
                           "request-service-quota-increase --service-code vpc --quota-code "
                           "L-F678F1CE --desired-value 6")


def test_a_quota_service_quotas_does_not_give_is_a_warning_not_a_guess() -> None:
    found = checks.quota(VPCS, None, 3, 1, unknown="NoSuchResourceException")
    assert found.outcome is Outcome.WARN
    assert found.finding.startswith("cannot be told: Service Quotas gave no value for vpc "
                                    "L-F678F1CE (NoSuchResourceException)")
    assert "Service Quotas console" in found.remedy


def test_vcpu_quotas_follow_the_instance_family() -> None:
    assert vcpu_quota("m6i.xlarge") == vcpu_quota("t3.micro") == STANDARD_VCPUS
    assert vcpu_quota("r7g.2xlarge") == STANDARD_VCPUS
    assert vcpu_quota("g5.xlarge") == "L-DB2E81BA"
    assert vcpu_quota("p4d.24xlarge") == "L-417A185B"
    assert vcpu_quota("inf2.xlarge") == "L-1945791B"
    assert vcpu_quota("x2iedn.xlarge") == "L-7295265B"


def test_ses_sandbox_is_a_warning_and_production_access_ok() -> None:
    sandbox = checks.ses("af-south-1", False)
    assert (sandbox.outcome, sandbox.finding) == (
        Outcome.WARN, "SES in af-south-1 is in the sandbox: mail reaches verified addresses "
        "only (password resets, notifications)")
    assert "runbook 03" in sandbox.remedy
    assert checks.ses("af-south-1", True).outcome is Outcome.OK
    unknown = checks.ses("af-south-1", None, unknown="GetAccount: 404")
    assert (unknown.outcome, unknown.finding) == (
        Outcome.WARN, "cannot be told whether SES in af-south-1 is out of the sandbox "
        "(GetAccount: 404)")


def test_the_admin_address_inside_outside_or_unknown() -> None:
    cidrs = [ip_network("203.0.113.0/24"), ip_network("198.51.100.7/32")]
    inside = checks.admin_address("198.51.100.7", cidrs)
    assert (inside.outcome, inside.finding) == (
        Outcome.OK, "198.51.100.7 is in network.admin_cidrs (198.51.100.7/32)")
    outside = checks.admin_address("192.0.2.1", cidrs)
    assert outside.outcome is Outcome.FAIL
    assert outside.finding == ("192.0.2.1 is not in network.admin_cidrs (203.0.113.0/24, "
                               "198.51.100.7/32): the host's security group refuses SSH from "
                               "here")
    assert outside.remedy.startswith("add 192.0.2.1/32 (or your network) to network.admin_cidrs")
    unknown = checks.admin_address(None, cidrs)
    assert (unknown.outcome, unknown.finding) == (
        Outcome.WARN, "this machine's public address cannot be told (on AWS: "
        "checkip.amazonaws.com did not answer)")


def test_a_refused_host_key_fails_the_key_and_skips_the_login() -> None:
    ssh, key = checks.host_key_refused("10.0.0.5", "10.0.0.5's host key CHANGED: it now "
                                       "offers ssh-ed25519 SHA256:abc", "check it")
    assert (ssh.outcome, ssh.finding) == (
        Outcome.SKIPPED, "skipped: no login tried: 10.0.0.5's host key is not trusted")
    assert (key.outcome, key.remedy) == (Outcome.FAIL, "check it")
    ssh, key = checks.host_unreachable("10.0.0.5", "cannot connect", "check the address")
    assert (ssh.outcome, key.outcome) == (Outcome.FAIL, Outcome.SKIPPED)


def test_the_database_from_the_host() -> None:
    verified = checks.database("db.internal", 5432, reachable=True, psql="/usr/bin/psql",
                               output="t\n")
    assert (verified.outcome, verified.finding) == (
        Outcome.OK, "logged in from the host to db.internal:5432 over TLS, the server's "
        "certificate verified (verify-full)")
    closed = checks.database("db.internal", 5432, reachable=False, psql=None)
    assert (closed.outcome, closed.finding) == (
        Outcome.FAIL, "the host cannot reach db.internal:5432")
    no_client = checks.database("db.internal", 5432, reachable=True, psql=None)
    assert no_client.outcome is Outcome.WARN and "inv deploy installs one" in no_client.remedy
    wrong_ca = checks.database("db.internal", 5432, reachable=True, psql="/usr/bin/psql",
                               code=2, output="psql: error: connection to server at "
                               "\"db.internal\" (10.0.0.9), port 5432 failed: SSL error: "
                               "certificate verify failed\n")
    assert wrong_ca.outcome is Outcome.FAIL and "database.ca_bundle" in wrong_ca.remedy
    refused = checks.database("db.internal", 5432, reachable=True, psql="/usr/bin/psql",
                              code=2, output="psql: error: FATAL:  password authentication "
                              "failed for user \"postgres\"\n")
    assert refused.finding.startswith("db.internal:5432 refused the master user's login")
    plain = checks.database("db.internal", 5432, reachable=True, psql="/usr/bin/psql",
                            output="f\n")
    assert (plain.outcome, plain.finding) == (
        Outcome.FAIL, "the session to db.internal:5432 is not encrypted")


def test_skipped_checks_say_why_and_what_to_run() -> None:
    found = checks.skipped(checks.SSH, checks.NO_HOST, checks.PROVISION)
    assert (found.finding, found.remedy) == ("skipped: no host yet", "run: inv provision")
    assert found.as_dict() == {"name": "ssh", "outcome": "skipped",
                               "finding": "skipped: no host yet", "remedy": "run: inv provision"}


def test_exit_status_fails_only_on_a_failure_and_says_login_for_credentials() -> None:
    fine = [checks.ok("a", "x"), checks.warn("b", "y", "z"), checks.skipped("c", "w")]
    assert checks.exit_code(fine) == OK
    assert checks.exit_code([*fine, checks.fail("d", "v", "u")]) == FAILED
    expired = checks.credentials("sso", NOW - timedelta(hours=1), NOW, login=LOGIN)
    assert checks.exit_code([expired, checks.fail("d", "v", "u")]) == AWS_LOGIN
