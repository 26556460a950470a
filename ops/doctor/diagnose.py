"""Run doctor's checks: all of them for `inv doctor`, those that matter to a task before it
plans (`preflight`), which stops the task on the first failure, before anything changes.

Which checks run:

==================  ======  =========  ======
check               doctor  provision  deploy
==================  ======  =========  ======
aws credentials     yes     yes        yes
account and region  yes     yes        yes
service quotas      yes     yes        no
ses sandbox         yes     yes (warn) no
admin address       yes     no         no
ssh, host key       yes     no         yes
database            yes     no         yes
==================  ======  =========  ======

The credentials check's STS answer is the account of the task's scope (ops.approval.Scope):
a task that runs the preflight asks STS nothing more for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ops import console, provider
from ops.approval import Approval, Scope
from ops.config import Environment
from ops.doctor import checks, reads
from ops.doctor.checks import Check, Outcome
from ops.errors import OpsError

QUOTAS, SES, ADMIN, HOST, DATABASE = "quotas", "ses", "admin", "host", "database"
EVERYTHING = frozenset({QUOTAS, SES, ADMIN, HOST, DATABASE})
PROVISION = frozenset({QUOTAS, SES})
DEPLOY = frozenset({HOST, DATABASE})
NO_CREDENTIALS = "no usable AWS credentials"


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    scope: Scope | None = None

    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.outcome is Outcome.FAIL]


def diagnose(env: Environment, wanted: frozenset[str] = EVERYTHING) -> Report:
    """The credentials and account checks, then those `wanted`, in that order."""
    found = reads.credentials(env)
    report = Report([found.check], found.scope)
    aws = found.scope is not None
    report.checks.append(checks.account(found.scope.line(), found.arn) if found.scope
                         else checks.skipped(checks.ACCOUNT, NO_CREDENTIALS))
    if QUOTAS in wanted:
        report.checks += _quotas(env, aws)
    if SES in wanted:
        report.checks.append(reads.ses(env) if aws else
                             checks.skipped(checks.SES, NO_CREDENTIALS))
    if ADMIN in wanted:
        report.checks.append(
            checks.skipped(checks.ADMIN, f"host.address {env.host.address} is not a host "
                           "provision makes: network.admin_cidrs is not its firewall")
            if env.host.address else reads.admin_address(env))
    if HOST in wanted:
        report.checks += _host(env, aws, database=DATABASE in wanted)
    return report


def _quotas(env: Environment, aws: bool) -> list[Check]:
    if not provider.of(env).service_quotas:
        return [checks.skipped("quotas", f"{env.name}'s hosts and databases are bound by no "
                               "AWS quota (its provider makes them)")]
    if not aws:
        return [checks.skipped("quotas", NO_CREDENTIALS)]
    return reads.quotas(env)


def _host(env: Environment, aws: bool, *, database: bool) -> list[Check]:
    """ssh, host key (and the database from the host): the host is looked up in AWS unless
    host.address names it, and the database always is (on AWS)."""
    if not aws and not env.host.address:
        return [checks.skipped(checks.SSH, NO_CREDENTIALS + " to find the host with"),
                checks.skipped(checks.HOST_KEY, NO_CREDENTIALS + " to find the host with"),
                *([checks.skipped(checks.DATABASE, NO_CREDENTIALS)] if database else [])]
    with reads.host(env) as found:
        if not database:
            pass
        elif not aws:
            found.checks.append(checks.skipped(checks.DATABASE, NO_CREDENTIALS))
        elif found.absent:
            found.checks.append(checks.skipped(checks.DATABASE, checks.NO_HOST,
                                               checks.PROVISION))
        elif found.remote is None:
            found.checks.append(checks.skipped(checks.DATABASE, "the host was not reached"))
        else:
            found.checks.append(reads.database(env, found.remote))
    return found.checks


def show(report: Report) -> None:
    """Each check as one line, what to do under it."""
    for check in report.checks:
        line = f"{check.name}: {check.finding}"
        if check.outcome is Outcome.OK:
            console.ok(line)
        elif check.outcome is Outcome.WARN:
            console.warn(line)
        elif check.outcome is Outcome.FAIL:
            console.say(f"✗ {line}", "bold red")
        else:
            console.say(f"- {line}", "dim")
        if check.remedy and check.outcome is not Outcome.OK:
            console.say(f"    → {check.remedy}", "dim")


def as_json(env: Environment, report: Report) -> dict[str, object]:
    return {"environment": env.name,
            "scope": vars(report.scope) if report.scope else None,
            "checks": [c.as_dict() for c in report.checks],
            "exit_code": checks.exit_code(report.checks)}


def preflight(env: Environment, wanted: frozenset[str], approval: Approval) -> Scope:
    """The checks that matter to a task, before it plans: warnings said, the first failure
    raised with what to do (nothing has changed yet); the scope the task acts in."""
    report = diagnose(env, wanted)
    approval.record["preflight"] = [c.as_dict() for c in report.checks]
    for check in report.failed():
        raise OpsError(f"preflight: {check.name}: {check.finding}", hint=check.remedy,
                       code=check.code)
    for check in report.checks:
        if check.outcome is Outcome.WARN:
            console.warn(f"{check.name}: {check.finding}")
    assert report.scope is not None  # the credentials check passed
    return report.scope
