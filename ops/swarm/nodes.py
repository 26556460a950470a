"""Deploy's work on each node of a swarm: what nodes 2..N need (Docker, the release's files and
images, the host metrics the alarms watch), the managers' Consul tidying, the formation, the
nodes to make ready for the release; its application; what differs from a live release;
pruning what node 1 pruned.

Node 1's own needs are planned as one host's (ops.stack.deploy); nodes above host.count are
only drained (provision then terminates them).
"""

from __future__ import annotations

from dataclasses import dataclass

from ops import console
from ops.config import Environment
from ops.host import bootstrap, schedule
from ops.host import facts as host_facts
from ops.host.facts import Facts
from ops.host.remote import UNLIMITED, Remote, sh
from ops.plan import Action, Change
from ops.stack import images, release
from ops.stack.release import RELEASES, Release
from ops.stack.upload import upload
from ops.swarm import formation, tidy
from ops.swarm import stack as swarm
from ops.targets import HostTarget

Nodes = list[tuple[HostTarget, Remote]]  # every node, node 1 first
Step = bootstrap.HostSteps | release.Upload | release.Push | release.Compose


@dataclass(frozen=True)
class OnNode:
    """A change on one node of a swarm (the changes node 1 has as one host carry their
    payloads bare)."""

    node: int
    payload: Step


Payload = OnNode | formation.Payload | swarm.Ready


def formation_nodes(nodes: Nodes) -> list[formation.Node]:
    return [formation.Node(host.node, host.address, host.private_address or host.address,
                           host.zone or "") for host, _ in nodes]


def plan(env: Environment, nodes: Nodes, wanted: Release,
         local: dict[str, str] | None) -> list[Change[Payload]]:
    """Each node's changes (`local`: the image ids to push, None to pull), then the swarm's."""
    count = env.host.count
    changes: list[Change[Payload]] = []
    for host, remote in nodes[1:]:
        if host.node > count:
            continue
        facts = host_facts.parse(remote.run(host_facts.command(
            bootstrap.candidates(env), wanted.images, env.project), what="gathering facts"))
        changes += [_on(host.node, c) for c in [*_node(env, facts, wanted, local),
                                                 *schedule.plan(env, remote, metrics_only=True)]]
    for host, remote in nodes:
        if host.node <= count:
            changes += [_on(host.node, c) for c in tidy.changes(
                env.project, tidy.read(remote), wanted=host.node <= env.host.manager_count)]
    found, listed = formation.read([r for _, r in nodes], formation_nodes(nodes))
    changes += formation.plan(found, listed, env.host.manager_count, count)
    labelled = {item.node_id: item.labels for item in listed}
    label = swarm.ready_label(wanted.id)
    changes += [Change(Action.RUN, f"node {node.index}: ready for {wanted.id}",
                       "one-shot images built, their volumes seeded, labelled",
                       payload=swarm.Ready(node.index, wanted.id))
                for node in found if node.index <= count
                and labelled.get(node.node_id, {}).get(label) != "true"]
    return changes


def _node(env: Environment, facts: Facts, wanted: Release,
          local: dict[str, str] | None) -> list[Change[Step]]:
    """What a node beyond the first needs for the release, as one host would (pure)."""
    changes: list[Change[Step]] = [*bootstrap.plan(env, facts)]
    if wanted.id not in facts.releases:
        changes.append(Change(Action.CREATE, f"release {wanted.id}",
                              "its files (0600 where secret)", payload=release.Upload(wanted.id)))
    if local is not None:
        changes += [Change(Action.CREATE, f"image {i}", "push from this machine over SSH",
                           payload=release.Push(i))
                    for i in wanted.images if facts.images.get(i) != local.get(i)]
    elif lacking := [i for i in wanted.images if i not in facts.images]:
        changes.append(Change(Action.RUN, "docker compose pull", ", ".join(lacking),
                              payload=release.Compose.PULL))
    return changes


def _on(node: int, change: Change[Step]) -> Change[Payload]:
    """A change of one node's, labelled and addressed to it."""
    return Change(change.action, f"node {node}: {change.target}", change.detail,
                  payload=OnNode(node, change.payload))


def drift(leader: Remote, project: str, wanted: Release, facts: Facts) -> dict[str, str]:
    """What differs from the live release on the swarm: its services missing from the stack,
    or the compose project of one host still running on node 1 (`facts`: node 1's)."""
    drifted = {"compose project": "runs on node 1"} if facts.containers else {}
    out = leader.run(f"docker stack services {sh(project)} --format '{{{{.Name}}}}' "
                     "2>/dev/null || true", what="listing the stack's services")
    running = {name.removeprefix(f"{project}_") for name in out.split()}
    drifted |= {service.name: "missing" for service in wanted.services
                if not service.built and service.name not in running}
    return drifted


def apply(nodes: Nodes, wanted: Release, payloads: list[OnNode]) -> None:
    """Nodes 2..N: the release's files, then its images, node by node (their host steps ran
    with node 1's)."""
    remotes = {host.node: remote for host, remote in nodes}
    for index in sorted({p.node for p in payloads}):
        remote = remotes[index]
        mine = [p.payload for p in payloads if p.node == index]
        if release.Upload(wanted.id) in mine:
            upload(remote, wanted)
        if pushed := [p.image for p in mine if isinstance(p, release.Push)]:
            with console.console.status(f"node {index}: pushing {', '.join(pushed)}"):
                images.push(remote, pushed)
            console.ok(f"node {index}: pushed {', '.join(pushed)}")
        if release.Compose.PULL in mine:
            remote.run(f"cd {sh(wanted.dir)} && docker compose pull --quiet",
                       what="docker compose pull", timeout=UNLIMITED)


def prune(nodes: Nodes, project: str, count: int, pruned: list[str],
          removed: list[str]) -> None:
    """What node 1 pruned, from the other nodes too (their copies of the releases' files,
    images and builds), and the pruned releases' ready labels from the swarm."""
    leader = nodes[0][1]
    leader.run(swarm.unlabel_command([swarm.ready_label(old) for old in pruned]),
               what="removing pruned releases' node labels")
    for host, remote in nodes[1:]:
        if host.node <= count:
            remote.run(" ; ".join([*(f"rm -rf {sh(f'{RELEASES}/{old}')}" for old in pruned),
                                   *(f"docker image rm {sh(i)} >/dev/null 2>&1" for i in removed),
                                   release.unnamed_builds_command(project),
                                   "true"]),
                       what=f"pruning node {host.node}")
