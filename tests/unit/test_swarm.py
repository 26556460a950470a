"""The swarm's pure parts: formation plans, the stack's health, the managers' Consul tidying."""

from __future__ import annotations

import hashlib
import json

import pytest

from ops.errors import OpsError
from ops.host import consul_tidy
from ops.plan import Action
from ops.stack import service_exec
from ops.stack.compose import Service
from ops.swarm import formation, tidy
from ops.swarm import stack as swarm
from ops.swarm.formation import Drain, Init, Join, Label, Listed, Node, Promote, Remove

pytestmark = pytest.mark.unit


def node(index: int, state: str = "inactive", cluster: str = "", node_id: str = "") -> Node:
    return Node(index, f"203.0.113.{index}", f"10.0.{index}.10", f"zone-{'ab'[index % 2]}",
                state, node_id, cluster, state == "active")


def listed(node_id: str, *, role: str = "manager", status: str = "ready",
           labels: dict[str, str] | None = None, availability: str = "active") -> Listed:
    return Listed(node_id, status, role, availability, labels or {}, f"host-{node_id}")  # type: ignore[arg-type]


def test_a_fresh_swarm_is_initialised_on_node_1_and_the_others_join_with_their_roles() -> None:
    changes = formation.plan([node(1), node(2), node(3), node(4)], [], managers=3, count=4)
    payloads = [c.payload for c in changes]
    assert payloads[0] == Init(1)
    assert [p for p in payloads if isinstance(p, Join)] == [
        Join(2, "manager"), Join(3, "manager"), Join(4, "worker")]
    assert {p.node for p in payloads if isinstance(p, Label)} == {1, 2, 3, 4}
    assert "+ node 4 (203.0.113.4): joins the swarm as a worker" in [c.line() for c in changes]


def labelled(index: int) -> dict[str, str]:
    return {"openlmis.node": str(index), "openlmis.zone": f"zone-{'ab'[index % 2]}"}


def test_a_formed_swarm_plans_nothing() -> None:
    nodes = [node(i, "active", "c1", f"id{i}") for i in (1, 2, 3)]
    found = [listed(f"id{i}", labels=labelled(i)) for i in (1, 2, 3)]
    assert formation.plan(nodes, found, managers=3, count=3) == []


def test_roles_follow_the_number_of_managers_and_nodes_above_count_are_drained() -> None:
    nodes = [node(i, "active", "c1", f"id{i}") for i in (1, 2, 3)]
    found = [listed(f"id{i}", labels=labelled(i)) for i in (1, 2, 3)]
    changes = formation.plan(nodes, found, managers=1, count=2)
    assert [c.payload for c in changes] == [Promote(2, "worker"), Promote(3, "worker"), Drain(3)]
    assert "provision then terminates it" in changes[-1].line()


def test_replaced_and_removed_nodes_leave_the_swarm_a_stopped_one_or_a_stranger_does_not(
) -> None:
    nodes = [node(1, "active", "c1", "id1"), node(2)]  # node 2: a new instance, not joined yet
    found = [listed("id1", labels=labelled(1)), listed("old2", status="down", labels=labelled(2)),
             listed("old3", status="down", role="worker", labels=labelled(3)),
             listed("stranger", status="down"), listed("other", status="ready", role="worker")]
    changes = formation.plan(nodes, found, managers=1, count=2)
    removed = [c for c in changes if isinstance(c.payload, Remove)]
    assert [c.payload for c in removed] == [Remove("old2", "host-old2", True),
                                            Remove("old3", "host-old3", False)]
    assert "node 2 is another instance now" in removed[0].line()
    assert "node 3 is above host.count" in removed[1].line()
    stopped = listed("n2", status="down", labels=labelled(2))  # its instance is not running
    kept = formation.plan(nodes[:1], [found[0], stopped], managers=1, count=2)
    assert not any(isinstance(c.payload, Remove) for c in kept)  # node 2 stopped: it returns


@pytest.mark.parametrize(("second", "said"), [
    (node(2, "active", "c2", "id2"), "another swarm than node 1's"),
    (node(2, "error"), "swarm state error"),
])
def test_a_node_in_another_swarm_or_broken_is_refused_before_anything(second: Node,
                                                                       said: str) -> None:
    with pytest.raises(OpsError, match=said) as caught:
        formation.plan([node(1, "active", "c1", "id1"), second], [listed("id1")],
                       managers=1, count=2)
    assert "docker swarm leave --force" in (caught.value.hint or "")


def test_docker_info_and_the_node_list_are_parsed() -> None:
    info = json.dumps({"LocalNodeState": "active", "NodeID": "abc", "ControlAvailable": True,
                       "Cluster": {"ID": "c9"}})
    got = formation.with_state(node(1), formation.parse_state(info))
    assert (got.state, got.node_id, got.cluster, got.manager) == ("active", "abc", "c9", True)
    assert formation.parse_state("") == {}
    rows = formation.parse_listed('abc\tready\tmanager\tactive\t{"openlmis.node":"1"}\tn1\n'
                                  'def\tdown\tworker\tdrain\tnull\tn2\n')
    assert rows == [Listed("abc", "ready", "manager", "active", {"openlmis.node": "1"}, "n1"),
                    Listed("def", "down", "worker", "drain", {}, "n2")]


def service(name: str, *, built: bool = False) -> Service:
    return Service(name, None if built else f"{name}:1", False, 0, (),
                   context="config" if built else "")


def test_the_stack_is_healthy_only_with_every_task_running_and_the_endpoint_answering() -> None:
    services = [service("nginx"), service("auth"), service("service-configuration", built=True)]
    healthy = swarm.assess("p_nginx\t3/3\np_auth\t1/1\nhttp\t200\n", services, "p")
    assert healthy.healthy and healthy.waiting == {}
    waiting = swarm.assess("p_nginx\t2/3\nhttp\t503\n", services, "p")
    assert waiting.waiting == {"nginx": "2/3 tasks running", "auth": "missing",
                               "/api/health": "HTTP 503"}
    assert not waiting.failed
    assert swarm.assess("p_nginx\t0/0\np_auth\t1/1 (max 1 per node)\nhttp\t200",
                        services, "p").waiting == {"nginx": "0/0 tasks running"}


def test_the_ready_label_is_a_plain_label_key_per_release() -> None:
    assert swarm.ready_label("3.19.2-0a1b2c3d4e") == "openlmis.release-3-19-2-0a1b2c3d4e"


def test_the_tidying_service_is_installed_on_managers_once_and_removed_elsewhere() -> None:
    files = tidy.files("openlmis")
    have = {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}
    assert tidy.changes("openlmis", {**have, "active": "active"}, wanted=True) == []
    [install] = tidy.changes("openlmis", {}, wanted=True)
    assert install.action is Action.CREATE
    assert "openlmis" in files[tidy.UNIT_FILE].decode()
    [restart] = tidy.changes("openlmis", {**have, "active": "failed"}, wanted=True)
    assert restart.action is Action.UPDATE
    [remove] = tidy.changes("openlmis", have, wanted=False)
    assert remove.action is Action.DELETE
    assert tidy.changes("openlmis", {}, wanted=False) == []


def test_stale_registrations_and_services_whose_registration_consul_lost() -> None:
    def entry(service_id: str, address: str, index: int) -> dict[str, object]:
        return {"Service": {"ID": service_id, "Address": address, "CreateIndex": index}}

    instances = {"auth": [entry("a-old", "10.0.0.5", 1), entry("a-new", "10.0.0.6", 2)],
                 "referencedata": [entry("r-lost", "10.0.0.9", 3)]}
    assert consul_tidy.stale(instances, {"10.0.0.6", "10.0.0.7"}) == ["a-old", "r-lost"]
    remembered = {"auth": "p_auth", "dhis2": "p_dhis2-integration", "gone": "p_removed"}
    since = {"p_auth": 1000.0, "p_dhis2-integration": 1000.0}
    assert consul_tidy.lost(remembered, {"auth"}, since, now=1000.0 + consul_tidy.GRACE_S) == [
        "p_dhis2-integration"]
    assert consul_tidy.lost(remembered, {"auth"}, since, now=1001.0) == []


def test_exec_on_a_swarm_finds_the_task_on_its_node() -> None:
    found = service_exec.parse("release\tr1\nservice\tauth\nservice\tnginx\nrunning\tauth\t2\n"
                               "running\tnginx\t2\nrunning\tnginx\t1\n")
    assert found.running == ("auth", "nginx")
    assert found.nodes == (("auth", "2"), ("nginx", "2"), ("nginx", "1"))
    line = service_exec.exec_command("openlmis", "auth", ["psql", "-c", "select 1"], tty=False,
                                     login="ubuntu", swarm=True)
    assert "label=com.docker.swarm.service.name=openlmis_auth" in line
    assert line.startswith("sudo -n ") and "docker exec -i " in line
    assert "docker stack ps openlmis" in service_exec.services_command("openlmis", swarm=True)
