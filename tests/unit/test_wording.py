"""Apply acts on payloads and callers act on error types: rewording a plan line or an error
message changes nothing that the code does."""

from __future__ import annotations

import shutil
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from ops import config, console
from ops.aws import dns, network, topology
from ops.aws.context import Ctx, DnsRecord
from ops.config import ROOT, Environment
from ops.db import restore, swap
from ops.errors import OpsError
from ops.host.bootstrap import HostSteps
from ops.host.facts import Facts
from ops.lab import rehearsal
from ops.plan import Action, Change, Plan
from ops.stack import deploy, health, lock, release
from ops.stack.compose import Service
from ops.stack.release import Release

RECORD = DnsRecord("a.example.org", "CNAME", "x.aws", "sends a to x")


def environment() -> Environment:
    return config.load(path=ROOT / "config/example.yml")


def reworded(plan: Plan[Any]) -> Plan[Any]:
    """The same plan with every line saying something else."""
    return Plan([replace(c, target=f"thing {i}", detail="reworded")
                 for i, c in enumerate(plan)])


def test_topology_keeps_a_change_planned_twice_once_whatever_its_lines_say() -> None:
    first = Change(Action.CREATE, "dns a.example.org CNAME", "sends a to x",
                   payload=dns.Upsert(RECORD))
    again = Change(Action.CREATE, "record a", "worded differently", payload=dns.Upsert(RECORD))
    other = Change(Action.CREATE, "dns a.example.org CNAME", "sends a to x",
                   payload=dns.Upsert(replace(RECORD, value="y.aws")))
    merged = topology.merge([(dns, [first]), (dns, [again, other])])
    assert merged.lines() == ["+ dns a.example.org CNAME: sends a to x"] * 2
    assert [c.payload for c in merged] == [topology.Routed(dns, dns.Upsert(RECORD)),
                                           topology.Routed(dns, other.payload)]


def test_topology_keeps_equal_payloads_of_different_areas() -> None:
    vpc = Change(Action.CREATE, "vpc", payload=network.Op.VPC)
    merged = topology.merge([(network, [vpc]), (dns, [replace(vpc)])])
    assert [c.payload.area for c in merged] == [network, dns]


def test_topology_applies_each_payload_in_its_own_area() -> None:
    applied: list[tuple[str, object]] = []

    def area(name: str) -> ModuleType:
        module = ModuleType(name)

        def apply(ctx: Ctx, payload: object) -> None:
            applied.append((name, payload))

        module.apply = apply  # type: ignore[attr-defined]
        return module

    areas = [area("first"), area("second")]
    plan = topology.merge([(areas[0], [Change(Action.CREATE, "a", payload=1)]),
                           (areas[1], [Change(Action.UPDATE, "a", payload=2)])])
    topology.apply(Ctx(environment()), reworded(plan))
    assert applied == [("first", 1), ("second", 2)]


@dataclass
class FakeRemote:
    """A host that answers every command with nothing and remembers what it was asked."""

    address: str = "host"
    commands: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def apply(self, steps: Any, what: str) -> None:
        self.commands += [step[1] for step in steps]

    def ok(self, command: str) -> bool:
        return True

    def run(self, command: str, *, what: str = "", check: bool = True,
            timeout: float | None = 0) -> str:
        self.commands.append(command)
        return ""

    def put(self, path: str, data: bytes, mode: int) -> None:
        self.files.append(path)


SERVICES = [Service("nginx", "lab/app:1", True, 0, ("80:80",))]
WANTED = Release("1", {"docker-compose.yml": b"services: {}", ".env": b""}, SERVICES)
FACTS = Facts(current="0-old", releases=("0-old", "z-1", "z-2", "z-3"))


@pytest.fixture(autouse=True)
def timeless_audit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Audit records without their time: two runs of apply compare equal."""
    monkeypatch.setattr(deploy.audit, "entry", lambda who, action, release, result, **detail: {
        "action": action, "release": release, "result": result, **detail})


def session() -> deploy.Session:
    return deploy.Session(environment(), FakeRemote(), "me@pc")  # type: ignore[arg-type]


def gate(monkeypatch: pytest.MonkeyPatch, *verdicts: bool) -> None:
    """The health gate's verdicts, in order."""
    answers = iter(health.Assessment(ok, {} if ok else {"auth": "unhealthy"}) for ok in verdicts)
    monkeypatch.setattr(deploy, "_gate", lambda s, services: next(answers))
    monkeypatch.setattr(deploy, "_remote_services", lambda s, release_id: SERVICES)


def deploy_plan() -> Plan[deploy.Payload]:
    steps = HostSteps((("run", "systemctl enable --now docker"),))
    return Plan([Change(Action.UPDATE, "docker service", "enable and start", payload=steps),
                 *release.plan(WANTED, FACTS, drifted={}, keep=3, push=None)])


def applied(monkeypatch: pytest.MonkeyPatch, plan: Plan[deploy.Payload]) -> FakeRemote:
    gate(monkeypatch, True)
    s = session()
    deploy._apply(s, WANTED, plan, FACTS)
    assert isinstance(s.remote, FakeRemote)
    return s.remote


def test_deploy_applies_the_plan_from_its_payloads(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = deploy_plan()
    assert [type(p).__name__ for p in plan.payloads()] == [
        "HostSteps", "Upload", "Compose", "Compose", "Compose", "Prune", "Prune"]
    remote = applied(monkeypatch, plan)
    done = "\n".join(remote.commands)
    assert "systemctl enable --now docker" in done
    assert f"mv -T /opt/openlmis/releases/{WANTED.id}.partial" in done
    assert "pull --quiet" in done
    assert "rm -rf /opt/openlmis/releases/z-2" in done
    assert "rm -rf /opt/openlmis/releases/z-3" in done
    assert sorted(remote.files) == [f"/opt/openlmis/releases/{WANTED.id}.partial/{name}"
                                    for name in sorted(WANTED.files)]
    assert applied(monkeypatch, reworded(plan)) == remote


def test_deploy_ignores_lines_that_merely_look_like_work(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = Plan([Change(Action.CREATE, f"release {WANTED.id}", payload=release.Compose.SWITCH),
                 Change(Action.RUN, "docker compose pull", payload=release.Compose.UP)])
    done = "\n".join(applied(monkeypatch, plan).commands)
    assert ".partial" not in done and "pull --quiet" not in done and "rm -rf" not in done
    assert "docker compose --ansi never -p" in done  # switched and up all the same


def test_pushed_images_come_from_the_payloads(monkeypatch: pytest.MonkeyPatch) -> None:
    pushed: list[list[str]] = []
    monkeypatch.setattr(deploy.images, "push", lambda remote, images: pushed.append(images))
    plan = Plan(release.plan(WANTED, FACTS, drifted={}, keep=3, push={"lab/app:1": "sha256:1"}))
    applied(monkeypatch, reworded(plan))
    assert pushed == [["lab/app:1"]]


def test_a_failed_release_rolls_back_and_says_so_in_attributes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    gate(monkeypatch, False, True)
    s = session()
    with pytest.raises(deploy.RolledBack) as caught:
        deploy._apply(s, WANTED, deploy_plan(), FACTS)
    assert (caught.value.failed, caught.value.restored) == (WANTED.id, "0-old")
    assert isinstance(s.remote, FakeRemote)
    assert not any("rm -rf /opt/openlmis/releases/z-" in c for c in s.remote.commands)


def test_wait_for_gives_up_with_what_it_waited_for() -> None:
    with pytest.raises(console.WaitTimeout) as caught:
        console.wait_for("the thing", lambda: None, timeout=0.01, interval=0.001)
    assert (caught.value.what, caught.value.timeout) == ("the thing", 0.01)


def locked(monkeypatch: pytest.MonkeyPatch, error: OpsError) -> AbstractContextManager[None]:
    """The deploy lock held by a live session, its wait ending in `error`."""
    holder = lock.Holder("you@pc", "deploy", "2-b", "2026-01-01T00:00:00Z", 7, "boot")
    monkeypatch.setattr(deploy.lock, "parse_acquire", lambda text: (False, holder, False))

    def wait_for(*args: Any, **kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(deploy.console, "wait_for", wait_for)
    return deploy._locked(session(), "deploy", "1-a", wait=5, break_lock=False)


def test_a_lock_wait_that_times_out_is_known_by_its_type(monkeypatch: pytest.MonkeyPatch) -> None:
    with (pytest.raises(OpsError, match="another deploy holds the lock on host: you@pc"),
          locked(monkeypatch, console.WaitTimeout("the deploy lock", 5))):
        pass
    with (pytest.raises(OpsError, match=r"^timed out reading the lock$"),
          locked(monkeypatch, OpsError("timed out reading the lock"))):
        pass


def test_the_rehearsal_knows_a_rollback_by_its_type(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    shutil.copytree(ROOT / "compose/ref-distro/releases" / rehearsal.NEXT,
                    tmp_path / rehearsal.NEXT)
    env = environment()
    env = env.model_copy(update={"name": "lab", "stack": env.stack.model_copy(
        update={"releases_dir": tmp_path})})
    ctx = rehearsal.Context(env, lab=None,  # type: ignore[arg-type]
                            notes={"referencedata": "15.5.0-SNAPSHOT"})  # as the upgrade left
    monkeypatch.setattr(rehearsal, "_serving", lambda ctx, name, version: f"{name} {version}")

    def fails(error: OpsError) -> None:
        def deploy_(env: Environment, *, name: str) -> None:
            assert env.stack.health_timeout_s == 60 and name == "3.20.1-broken"
            raise error
        monkeypatch.setattr(rehearsal.deploy, "deploy", deploy_)

    fails(deploy.RolledBack("worded anyhow; inv restore-db --env lab --from d-1", hint="",
                            failed="broken-1", restored="2-a"))
    assert rehearsal.failed_upgrade(ctx) == (
        "refused by the health gate, rolled back to 2-a, the restore command named; "
        "referencedata 15.5.0-SNAPSHOT")
    assert "<root" in (tmp_path / "3.20.1-broken/config/log/logback.xml").read_text()
    fails(deploy.RolledBack("rolled back, but no word of the backup", hint="",
                            failed="broken-1", restored="2-a"))
    with pytest.raises(OpsError, match="does not say how to restore"):
        rehearsal.failed_upgrade(ctx)
    fails(OpsError("the text says rolled back, but nothing was"))
    with pytest.raises(OpsError, match="but nothing was"):
        rehearsal.failed_upgrade(ctx)


class FakeDbHost:
    """A database host whose psql scripts fail when they are of the kind `failing` names."""

    def __init__(self, failing: str) -> None:
        self.db = SimpleNamespace(name="open_lmis", user="postgres")
        self.failing = failing
        self.commands: list[str] = []
        self.remote = SimpleNamespace(run=lambda command, **_: self.commands.append(command))

    def script(self, sql: str, variables: dict[str, str], **_: Any) -> str:
        self.commands.append(sql)
        if self.failing in sql:
            raise OpsError("the server went away")
        return ""

    def run(self, command: str, **kwargs: Any) -> tuple[int, str]:
        self.commands.append(command)
        return 0, ""

    def row_counts(self, database: str) -> dict[str, int]:
        return {}


def restoring(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """restore-db's I/O replaced; the projects whose health was awaited after the cut-over."""
    settled: list[str] = []
    monkeypatch.setattr(restore.deploy, "settle", lambda env, remote: settled.append(env.name))
    manifest = SimpleNamespace(id="dump-1", tables={})
    monkeypatch.setattr(restore.dumps, "manifest", lambda env, backup_id: manifest)
    monkeypatch.setattr(restore, "fetch", lambda env, host, manifest: "/work/d")
    monkeypatch.setattr(restore, "preflight", lambda host, manifest, directory: None)
    monkeypatch.setattr(restore, "_check_storage", lambda env, manifest: None)
    monkeypatch.setattr(restore, "services", lambda remote, verb: ["openlmis"])
    monkeypatch.setattr(restore, "load", lambda host, directory, database, jobs: None)
    return settled


def test_a_restore_failing_before_the_swap_drops_its_copy_and_never_stops_the_stack(
        monkeypatch: pytest.MonkeyPatch) -> None:
    restoring(monkeypatch)
    stopped: list[str] = []
    monkeypatch.setattr(restore, "services", lambda remote, verb: stopped.append(verb) or [])
    host = FakeDbHost(failing="CREATE DATABASE")
    with pytest.raises(OpsError) as caught:
        restore.restore_dump(environment(), host, "dump-1")  # type: ignore[arg-type]
    assert "open_lmis and the stack were not touched" in caught.value.hint
    assert host.commands[-1] == swap.DROP_SQL and not stopped


def test_a_failed_swap_starts_the_stack_again(monkeypatch: pytest.MonkeyPatch) -> None:
    settled = restoring(monkeypatch)
    host = FakeDbHost(failing="RENAME")
    with pytest.raises(OpsError, match="the server went away"):
        restore.restore_dump(environment(), host, "dump-1")  # type: ignore[arg-type]
    # renames are one transaction: the stack runs again on the old database
    assert host.commands[-1].startswith("docker compose -p openlmis start")
    assert settled == [environment().name]  # and waited for its verdict


def test_restoring_from_an_unknown_name_says_it_is_none_of_the_three(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def untouched(*args: object, **kwargs: object) -> None:
        raise AssertionError("restore-db went on with an unknown --from")

    monkeypatch.setattr(restore.catalog, "backups", lambda env: [])
    for step in ("source", "cut_over_left", "rds", "restore"):
        monkeypatch.setattr(restore.snapshots, step, untouched)
    with pytest.raises(OpsError) as caught:
        restore.restore_db(environment(), "nosuch", force=True)
    assert caught.value.message == (
        "example has no backup, snapshot or kept database copy named nosuch")
    assert "inv list-backups" in caught.value.hint and "open_lmis_before_" in caught.value.hint
