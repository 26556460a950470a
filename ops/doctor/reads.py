"""What doctor's checks read: the AWS credentials and APIs, this machine's address, the host
over SSH, the database from the host. Each function reads, then lets ops.doctor.checks
conclude. Nothing here changes anything."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, SSOTokenLoadError
from botocore.utils import JSONFileCache, SSOTokenLoader

from ops import provider, targets
from ops.approval import Scope
from ops.aws import failures, session, tags
from ops.config import Environment
from ops.doctor import checks
from ops.doctor.checks import Check, Quota
from ops.errors import AWS_LOGIN, OpsError
from ops.host.connect import ChangedHost, UnknownHost
from ops.host.remote import Remote

# The quotas provision draws on, each with why it matters. Service Quotas codes; EC2's
# On-Demand quota counts vCPUs of running instances across a group of families.
VPCS = Quota("VPCs", "vpc", "L-F678F1CE", "provision makes one VPC (with its internet gateway) "
             "unless network.existing_vpc_id names one")
ADDRESSES = Quota("Elastic IPs", "ec2", "L-0263D0A3", "the host's stable public address is an "
                  "Elastic IP")
DB_INSTANCES = Quota("RDS DB instances", "rds", "L-7B6409FD", "the database is one RDS "
                     "instance (a snapshot restore makes a second one beside it)")
# On-Demand vCPU quotas of the families outside the standard ones (A, C, D, H, I, M, R, T, Z).
STANDARD_VCPUS = "L-1216C47A"
FAMILY_VCPUS = {"f": "L-74FC7D96", "g": "L-DB2E81BA", "vt": "L-DB2E81BA", "inf": "L-1945791B",
                "p": "L-417A185B", "x": "L-7295265B", "dl": "L-6E869C2A", "trn": "L-2C3B7624",
                "hpc": "L-F7808C92"}
LIVE = ["pending", "running"]
SSO_CACHE = Path("~/.aws/sso/cache")  # where `aws sso login` keeps its tokens (botocore's)


def vcpu_quota(instance_type: str) -> str:
    """The On-Demand vCPU quota code an instance type counts against (pure): its family's
    letters (m6i → m, inf2 → inf) name it; the standard families share one."""
    family = re.match(r"[a-z]*", instance_type)
    return FAMILY_VCPUS.get(family.group() if family else "", STANDARD_VCPUS)


# --- AWS credentials, account, region ------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """The credentials check and, when AWS accepted them, where the tasks act."""

    check: Check
    scope: Scope | None
    arn: str = ""  # who the credentials are, as STS says


def credentials(env: Environment, now: datetime | None = None) -> Credentials:
    """Which credentials the chain finds, when they expire (an SSO token's expiry, or one
    botocore was told, e.g. AWS_CREDENTIAL_EXPIRATION), and whether AWS takes them (STS)."""
    now = now or datetime.now(UTC)
    login = failures.login_hint(env.aws.profile or session.profile())
    try:
        boto = session.boto(env)
        found = boto.get_credentials()
        if found is None:
            return Credentials(checks.refused(
                "no usable AWS credentials: the credential chain found none",
                "configure the AWS credential chain (aws configure "
                "sso, AWS_PROFILE or an instance role); " + login, AWS_LOGIN), None)
        method = found.method
        token = sso_token(boto)
        expires = _token_expiry(token) if token else _expiry(found)
        renews = bool(token and token.get("refreshToken"))
        if expires is not None and expires <= now and not renews:  # before botocore fails
            return Credentials(checks.expired(method, expires.strftime("%Y-%m-%d %H:%M UTC"),
                                              login), None)
        identity = session.client(env, "sts").get_caller_identity()
    except (BotoCoreError, ClientError) as exc:
        explained = failures.explain(exc, env.aws.profile or session.profile())
        assert explained is not None  # every botocore failure has a message
        return Credentials(checks.refused(explained.message, explained.hint, explained.code),
                           None)
    where = Scope(env.name, identity["Account"], env.aws.region)
    return Credentials(checks.credentials(method, expires, now, login=login, renews=renews),
                       where, identity.get("Arn", ""))


def _expiry(found: Any) -> datetime | None:
    """When refreshable credentials end, as botocore holds it (it has no public accessor)."""
    value = getattr(found, "_expiry_time", None)
    return value if isinstance(value, datetime) else None


def sso_token(boto: boto3.Session) -> dict[str, Any] | None:
    """The cached token `aws sso login` left for the session's profile (an sso-session's, or a
    legacy sso_start_url's), read as botocore reads it; None for a profile without SSO, or
    without a token (botocore then says so when the credentials are used)."""
    core = boto._session  # the botocore session: its profile's configuration
    scoped = core.get_scoped_config()
    name = scoped.get("sso_session")
    start_url = (core.full_config.get("sso_sessions", {}).get(name, {}).get("sso_start_url")
                 if name else scoped.get("sso_start_url"))
    if not start_url:
        return None
    loader = SSOTokenLoader(cache=JSONFileCache(str(SSO_CACHE.expanduser())))
    try:
        token: dict[str, Any] = loader(start_url, session_name=name)
    except SSOTokenLoadError:
        return None
    return token


def _token_expiry(token: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(token["expiresAt"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None


# --- service quotas ------------------------------------------------------------------------


def quotas(env: Environment) -> list[Check]:
    """The quotas provision needs, against what the region already uses."""
    ec2 = session.client(env, "ec2")
    vpcs = ec2.describe_vpcs()["Vpcs"]
    have_vpc = env.network.existing_vpc_id or any(
        tags.is_ours(env, v.get("Tags", [])) and _role(v) == "vpc" for v in vpcs)
    count = 0 if env.host.address else env.host.count  # the nodes provision makes
    addresses = ec2.describe_addresses()["Addresses"]
    have_addresses = sum(tags.is_ours(env, a.get("Tags", [])) for a in addresses)
    instances = [i for page in ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-state-name", "Values": LIVE}])
        for r in page["Reservations"] for i in r["Instances"]]
    have_hosts = sum(tags.is_ours(env, i.get("Tags", [])) and _role(i) == "host"
                     for i in instances)
    code = vcpu_quota(env.host.instance_type)
    vcpus = _vcpus(ec2, {env.host.instance_type} | {i["InstanceType"] for i in instances})
    used = sum(vcpus.get(i["InstanceType"], 0) for i in instances
               if vcpu_quota(i["InstanceType"]) == code)
    cpu = Quota(f"On-Demand vCPUs ({env.host.instance_type}'s family)", "ec2", code,
                f"host.instance_type {env.host.instance_type} runs "
                f"{vcpus.get(env.host.instance_type, '?')} vCPUs"
                + (f", on each of {env.host.count} nodes" if env.host.count > 1 else ""))
    databases = session.client(env, "rds").describe_db_instances()["DBInstances"]
    have_db = any(d["DBInstanceIdentifier"] == tags.db_instance_id(env) for d in databases)
    return [
        _quota(env, VPCS, len(vpcs), 0 if have_vpc else 1),
        _quota(env, ADDRESSES, len(addresses), max(0, count - max(have_hosts, have_addresses))),
        _quota(env, cpu, used,
               max(0, count - have_hosts) * vcpus.get(env.host.instance_type, 0)),
        _quota(env, DB_INSTANCES, len(databases), 0 if have_db else 1),
    ]


def _role(resource: dict[str, Any]) -> str:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}.get(tags.ROLE, "")


def _vcpus(ec2: Any, types: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for page in ec2.get_paginator("describe_instance_types").paginate(InstanceTypes=sorted(types)):
        for t in page["InstanceTypes"]:
            found[t["InstanceType"]] = t["VCpuInfo"]["DefaultVCpus"]
    return found


def _quota(env: Environment, q: Quota, used: float, needed: float) -> Check:
    """One quota's applied value from Service Quotas; 'cannot be told' when it gives none (a
    quota it does not serve in the region; the emulator serves VPC's only)."""
    try:
        limit = session.client(env, "service-quotas").get_service_quota(
            ServiceCode=q.service, QuotaCode=q.code)["Quota"]["Value"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in failures.EXPIRED_CODES or code in failures.THROTTLING_CODES:
            raise
        return checks.quota(q, None, used, needed, unknown=code or "no answer")
    return checks.quota(q, float(limit), used, needed)


# --- SES -------------------------------------------------------------------------------------


def ses(env: Environment) -> Check:
    """SESv2 GetAccount's ProductionAccessEnabled ('cannot be told' when it gives none)."""
    try:
        found = session.client(env, "sesv2").get_account()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in failures.EXPIRED_CODES or code in failures.THROTTLING_CODES:
            raise
        return checks.ses(env.aws.region, None, unknown=f"GetAccount: {code or 'no answer'}")
    return checks.ses(env.aws.region, bool(found.get("ProductionAccessEnabled")))


# --- this machine's address ----------------------------------------------------------------


def admin_address(env: Environment) -> Check:
    return checks.admin_address(provider.of(env).operator_address(), env.network.admin_cidrs)


# --- the host and the database ---------------------------------------------------------------


@dataclass
class Host:
    """The ssh and host key checks; the host's connection when it was reached."""

    checks: list[Check]
    remote: Remote | None = None
    absent: bool = False  # no host yet


@contextmanager
def host(env: Environment) -> Iterator[Host]:
    """The host's checks, its connection open while the block runs when it was reached."""
    from ops.host.session import open_host

    unreached: Host | None = None
    try:
        target = targets.host(env)
    except targets.NoHost:
        unreached = Host([checks.skipped(checks.SSH, checks.NO_HOST, checks.PROVISION),
                          checks.skipped(checks.HOST_KEY, checks.NO_HOST, checks.PROVISION)],
                         absent=True)
    except OpsError as exc:  # a host without an address, a stopped lab host…
        unreached = Host([checks.fail(checks.SSH, exc.message, exc.hint),
                          checks.skipped(checks.HOST_KEY, "the host was not reached")])
    if unreached:
        yield unreached
        return
    with ExitStack() as stack:
        try:
            remote = stack.enter_context(open_host(env))
        except (UnknownHost, ChangedHost) as exc:
            found = Host(list(checks.host_key_refused(target.address, exc.message, exc.hint)))
        except OpsError as exc:
            found = Host(list(checks.host_unreachable(target.address, exc.message, exc.hint)))
        else:
            found = Host(list(checks.host_reached(target.user, target.address)), remote)
        yield found


def database(env: Environment, remote: Remote) -> Check:
    """From the host: the server's port, then a login with psql under verify-full."""
    from ops.db import remote as db_remote

    try:
        target = targets.database(env)
    except targets.NoDatabase:
        return checks.skipped(checks.DATABASE, "no database yet", checks.PROVISION)
    except OpsError as exc:  # not available yet, its CA bundle unreadable…
        return checks.fail(checks.DATABASE, exc.message, exc.hint)
    port = f"/dev/tcp/{target.address}/{target.port}"
    reachable = remote.ok(f"timeout 5 bash -c {shlex.quote(': < ' + port)}", root=False)
    if not reachable:
        return checks.database(target.address, target.port, reachable=False, psql=None)
    psql = remote.run("command -v psql || true", root=False, what="finding psql").strip()
    if not psql:
        return checks.database(target.address, target.port, reachable=True, psql=None)
    with db_remote.attach(env, remote, install=False) as db:
        code, out = db.run(f"psql -X -At -d {shlex.quote(target.name)} -c "
                           "'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()' 2>&1",
                           what="logging in to the database", warn=True)
    return checks.database(target.address, target.port, reachable=True, psql=psql, code=code,
                           output=out)
