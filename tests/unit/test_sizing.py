"""size-db's tiers and classes; the host memory model deploy, provision and size-db share;
stack.memory's heaps and limits."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ops import config
from ops.config import Environment, HostConfig, Workload
from ops.db import sizing
from ops.errors import OpsError
from ops.stack import compose, override, planned, release, service_memory
from ops.stack import sizing as stack_sizing
from ops.stack.compose import Service

GIB = 1024**3


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
    choices = {c.what: c for c in sizing.recommend(env("uat"), Workload(), [])}
    assert choices["class"].value == "db.t4g.medium"
    assert "retiring" in choices["retired"].why and choices["retired"].value == "db.t2.medium"
    assert choices["max_connections"].value == "> 150"
    assert all(c.why and "\n" not in c.why for c in choices.values())


def ref_distro(**stack: object) -> list[Service]:
    """The reference distribution's services as deploy runs them (the toolkit's file too)."""
    example = config.load(path=config.ROOT / "config" / "example.yml")
    return planned.services(example.model_copy(update={
        "stack": example.stack.model_validate({**example.stack.model_dump(), **stack})}))


def test_the_need_is_the_limits_plus_one_overhead() -> None:
    services = [Service(f"s{i}", "x", False, 1300 * 1024**2, ()) for i in range(8)]
    services.append(Service("consul", "c", False, 0, ()))  # no limit: in the overhead
    assert stack_sizing.need(services) == 8 * 1300 * 1024**2 + stack_sizing.OVERHEAD_GIB * GIB
    assert stack_sizing.fit(services, "m6i.xlarge") is None
    problem = stack_sizing.fit(services, "m6i.large")
    assert problem and "10.2 GiB" in problem and "= 12.2 GiB" in problem
    assert "more than m6i.large offers (8 GiB): under load the kernel kills services; " \
        "m6i.xlarge (16 GiB) fits" in problem
    assert stack_sizing.fit(services, "r6i.large") is None  # 16 GiB on 2 vCPU
    assert stack_sizing.fit(services, "m6g.xlarge", 16) is None  # memory AWS reported
    assert "unknown" in (stack_sizing.fit(services, "x9.huge") or "")


def test_the_reference_distribution_needs_more_than_the_guidance_host() -> None:
    found = ref_distro()
    assert "db" not in {s.name for s in found}  # RDS replaces it
    assert "health" in {s.name for s in found}  # the toolkit's own service counts too
    assert 11.5 * GIB < stack_sizing.limits(found) < 12 * GIB
    problem = stack_sizing.fit(found, "m4.large")
    assert problem and "m4.large offers (8 GiB)" in problem and "m4.xlarge (16 GiB) fits" in problem
    assert stack_sizing.fit(found, "m6i.2xlarge") is None


def test_the_default_instance_type_is_the_smallest_of_its_family_for_the_default_stack(
) -> None:
    default = HostConfig().instance_type
    example = config.load(path=config.ROOT / "config" / "example.yml")
    assert example.host.instance_type == default
    found = ref_distro()
    assert stack_sizing.fit(found, default) is None
    assert stack_sizing.smallest(found, stack_sizing.family(default)) == default


def test_the_lab_stack_fits_the_lab_host() -> None:
    lab = config.load(path=config.ROOT / "config" / "lab.yml")
    assert stack_sizing.fit(planned.services(lab), lab.host.instance_type) is None


def test_size_db_recommends_the_host_by_the_same_model() -> None:
    found = ref_distro()
    choice = sizing.host(found, "m6i.large")
    assert choice.value == "m6i.xlarge" == stack_sizing.smallest(found, "m6i")
    assert stack_sizing.explain(found) in choice.why
    assert "not the guidance's m4.large" in choice.why and "is m6i.large" in choice.why
    assert sizing.host(found, "r6i.large").value == "r6i.large"  # its family, it fits
    assert sizing.host(found, "x9.huge").value == HostConfig().instance_type
    bigger = ref_distro(memory={"referencedata": {"mem_limit": "6g"}})
    assert sizing.host(bigger, "m6i.xlarge").value == "m6i.2xlarge"  # counts stack.memory


def test_heap_and_limit_are_rendered_whole_into_the_toolkit_file() -> None:
    before = {s.name: s for s in ref_distro()}
    memory = {"referencedata": {"java_heap": "1536m", "mem_limit": "2g"},
              "stockmanagement": {"java_heap": "400m"}}
    found = {s.name: s for s in ref_distro(memory=memory)}
    upstream = "-server -Xmx{} -Dlogging.config=/config/log/logback.xml"
    assert before["referencedata"].java_opts == upstream.format("1024m")
    assert found["referencedata"].java_opts == upstream.format("1536m")
    assert found["referencedata"].mem_limit == 2 * GIB
    assert found["stockmanagement"].java_opts == upstream.format("400m")
    assert found["stockmanagement"].mem_limit == before["stockmanagement"].mem_limit
    assert stack_sizing.limits(list(found.values())) - stack_sizing.limits(
        list(before.values())) == 2 * GIB - before["referencedata"].mem_limit

    env = config.load(path=config.ROOT / "config" / "example.yml")
    source = compose.release_dir("ref-distro", "3.19.2")
    raw = release.source_files(source)
    files = {k: v.decode() for k, v in raw.items()}
    pins = compose.parse_env(compose.release_env(source))
    parsed = env.stack.model_validate({**env.stack.model_dump(), "memory": memory}).memory
    text, _ = override.merged(files, pins, parsed, project="p", files=raw)
    rendered = compose.load(text)["services"]
    assert rendered["referencedata"]["environment"] == {"JAVA_OPTS": upstream.format("1536m")}
    assert rendered["referencedata"]["mem_limit"] == "2g"
    assert "environment" not in rendered["auth"]  # untouched services: as upstream wrote them
    # compose merges environment per key: upstream's other values stay (the override file's
    # spring_profiles_active for stockmanagement included)
    merged = compose.services({**files, override.NAME: text}, pins)
    assert [s.java_opts for s in merged if s.name == "stockmanagement"] == [
        upstream.format("400m")]


def test_a_heap_without_room_beside_it_is_refused_naming_the_key() -> None:
    with pytest.raises(OpsError) as caught:
        ref_distro(memory={"referencedata": {"java_heap": "1536m"}})
    assert str(caught.value).startswith("stack.memory.referencedata.java_heap: 1536m does not "
                                        "fit under referencedata's mem_limit (1331 MiB)")
    assert "at most 1064m" in str(caught.value) and "at least 1920m" in caught.value.hint
    ref_distro(memory={"referencedata": {"java_heap": "1064m"}})  # 80 % of 1.3G
    ref_distro(memory={"referencedata": {}})  # nothing set, nothing checked
    ref_distro(memory={"referencedata": {"java_heap": "1536m", "mem_limit": "1920m"}})
    with pytest.raises(OpsError, match=r"^stack\.memory\.auth\.mem_limit: 600m leaves too little "
                       r"for auth's heap \(512 MiB, upstream's -Xmx\)"):
        ref_distro(memory={"auth": {"mem_limit": "600m"}})
    with pytest.raises(OpsError, match=r"^stack\.memory\.reference-ui\.java_heap: .* no "
                                       r"JAVA_OPTS"):
        ref_distro(memory={"reference-ui": {"java_heap": "512m"}})
    with pytest.raises(OpsError, match=r"^stack\.memory\.refdata: the stack has no service"):
        ref_distro(memory={"refdata": {"java_heap": "512m"}})


def test_a_size_that_is_not_one_is_a_config_error(tmp_path: Path) -> None:
    data = yaml.safe_load((config.ROOT / "config" / "example.yml").read_text())
    data["stack"]["memory"] = {"referencedata": {"java_heap": "1.5g"},
                               "auth": {"mem_limit": "lots"}}
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(OpsError) as caught:
        config.load(path=path)
    assert "stack.memory.referencedata.java_heap: '1.5g' is not a heap size" in str(caught.value)
    assert "stack.memory.auth.mem_limit: 'lots' is not a memory limit" in str(caught.value)


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


def test_a_heap_set_from_config_keeps_the_initial_heap_within_it() -> None:
    upstream = "-Xms1024m -Xmx1024m -Djava.security.egd=file:/dev/./urandom"
    assert service_memory.with_heap(upstream, "768m") == (
        "-Xms768m -Xmx768m -Djava.security.egd=file:/dev/./urandom")
    assert service_memory.with_heap("-server", "1g") == "-server -Xmx1g"
