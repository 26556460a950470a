"""The snapshot path against the emulator: shape kept on restore, source kept, retention."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest

from ops.aws import tags
from ops.aws.session import client
from ops.config import Environment
from ops.db import backup, catalog, snapshots
from ops.db.manifest import Verification, now
from ops.db.restore import restore_db
from ops.errors import OpsError


@pytest.fixture
def rds_env(aws_env: Environment, emulator: str) -> Environment:
    """An empty account with the environment's RDS instance in a non-default shape."""
    urllib.request.urlopen(urllib.request.Request(f"{emulator}/moto-api/reset", method="POST"),
                           timeout=10).close()
    ec2, rds = client(aws_env, "ec2"), client(aws_env, "rds")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{i}.0/24",
                                 AvailabilityZone=f"eu-west-1{z}")["Subnet"]["SubnetId"]
               for i, z in ((1, "a"), (2, "b"))]
    group = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
    rds.create_db_subnet_group(DBSubnetGroupName="openlmis-awstest-db",
                               DBSubnetGroupDescription="db", SubnetIds=subnets)
    rds.create_db_parameter_group(DBParameterGroupName=tags.db_parameter_group(aws_env),
                                  DBParameterGroupFamily="postgres17", Description="tuned")
    rds.create_db_instance(
        DBInstanceIdentifier=tags.db_instance_id(aws_env), Engine="postgres",
        EngineVersion="17.2", DBInstanceClass="db.m6g.large", AllocatedStorage=50,
        MasterUsername="postgres", MasterUserPassword="db-master-Secret-123",
        DBParameterGroupName=tags.db_parameter_group(aws_env),
        DBSubnetGroupName="openlmis-awstest-db", VpcSecurityGroupIds=[group])
    return aws_env


def _instance(env: Environment, instance_id: str) -> dict:
    return client(env, "rds").describe_db_instances(
        DBInstanceIdentifier=instance_id)["DBInstances"][0]


def test_snapshot_is_tagged_and_listed(rds_env: Environment) -> None:
    [taken] = backup.backup_db(rds_env, method="snapshot", reason="before upgrade")
    [listed] = catalog.backups(rds_env)
    assert (listed.id, listed.kind, listed.reason, listed.state) == (
        taken, "snapshot", "before upgrade", "unverified")
    assert listed.release == "unknown"  # no host to read /opt/openlmis/current from


def test_snapshot_without_an_instance_is_a_clear_error(aws_env: Environment,
                                                       emulator: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{emulator}/moto-api/reset", method="POST"),
                           timeout=10).close()
    with pytest.raises(OpsError, match="has no RDS instance openlmis-awstest-db"):
        backup.backup_db(aws_env, method="snapshot", reason="")


def test_restore_keeps_the_shape_and_the_previous_instance(rds_env: Environment) -> None:
    source_id = tags.db_instance_id(rds_env)
    before = snapshots.like(_instance(rds_env, source_id))
    [snapshot_id] = backup.backup_db(rds_env, method="snapshot", reason="drill")

    restore_db(rds_env, snapshot_id, force=False)

    ids = {i["DBInstanceIdentifier"] for i in
           client(rds_env, "rds").describe_db_instances()["DBInstances"]}
    kept = next(i for i in ids if i.startswith(f"{source_id}-pre-"))
    assert ids == {source_id, kept}
    assert snapshots.like(_instance(rds_env, source_id)) == before
    assert before["DBParameterGroupName"] == "openlmis-awstest-postgres17"
    assert before["DBSubnetGroupName"] == "openlmis-awstest-db"
    assert snapshots.like(_instance(rds_env, kept)) == before


def test_the_cut_over_renames_only_while_the_stack_is_held(rds_env: Environment) -> None:
    source_id = tags.db_instance_id(rds_env)
    [snapshot_id] = backup.backup_db(rds_env, method="snapshot", reason="drill")
    seen: list[set[str]] = []

    def ids() -> set[str]:
        return {i["DBInstanceIdentifier"] for i in
                client(rds_env, "rds").describe_db_instances()["DBInstances"]}

    @contextmanager
    def stack_stopped() -> Iterator[None]:
        seen.append(ids())
        yield
        seen.append(ids())

    kept = snapshots.restore(rds_env, snapshot_id, stack_stopped)
    # stopped with the new instance ready beside the source, started after both renames
    [new] = seen[0] - {source_id}
    assert source_id in seen[0] and new.startswith(f"{source_id}-r")
    assert seen[1] == {source_id, kept} and len(seen) == 2


def test_verify_restores_to_scratch_records_and_cleans_up(rds_env: Environment) -> None:
    from ops.db.verify import verify

    [snapshot_id] = backup.backup_db(rds_env, method="snapshot", reason="")
    result = verify(rds_env, catalog.find(rds_env, snapshot_id))
    assert result.ok, result.detail
    assert catalog.find(rds_env, snapshot_id).verified
    ids = [i["DBInstanceIdentifier"] for i in
           client(rds_env, "rds").describe_db_instances()["DBInstances"]]
    assert ids == [tags.db_instance_id(rds_env)]


def test_production_restore_needs_force(rds_env: Environment) -> None:
    production = rds_env.model_copy(update={"database": rds_env.database.model_copy(
        update={"tier": "production"})})
    with pytest.raises(OpsError, match="--force"):
        restore_db(production, "openlmis-awstest-db-20260101000000", force=False)


def test_retention_prunes_old_ones_but_keeps_the_newest_verified(
        rds_env: Environment, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = []
    for second in range(5):
        monkeypatch.setattr(snapshots, "now", lambda s=second: now() + timedelta(seconds=s))
        taken.append(snapshots.create(rds_env, reason=f"n{second}", release="1"))
    oldest = catalog.find(rds_env, taken[0])
    snapshots.record(rds_env, oldest, Verification(True, now().isoformat(), "drilled"))
    monkeypatch.setattr(catalog, "now", lambda: now() + timedelta(days=rds_env.backups.keep_days
                                                                 + 1))
    env = rds_env.model_copy(update={"backups": rds_env.backups.model_copy(
        update={"keep_last": 2})})

    removed = catalog.prune(env)

    assert sorted(b.id for b in removed) == sorted(taken[1:3])
    assert sorted(b.id for b in catalog.backups(env)) == sorted([taken[0], *taken[3:]])


def test_a_cut_over_that_died_between_its_renames_is_finished_and_guarded(
        rds_env: Environment, monkeypatch: pytest.MonkeyPatch) -> None:
    from ops.aws import database
    from ops.aws.context import Ctx

    source_id = tags.db_instance_id(rds_env)
    [snapshot_id] = backup.backup_db(rds_env, method="snapshot", reason="drill")
    real_wait = snapshots.wait_available

    def dies(env: Environment, instance_id: str) -> dict:
        if "-pre-" in instance_id:  # the operator's connection dies after the first rename
            raise KeyboardInterrupt
        return real_wait(env, instance_id)

    monkeypatch.setattr(snapshots, "wait_available", dies)
    with pytest.raises(KeyboardInterrupt):
        restore_db(rds_env, snapshot_id, force=False)
    monkeypatch.setattr(snapshots, "wait_available", real_wait)
    rds = client(rds_env, "rds")
    restored, previous = database.cut_over_left(rds, rds_env)
    assert previous.startswith(f"{source_id}-pre-") and restored.startswith(f"{source_id}-r")

    client(rds_env, "ssm").put_parameter(Name="/openlmis/test/db", Type="SecureString",
                                         Value="db-master-Secret-123", Overwrite=True)
    with pytest.raises(OpsError, match="provision would create an EMPTY") as refused:
        database.check(Ctx(rds_env))
    assert "inv restore-db" in refused.value.hint
    with pytest.raises(OpsError, match="cut-over stopped between its renames"):
        backup.backup_db(rds_env, method="snapshot", reason="")

    restore_db(rds_env, snapshot_id, force=False)  # finishes it
    ids = {i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]}
    assert ids == {source_id, previous}
    assert database.cut_over_left(rds, rds_env) is None


def test_retention_removes_dumps_that_died_a_day_ago(aws_env: Environment,
                                                     emulator: str) -> None:
    """A scheduled dump that died half-way leaves files without a manifest: the host cannot
    delete them, the next retention does once they are a day old."""
    from ops.db import dumps

    urllib.request.urlopen(urllib.request.Request(f"{emulator}/moto-api/reset", method="POST"),
                           timeout=10).close()
    s3 = client(aws_env, "s3")
    s3.create_bucket(Bucket=aws_env.bucket,
                     CreateBucketConfiguration={"LocationConstraint": aws_env.aws.region})
    old, young = (f"dump-{now() - timedelta(hours=h):%Y%m%dT%H%M%SZ}" for h in (30, 2))
    for backup_id in (old, young):
        s3.put_object(Bucket=aws_env.bucket, Key=dumps.data_key(backup_id, "toc.dat"), Body=b"x")
    assert dumps.incomplete(aws_env, now() - catalog.INCOMPLETE_AFTER) == [old]
    catalog.prune(aws_env)
    left = {o["Key"] for o in s3.list_objects_v2(Bucket=aws_env.bucket)["Contents"]}
    assert left == {dumps.data_key(young, "toc.dat")}
