"""Pure planning of the alarms and of storage autoscaling: thresholds from the sizing, the
definitions, their comparison with what CloudWatch describes, subscriptions followed."""

from __future__ import annotations

from typing import Any

from ops.aws import alarms, database
from ops.plan import Action
from tests.unit.test_aws_plan import environment

GIB = 1024**3
TOPIC_ARN = "arn:aws:sns:eu-west-1:111122223333:openlmis-example-alerts"
IDS = {"instance": "i-0abc", "tg": "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/t/9",
       "lb": "arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/app/l/8"}
SIZE = alarms.Sizing(host_gib=16, db_gib=8, max_connections=200)


def test_thresholds_come_from_the_sizing() -> None:
    env = environment(database__storage_gb=50)
    assert alarms.max_connections(env) == 200  # what tune-db sets for the Reference Distribution
    assert alarms.connections_threshold(200) == 180
    assert alarms.host_memory_percent(16) == 6.2  # 1 GiB of 16: half the OS's 2 GiB
    assert alarms.host_memory_percent(8) == 12.5
    assert alarms.db_free_storage_bytes(env) == 2.5 * GIB  # half of autoscaling's 10 % of 50
    assert alarms.db_freeable_memory_bytes(8) == int(0.1 * 8 * GIB)  # tune-db's spare 10 %


def test_alarms_on_what_does_not_exist_yet_wait_for_the_second_pass() -> None:
    env = environment()
    early = alarms.definitions(env, {}, SIZE)
    waiting = {n.removeprefix("openlmis-example-") for n, a in early.items() if a is None}
    assert waiting == {"host-system", "host-instance", "lb-unhealthy", "lb-5xx"}
    found = alarms.definitions(env, IDS, SIZE)
    assert set(found) == {f"openlmis-example-{what}" for what in alarms.WHATS}
    system = found["openlmis-example-host-system"]
    assert system is not None
    assert system.request["AlarmActions"] == ["arn:aws:automate:eu-west-1:ec2:recover",
                                              alarms.TOPIC]
    assert system.request["Dimensions"] == [{"Name": "InstanceId", "Value": "i-0abc"}]
    errors = found["openlmis-example-lb-5xx"]
    assert errors is not None
    dims = {q["Id"]: q["MetricStat"]["Metric"]["Dimensions"]
            for q in errors.request["Metrics"] if "MetricStat" in q}
    assert dims["host5xx"] == [{"Name": "LoadBalancer", "Value": "app/l/8"},
                               {"Name": "TargetGroup", "Value": "targetgroup/t/9"}]
    unknown = alarms.definitions(env, IDS, alarms.Sizing(None, None, 200))
    assert unknown["openlmis-example-host-memory"] is None
    assert unknown["openlmis-example-db-memory"] is None
    assert alarms.notes(env, {}, alarms.Sizing(None, None, 200))[-2:] == [
        "the memory of m6i.xlarge is unknown: no openlmis-example-host-memory alarm",
        "the memory of db.m6g.large is unknown: no openlmis-example-db-memory alarm"]


def test_backup_alarms_follow_the_schedule() -> None:
    env = environment(backups__schedule={"max_age_hours": 48})
    age = alarms.definitions(env, IDS, SIZE)["openlmis-example-backup-age"]
    assert age is not None
    assert (age.request["Period"], age.request["EvaluationPeriods"],
            age.request["DatapointsToAlarm"], age.request["TreatMissingData"]) == (
        3600, 48, 48, "breaching")
    assert age.request["Dimensions"] == [{"Name": "Environment", "Value": "example"}]
    unscheduled = environment(backups__schedule={"dump": None, "drill": None})
    names = alarms.definitions(unscheduled, IDS, SIZE)
    assert "openlmis-example-backup-age" not in names
    assert "openlmis-example-drill-failed" not in names


def _described(alarm: alarms.Alarm) -> dict[str, Any]:
    """The alarm as CloudWatch describes it: the topic's ARN, dimensions in its own order."""
    found = {**alarm.request, "AlarmName": alarm.name, "StateValue": "OK",
             "Dimensions": list(reversed(alarm.request.get("Dimensions", [])))}
    for key in ("AlarmActions", "OKActions"):
        found[key] = [TOPIC_ARN if a == alarms.TOPIC else a for a in found[key]]
    return found


def _actual(env: Any, **changes: Any) -> dict[str, Any]:
    wanted = alarms.definitions(env, IDS, SIZE)
    return {"topic": TOPIC_ARN,
            "subscriptions": {e: f"{TOPIC_ARN}:{i}" for i, e in enumerate(env.alerts.emails)},
            "alarms": {a.name: alarms.canonical(_described(a), TOPIC_ARN)
                       for a in wanted.values() if a}, **changes}


def test_what_exists_as_wanted_is_no_change_and_a_new_environment_is_all_of_it() -> None:
    env = environment(alerts={"emails": ["ops@example.org"]})
    wanted = alarms.definitions(env, IDS, SIZE)
    assert alarms.diff(env, _actual(env), wanted) == []
    fresh = alarms.diff(env, {}, wanted)
    assert [c.payload for c in fresh[:2]] == [alarms.Op.TOPIC, alarms.Subscribe("ops@example.org")]
    assert len(fresh) == 2 + len(alarms.WHATS)
    assert all(c.action is Action.CREATE for c in fresh)


def test_a_differing_alarm_is_put_again_and_one_no_longer_wanted_deleted() -> None:
    env = environment()
    wanted = alarms.definitions(env, IDS, SIZE)
    actual = _actual(env)
    cpu = "openlmis-example-db-cpu"
    actual["alarms"][cpu] = {**actual["alarms"][cpu], "Threshold": 99.0, "Dimensions": []}
    actual["alarms"]["openlmis-example-old"] = actual["alarms"][cpu]
    changes = alarms.diff(env, actual, wanted)
    assert [c.line() for c in changes] == [
        f"~ alarm {cpu}: CPUUtilization >= 80 % for 15 min (Dimensions, Threshold 99.0 → 80.0)",
        "- alarm openlmis-example-old: no longer wanted"]
    assert changes[0].payload == alarms.Put(wanted[cpu])
    early = alarms.definitions(env, {}, SIZE)  # the instance is not known: its alarms stay
    assert alarms.diff(env, _actual(env), early) == []


def test_subscriptions_follow_alerts_emails_and_pending_ones_are_shown_not_touched() -> None:
    env = environment(alerts={"emails": ["new@example.org", "waits@example.org"]})
    actual = _actual(env, subscriptions={
        "waits@example.org": alarms.PENDING, "gone@example.org": f"{TOPIC_ARN}:1",
        "left@example.org": alarms.PENDING})
    changes = alarms.diff(env, actual, alarms.definitions(env, IDS, SIZE))
    assert [c.payload for c in changes] == [
        alarms.Subscribe("new@example.org"),
        alarms.Unsubscribe("gone@example.org", f"{TOPIC_ARN}:1")]
    notes = alarms.notes(env, actual, SIZE)
    assert notes[0].startswith("left@example.org is no longer in alerts.emails, but")
    assert notes[1].startswith("waits@example.org has not confirmed its subscription")
    assert alarms.notes(environment(alerts={"emails": []}), {}, SIZE) == [
        "alerts.emails is empty: the alarms of example notify no one"]


def test_storage_autoscaling_ceiling() -> None:
    assert database.max_storage(environment(database__storage_gb=50)) == 200
    assert database.max_storage(environment(database__storage_gb=20000)) == 65536
    assert database.max_storage(environment(database__storage_gb=60000)) is None  # no room
    env = environment(database__storage_gb=50, database__max_storage_gb=100)
    assert database.max_storage(env) == 100
    assert database.ceiling_drift(env, {"storage_gb": 50, "max_storage": 100}) is None
    assert database.ceiling_drift(env, {"storage_gb": 50}) is None  # not read: not compared
    assert database.ceiling_drift(env, {"storage_gb": 50, "max_storage": None}) == "settable"
    grown = {"storage_gb": 95, "max_storage": 120, "class": "db.m6g.large", "encrypted": True}
    assert database.ceiling_drift(env, grown) == "too low"
    assert any("raise database.max_storage_gb" in w for w in database.warnings(env, grown))
