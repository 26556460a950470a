"""deploy, rollback, status: desired → facts → plan → apply → verify, over ONE connection
(on a swarm, one per node).

Apply order survives interruption: the release directory appears atomically (written as
`<id>.partial`, then renamed), images are loaded, `current` is switched atomically, then
`docker compose up`. A re-run finds whatever was done and converges from there.

With host.count > 1 the release runs on a Docker Swarm (ops.swarm): node 1 keeps the releases,
`current`, the lock and the audit log as one host does; every node gets Docker, the release's
directory and images; the swarm is formed; each node is made ready for the release; then
`docker stack deploy` from node 1 takes the place of `docker compose up`, behind the same gate.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace

from ops import console, provider, secrets, targets
from ops.approval import Approval, Scope, granted, scope
from ops.config import Environment
from ops.db import approle, backup, prepare
from ops.errors import OpsError
from ops.host import bootstrap, schedule
from ops.host import facts as host_facts
from ops.host.facts import Facts
from ops.host.remote import SLOW, UNLIMITED, Remote, sh
from ops.host.session import open_host, open_nodes
from ops.plan import Action, Change, Plan
from ops.stack import (
    audit,
    compose,
    credentials,
    health,
    images,
    lock,
    override,
    registrations,
    release,
    settings,
    sizing,
)
from ops.stack import logs as stack_logs
from ops.stack import prune as image_prune
from ops.stack.compose import Service
from ops.stack.release import CURRENT, RELEASES, Release
from ops.stack.upload import upload
from ops.swarm import formation, nodes, tidy
from ops.swarm import stack as swarm

UP = ("up", "-d", "--remove-orphans")


@dataclass(frozen=True)
class LeaveSwarm:
    """Back to one host: remove the stack, leave the swarm (host.count was lowered to 1)."""


Payload = (bootstrap.HostSteps | prepare.Payload | release.Payload | credentials.Payload
           | image_prune.RemoveImage | nodes.OnNode | formation.Payload | swarm.Ready | LeaveSwarm)


class RolledBack(OpsError):
    """A release failed its health gate and the previous one serves again."""

    def __init__(self, message: str, *, hint: str, failed: str, restored: str) -> None:
        super().__init__(message, hint=hint)
        self.failed = failed
        self.restored = restored


@dataclass
class Session:
    """One deploy's view of its host: the connection, who acts, the compose project."""

    env: Environment
    remote: Remote
    who: str
    nodes: nodes.Nodes = field(default_factory=list)  # a swarm's, node 1 first
    _models: dict[str, dict[str, object]] = field(default_factory=dict, repr=False)

    @property
    def project(self) -> str:
        return self.env.project

    @property
    def swarm(self) -> bool:
        return self.env.host.swarm

    def node(self, index: int) -> Remote:
        return next(remote for host, remote in self.nodes if host.node == index)

    def compose(self, release_id: str, *args: str) -> str:
        """A `docker compose` command run in a release's directory."""
        return f"cd {sh(f'{RELEASES}/{release_id}')} && " + sh(
            "docker", "compose", "--ansi", "never", "-p", self.project, *args)

    def assess_health(self, services: list[Service]) -> health.Assessment:
        """The stack's health, its endpoint asked as the load balancer asks."""
        if self.swarm:
            return swarm.assess(self.remote.run(swarm.health_command(
                self.project, override.HEALTH_PORT), what="health check"), services,
                self.project)
        return health.assess(self.remote.run(health.command(self.project),
                                             what="health check"), services)

    def model(self, release_id: str) -> dict[str, object]:
        """A release's compose model on a swarm (what its stack file is made from), read on
        node 1 once per session."""
        if release_id not in self._models:
            self._models[release_id] = swarm.model(self.remote, self.project, release_id)
        return self._models[release_id]

    def tidy_consul(self) -> list[str]:
        """Deregister stale registrations from the stack's Consul; their IDs. On a swarm by
        the managers' own program (Consul publishes no port there), run once on node 1."""
        if not self.swarm:
            return registrations.tidy(self.remote, self.project)
        out = self.remote.run(tidy.once_command(self.project), check=False,
                              what="tidying Consul")
        return [line.split()[-1] for line in out.splitlines() if line.startswith("deregistered")]

    def facts(self, images_: list[str]) -> Facts:
        return host_facts.parse(self.remote.run(
            host_facts.command(bootstrap.candidates(self.env), images_, self.project),
            what="gathering facts"))

    def audit(self, action: str, release_id: str, result: str, **detail: str) -> None:
        record = audit.entry(self.who, action, release_id, result, **detail)
        self.remote.run(audit.append_command(record), what="writing the audit log")


def desired(env: Environment, name: str) -> Release:
    """The release as it should be on the host (secrets resolved, never printed)."""
    settings.check_profiles(env)
    settings.check_database(env)
    resolved = secrets.resolve_all(env)
    approle.check_password(resolved["database.app_password"])  # before anything changes
    source = compose.release_dir(env.stack.name, name, env.stack.releases_dir)
    files = release.source_files(source)
    dotenv = settings.dotenv(compose.release_env(source), env, override.compose_file(files))
    texts = {k: v.decode(errors="replace") for k, v in files.items()}
    pins = compose.parse_env(dotenv)
    release.check_released(pins, production=env.database.tier == "production")
    template = (compose.stack_dir(env.stack.name) / "settings.env.template").read_text()
    db = targets.database(env)
    files[".env"] = dotenv.encode()
    files["settings.env"] = settings.render(settings.values(env, template, db, resolved))
    toolkit_file, services = override.merged(
        texts, pins, env.stack.memory, project=env.project, files=files,
        nofile_ceiling=provider.of(env).nofile_ceiling)
    files[override.NAME] = toolkit_file.encode()
    files[override.CA_FILE] = db.ca_bundle or b""
    files[override.HEALTH_CONF] = override.health_conf(env.domain, env.stack.https).encode()
    if live := credentials.check(env, resolved, services):  # before anything changes
        console.warn(live)
    return Release(name, files, services)


@contextmanager
def session(env: Environment) -> Iterator[Session]:
    """One host's session, or a swarm's: every node connected, node 1 holding the releases,
    the lock and the audit log."""
    if env.host.swarm:
        with open_nodes(env) as every:
            yield Session(env, every[0][1], audit.who(), every)
        return
    with open_host(env) as remote:
        yield Session(env, remote, audit.who())


@contextmanager
def locked(env: Environment, remote: Remote, task: str, subject: str, *,
           break_lock: bool = False) -> Iterator[None]:
    """The deploy lock, for another task that changes what the stack stands on (restore-db):
    refused at once while a deploy, rollback or restore holds it; a stale one is broken only
    with `break_lock`."""
    with _locked(Session(env, remote, audit.who()), task, subject, 0, break_lock, task=task):
        yield


def settle(env: Environment, remote: Remote) -> None:
    """After the stack was started again outside a deploy (restore-db's cut-over): wait for
    the health gate's verdict on the live release, and say it."""
    s = Session(env, remote, audit.who())
    current = s.facts([]).current
    if not current:
        return
    result = _gate(s, _remote_services(s, current))
    if result.healthy:
        console.ok(f"the stack serves again ({current})")
    else:
        console.warn(f"the stack does not serve again: {result.summary()}; look at: "
                     f"inv logs --env {env.name} SERVICE")


def deploy(env: Environment, *, name: str | None = None, approval: Approval | None = None,
           push_images: bool = False, lock_wait: float = 0, break_lock: bool = False,
           where: Scope | None = None) -> Plan[Payload]:
    """Bring the host to the release: Docker first, then the stack behind the health gate.
    `where`: the scope, when a preflight already asked STS for its account."""
    approval = approval or granted()
    wanted = desired(env, name or env.stack.release)
    if problem := sizing.fit(wanted.services, env.host.instance_type):
        console.warn(problem)
    push_images = push_images or env.stack.push_images
    if push_images:
        provider.of(env).build_images(env.stack.name, wanted.images)
    local = images.local_ids(wanted.images) if push_images else None
    where = where or scope(env)
    with session(env) as s:
        plan, _ = _plan(s, wanted, local)
        title = f"{env.name} on {s.remote.address}: release {wanted.id}"
        if not approval.review(where, title, plan.changed()):
            if not plan and not approval.plan_only:
                _verify(s, wanted.services)
            return plan
        with _locked(s, "deploy", wanted.id, lock_wait, break_lock):
            # another deploy may have run while we waited: what is left to do is shown again
            again, facts = _plan(s, wanted, local)
            if again.changed() != plan.changed() and not approval.review(
                    where, f"{title}, after waiting for the lock", again.changed()):
                console.ok("no changes: another deploy already brought the host here")
                return again
            _apply(s, wanted, again, facts)
    approval.outcome(release=wanted.id, live=True)
    return again


def _plan(s: Session, wanted: Release,
          local: dict[str, str] | None) -> tuple[Plan[Payload], Facts]:
    facts = s.facts(wanted.images)
    client = bootstrap.postgres_client(s.env, facts.os) in facts.packages
    changes: list[Change[Payload]] = [*bootstrap.plan(s.env, facts),
                                      *schedule.plan(s.env, s.remote),
                                      *prepare.plan(s.env, s.remote, client=client)]
    changes += credentials.plan_changes(s.env, s.remote, wanted.services, client=client)
    drifted = {}
    if s.swarm:
        changes += nodes.plan(s.env, s.nodes, wanted, local)
        if facts.current == wanted.id and facts.docker_active:
            drifted = nodes.drift(s.remote, s.project, wanted, facts)
    elif facts.swarm == "active":
        changes.insert(0, Change(Action.RUN, "swarm", "remove the stack and leave the swarm "
                                 "(host.count is 1): the release runs as one compose project",
                                 payload=LeaveSwarm()))
        drifted = {"stack": "on the swarm"}
    elif facts.current == wanted.id and facts.docker_active:
        out = s.remote.run(s.compose(wanted.id, *UP, "--pull", "never", "--dry-run") + " 2>&1",
                           what="docker compose up --dry-run", timeout=SLOW)
        drifted = release.drift(out, s.project)
    upgraded = release.upgrades(_remote_services(s, facts.current), wanted.services) \
        if facts.current in facts.releases and facts.current != wanted.id else ()
    stack = release.plan(wanted, facts, drifted=drifted, keep=s.env.stack.keep_releases,
                         push=local, upgraded=upgraded, backup=backup.before_change_method(s.env))
    changes += [replace(c, target="docker stack deploy") if s.swarm and c.payload is
                release.Compose.UP else c for c in stack]
    changes += image_prune.unused(s.remote, wanted, facts.releases, [
        c.payload.release_id for c in changes if isinstance(c.payload, release.Prune)])
    return Plan(changes), facts


def _apply(s: Session, wanted: Release, plan: Plan[Payload], facts: Facts) -> None:
    """Carry out the plan from its payloads (the lines only label progress): host steps, the
    database's role and extensions, upload, push or pull, switch and up behind the health
    gate, prune images and releases. Leaving a swarm comes first: Docker does not start with
    the live-restore of one host's daemon.json while it is still a swarm's node."""
    if LeaveSwarm() in plan.payloads():
        with console.console.status("leaving the swarm"):
            s.remote.run(f"{swarm.leave_command(s.project)} && {tidy.remove_command()}",
                         what="leaving the swarm", timeout=SLOW)
        console.ok("left the swarm: the stack is removed, node 1 is one host again")
    for change in plan:
        payload, remote = change.payload, s.remote
        if isinstance(payload, nodes.OnNode):
            remote = s.node(payload.node)
            payload = payload.payload
        if isinstance(payload, bootstrap.HostSteps):
            with console.console.status(change.line()):
                remote.apply(payload.steps, change.line())
            console.ok(change.line())
    if not s.remote.ok("docker compose version"):
        raise OpsError(f"docker compose does not run on {s.remote.address}",
                       hint="check the Docker packages on the host, then deploy again")
    payloads = plan.payloads()
    if s.swarm:
        formation.apply([r for _, r in s.nodes], nodes.formation_nodes(s.nodes),
                        [p for p in payloads if isinstance(p, formation.Payload)])
        nodes.apply(s.nodes, wanted, [p for p in payloads if isinstance(p, nodes.OnNode)])
    prepare.apply(s.env, s.remote, [p for p in payloads if isinstance(p, prepare.Payload)])
    if release.Upload(wanted.id) in payloads:
        upload(s.remote, wanted)
    pushed = [p.image for p in payloads if isinstance(p, release.Push)]
    if pushed:
        with console.console.status(f"pushing {', '.join(pushed)}"):
            images.push(s.remote, pushed)
        console.ok(f"pushed {', '.join(pushed)}")
    if release.Compose.PULL in payloads:
        s.remote.run(s.compose(wanted.id, "pull", "--quiet"), what="docker compose pull",
                     timeout=UNLIMITED)
    taken = ""
    if upgrade := next((p for p in payloads if isinstance(p, release.Backup)), None):
        console.step(f"backing the database up before {', '.join(upgrade.upgrades)}")
        taken = backup.take(s.env, method=backup.before_change_method(s.env),
                         reason=f"before upgrading to {wanted.id}")[-1]
        console.ok(f"backed up: {taken}")
    for index in [p.node for p in payloads if isinstance(p, swarm.Ready)]:
        with console.console.status(f"node {index}: ready for {wanted.id}"):
            swarm.prepare(s.node(index), s.remote, wanted.id, s.model(wanted.id))
        console.ok(f"node {index}: ready for {wanted.id}")
    previous = facts.current
    try:
        _switch_and_up(s, wanted.id, pull_never=bool(pushed) or not wanted.images)
    except OpsError as exc:  # compose refused the release, or died half-way through it
        waiting = s.assess_health(wanted.services).waiting  # e.g. a dependency that exited
        said = str(exc).strip().splitlines()
        _recover(s, wanted, previous, f"docker compose up failed: {said[-1] if said else exc}",
                 [name for name in waiting if name != health.HEALTH_PATH], taken)
    result = _gate(s, wanted.services)
    if not result.healthy:
        reason = result.summary() if result.failed else (
            f"not healthy after {s.env.stack.health_timeout_s}s: {result.summary()}")
        _recover(s, wanted, previous, reason,
                 [name for name in result.waiting if name != health.HEALTH_PATH], taken)
    credentials.apply(s.env, s.remote, wanted.id,
                      [p for p in payloads if isinstance(p, credentials.Payload)])
    image_prune.remove(s.remote, payloads)
    pruned = [p.release_id for p in payloads if isinstance(p, release.Prune)]
    for old in pruned:
        s.remote.run(f"rm -rf {sh(f'{RELEASES}/{old}')}", what=f"removing release {old}")
    if pruned:
        s.remote.run(release.unnamed_builds_command(s.project), what="removing unused builds")
    if s.swarm and pruned:
        nodes.prune(s.nodes, s.project, s.env.host.count, pruned, [
            p.image for p in payloads if isinstance(p, image_prune.RemoveImage)])
    s.audit("deploy", wanted.id, "ok", previous=previous)
    console.ok(f"release {wanted.id} is live on {s.remote.address}")


def _switch_and_up(s: Session, release_id: str, *, pull_never: bool = False) -> None:
    s.remote.run(
        f"ln -sfn {sh(f'releases/{release_id}')} {CURRENT}.new && mv -T {CURRENT}.new {CURRENT} "
        f"&& touch {sh(f'{RELEASES}/{release_id}')}", what="switching current")
    if s.swarm:
        with console.console.status(f"docker stack deploy ({release_id})"):
            swarm.prepare(s.remote, s.remote, release_id, s.model(release_id))
            swarm.up(s.remote, s.project, s.env.host.routing, release_id, s.model(release_id))
        console.ok(f"current → {release_id}; docker stack deploy done")
        return
    args = [*UP, *(["--pull", "never"] if pull_never else [])]
    with console.console.status(f"docker compose up ({release_id})"):
        s.remote.run(s.compose(release_id, *args), what="docker compose up",
                     timeout=UNLIMITED)
    console.ok(f"current → {release_id}; docker compose up done")


def _gate(s: Session, services: list[Service]) -> health.Assessment:
    """Wait until every healthchecked service is healthy and /api/health has answered 200 for
    stack.health_stable_s, a service turns unhealthy, or the timeout: the last assessment.

    Held, not once: diagnostics answers 200 while no service has registered a check yet
    (openlmis-diagnostics HealthController: an empty list is healthy), and a check a service
    registers is critical until its first probe passes. Meanwhile what recreated containers
    left registered in Consul goes (ops.stack.registrations)."""
    last: list[health.Assessment] = []
    since: list[float] = []
    consul = any(service.name == "consul" for service in services)

    def check() -> bool:
        # on every poll, the hold too: a new container registers as it starts, and until it
        # has, its predecessor's registration looks current; once it is stale, its address
        # may already serve another container, which answers (so nginx retries nothing)
        if consul and (gone := s.tidy_consul()):
            console.ok(f"deregistered {len(gone)} stale service registration(s) from Consul")
            since.clear()  # the hold starts again from a clean catalog
        last[:] = [s.assess_health(services)]
        if not last[0].healthy:
            since.clear()
            return last[0].failed
        since[:] = since or [time.monotonic()]
        return time.monotonic() - since[0] >= s.env.stack.health_stable_s

    with suppress(OpsError):
        console.wait_for("the health gate's verdict", check, timeout=s.env.stack.health_timeout_s,
                         status=lambda: last[0].summary() if last else "")
    return last[0]


def _recover(s: Session, wanted: Release, previous: str, reason: str, failing: list[str],
             backup_id: str) -> None:
    """Show the failing services' last log lines, go back to the previous release, exit.

    After an upgrade (`backup_id`: the backup taken before it) the failed release's services
    may have migrated the schema before failing (Flyway runs as a service starts), and the
    previous release's services may not run on a migrated schema: the message says so and
    names the restore command."""
    if failing:
        console.say(f"last log lines of {', '.join(sorted(failing))}:", "bold")
        for name in sorted(failing):
            for line in stack_logs.recent(s.remote, s.project, wanted.id, name, 20,
                                          swarm=s.swarm):
                console.say(f"{name} | {line}")
    s.audit("deploy", wanted.id, "failed", reason=reason)
    restore = (f"; its services may already have migrated the database schema, which the "
               f"earlier release may not run on: if it misbehaves, restore the backup taken "
               f"before the upgrade: inv restore-db --env {s.env.name} --from {backup_id}"
               ) if backup_id else ""
    if not previous or previous == wanted.id:
        raise OpsError(f"release {wanted.id} failed ({reason}); "
                       "there is no earlier release to return to",
                       hint=f"look at the logs (inv logs --env {s.env.name} SERVICE), fix, "
                       "deploy again")
    console.warn(f"release {wanted.id} failed; rolling back to {previous}")
    _switch_and_up(s, previous)
    back = _gate(s, _remote_services(s, previous))
    s.audit("rollback", previous, "ok" if back.healthy else "failed", failed=wanted.id)
    if not back.healthy:
        raise OpsError(f"release {wanted.id} failed ({reason}), and so did the rollback to "
                       f"{previous}: {back.summary()}",
                       hint=f"the stack is DOWN: look at inv logs --env {s.env.name} SERVICE"
                       f"{restore}")
    raise RolledBack(f"release {wanted.id} failed ({reason}); rolled back: {previous} is "
                     f"serving again{restore}",
                     hint="the failing services' last log lines are above; the failed release "
                     "stays on the host for inspection", failed=wanted.id, restored=previous)


def _remote_services(s: Session, release_id: str) -> list[Service]:
    """The services of a release already on the host, read from its own files."""
    files = {}
    for name in (*compose.COMPOSE_FILES, compose.TOOLKIT_FILE):
        path = sh(f"{RELEASES}/{release_id}/{name}")
        files[name] = s.remote.run(f"cat {path} 2>/dev/null || true", what="reading a release")
    dotenv = s.remote.run(f"cat {sh(f'{RELEASES}/{release_id}/.env')}", what="reading a release")
    return compose.services({k: v for k, v in files.items() if v}, compose.parse_env(dotenv))


def _verify(s: Session, services: list[Service]) -> None:
    result = s.assess_health(services)
    if result.healthy:
        console.ok("no changes; the stack is healthy")
    else:
        console.warn(f"no changes, but the stack is not healthy: {result.summary()}")


@contextmanager
def _locked(s: Session, action: str, release_id: str, wait: float,
            break_lock: bool, task: str = "deploy") -> Iterator[None]:
    facts = s.facts([])
    holder = lock.Holder(s.who, action, release_id, time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                  time.gmtime()),
                         facts.session_pid, facts.boot_id)
    seen: list[lock.Holder | None] = [None]

    def attempt() -> bool:
        acquired, other, stale = lock.parse_acquire(s.remote.run(lock.acquire_command(holder)))
        seen[0] = other
        if acquired:
            return True
        who = other.describe() if other else "an unknown holder"
        if stale and break_lock:
            console.warn(f"breaking the stale deploy lock of {who}")
            s.remote.run(lock.release_command())
            return attempt()
        if stale:
            raise OpsError(f"the deploy lock on {s.remote.address} is stale: held by {who}, "
                           "whose connection is gone",
                           hint="make sure no deploy is running, then break it: "
                           f"inv {task} --env {s.env.name} --break-lock")
        return False

    acquired = attempt()
    if not acquired and wait > 0:
        with suppress(console.WaitTimeout):
            acquired = console.wait_for("the deploy lock", attempt, timeout=wait,
                                        status=lambda: seen[0].describe() if seen[0] else "")
    if not acquired:
        who = seen[0].describe() if seen[0] else "an unknown holder"
        raise OpsError(f"another deploy holds the lock on {s.remote.address}: {who}",
                       hint="wait for it to finish, or pass --lock-wait SECONDS")
    try:
        yield
    finally:
        with suppress(Exception):
            s.remote.run(lock.release_command())


def rollback(env: Environment, *, to: str | None = None, approval: Approval | None = None,
             lock_wait: float = 0, break_lock: bool = False) -> str:
    """Switch `current` back to an earlier release (default: the previous one), bring it up."""
    approval = approval or granted()
    where = scope(env)
    with session(env) as s:
        facts = s.facts([])
        target = pick(facts.releases, facts.current, to)
        title = f"{env.name} on {s.remote.address}: roll back"
        if not approval.review(where, title, [
                f"~ live release: {facts.current or 'none'} → {target} (compose up, then the "
                "health gate)"]):
            return target
        with _locked(s, "rollback", target, lock_wait, break_lock):
            _switch_and_up(s, target)
            services = _remote_services(s, target)
            if credentials.has_auth(services) and \
                    credentials.follow(env, s.remote, target) == "default":
                console.warn(f"release {target} predates stack.trusted_client_secret: "
                             "trusted-client's secret is upstream's default again (deploy "
                             "replaces it)")
            result = _gate(s, services)
            s.audit("rollback", target, "ok" if result.healthy else "failed",
                    previous=facts.current)
            if not result.healthy:
                raise OpsError(f"rolled back to {target}, but it is not healthy: "
                               f"{result.summary()}",
                               hint=f"look at: inv logs --env {env.name} SERVICE")
        console.ok(f"rolled back: {target} is live (was {facts.current or 'none'})")
        approval.outcome(release=target, previous=facts.current or None)
        return target


def pick(releases: tuple[str, ...], current: str, to: str | None) -> str:
    """The release to roll back to: `to` (an id, or a release name: its newest), else the
    newest one before `current`. Pure."""
    if to:
        found = [r for r in releases if r == to or r.startswith(f"{to}-")]
        if not found:
            raise OpsError(f"no release {to!r} on the host",
                           hint=f"releases there: {', '.join(releases) or 'none'}")
        return found[0]
    older = [r for r in releases if r != current]
    if not older:
        raise OpsError("there is no earlier release on the host to roll back to")
    return older[0]


def stack_status(env: Environment) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The live release's containers (service, state, status with health, release) and, on a
    swarm, its running tasks with the node each runs on, and the swarm's nodes (index,
    hostname, zone, status, availability, role). Asked of node 1 only, over one connection:
    status answers while another node is lost."""
    with open_host(env) as remote:
        facts = Session(env, remote, audit.who()).facts([])
        if not env.host.swarm:
            return [{"service": c.service, "state": c.state, "status": c.status,
                     "release": facts.current} for c in facts.containers], []
        tasks = swarm.tasks(remote.run(swarm.tasks_command(env.project),
                                       what="listing the stack's tasks"), env.project)
        listed = formation.parse_listed(remote.run(formation.LISTED, what="listing nodes"))
    return ([{**task, "release": facts.current} for task in tasks],
            [{"node": item.labels.get("openlmis.node", "?"), "hostname": item.hostname,
              "status": item.status, "availability": item.availability, "role": item.role,
              "zone": item.labels.get("openlmis.zone", "")} for item in listed])
