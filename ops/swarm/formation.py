"""Forming the swarm over SSH: each node's swarm state, a pure plan, its application.

Node 1 initialises the swarm; nodes 2..N join it, the first `host.manager_count` as managers
(Raft keeps the swarm's state while a majority of them is up: three managers survive the loss
of one), the rest as workers. Every node is labelled `openlmis.node` (its index) and
`openlmis.zone` (its availability zone: the stack's services spread over the zones, see
ops.swarm.stackfile). A node the swarm lists that is down and none of the environment's nodes
(its instance was replaced or removed) is taken out of the swarm, a manager demoted first.

A join token admits a machine to the swarm: it goes to the joining node on standard input, to
the Docker Engine API's /swarm/join, never in a command line (Docker's `docker swarm join`
takes it only as an argument).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from ops.errors import OpsError
from ops.host.remote import Remote, sh
from ops.plan import Action, Change

Role = Literal["manager", "worker"]
SWARM_PORT = 2377
STATE = "docker info --format '{{json .Swarm}}' 2>/dev/null || true"
# Every node the swarm knows, as a manager sees it (a worker answers nothing).
LISTED = ("ids=$(docker node ls -q 2>/dev/null) && [ -n \"$ids\" ] && docker node inspect $ids "
          "--format '{{.ID}}\t{{.Status.State}}\t{{.Spec.Role}}\t{{.Spec.Availability}}\t"
          "{{json .Spec.Labels}}\t{{.Description.Hostname}}' || true")
_JOIN = ("curl -sS --fail-with-body --unix-socket /var/run/docker.sock -H "
         "'Content-Type: application/json' --data-binary @- http://localhost/swarm/join")


@dataclass(frozen=True)
class Node:
    """One of the environment's nodes as it is: `state` is Docker's LocalNodeState (inactive,
    pending, active, error, locked), "" where Docker does not answer (not installed yet)."""

    index: int
    address: str  # where SSH reaches it
    private: str  # where the other nodes reach it
    zone: str
    state: str = ""
    node_id: str = ""
    cluster: str = ""
    manager: bool = False


@dataclass(frozen=True)
class Listed:
    """A node as the swarm lists it."""

    node_id: str
    status: str  # ready, down, unknown, disconnected
    role: Role
    availability: str
    labels: dict[str, str]
    hostname: str


@dataclass(frozen=True)
class Init:
    node: int


@dataclass(frozen=True)
class Join:
    node: int
    role: Role


@dataclass(frozen=True)
class Promote:
    node: int
    role: Role


@dataclass(frozen=True)
class Label:
    node: int
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Drain:
    node: int


@dataclass(frozen=True)
class Remove:
    node_id: str
    hostname: str
    manager: bool


Payload = Init | Join | Promote | Label | Drain | Remove


def parse_state(text: str) -> dict[str, object]:
    """`docker info`'s Swarm section: LocalNodeState, NodeID, ControlAvailable, Cluster."""
    text = text.strip()
    return json.loads(text) if text.startswith("{") else {}


def parse_listed(text: str) -> list[Listed]:
    """The swarm's nodes from LISTED's output."""
    found = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 6:
            node_id, status, role, availability, labels, hostname = parts
            found.append(Listed(node_id, status, "manager" if role == "manager" else "worker",
                                availability, json.loads(labels) or {}, hostname))
    return found


def with_state(node: Node, info: dict[str, object]) -> Node:
    cluster = info.get("Cluster") or {}
    return Node(node.index, node.address, node.private, node.zone,
                str(info.get("LocalNodeState") or ""), str(info.get("NodeID") or ""),
                str(cluster.get("ID") or "") if isinstance(cluster, dict) else "",
                bool(info.get("ControlAvailable")))


def role(index: int, managers: int) -> Role:
    return "manager" if index <= managers else "worker"


def labels(node: Node) -> dict[str, str]:
    return {"openlmis.node": str(node.index), "openlmis.zone": node.zone}


def plan(nodes: list[Node], listed: list[Listed], managers: int,
         count: int) -> list[Change[Payload]]:
    """From the nodes' states (node 1 first) and the swarm's list (as node 1 sees it, [] before
    a swarm exists) to nodes 1..`count` in one swarm with their roles and labels, and nodes
    above `count` (still running until provision terminates them) drained: their services move
    to the others first. Pure."""
    first = nodes[0]
    cluster = first.cluster if first.state == "active" else ""
    for node in nodes:
        if node.state in ("error", "locked"):
            raise OpsError(f"node {node.index} ({node.address}) is in swarm state {node.state}",
                           hint="look at `docker info` on it; `docker swarm leave --force` "
                           "there, then deploy again, makes it join afresh")
        if node.state == "active" and node.cluster != cluster:
            where = "a swarm of its own" if not cluster else "another swarm than node 1's"
            raise OpsError(f"node {node.index} ({node.address}) is in {where}",
                           hint=f"if that swarm is not wanted: `docker swarm leave --force` on "
                           f"node {node.index}, then deploy again")
    changes: list[Change[Payload]] = []
    if not cluster:
        changes.append(Change(Action.CREATE, "swarm", f"initialised on node 1 ({first.address})",
                              payload=Init(1)))
    by_id = {item.node_id: item for item in listed}
    for node in nodes:
        have = by_id.get(node.node_id)
        if node.index > count:
            if have and have.role == "manager":
                changes.append(Change(Action.UPDATE, f"node {node.index} ({node.address})",
                                      "manager → worker (above host.count)",
                                      payload=Promote(node.index, "worker")))
            if have and have.availability != "drain":
                changes.append(Change(Action.UPDATE, f"node {node.index} ({node.address})",
                                      "drained: its services move to the other nodes; "
                                      "provision then terminates it", payload=Drain(node.index)))
            continue
        want = role(node.index, managers)
        if node.index > 1 and node.state != "active":
            changes.append(Change(Action.CREATE, f"node {node.index} ({node.address})",
                                  f"joins the swarm as a {want}", payload=Join(node.index, want)))
        elif have and have.role != want:
            changes.append(Change(Action.UPDATE, f"node {node.index} ({node.address})",
                                  f"{have.role} → {want}", payload=Promote(node.index, want)))
        have_labels = have.labels if have else {}
        wanted = labels(node)
        if any(have_labels.get(k) != v for k, v in wanted.items()):
            changes.append(Change(Action.UPDATE, f"node {node.index} labels",
                                  ", ".join(f"{k}={v}" for k, v in wanted.items()),
                                  payload=Label(node.index, tuple(wanted.items()))))
    ours = {node.node_id for node in nodes}
    indexes = {node.index for node in nodes}
    for item in listed:
        index = int(item.labels.get("openlmis.node") or 0)
        if item.node_id in ours or item.status == "ready" or not index:
            continue
        if index > count or index in indexes:  # above host.count, or replaced by a new node
            changes.append(Change(Action.DELETE,
                                  f"swarm node {item.hostname} ({item.node_id[:12]})",
                                  f"{item.status}: node {index} " + (
                                      "is above host.count" if index > count
                                      else "is another instance now"),
                                  payload=Remove(item.node_id, item.hostname,
                                                 item.role == "manager")))
    return changes


def read(remotes: list[Remote], nodes: list[Node]) -> tuple[list[Node], list[Listed]]:
    """Each node's swarm state, and the swarm's list as node 1 sees it."""
    found = [with_state(node, parse_state(remote.run(STATE, what="reading the swarm state")))
             for remote, node in zip(remotes, nodes, strict=True)]
    listed = parse_listed(remotes[0].run(LISTED, what="listing the swarm's nodes")) \
        if found[0].manager else []
    return found, listed


def apply(remotes: list[Remote], nodes: list[Node], payloads: list[Payload]) -> None:
    """Carry the formation's payloads out, in order (`remotes` and `nodes` alike, node 1
    first, found by index: a stopped node leaves a gap). A node's swarm id is read once, after
    the init or join that gives it one."""
    leader = remotes[0]
    remote = {node.index: r for node, r in zip(nodes, remotes, strict=True)}
    node = {n.index: n for n in nodes}
    ids = {n.index: n.node_id for n in nodes if n.node_id}

    def id_of(index: int) -> str:
        if index not in ids:
            ids[index] = node_id(remote[index])
        return ids[index]

    for payload in payloads:
        if isinstance(payload, Init):
            leader.run(sh("docker", "swarm", "init", "--advertise-addr", nodes[0].private),
                       what="initialising the swarm")
        elif isinstance(payload, Join):
            token = leader.run(sh("docker", "swarm", "join-token", "-q", payload.role),
                               what="reading the swarm's join token").strip()
            body = json.dumps({"ListenAddr": f"0.0.0.0:{SWARM_PORT}",
                               "AdvertiseAddr": node[payload.node].private,
                               "RemoteAddrs": [f"{nodes[0].private}:{SWARM_PORT}"],
                               "JoinToken": token})
            remote[payload.node].execute(_JOIN, what=f"joining node {payload.node} to the "
                                         "swarm", stdin=[body.encode()])
            ids.pop(payload.node, None)  # a node that left a swarm has a new id now
        elif isinstance(payload, Promote):
            verb = "promote" if payload.role == "manager" else "demote"
            leader.run(sh("docker", "node", verb, id_of(payload.node)),
                       what=f"making node {payload.node} a {payload.role}")
        elif isinstance(payload, Label):
            adds = [arg for k, v in payload.labels for arg in ("--label-add", f"{k}={v}")]
            leader.run(sh("docker", "node", "update", *adds, id_of(payload.node)),
                       what=f"labelling node {payload.node}")
        elif isinstance(payload, Drain):
            leader.run(sh("docker", "node", "update", "--availability", "drain",
                          id_of(payload.node)), what=f"draining node {payload.node}")
        elif isinstance(payload, Remove):
            if payload.manager:
                leader.run(sh("docker", "node", "demote", payload.node_id),
                           what=f"demoting the lost node {payload.hostname}")
            leader.run(sh("docker", "node", "rm", "--force", payload.node_id),
                       what=f"removing the lost node {payload.hostname} from the swarm")


def node_id(remote: Remote) -> str:
    """The swarm's id of the node `remote` is."""
    return str(parse_state(remote.run(STATE, what="reading the swarm state")).get("NodeID"))
