"""tune-db's pure planning: desired values per class, refusals, diff, apply methods, batches."""

from __future__ import annotations

import pytest

from ops.db import pg_settings, tuning
from ops.errors import OpsError

PG17 = {**pg_settings.load(17), **tuning.RDS_ONLY}


def test_tables_say_which_parameters_are_static() -> None:
    for major in (15, 17):
        table = pg_settings.load(major)
        assert table["max_connections"].static and table["shared_buffers"].static
        assert table["wal_level"].static and table["max_wal_senders"].static
        assert not table["work_mem"].static and not table["effective_cache_size"].static
    assert tuning.RDS_ONLY["rds.logical_replication"].static
    with pytest.raises(OpsError, match="no pg_settings table for PostgreSQL 9"):
        pg_settings.load(9)


@pytest.mark.parametrize(("cls", "shared_mb", "cache_mb", "maint_mb", "work_mb"), [
    ("db.t4g.micro", 256, 768, 64, 3),
    ("db.t4g.medium", 1024, 3072, 256, 12),
    ("db.m6g.large", 2048, 6144, 512, 24),
    ("db.r6g.2xlarge", 16384, 49152, 2048, 64),
])
def test_desired_memory_follows_the_class(cls: str, shared_mb: int, cache_mb: int,
                                          maint_mb: int, work_mb: int) -> None:
    size = tuning.sizing(cls, "ref-distro")
    params = tuning.desired(size, logical_replication=False, rds=True)
    assert params == {
        "max_connections": "200",
        "shared_buffers": str(shared_mb * 128),         # 8kB pages
        "effective_cache_size": str(cache_mb * 128),
        "maintenance_work_mem": str(maint_mb * 1024),   # kB
        "work_mem": str(work_mb * 1024),
    }
    tuning.check(params, PG17, size.memory_mib)


def test_connections_cover_every_pool_and_stay_above_the_floor() -> None:
    assert tuning.max_connections(13) == 200     # 180 wanted: the 200 minimum
    assert tuning.max_connections(1) == 200
    assert tuning.max_connections(30) == 350
    assert tuning.MIN_CONNECTIONS > 150          # the documented floor


def test_logical_replication_differs_between_rds_and_plain_postgresql() -> None:
    size = tuning.sizing("db.t4g.medium", "ref-distro")
    rds = tuning.desired(size, logical_replication=True, rds=True)
    lab = tuning.desired(size, logical_replication=True, rds=False)
    assert rds["rds.logical_replication"] == "1" and "wal_level" not in rds
    assert lab["wal_level"] == "logical" and "rds.logical_replication" not in lab
    for params in (rds, lab):
        assert params["max_wal_senders"] == params["max_replication_slots"] == "10"
        assert params["max_logical_replication_workers"] == "4"


def test_unknown_class_is_refused() -> None:
    with pytest.raises(OpsError, match=r"db\.x9\.huge"):
        tuning.sizing("db.x9.huge", "ref-distro")


def test_rejected_or_oversized_values_are_refused_before_anything_changes() -> None:
    size = tuning.sizing("db.t4g.micro", "ref-distro")
    params = tuning.desired(size, logical_replication=False, rds=True)
    with pytest.raises(OpsError, match="max_connections = 999999: 999999 is above the maximum"):
        tuning.check({**params, "max_connections": "999999"}, PG17, size.memory_mib)
    with pytest.raises(OpsError, match="no such parameter"):
        tuning.check({"no_such_thing": "1"}, PG17, size.memory_mib)
    with pytest.raises(OpsError, match="not one of minimal, replica, logical"):
        tuning.check({"wal_level": "everything"}, PG17, size.memory_mib)
    with pytest.raises(OpsError, match="does not fit 90% of the class's 1024 MiB"):
        tuning.check({**params, "work_mem": str(64 * 1024)}, PG17, size.memory_mib)


def test_diff_says_what_needs_a_reboot_and_skips_equal_values() -> None:
    wanted = {"max_connections": "180", "work_mem": "3072", "shared_buffers": "32768",
              "rds.logical_replication": "1"}
    current = {"max_connections": "100", "work_mem": "3072", "shared_buffers": None,
               "rds.logical_replication": "on"}
    plan = tuning.diff(current, wanted, PG17)
    assert plan.lines() == [
        "~ max_connections: 100 → 180 (static: needs reboot)",
        "~ shared_buffers: (default) → 256MB (static: needs reboot)",
    ]
    assert tuning.diff(wanted, wanted, PG17).lines() == ["no changes"]


def test_apply_methods_split_static_from_dynamic() -> None:
    plan = tuning.diff({}, {"max_connections": "180", "work_mem": "3072"}, PG17)
    assert tuning.rds_parameters(plan.payloads()) == [
        {"ParameterName": "max_connections", "ParameterValue": "180",
         "ApplyMethod": "pending-reboot"},
        {"ParameterName": "work_mem", "ParameterValue": "3072", "ApplyMethod": "immediate"},
    ]


def test_batches_respect_the_api_limit() -> None:
    items = [{"ParameterName": str(i)} for i in range(45)]
    sizes = [len(b) for b in tuning.batches(items)]
    assert sizes == [20, 20, 5]
    assert [p for b in tuning.batches(items) for p in b] == items
    assert list(tuning.batches([])) == []
