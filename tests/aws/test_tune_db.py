"""tune-db against the AWS emulator: the parameter group after apply; a second run is a no-op."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from ops.approval import Approval
from ops.aws import session, tags
from ops.config import Environment
from ops.db.tune import tune
from ops.errors import OpsError


def rds() -> Any:
    return boto3.client("rds", region_name="eu-west-1")


def make_database(env: Environment, instance_class: str = "db.t4g.medium") -> None:
    """What provision will create: the parameter group and the instance that uses it."""
    client = rds()
    group = tags.db_parameter_group(env)
    client.create_db_parameter_group(DBParameterGroupName=group,
                                     DBParameterGroupFamily="postgres17",
                                     Description="test")
    client.create_db_instance(DBInstanceIdentifier=tags.db_instance_id(env),
                              DBInstanceClass=instance_class, Engine="postgres",
                              EngineVersion="17.2", AllocatedStorage=50,
                              MasterUsername="postgres", MasterUserPassword="not-a-secret-1",
                              DBParameterGroupName=group)


def group_values(env: Environment) -> dict[str, tuple[str, str]]:
    pages = rds().get_paginator("describe_db_parameters").paginate(
        DBParameterGroupName=tags.db_parameter_group(env))
    return {p["ParameterName"]: (p.get("ParameterValue"), p.get("ApplyMethod"))
            for page in pages for p in page["Parameters"]}


@pytest.fixture
def calls() -> Iterator[list[str]]:
    """Every RDS operation tune-db calls, recorded by a botocore event hook on every client."""
    seen: list[str] = []

    def record(model: Any, **_: Any) -> None:
        if model.service_model.service_name == "rds":
            seen.append(model.name)

    remove = session.add_hook("before-call", record)
    yield seen
    remove()


def mutating(calls: list[str]) -> list[str]:
    return [c for c in calls if not c.startswith(("Describe", "List"))]


NAMES = itertools.count(1)


@pytest.fixture
def env(aws_env: Environment) -> Environment:
    # a name of its own per test: the emulator outlives each test (object ids get reused)
    aws = aws_env.model_copy(update={"name": f"t{next(NAMES)}"})
    make_database(aws)
    return aws


def test_apply_sets_the_group_and_a_second_run_changes_nothing(
        env: Environment, calls: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    first = tune(env)
    assert first.pending_reboot and not first.rebooted
    values = group_values(env)
    assert values["max_connections"] == ("200", "pending-reboot")
    assert values["shared_buffers"] == (str(1024 * 128), "pending-reboot")   # 4 GiB class
    assert values["work_mem"] == (str(12 * 1024), "immediate")
    assert values["effective_cache_size"] == (str(3072 * 128), "immediate")
    assert mutating(calls) == ["ModifyDBParameterGroup"]
    out = capsys.readouterr().out
    assert "~ max_connections: (default) → 200 (static: needs reboot)" in out
    assert "--reboot" in out

    calls.clear()
    second = tune(env)
    assert len(second.plan) == 0 and mutating(calls) == []
    assert "no changes" in capsys.readouterr().out


def test_reboot_needs_confirmation_then_applies_and_verifies(
        env: Environment, calls: list[str]) -> None:
    with pytest.raises(OpsError, match="without confirmation: nobody is at a terminal"):
        tune(env, reboot=True, approval=Approval())  # pytest's stdin is not a terminal
    assert mutating(calls) == []
    outcome = tune(env, reboot=True)
    assert outcome.rebooted
    assert mutating(calls) == ["ModifyDBParameterGroup", "RebootDBInstance"]


def test_logical_replication_and_batches(env: Environment, calls: list[str]) -> None:
    database = env.database.model_copy(update={"logical_replication": True})
    tune(env.model_copy(update={"database": database}))
    values = group_values(env)
    assert values["rds.logical_replication"] == ("1", "pending-reboot")
    assert values["max_logical_replication_workers"] == ("4", "pending-reboot")
    assert mutating(calls) == ["ModifyDBParameterGroup"]   # 9 parameters: one batch


def test_a_class_without_known_memory_is_refused_before_any_change(
        aws_env: Environment, calls: list[str]) -> None:
    env = aws_env.model_copy(update={"name": "oddclass"})
    make_database(env, "db.x9.huge")
    with pytest.raises(OpsError, match=r"unknown memory size for instance class 'db\.x9\.huge'"):
        tune(env)
    assert mutating(calls) == []


def test_plan_changes_nothing_and_a_missing_database_is_named(
        env: Environment, aws_env: Environment, calls: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    outcome = tune(env, approval=Approval(plan_only=True))
    assert len(outcome.plan) == 5 and outcome.pending_reboot
    assert mutating(calls) == [] and group_values(env) == {}
    assert "~ work_mem: (default) → 12MB (dynamic: applies now)" in capsys.readouterr().out
    with pytest.raises(OpsError, match="has no database instance openlmis-nodb-db"):
        tune(aws_env.model_copy(update={"name": "nodb"}))
    assert mutating(calls) == []
