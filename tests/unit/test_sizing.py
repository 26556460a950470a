"""size-db: the published guidance's tiers, current classes, and the host from mem_limits."""

from __future__ import annotations

import pytest

from ops import config
from ops.config import Environment, Workload
from ops.db import sizing
from ops.stack import compose, release
from ops.stack import sizing as stack_sizing


def env(tier: str = "dev", instance_type: str = "m6i.large") -> Environment:
    return Environment.model_validate({
        "name": "t", "domain": "openlmis.example.org", "host": {"instance_type": instance_type},
        "database": {"tier": tier, "master_password": "env:PW"},
        "mail": {"from_address": "a@openlmis.example.org"},
    })


@pytest.mark.parametrize(("workload", "env_tier", "size"), [
    (Workload(), "dev", "micro"),                                     # dev, QA, private demo
    (Workload(), "uat", "medium"),                                    # CD, public demo, UAT
    (Workload(products=500, requisitions=100_000), "production", "medium"),  # small production
    (Workload(products=501), "dev", "large"),
    (Workload(requisitions=100_001), "uat", "large"),
    (Workload(reports_often=True), "production", "large"),
])
def test_tier_follows_the_guidance(workload: Workload, env_tier: str, size: str) -> None:
    assert sizing.tier(workload, env_tier)[0] == size


@pytest.mark.parametrize(("size", "workload", "cls"), [
    ("micro", Workload(idle_most_of_day=True), "db.t4g.micro"),
    ("medium", Workload(idle_most_of_day=True), "db.t4g.medium"),
    ("medium", Workload(idle_most_of_day=False), "db.m6g.large"),
    ("large", Workload(idle_most_of_day=False), "db.m6g.large"),
    ("large", Workload(idle_most_of_day=False, reports_often=True), "db.r6g.large"),
])
def test_classes_are_current_burstable_only_when_idle(size: str, workload: Workload,
                                                      cls: str) -> None:
    chosen, why = sizing.db_class(size, workload)
    assert chosen == cls and not chosen.startswith("db.t2")
    assert ("burstable" in why) == workload.idle_most_of_day


def test_recommendation_explains_each_choice_and_says_t2_is_retired() -> None:
    choices = {c.what: c for c in sizing.recommend(env("uat"), Workload())}
    assert choices["class"].value == "db.t4g.medium"
    assert "retiring" in choices["retired"].why and choices["retired"].value == "db.t2.medium"
    assert choices["max_connections"].value == "> 150"
    assert all(c.why and "\n" not in c.why for c in choices.values())


def test_compose_memory_sums_limits_without_the_database() -> None:
    text = """
services:
  auth: {mem_limit: 0.7G}
  requisition: {mem_limit: 1.3G}
  ui: {mem_limit: 512M}
  nginx: {image: nginx}
  db: {mem_limit: 1.3G}
"""
    assert sizing.compose_memory_gib(text) == pytest.approx(2.5)


def test_host_holds_the_ref_distro_limits() -> None:
    choice = sizing.host(sizing.REF_DISTRO_MEM_GIB, "ref-distro v3.19.2", "m6i.large")
    assert choice.value == "m6i.xlarge"
    assert "11.5 GiB" in choice.why and "m4.large" in choice.why and "m6i.large" in choice.why


def test_size_db_flags_override_the_workload(capsys: pytest.CaptureFixture[str]) -> None:
    from invoke import Program

    from ops.tasks import namespace

    def run(*argv: str) -> tuple[int, str]:
        try:
            Program(namespace=namespace(), version="test").run(["inv", "size-db", *argv])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, " ".join((captured.out + captured.err).split())

    code, out = run("--env", "lab")
    assert code == 0 and "db.t4g.micro" in out and "retiring" in out
    code, out = run("--env", "lab", "--products", "600", "--busy-all-day")
    assert code == 0 and "600 products" in out and "db.m6g.large" in out
    code, out = run("--env", "lab", "--requisitions", "0", "--reports-often",
                    "--idle-most-of-day")
    assert code == 0 and "reports run often" in out and "db.t4g.large" in out
    code, out = run("--env", "lab", "--idle-most-of-day", "--busy-all-day")
    assert code == 1 and "contradict" in out


def test_the_reference_distribution_needs_more_memory_than_the_default_instance_offers(
) -> None:
    env = config.load(path=config.ROOT / "config" / "example.yml")
    source = compose.release_dir("ref-distro", "3.19.2")
    files = {k: v.decode() for k, v in release.source_files(source).items()}
    found = compose.services(files, compose.parse_env(compose.release_env(source)))
    assert "db" not in {s.name for s in found}  # RDS replaces it
    assert 11 * 1024**3 < stack_sizing.total_limits(found) < 12 * 1024**3
    problem = stack_sizing.fit(found, env.host.instance_type)
    assert problem and "more than m6i.large offers (8 GiB" in problem
    assert stack_sizing.fit(found, "m6i.2xlarge") is None
