"""Alarms, and who hears them: the SNS topic `<prefix>-alerts`, one e-mail subscription per
address in alerts.emails, and CloudWatch alarms that notify the topic (and recover the host).

Thresholds come from the sizing: the host's and the database class's memory, the database's
storage, max_connections as tune-db sets it (`Sizing`, `definitions`). An alarm on a resource
not made yet (the instance, the load balancer) is planned once that exists: in provision's
second pass. An alarm that differs is put again (PutMetricAlarm replaces it whole); an alarm
of this environment (named with its prefix and tagged for it) that the toolkit no longer wants
is deleted. SNS cannot delete a subscription that still awaits confirmation: such ones are
shown, never subscribed again; SNS drops them unconfirmed after 48 hours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError

from ops.aws import tags
from ops.aws.context import Ctx
from ops.config import Environment
from ops.db import sizing as db_sizing
from ops.db import tuning
from ops.plan import Action, Change
from ops.stack import sizing as host_sizing

NAMESPACE = "OpenLMIS"  # the host's own metrics (published by the host, not by an agent)
TOPIC = "topic"  # stands for the topic's ARN in a definition: known once the topic exists
PENDING = "PendingConfirmation"  # what SNS lists instead of an unconfirmed subscription's ARN
GIB = 1024**3
# What each threshold is derived from, besides the sizing (config/example.yml explains them).
HOST_DISK_USED = 85  # %: a release's images are pulled beside the live ones, logs grow
AUTOSCALING_FREE = 0.10  # RDS grows storage when free space is at most 10 % of it
CPU_BUSY = 80  # %: sustained, the database has no room left for a report or a migration
CONNECTIONS_NEAR = 0.9  # of max_connections: at 100 % PostgreSQL refuses new connections
ERROR_RATE = 5  # % of requests answered 5xx by the load balancer or the host
WHATS = ("host-system", "host-instance", "host-disk", "host-memory", "db-cpu", "db-storage",
         "db-memory", "db-connections", "lb-unhealthy", "lb-5xx", "backup-age", "drill-failed")


class Op(Enum):
    """The topic's change."""

    TOPIC = "topic"


@dataclass(frozen=True)
class Subscribe:
    """Subscribe an address: AWS e-mails it a link that confirms the subscription."""

    email: str


@dataclass(frozen=True)
class Unsubscribe:
    """Remove a confirmed subscription."""

    email: str
    arn: str


@dataclass(frozen=True)
class Alarm:
    """One alarm: its name, a line that says when it fires, PutMetricAlarm's other arguments
    (TOPIC for the topic's ARN)."""

    name: str
    summary: str
    request: Mapping[str, Any]


@dataclass(frozen=True)
class Put:
    """Create or replace an alarm."""

    alarm: Alarm


@dataclass(frozen=True)
class Delete:
    """Delete an alarm no longer wanted."""

    name: str


Payload = Op | Subscribe | Unsubscribe | Put | Delete


@dataclass(frozen=True)
class Sizing:
    """What thresholds are computed from: memory in GiB (None: unknown), max_connections."""

    host_gib: float | None
    db_gib: float | None
    max_connections: int


def topic_name(env: Environment) -> str:
    return f"{env.prefix}-alerts"


def name(env: Environment, what: str) -> str:
    return f"{env.prefix}-{what}"


def recover_action(env: Environment) -> str:
    """The EC2 action that moves the instance to healthy hardware, keeping its id and address."""
    return f"arn:aws:automate:{env.aws.region}:ec2:recover"


def max_connections(env: Environment) -> int:
    """max_connections as tune-db sets it for the stack (ops.db.tuning)."""
    services = tuning.POOLED_SERVICES.get(env.stack.name, tuning.POOLED_SERVICES["ref-distro"])
    return tuning.max_connections(services)


def host_memory_percent(host_gib: float) -> float:
    """Available memory (%) below which the host alarms: half of the memory the sizing keeps
    for the OS, Docker and the services without a limit (ops.stack.sizing.OVERHEAD_GIB)."""
    return round(100 * host_sizing.OVERHEAD_GIB / 2 / host_gib, 1)


def db_free_storage_bytes(env: Environment) -> int:
    """Free storage below which the database alarms: half of where RDS autoscaling grows the
    configured storage, so a growth that happens raises no alarm and one that cannot does."""
    return int(env.database.storage_gb * GIB * AUTOSCALING_FREE / 2)


def db_freeable_memory_bytes(db_gib: float) -> int:
    """Freeable memory below which the database alarms: the share tune-db leaves outside its
    worst case (shared_buffers + maintenance_work_mem + max_connections x work_mem)."""
    return int(db_gib * GIB * (1 - tuning.MEMORY_BUDGET))


def connections_threshold(limit: int) -> int:
    return math.ceil(limit * CONNECTIONS_NEAR)


def _metric(namespace: str, metric: str, dimensions: Mapping[str, str], stat: str, period: int,
            periods: int, operator: str, threshold: float, missing: str) -> dict[str, Any]:
    """PutMetricAlarm's arguments for one metric: `periods` of `period` seconds, all of them
    breaching."""
    return {"Namespace": namespace, "MetricName": metric, "Statistic": stat,
            "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dimensions.items())],
            "Period": period, "EvaluationPeriods": periods, "DatapointsToAlarm": periods,
            "Threshold": float(threshold), "ComparisonOperator": operator,
            "TreatMissingData": missing}


def _alarm(env: Environment, what: str, summary: str, description: str,
           definition: dict[str, Any], *, also: tuple[str, ...] = ()) -> Alarm:
    request = {"AlarmDescription": f"OpenLMIS {env.name}: {description}", "ActionsEnabled": True,
               "AlarmActions": [*also, TOPIC], "OKActions": [TOPIC], **definition}
    return Alarm(name(env, what), summary, request)


def definitions(env: Environment, ids: Mapping[str, Any],
                size: Sizing) -> dict[str, Alarm | None]:
    """Every alarm the environment wants, by name; None where a dimension or a size is not
    known yet (the instance or the load balancer before it exists): planned later (pure)."""
    found = [*_host(env, ids.get("instance"), size.host_gib), *_database(env, size),
             *_load_balancer(env, ids.get("lb"), ids.get("tg")), *_backups(env)]
    for node in range(2, env.host.count + 1):
        found += _status_checks(env, ids.get(f"instance.{node}"), f"-{node}", f"node {node}")
    return {name(env, what): alarm for what, alarm in found}


GE, LT = "GreaterThanOrEqualToThreshold", "LessThanThreshold"
Wanted = list[tuple[str, Alarm | None]]


def _host(env: Environment, instance: str | None, gib: float | None) -> Wanted:
    here = {"Environment": env.name}
    found: Wanted = [("host-disk", _alarm(
        env, "host-disk", f"DiskUsedPercent (/) >= {HOST_DISK_USED} % for 10 min",
        f"the host's root disk is over {HOST_DISK_USED} % full: lower stack.keep_releases "
        "(older releases' images go at the next deploy) or grow host.root_volume_gb.",
        _metric(NAMESPACE, "DiskUsedPercent", {**here, "Path": "/"}, "Maximum", 300, 2, GE,
                HOST_DISK_USED, "missing")))]
    low = host_memory_percent(gib) if gib else 0.0
    found.append(("host-memory", None if not gib else _alarm(
        env, "host-memory", f"MemoryAvailablePercent < {low} % for 10 min (half the "
        f"sizing's {host_sizing.OVERHEAD_GIB} GiB for the OS, of {gib:g} GiB)",
        f"the host has less than {low} % of its memory available: the kernel is about to "
        "kill services; a larger host.instance_type (inv resize) or smaller stack.memory.",
        _metric(NAMESPACE, "MemoryAvailablePercent", here, "Minimum", 300, 2, LT, low,
                "missing"))))
    return [*_status_checks(env, instance, "", "host"), *found]


def _status_checks(env: Environment, instance: str | None, suffix: str, host: str) -> Wanted:
    """The instance's status check alarms, host-system and host-instance + `suffix` (a node's
    above 1: -i). The disk and memory alarms need none per node: every node publishes the
    same metric, and the worst node's value (Maximum, Minimum) is what they watch."""
    system, own = f"host-system{suffix}", f"host-instance{suffix}"
    if not instance:
        return [(system, None), (own, None)]
    checks = {"InstanceId": instance}
    return [(system, _alarm(
        env, system, "StatusCheckFailed_System for 2 min: recover the instance, notify",
        f"the {host}'s hardware or network failed its status check; EC2 recovers the instance "
        "(same id, address and disk) onto healthy hardware.",
        _metric("AWS/EC2", "StatusCheckFailed_System", checks, "Maximum", 60, 2, GE, 1,
                "missing"), also=(recover_action(env),))),
        (own, _alarm(
            env, own, "StatusCheckFailed_Instance for 3 min",
            f"the {host}'s operating system failed its status check (memory, disk, network, "
            "kernel): reboot it from the EC2 console; OpenLMIS comes back by itself.",
            _metric("AWS/EC2", "StatusCheckFailed_Instance", checks, "Maximum", 60, 3, GE, 1,
                    "missing")))]


def _database(env: Environment, size: Sizing) -> Wanted:
    db = {"DBInstanceIdentifier": tags.db_instance_id(env)}
    free = db_free_storage_bytes(env)
    limit = connections_threshold(size.max_connections)
    freeable = db_freeable_memory_bytes(size.db_gib) if size.db_gib else 0
    return [
        ("db-cpu", _alarm(
            env, "db-cpu", f"CPUUtilization >= {CPU_BUSY} % for 15 min",
            f"the database has been over {CPU_BUSY} % CPU for 15 minutes: see what runs "
            "(inv psql, pg_stat_activity); a larger class (database.instance_class, inv resize).",
            _metric("AWS/RDS", "CPUUtilization", db, "Average", 300, 3, GE, CPU_BUSY,
                    "missing"))),
        ("db-storage", _alarm(
            env, "db-storage", f"FreeStorageSpace < {free / GIB:g} GiB for 10 min (half of "
            f"autoscaling's {AUTOSCALING_FREE:.0%} of {env.database.storage_gb} GB)",
            f"the database has less than {free / GIB:g} GiB free and storage autoscaling did "
            "not grow it: it may have reached database.max_storage_gb; raise that.",
            _metric("AWS/RDS", "FreeStorageSpace", db, "Minimum", 300, 2, LT, free,
                    "missing"))),
        ("db-memory", None if not size.db_gib else _alarm(
            env, "db-memory", f"FreeableMemory < {freeable / GIB:.2f} GiB for 15 min (what "
            f"tune-db leaves outside its budget of {size.db_gib:g} GiB)",
            "the database's freeable memory is below what tune-db leaves spare: it starts to "
            "swap; a larger class (database.instance_class, inv resize), then inv tune-db.",
            _metric("AWS/RDS", "FreeableMemory", db, "Minimum", 300, 3, LT, freeable,
                    "missing"))),
        ("db-connections", _alarm(
            env, "db-connections", f"DatabaseConnections >= {limit} for 10 min "
            f"({CONNECTIONS_NEAR:.0%} of max_connections {size.max_connections})",
            f"the database holds {limit} or more connections of {size.max_connections}: new "
            "ones are refused soon; look for a service leaking connections (inv logs).",
            _metric("AWS/RDS", "DatabaseConnections", db, "Maximum", 300, 2, GE, limit,
                    "missing")))]


def _load_balancer(env: Environment, lb: str | None, tg: str | None) -> Wanted:
    if not (lb and tg):
        return [("lb-unhealthy", None), ("lb-5xx", None)]
    both = {"LoadBalancer": lb.split(":loadbalancer/")[-1], "TargetGroup": tg.split(":")[-1]}
    return [
        ("lb-unhealthy", _alarm(
            env, "lb-unhealthy", "UnHealthyHostCount >= 1 for 5 min",
            "the load balancer finds the host unhealthy: OpenLMIS does not answer; inv status, "
            "inv logs.",
            _metric("AWS/ApplicationELB", "UnHealthyHostCount", both, "Maximum", 60, 5, GE, 1,
                    "notBreaching"))),
        ("lb-5xx", _alarm(
            env, "lb-5xx", f"5xx > {ERROR_RATE} % of requests for 15 min",
            f"more than {ERROR_RATE} % of requests end in a 5xx error: inv logs of the "
            "services.", _error_rate(both)))]


def _backups(env: Environment) -> Wanted:
    """The backup alarms, for what the host is scheduled to do (the contract's metrics)."""
    here, schedule = {"Environment": env.name}, env.backups.schedule
    found: Wanted = []
    if schedule.dump:
        hours = schedule.max_age_hours
        found.append(("backup-age", _alarm(
            env, "backup-age", f"no BackupSucceeded for {hours} h "
            "(backups.schedule.max_age_hours; no data counts)",
            f"no dump succeeded for {hours} hours: inv list-backups, inv backup-db.",
            _metric(NAMESPACE, "BackupSucceeded", here, "Sum", 3600, hours, LT, 1,
                    "breaching"))))
    if schedule.drill:
        found.append(("drill-failed", _alarm(
            env, "drill-failed", "DrillFailed >= 1 (until a drill passes)",
            "the scheduled restore drill of the newest dump failed: inv verify-backup says why.",
            _metric(NAMESPACE, "DrillFailed", here, "Maximum", 3600, 1, GE, 1, "ignore"))))
    return found


def _error_rate(dimensions: Mapping[str, str]) -> dict[str, Any]:
    """5xx answers (the load balancer's own and the host's) as a share of the requests, over
    three 5-minute periods; no requests is no data, and no data is no alarm."""
    def count(query: str, metric: str, dims: Mapping[str, str]) -> dict[str, Any]:
        return {"Id": query, "ReturnData": False, "MetricStat": {
            "Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": metric,
                       "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(dims.items())]},
            "Period": 300, "Stat": "Sum"}}
    lb = {"LoadBalancer": dimensions["LoadBalancer"]}
    return {"Metrics": [
        {"Id": "rate", "Label": "5xx % of requests", "ReturnData": True,
         "Expression": "100 * (FILL(lb5xx, 0) + FILL(host5xx, 0)) / requests"},
        count("requests", "RequestCount", lb), count("lb5xx", "HTTPCode_ELB_5XX_Count", lb),
        count("host5xx", "HTTPCode_Target_5XX_Count", dimensions)],
        "EvaluationPeriods": 3, "DatapointsToAlarm": 3, "Threshold": float(ERROR_RATE),
        "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching"}


def canonical(alarm: Mapping[str, Any], topic: str | None = None) -> dict[str, Any]:
    """An alarm's definition as compared, desired or described alike: what AWS leaves out as
    its default, lists in order, the topic's ARN as TOPIC (pure)."""
    def actions(key: str) -> list[str]:
        return sorted(TOPIC if a == topic else a for a in alarm.get(key, []))

    threshold = alarm.get("Threshold")
    return {"AlarmDescription": alarm.get("AlarmDescription"),
            "ActionsEnabled": alarm.get("ActionsEnabled", True),
            "AlarmActions": actions("AlarmActions"), "OKActions": actions("OKActions"),
            "InsufficientDataActions": actions("InsufficientDataActions"),
            **{k: alarm.get(k) for k in ("Namespace", "MetricName", "Statistic", "Period",
                                         "EvaluationPeriods", "DatapointsToAlarm",
                                         "ComparisonOperator", "TreatMissingData")},
            "Dimensions": _dimensions(alarm.get("Dimensions", [])),
            "Threshold": None if threshold is None else float(threshold),
            "Metrics": [_query(q) for q in alarm.get("Metrics", [])]}


def _dimensions(found: list[dict[str, str]]) -> list[tuple[str, str]]:
    return sorted((d["Name"], d["Value"]) for d in found)


def _query(query: Mapping[str, Any]) -> dict[str, Any]:
    stat = query.get("MetricStat")
    return {"Id": query.get("Id"), "Expression": query.get("Expression"),
            "Label": query.get("Label"), "ReturnData": query.get("ReturnData", True),
            "MetricStat": stat and {
                "Namespace": stat["Metric"].get("Namespace"),
                "MetricName": stat["Metric"].get("MetricName"),
                "Dimensions": _dimensions(stat["Metric"].get("Dimensions", [])),
                "Period": stat.get("Period"), "Stat": stat.get("Stat")}}


def diff(env: Environment, actual: dict[str, Any],
         wanted: Mapping[str, Alarm | None]) -> list[Change[Payload]]:
    """`actual`: topic (its ARN, or None), subscriptions ({address: ARN or PENDING}), alarms
    ({name: canonical definition} of this environment's alarms). An alarm wanted as None is
    left as it is (pure)."""
    topic = topic_name(env)
    changes: list[Change[Payload]] = []
    if not actual.get("topic"):
        changes.append(Change(Action.CREATE, f"sns topic {topic}", "what the alarms notify",
                              payload=Op.TOPIC))
    have = actual.get("subscriptions", {})
    emails = list(dict.fromkeys(env.alerts.emails))
    for email in emails:
        if email not in have:
            changes.append(Change(Action.CREATE, f"subscription {topic} {email}",
                                  "AWS e-mails a link to confirm it; alarms reach the address "
                                  "once it is followed", payload=Subscribe(email)))
    for email, arn in sorted(have.items()):
        if email not in emails and arn != PENDING:
            changes.append(Change(Action.DELETE, f"subscription {topic} {email}",
                                  "no longer in alerts.emails", payload=Unsubscribe(email, arn)))
    alarms = actual.get("alarms", {})
    for alarm in wanted.values():
        if alarm is None:
            continue
        found = alarms.get(alarm.name)
        if found is None:
            changes.append(Change(Action.CREATE, f"alarm {alarm.name}", alarm.summary,
                                  payload=Put(alarm)))
        elif differs := _differences(found, canonical(alarm.request)):
            changes.append(Change(Action.UPDATE, f"alarm {alarm.name}",
                                  f"{alarm.summary} ({differs})", payload=Put(alarm)))
    for left in sorted(set(alarms) - set(wanted)):
        changes.append(Change(Action.DELETE, f"alarm {left}", "no longer wanted",
                              payload=Delete(left)))
    return changes


def _differences(have: Mapping[str, Any], want: Mapping[str, Any]) -> str:
    """What differs, as 'Threshold 80.0 → 85.0, Dimensions'."""
    return ", ".join(f"{k} {have[k]} → {want[k]}" if isinstance(want[k], int | float | str)
                     else k for k in want if have.get(k) != want[k])


def notes(env: Environment, actual: dict[str, Any], size: Sizing) -> list[str]:
    """What provision and status report about the alarms but do not change (pure)."""
    topic, found = topic_name(env), []
    if not env.alerts.emails:
        found.append(f"alerts.emails is empty: the alarms of {env.name} notify no one")
    for email, arn in sorted(actual.get("subscriptions", {}).items()):
        if arn != PENDING:
            continue
        if email in env.alerts.emails:
            found.append(f"{email} has not confirmed its subscription to {topic}: the e-mail "
                         "from AWS Notifications holds the link (unconfirmed, SNS drops it "
                         "after 48 hours and the next provision asks again)")
        else:
            found.append(f"{email} is no longer in alerts.emails, but its subscription to "
                         f"{topic} awaits confirmation, which SNS cannot remove: unconfirmed, "
                         "it lapses after 48 hours (confirmed, the next provision removes it)")
    for what, kind, gib in (("host-memory", env.host.instance_type, size.host_gib),
                            ("db-memory", _db_class(env), size.db_gib)):
        if not gib:
            found.append(f"the memory of {kind} is unknown: no {name(env, what)} alarm")
    return found


def _db_class(env: Environment) -> str:
    return db_sizing.recommended_class(env.database)


def size(ctx: Ctx) -> Sizing:
    """The sizes the thresholds come from: the models' (ops.stack.sizing, ops.db.sizing), else
    what EC2 says of the type (an RDS class is its EC2 type's size)."""
    env = ctx.env
    db_class = _db_class(env)
    known = db_sizing.DB_CLASSES.get(db_class)
    return Sizing(host_sizing.INSTANCE_GIB.get(env.host.instance_type)
                  or _described_gib(ctx, env.host.instance_type),
                  known[1] if known else _described_gib(ctx, db_class.removeprefix("db.")),
                  max_connections(env))


def _described_gib(ctx: Ctx, instance_type: str) -> float | None:
    try:
        found = ctx.aws("ec2").describe_instance_types(
            InstanceTypes=[instance_type])["InstanceTypes"]
    except ClientError:
        return None
    return found[0]["MemoryInfo"]["SizeInMiB"] / 1024 if found else None


def topic_arn(ctx: Ctx) -> str:
    account = ctx.ids.get("account") or ctx.aws("sts").get_caller_identity()["Account"]
    return f"arn:aws:sns:{ctx.env.aws.region}:{account}:{topic_name(ctx.env)}"


def read(ctx: Ctx) -> dict[str, Any]:
    """The topic, its e-mail subscriptions and the environment's alarms; their ids into ctx."""
    env, sns, cloudwatch = ctx.env, ctx.aws("sns"), ctx.aws("cloudwatch")
    arn = topic_arn(ctx)
    actual: dict[str, Any] = {"topic": None, "subscriptions": {}, "alarms": {}}
    try:
        sns.get_topic_attributes(TopicArn=arn)
    except sns.exceptions.NotFoundException:
        pass
    else:
        actual["topic"] = ctx.ids["topic"] = arn
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=arn):
            for sub in page["Subscriptions"]:
                if sub["Protocol"] == "email":
                    actual["subscriptions"][sub["Endpoint"]] = sub["SubscriptionArn"]
                    ctx.ids[f"subscription.{sub['Endpoint']}"] = sub["SubscriptionArn"]
    ours = {name(env, what) for what in WHATS}
    for page in cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNamePrefix=f"{env.prefix}-"):
        for alarm in page["MetricAlarms"]:
            # Another environment's prefix may begin with this one's: its tags tell.
            if alarm["AlarmName"] not in ours and not tags.is_ours(env, cloudwatch.
                    list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]):
                continue
            actual["alarms"][alarm["AlarmName"]] = canonical(alarm, arn)
            ctx.ids[f"alarm.{alarm['AlarmName'].removeprefix(env.prefix + '-')}"] = \
                alarm["AlarmName"]
    return actual


def plan(ctx: Ctx) -> list[Change[Payload]]:
    sizes = size(ctx)
    wanted = definitions(ctx.env, ctx.ids, sizes)
    actual = read(ctx)
    for text in notes(ctx.env, actual, sizes):
        ctx.warn(text)
    return diff(ctx.env, actual, wanted)


def apply(ctx: Ctx, payload: Payload) -> None:
    env, sns = ctx.env, ctx.aws("sns")
    if payload is Op.TOPIC:
        topic = topic_name(env)
        ctx.ids["topic"] = sns.create_topic(
            Name=topic, Tags=tags.as_list(tags.tags(env, "alerts", topic)))["TopicArn"]
    elif isinstance(payload, Subscribe):
        sns.subscribe(TopicArn=ctx.ids["topic"], Protocol="email", Endpoint=payload.email)
    elif isinstance(payload, Unsubscribe):
        sns.unsubscribe(SubscriptionArn=payload.arn)
    elif isinstance(payload, Put):
        alarm = payload.alarm
        request = {k: [ctx.ids["topic"] if a == TOPIC else a for a in v]
                   if k.endswith("Actions") else v for k, v in alarm.request.items()}
        ctx.aws("cloudwatch").put_metric_alarm(
            AlarmName=alarm.name, Tags=tags.as_list(tags.tags(env, "alarm", alarm.name)),
            **request)
        ctx.ids[f"alarm.{alarm.name.removeprefix(env.prefix + '-')}"] = alarm.name
    elif isinstance(payload, Delete):
        ctx.aws("cloudwatch").delete_alarms(AlarmNames=[payload.name])
