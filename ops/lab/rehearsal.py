"""The whole lifecycle on the lab, step by step, ending with a table of results.

Each step is a function of the shared Context returning a one-line result; a failing step
stops the run, and the steps after it are reported as not run. The swarm variant
(SWARM_STEPS) runs the same release on SWARM_NODES lab hosts: spread, restored, a node lost
and healed by the swarm alone, the node back, Consul started afresh and its catalog refilled,
a broken upgrade rolled back.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import psycopg.sql

from ops import config, console, targets
from ops.approval import Approval
from ops.aws import resize, topology
from ops.aws.session import client
from ops.config import Environment
from ops.db import backup, catalog, restore, verify
from ops.db.tune import tune as tune_db
from ops.errors import OpsError
from ops.host.session import open_host
from ops.lab.lab import Lab
from ops.lab.state import LabState
from ops.stack import compose, deploy, release


@dataclass
class Context:
    env: Environment
    lab: Lab
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Context], str]


@dataclass(frozen=True)
class Result:
    step: str
    ok: bool | None
    detail: str
    seconds: float


def lab_up(ctx: Context) -> str:
    found = ctx.lab.up()
    return f"emulator {found['emulator']}, PostgreSQL {found['database']}"


def emulator_answers(ctx: Context) -> str:
    identity = client(ctx.env, "sts").get_caller_identity()
    return f"AWS API answers as account {identity['Account']}"


def database_answers(ctx: Context) -> str:
    with ctx.lab.db_connection(ctx.env.database.name, user=ctx.env.database.master_username,
                               connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'), rolsuper FROM pg_roles "
            "WHERE rolname = current_user").fetchone()
    assert row is not None  # current_user is a role
    version, superuser = row
    if superuser:
        raise OpsError("the lab's master user is a superuser: RDS's is not")
    return (f"PostgreSQL {version} serves {ctx.env.database.name} over verified TLS, "
            "its master no superuser (as on RDS)")


def provision(ctx: Context) -> str:
    topology.provision(ctx.env)
    _, left = topology.plan(ctx.env)
    if left:
        raise OpsError("a second provision would still change: " + "; ".join(left.lines()))
    return "topology converged; a second run plans no changes"


def deploy_first(ctx: Context) -> str:
    deploy.deploy(ctx.env, name=FIRST)
    ctx.notes["referencedata"] = "15.4.0"
    return _serving(ctx, "referencedata", "15.4.0")


# Written into referencedata's own table as the stack's role, as the service would: the double
# serves no data API (compose/ref-distro/double/README.md).
FACILITIES = {f"HC{i:03d}": f"Centre de santé n°{i}, Kaboré" for i in range(40)}
CHECKSUM = ("SELECT count(*), md5(coalesce(string_agg(code || '=' || coalesce(name, ''), ',' "
            "ORDER BY code), '')) FROM referencedata.facilities")


def write_data(ctx: Context) -> str:
    with _stack_db(ctx) as conn:
        conn.execute("TRUNCATE referencedata.facilities")
        for code, name in FACILITIES.items():
            conn.execute("INSERT INTO referencedata.facilities (code, name) VALUES (%s, %s)",
                         (code, name))
        ctx.notes["data"] = conn.execute(CHECKSUM).fetchone()
    return f"{len(FACILITIES)} facilities written: {ctx.notes['data'][1][:12]}…"


def back_up(ctx: Context) -> str:
    taken = backup.backup_db(ctx.env, method="both", reason="lab rehearsal")
    ctx.notes["backups"] = taken
    return "taken: " + ", ".join(taken)


def verify_backup(ctx: Context) -> str:
    dump = ctx.notes["backups"][0]
    result = verify.verify(ctx.env, catalog.find(ctx.env, dump))
    if not result.ok:
        raise OpsError(f"backup {dump} failed verification: {result.detail}")
    return f"{dump}: {result.detail}"


def damage_data(ctx: Context) -> str:
    with _stack_db(ctx) as conn:
        conn.execute("DELETE FROM referencedata.facilities WHERE code < 'HC010'")
        conn.execute("UPDATE referencedata.facilities SET name = 'overwritten' "
                     "WHERE code = 'HC010'")
        damaged = conn.execute(CHECKSUM).fetchone()
    assert damaged is not None  # an aggregate answers one row
    if damaged == ctx.notes["data"]:
        raise OpsError("the data did not change")
    return f"10 facilities deleted, 1 overwritten: {damaged[0]} left"


def restore_dump(ctx: Context) -> str:
    dump = ctx.notes["backups"][0]
    restore.restore_db(ctx.env, dump, force=False)
    return f"restored {dump}"


def data_identical(ctx: Context) -> str:
    with _stack_db(ctx) as conn:
        now = conn.execute(CHECKSUM).fetchone()
    if now != ctx.notes["data"]:
        raise OpsError(f"data differs after the restore: {now} != {ctx.notes['data']}")
    return f"{now[0]} facilities, checksum identical to before the damage; " + _serving(
        ctx, "referencedata", "15.4.0")


def tune_database(ctx: Context) -> str:
    tune_db(ctx.env, reboot=True)
    again = tune_db(ctx.env)
    if again.plan or again.pending_reboot:
        raise OpsError("a second tune-db would still change: " + "; ".join(again.plan.lines()))
    return "parameters applied (restart where static); a second run plans no changes"


def host_resized(ctx: Context) -> str:
    """`inv resize` of the host as EC2 does it (stopped, retyped, started): OpenLMIS comes back
    by itself, the stack's restart policies bringing it up with no deploy."""
    before = targets.host(ctx.env)
    had = client(ctx.env, "ec2").describe_instances(InstanceIds=[before.instance_id])[
        "Reservations"][0]["Instances"][0]["InstanceType"]
    other = "m6i.2xlarge" if had == "m6i.xlarge" else "m6i.xlarge"  # a change on every run
    ctx.env = ctx.env.model_copy(update={"host": ctx.env.host.model_copy(
        update={"instance_type": other})})
    started = time.monotonic()
    if not resize.resize(ctx.env):
        raise OpsError(f"resize planned nothing for {had} → {other}")
    seconds = time.monotonic() - started
    if not _answers(ctx):
        raise OpsError("OpenLMIS does not answer after the resize")
    if targets.host(ctx.env).address != before.address:
        raise OpsError("the host came back under another address (an EC2 instance keeps its "
                       "Elastic IP)")
    if left := deploy.deploy(ctx.env, approval=Approval(plan_only=True)):
        raise OpsError("after the resize a deploy would still change: "
                       + "; ".join(left.lines()))
    return (f"{had} → {other}: serving again {seconds:.0f}s after the host stopped; nothing "
            "to deploy")


def config_edit(ctx: Context) -> str:
    """An operator's edit of config/ (their copy of the releases) reaches the services."""
    logback = _releases(ctx) / FIRST / "config" / "log" / "logback.xml"
    mark = f"<!-- edited by the rehearsal, {time.strftime('%Y-%m-%d')} -->"
    text = logback.read_text()
    logback.write_text(text if mark in text else text.replace(
        "<configuration>", f"<configuration>\n    {mark}", 1))
    deploy.deploy(ctx.env, name=FIRST)
    seen = _in_service(ctx, "referencedata", "cat /config/log/logback.xml")
    if mark not in seen:
        raise OpsError("referencedata does not see the edited logback.xml")
    return "referencedata runs with the edited log/logback.xml; " + _serving(
        ctx, "referencedata", "15.4.0")


def upgrade(ctx: Context) -> str:
    """To a release whose compose files differ (another Consul, healthchecks, no mem_limit)."""
    plan = deploy.deploy(ctx.env, name=NEXT)
    backups = [p for p in plan.payloads() if isinstance(p, release.Backup)]
    if not backups:
        raise OpsError("the upgrade took no backup first")
    ctx.notes["referencedata"] = "15.5.0-SNAPSHOT"
    return f"backed up first ({len(backups[0].upgrades)} services change); " + _serving(
        ctx, "referencedata", "15.5.0-SNAPSHOT")


def failed_upgrade(ctx: Context) -> str:
    """A release whose services cannot start: the gate refuses it, the previous one serves
    again, and the operator is told how to restore the backup taken before it."""
    broken = _releases(ctx) / "3.20.1-broken"
    shutil.rmtree(broken, ignore_errors=True)
    shutil.copytree(_releases(ctx) / NEXT, broken)
    pins = broken / ".env"
    pins.write_text(pins.read_text().replace("OL_REFERENCEDATA_VERSION=15.5.0-SNAPSHOT",
                                             "OL_REFERENCEDATA_VERSION=15.5.1-SNAPSHOT"))
    (broken / "config" / "log" / "logback.xml").write_text("<configuration>\n  <root")
    # on a swarm the rollback's stack deploy replaces every service's task one by one, and
    # Consul's registrations follow: its gate (with the same timeout) needs longer than 60 s
    impatient = ctx.env.model_copy(update={"stack": ctx.env.stack.model_copy(
        update={"health_timeout_s": 120 if ctx.env.host.swarm else 60})})
    try:
        deploy.deploy(impatient, name=broken.name)
    except deploy.RolledBack as exc:
        if f"inv restore-db --env {ctx.env.name} --from " not in str(exc):
            raise OpsError(f"the rollback does not say how to restore: {exc}") from None
        return (f"refused by the health gate, rolled back to {exc.restored}, the restore "
                "command named; " + _serving(ctx, "referencedata", ctx.notes["referencedata"]))
    raise OpsError("the broken release passed its health gate")


FIRST, NEXT = "3.19.2", "3.20.0-SNAPSHOT"


SWARM_NODES = 3
HEALED_WITHIN_S = 240  # a lost node's services serve again from the others within this


def spread(ctx: Context) -> str:
    """The stack's services run on more than one node, the nodes in both zones."""
    tasks, nodes = deploy.stack_status(ctx.env)
    used = {t["node"] for t in tasks}
    zones = {n["zone"] for n in nodes}
    if len(nodes) != SWARM_NODES or any(n["status"] != "ready" for n in nodes):
        raise OpsError(f"the swarm's nodes: {nodes}")
    if len(used) < 2 or len(zones) < 2:
        raise OpsError(f"the services run on {sorted(used)} in zones {sorted(zones)}")
    return f"{len(tasks)} tasks on {len(used)} nodes in {len(zones)} zones"


def node_lost(ctx: Context) -> str:
    """The node running referencedata (node 1's aside: it holds the releases and answers the
    rehearsal) is stopped as EC2 stops an instance; nothing is run: the swarm starts the lost
    tasks on the others, the managers' tidying restores Consul's view, and OpenLMIS serves
    again through node 1."""
    tasks, nodes = deploy.stack_status(ctx.env)
    hostnames = {n["hostname"]: n["node"] for n in nodes}
    on = {t["node"] for t in tasks if t["service"] == "referencedata"}
    counts = {name: sum(t["node"] == name for t in tasks) for name in hostnames}
    others = sorted((n for n in hostnames if hostnames[n] != "1"), key=lambda n: (
        n not in on, -counts[n]))
    lost = others[0]
    instance = next(t for t in targets.hosts(ctx.env) if str(t.node) == hostnames[lost])
    ctx.notes["lost"] = instance.instance_id
    moved = sorted({t["service"] for t in tasks if t["node"] == lost})
    client(ctx.env, "ec2").stop_instances(InstanceIds=[instance.instance_id])
    started = time.monotonic()

    def healed() -> bool:
        if not _answers(ctx):
            return False
        with_lost = [t for t in deploy.stack_status(ctx.env)[0] if t["node"] == lost]
        return not with_lost and _serving(ctx, "referencedata", "15.4.0") != ""

    try:
        console.wait_for("OpenLMIS to serve again without the lost node", _quiet(healed),
                         timeout=HEALED_WITHIN_S, interval=3)
    except console.WaitTimeout:
        raise OpsError(f"OpenLMIS did not serve again within {HEALED_WITHIN_S}s of losing "
                       f"node {hostnames[lost]}") from None
    return (f"node {hostnames[lost]} stopped ({', '.join(moved)}); serving again from the "
            f"others {time.monotonic() - started:.0f}s later, no command run")


def node_back(ctx: Context) -> str:
    """The lost node started again: it rejoins by itself, and a deploy converges, after which
    another plans nothing."""
    client(ctx.env, "ec2").start_instances(InstanceIds=[ctx.notes["lost"]])
    console.wait_for("the node to be ready in the swarm", _quiet(lambda: all(
        n["status"] == "ready" for n in deploy.stack_status(ctx.env)[1])), timeout=180,
        interval=3)
    done = deploy.deploy(ctx.env, name=FIRST)
    if left := deploy.deploy(ctx.env, approval=Approval(plan_only=True), name=FIRST):
        raise OpsError("a second deploy would still change: " + "; ".join(left.lines()))
    said = f"{len(done)} change(s): " + "; ".join(done.lines()) if done else "no changes"
    return f"the node rejoined; deploy: {said[:200]}; then nothing to deploy; " + _serving(
        ctx, "referencedata", "15.4.0")


def consul_afresh(ctx: Context) -> str:
    """Consul's task started afresh, as when its node is lost: its catalog is empty and no
    service registers again by itself; the managers' tidying restarts the services whose
    registration it lost (ops.host.consul_tidy), and OpenLMIS serves again."""
    with open_host(ctx.env) as remote:
        remote.run(f"docker service update --force --detach {ctx.env.project}_consul",
                   what="restarting Consul")
    started = time.monotonic()
    console.wait_for("Consul's catalog to be empty", _quiet(lambda: not _answers(ctx)),
                     timeout=60, interval=1)
    console.wait_for("OpenLMIS to serve again", _quiet(
        lambda: _serving(ctx, "referencedata", "15.4.0") != ""), timeout=HEALED_WITHIN_S,
        interval=3)
    return (f"the services registered again, serving {time.monotonic() - started:.0f}s after "
            "Consul restarted, no command run")


def _quiet(check: Callable[[], bool]) -> Callable[[], bool]:
    """`check`, a failure to ask (a node restarting, SSH refused) counting as not yet."""
    def asked() -> bool:
        try:
            return check()
        except (OpsError, OSError):
            return False
    return asked


def _releases(ctx: Context) -> Path:
    """The environment's own copy of the releases, which the rehearsal edits."""
    found = ctx.env.stack.releases_dir
    assert found is not None, "rehearse() gives the environment a copy of the releases"
    return found


def _stack_db(ctx: Context) -> psycopg.Connection[Any]:
    """The database, as the stack's own role (the master may act as it: deploy grants it)."""
    conn = ctx.lab.db_connection(ctx.env.database.name, user=ctx.env.database.master_username,
                                 connect_timeout=10)
    conn.execute(psycopg.sql.SQL("SET ROLE {}").format(
        psycopg.sql.Identifier(ctx.env.database.app_username)))
    return conn


def _serving(ctx: Context, service: str, version: str) -> str:
    """/api/health answers 200 through nginx, and `service` runs `version`."""
    code, body = _get(ctx, "/api/health")
    if code != 200:
        raise OpsError(f"/api/health answers {code}: {body}")
    code, body = _get(ctx, f"/{service}")
    if code != 200 or body.get("version") != version:
        raise OpsError(f"expected {service} {version}, /{service} answers {code}: {body}")
    return f"/api/health 200 through nginx, {service} {version}"


def _answers(ctx: Context) -> bool:
    try:
        return _get(ctx, "/api/health")[0] == 200
    except OSError:
        return False


def _get(ctx: Context, path: str) -> tuple[int, Any]:
    address = targets.host(ctx.env).address
    try:
        with urllib.request.urlopen(f"http://{address}{path}", timeout=15) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")[:200]


def _in_service(ctx: Context, service: str, command: str) -> str:
    with open_host(ctx.env) as remote:
        return remote.run(f"docker exec $(docker ps -q --filter label=com.docker.compose.project="
                          f"{ctx.env.project} --filter label=com.docker.compose.service="
                          f"{service}) {command}", what=f"reading {service}")


SWARM_STEPS = [
    Step("lab up", lab_up),
    Step("AWS emulator", emulator_answers),
    Step("database", database_answers),
    Step(f"provision {SWARM_NODES} nodes", provision),
    Step(f"deploy the Reference Distribution {FIRST} on the swarm", deploy_first),
    Step("the services spread over the nodes and zones", spread),
    Step("write data as the stack's role", write_data),
    Step("backup (snapshot + dump)", back_up),
    Step("damage the data", damage_data),
    Step("restore the dump (the stack's services scaled to none and back)", restore_dump),
    Step("data identical", data_identical),
    Step("a node is lost; OpenLMIS serves again by itself", node_lost),
    Step("the node comes back; deploy converges", node_back),
    Step("Consul starts afresh; the services register again by themselves", consul_afresh),
    Step("a failed upgrade rolls back on the swarm and says how to restore", failed_upgrade),
]


STEPS = [
    Step("lab up", lab_up),
    Step("AWS emulator", emulator_answers),
    Step("database", database_answers),
    Step("provision", provision),
    Step(f"deploy the Reference Distribution {FIRST}", deploy_first),
    Step("write data as the stack's role", write_data),
    Step("backup (snapshot + dump)", back_up),
    Step("verify the backup", verify_backup),
    Step("damage the data", damage_data),
    Step("restore the dump", restore_dump),
    Step("data identical", data_identical),
    Step("tune the database", tune_database),
    Step("the host is resized (stopped, retyped, started); OpenLMIS comes back by itself",
         host_resized),
    Step("an edit of config/ reaches the services", config_edit),
    Step(f"upgrade to {NEXT}, backed up first", upgrade),
    Step("a failed upgrade rolls back and says how to restore", failed_upgrade),
]


def rehearse(steps: list[Step] | None = None, *, swarm: bool = False) -> list[Result]:
    """Run every step in order (the swarm variant's with `swarm`); stop at the first
    failure."""
    env = config.load("lab")
    if swarm:
        env = env.model_copy(update={"host": env.host.model_copy(
            update={"count": SWARM_NODES, "managers": None})})
    releases = LabState.current().dir / "releases"  # the environment's copy, edited here
    shutil.rmtree(releases, ignore_errors=True)
    shutil.copytree(compose.stack_dir(env.stack.name) / "releases", releases)
    env = env.model_copy(update={"stack": env.stack.model_copy(
        update={"releases_dir": releases})})
    ctx = Context(env=env, lab=Lab.connect())
    results: list[Result] = []
    for step in steps or (SWARM_STEPS if swarm else STEPS):
        if results and not results[-1].ok:
            results.append(Result(step.name, None, "not run (an earlier step failed)", 0.0))
            continue
        console.step(step.name)
        start = time.monotonic()
        try:
            detail, ok = step.run(ctx), True
        except OpsError as exc:
            detail, ok = str(exc), False
        except Exception as exc:  # a rehearsal reports every failure in its table
            detail, ok = f"{type(exc).__name__}: {exc}", False
        results.append(Result(step.name, ok, detail, time.monotonic() - start))
    return results


def show(results: list[Result]) -> None:
    marks = {True: "✓ passed", False: "✗ FAILED", None: "- skipped"}
    console.table("lab rehearsal", ["step", "result", "time", "detail"],
                  [(r.step, marks[r.ok], f"{r.seconds:.1f}s", r.detail) for r in results])
