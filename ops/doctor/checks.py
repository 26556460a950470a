"""What each of doctor's checks concludes from what was read: pure, no I/O.

A check has a name, an outcome (ok, warn, fail, skipped), a one-line finding, and, when not
ok, what to do. Failures stop `provision` and `deploy` before anything changes; warnings are
said and do not stop them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import Enum
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any

from ops.errors import AWS_LOGIN, FAILED, OK

SOON = timedelta(hours=1)  # credentials that end sooner may not outlast a provision or deploy


class Outcome(Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    name: str
    outcome: Outcome
    finding: str
    remedy: str = ""
    code: int = FAILED  # the exit status a failure of this check means (ops.errors)

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["outcome"] = self.outcome.value
        del found["code"]
        return found


def ok(name: str, finding: str) -> Check:
    return Check(name, Outcome.OK, finding)


def warn(name: str, finding: str, remedy: str) -> Check:
    return Check(name, Outcome.WARN, finding, remedy)


def fail(name: str, finding: str, remedy: str, code: int = FAILED) -> Check:
    return Check(name, Outcome.FAIL, finding, remedy, code)


def skipped(name: str, reason: str, remedy: str = "") -> Check:
    return Check(name, Outcome.SKIPPED, f"skipped: {reason}", remedy)


def exit_code(checks: Sequence[Check]) -> int:
    """0 unless a check failed: then AWS_LOGIN when the credentials were refused, else the
    first failure's status (FAILED; TRANSIENT when AWS did not answer)."""
    codes = [c.code for c in checks if c.outcome is Outcome.FAIL]
    if not codes:
        return OK
    return AWS_LOGIN if AWS_LOGIN in codes else codes[0]


# --- AWS credentials, account, region ------------------------------------------------------

CREDENTIALS = "aws credentials"
ACCOUNT = "aws account and region"


def _span(delta: timedelta) -> str:
    minutes = max(0, math.ceil(delta.total_seconds() / 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def credentials(method: str, expires: datetime | None, now: datetime, *, login: str,
                renews: bool = False) -> Check:
    """Credentials AWS accepted (`method` as botocore names it: sso, env, shared-credentials-
    file…): ok, or a warning when they end within SOON; a failure when already expired.
    `renews`: the SSO token refreshes itself (an sso-session with a refresh token)."""
    if expires is None:
        return ok(CREDENTIALS, f"accepted ({method}); when they expire cannot be told")
    at = expires.strftime("%Y-%m-%d %H:%M UTC")
    left = expires - now
    if left <= timedelta(0):
        return expired(method, at, login)
    what = "the SSO session expires" if method == "sso" else "they expire"
    if renews:
        return ok(CREDENTIALS, f"accepted ({method}); the SSO token renews itself (this one "
                  f"until {at})")
    if left < SOON:
        return warn(CREDENTIALS, f"accepted ({method}), but {what} in {_span(left)} "
                    f"(at {at}): a long provision or deploy may be cut off",
                    f"{login} now, before starting")
    return ok(CREDENTIALS, f"accepted ({method}); {what} in {_span(left)} (at {at})")


def expired(method: str, at: str, login: str) -> Check:
    what = "the AWS SSO session" if method == "sso" else "the AWS credentials"
    return fail(CREDENTIALS, f"{what} expired at {at} ({method})", login, AWS_LOGIN)


def refused(message: str, hint: str, code: int) -> Check:
    """AWS refused the credentials, or none could be found (ops.aws.failures' message)."""
    return fail(CREDENTIALS, message, hint, code)


def account(line: str, arn: str) -> Check:
    return ok(ACCOUNT, f"{line} (as {arn})")


# --- service quotas -------------------------------------------------------------------------


@dataclass(frozen=True)
class Quota:
    """A Service Quotas quota provision draws on, and why."""

    label: str
    service: str
    code: str
    why: str


def quota(q: Quota, limit: float | None, used: float, needed: float, *,
          unknown: str = "") -> Check:
    """Whether `needed` more fits under the quota `limit` beside what is `used` already."""
    name = f"quota: {q.label}"
    if limit is None:
        return warn(name, f"cannot be told: Service Quotas gave no value for {q.service} "
                    f"{q.code} ({unknown}); {q.why}",
                    f"check it in the Service Quotas console ({q.service}, {q.code}) "
                    "before provisioning")
    counts = f"{used:g} of {limit:g} in use"
    if needed and used + needed > limit:
        return fail(name, f"{counts}, provision needs {needed:g} more: {q.why}",
                    "request an increase: aws service-quotas request-service-quota-increase "
                    f"--service-code {q.service} --quota-code {q.code} "
                    f"--desired-value {math.ceil(used + needed):d}")
    more = f", provision needs {needed:g} more" if needed else ", provision needs none more"
    return ok(name, counts + more)


# --- SES -----------------------------------------------------------------------------------

SES = "ses sandbox"


def ses(region: str, production: bool | None, *, unknown: str = "") -> Check:
    if production is None:
        return warn(SES, f"cannot be told whether SES in {region} is out of the sandbox "
                    f"({unknown})", "check it in the SES console's account dashboard "
                    "(runbook 03)")
    if production:
        return ok(SES, f"SES in {region} has production access")
    return warn(SES, f"SES in {region} is in the sandbox: mail reaches verified addresses "
                "only (password resets, notifications)",
                "request production access in the SES console (runbook 03)")


# --- the operator's address ----------------------------------------------------------------

ADMIN = "admin address"


def admin_address(address: str | None, cidrs: Sequence[IPv4Network | IPv6Network]) -> Check:
    """Whether this machine's address, as the hosts see it, is in network.admin_cidrs, which
    alone may reach the host's SSH."""
    if address is None:
        return warn(ADMIN, "this machine's public address cannot be told (on AWS: "
                    "checkip.amazonaws.com did not answer)", "check that your address is in "
                    "network.admin_cidrs, or SSH to the host will be refused")
    inside = [str(c) for c in cidrs if ip_address(address) in c]
    if inside:
        return ok(ADMIN, f"{address} is in network.admin_cidrs ({', '.join(inside)})")
    listed = ", ".join(str(c) for c in cidrs) or "none"
    return fail(ADMIN, f"{address} is not in network.admin_cidrs ({listed}): the host's "
                "security group refuses SSH from here",
                f"add {address}/32 (or your network) to network.admin_cidrs, then run: "
                "inv provision")


# --- SSH, the host key, the database ---------------------------------------------------------

SSH = "ssh"
HOST_KEY = "host key"
DATABASE = "database"
NO_HOST = "no host yet"
PROVISION = "run: inv provision"


def host_reached(user: str, address: str) -> tuple[Check, Check]:
    return (ok(SSH, f"logged in as {user}@{address}"),
            ok(HOST_KEY, f"{address} offered the key known_hosts holds for it"))


def host_key_refused(address: str, message: str, hint: str) -> tuple[Check, Check]:
    """The host's key is unknown or changed: never trusted silently."""
    return (skipped(SSH, f"no login tried: {address}'s host key is not trusted"),
            fail(HOST_KEY, message, hint))


def host_unreachable(address: str, message: str, hint: str) -> tuple[Check, Check]:
    return (fail(SSH, message, hint),
            skipped(HOST_KEY, f"{address} could not be reached"))


# psql's messages for each way of failing, as libpq words them.
_TLS_FAILURES = ("certificate", "host name", "SSL")
_LOGIN_FAILURES = ("password authentication failed", "no pg_hba.conf entry",
                   "does not exist")


def database(address: str, port: int, *, reachable: bool, psql: str | None,
             code: int = 0, output: str = "") -> Check:
    """From the host: the server's port open (`reachable`), then psql's verdict under
    sslmode=verify-full (`psql`: the client's path, None without one; `code`, `output`: its
    exit status and what it printed: `t` for a TLS session)."""
    where = f"{address}:{port}"
    if not reachable:
        return fail(DATABASE, f"the host cannot reach {where}",
                    "check the database's security group (it admits the host's) and that the "
                    "instance is available: inv status")
    if psql is None:
        return warn(DATABASE, f"the host reaches {where}; TLS not verified: no PostgreSQL "
                    "client on the host yet", "inv deploy installs one; run doctor again "
                    "after it")
    last = (output.strip().splitlines() or [""])[-1]
    if code == 0 and output.strip().endswith("t"):
        return ok(DATABASE, f"logged in from the host to {where} over TLS, the server's "
                  "certificate verified (verify-full)")
    if code == 0:
        return fail(DATABASE, f"the session to {where} is not encrypted",
                    "the server must enforce TLS (rds.force_ssl)")
    if any(word in last for word in _LOGIN_FAILURES):
        return fail(DATABASE, f"{where} refused the master user's login: {last}",
                    "check database.master_username and database.master_password")
    if any(word in last for word in _TLS_FAILURES):
        return fail(DATABASE, f"{where}'s certificate was not verified: {last}",
                    "set database.ca_bundle to the CA bundle that signed it (for RDS: "
                    "global-bundle.pem)")
    return fail(DATABASE, f"psql from the host to {where} failed: {last or f'exit {code}'}",
                "check the database's state: inv status")
