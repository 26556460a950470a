"""Alarms against the emulator: the topic, its subscriptions and the alarms provision makes,
storage autoscaling's ceiling, drift repaired, alerts.emails followed, status and destroy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from invoke import Context

from ops import console
from ops.approval import Approval
from ops.aws import alarms, calls, teardown, topology
from ops.config import Environment
from ops.tasks import provision as tasks
from tests.aws.provisioning import REGION, boto, make_env

PREFIX = "openlmis-awstest-"
EMAILS = "alerts: {emails: [ops@example.org, dba@example.org]}\n"


def _env(emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
         extra: str = EMAILS) -> Environment:
    return make_env(emulator, monkeypatch, tmp_path, extra=extra)


def _alarms(aws: Any) -> dict[str, dict[str, Any]]:
    found = aws("cloudwatch").describe_alarms(AlarmNamePrefix=PREFIX)["MetricAlarms"]
    return {a["AlarmName"].removeprefix(PREFIX): a for a in found}


def _subscribed(aws: Any) -> set[str]:
    return {s["Endpoint"] for s in aws("sns").list_subscriptions()["Subscriptions"]}


def test_provision_makes_the_topic_subscriptions_alarms_and_storage_ceiling(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    env = _env(emulator, monkeypatch, tmp_path)
    topology.provision(env)
    out = capsys.readouterr().out
    # The instance and the load balancer exist only once the first pass is applied.
    later = out[out.index("known only after applying the above"):]
    assert f"+ alarm {PREFIX}host-system" in later and f"+ alarm {PREFIX}lb-5xx" in later
    aws = boto(emulator)
    [topic] = [t["TopicArn"] for t in aws("sns").list_topics()["Topics"]]
    assert topic.endswith(":openlmis-awstest-alerts")
    assert _subscribed(aws) == {"ops@example.org", "dba@example.org"}
    found = _alarms(aws)
    assert set(found) == set(alarms.WHATS)
    assert all(a["AlarmActions"][-1:] == [topic] and a["OKActions"] == [topic]
               for a in found.values())
    system = found["host-system"]
    assert system["AlarmActions"] == [f"arn:aws:automate:{REGION}:ec2:recover", topic]
    instance = aws("ec2").describe_instances(Filters=[
        {"Name": "tag:openlmis:role", "Values": ["host"]}])["Reservations"][0]["Instances"][0]
    assert system["Dimensions"] == [{"Name": "InstanceId", "Value": instance["InstanceId"]}]
    assert found["db-connections"]["Threshold"] == 180  # 90 % of tune-db's 200
    # m6i.xlarge: 16 GiB; half of the sizing's 2 GiB for the OS is 6.25 % of it
    assert found["host-memory"]["Threshold"] == 6.2
    assert found["host-disk"]["Dimensions"] == [{"Name": "Environment", "Value": "awstest"},
                                                 {"Name": "Path", "Value": "/"}]
    backup = found["backup-age"]
    assert (backup["MetricName"], backup["Namespace"], backup["TreatMissingData"]) == (
        "BackupSucceeded", "OpenLMIS", "breaching")
    assert backup["Period"] * backup["EvaluationPeriods"] == 26 * 3600
    assert (found["drill-failed"]["MetricName"], found["drill-failed"]["Threshold"]) == (
        "DrillFailed", 1)
    db = aws("rds").describe_db_instances()["DBInstances"][0]
    assert (db["AllocatedStorage"], db["MaxAllocatedStorage"]) == (50, 200)
    with calls.watch() as log:
        topology.provision(env)
    assert log.mutations == []


def test_drift_and_alerts_emails_are_followed(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    env = _env(emulator, monkeypatch, tmp_path)
    topology.provision(env)
    aws = boto(emulator)
    cloudwatch = aws("cloudwatch")
    cpu = _alarms(aws)["db-cpu"]
    cloudwatch.put_metric_alarm(**{k: cpu[k] for k in (
        "AlarmName", "Namespace", "MetricName", "Statistic", "Dimensions", "Period",
        "EvaluationPeriods", "ComparisonOperator", "AlarmActions")}, Threshold=99.0)
    ours = [{"Key": "openlmis:project", "Value": "openlmis"},
            {"Key": "openlmis:environment", "Value": "awstest"}]
    theirs = [{"Key": "openlmis:project", "Value": "openlmis"},
              {"Key": "openlmis:environment", "Value": "awstest-eu"}]
    for name, tagged in ((f"{PREFIX}old-alarm", ours), (f"{PREFIX}eu-db-cpu", theirs)):
        cloudwatch.put_metric_alarm(AlarmName=name, Namespace="AWS/RDS",
                                    MetricName="CPUUtilization", Statistic="Average",
                                    Period=300, EvaluationPeriods=1, Threshold=1.0,
                                    ComparisonOperator="GreaterThanThreshold", Tags=tagged)
    aws("rds").modify_db_instance(DBInstanceIdentifier="openlmis-awstest-db",
                                  MaxAllocatedStorage=60, ApplyImmediately=True)
    data = env.model_dump()
    data["alerts"] = {"emails": ["dba@example.org", "oncall@example.org"]}
    data["backups"]["schedule"].update(drill=None, max_age_hours=48)
    moved = env.model_validate(data)
    capsys.readouterr()
    with calls.watch() as log:
        topology.provision(moved, approval=Approval(plan_only=True))
    assert log.mutations == []
    out = capsys.readouterr().out
    assert f"~ alarm {PREFIX}db-cpu: CPUUtilization >= 80 % for 15 min (AlarmDescription" in out
    assert "Threshold 99.0 → 80.0" in out
    assert f"~ alarm {PREFIX}backup-age: no BackupSucceeded for 48 h" in out
    assert f"- alarm {PREFIX}drill-failed: no longer wanted" in out
    assert f"- alarm {PREFIX}old-alarm: no longer wanted" in out
    assert f"{PREFIX}eu-db-cpu" not in out  # another environment's, whose prefix begins ours
    assert f"+ subscription {PREFIX}alerts oncall@example.org" in out
    assert f"- subscription {PREFIX}alerts ops@example.org: no longer in alerts.emails" in out
    assert "~ db instance openlmis-awstest-db: MaxAllocatedStorage=200" in out
    topology.provision(moved)
    assert _subscribed(aws) == {"dba@example.org", "oncall@example.org"}
    found = _alarms(aws)
    assert set(found) == set(alarms.WHATS) - {"drill-failed"} | {"eu-db-cpu"}
    assert found["db-cpu"]["Threshold"] == 80
    assert aws("rds").describe_db_instances()["DBInstances"][0]["MaxAllocatedStorage"] == 200
    with calls.watch() as log:
        topology.provision(moved)
    assert log.mutations == []


def test_status_shows_the_alarms_and_destroy_removes_them(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    env = _env(emulator, monkeypatch, tmp_path)
    topology.provision(env)
    monkeypatch.setenv("OPS_CONFIG_DIR", str(tmp_path))
    monkeypatch.setattr(console, "console", console.console)  # json_mode() replaces it
    capsys.readouterr()
    tasks.status(Context(), env="awstest", json_=True)
    rows = {r["kind"]: r for r in json.loads(capsys.readouterr().out)["resources"]}
    assert rows["sns topic"]["state"] == "2 confirmed, 0 pending"
    assert rows["subscription ops@example.org"]["state"] == "confirmed"
    assert rows["alarm host-system"]["id"] == f"{PREFIX}host-system"
    assert {rows[f"alarm {what}"]["state"] for what in alarms.WHATS} <= {
        "OK", "ALARM", "INSUFFICIENT_DATA"}
    survey = teardown.survey(env)[1]
    shown = teardown.listing(env, survey).remove
    assert f"sns topic {PREFIX}alerts and its subscriptions (dba@example.org, " \
           "ops@example.org)" in shown
    assert any(line.startswith(f"alarms {PREFIX}backup-age, ") for line in shown)
    teardown.destroy(env)
    aws = boto(emulator)
    assert _alarms(aws) == {}
    assert aws("sns").list_topics()["Topics"] == []
    assert aws("sns").list_subscriptions()["Subscriptions"] == []
