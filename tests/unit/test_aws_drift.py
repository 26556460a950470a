"""Pure planning of hardening and drift: policy documents compared and merged, settings the
plan creates compared again (changes that go live say so), what cannot change warned about."""

from __future__ import annotations

import json
from ipaddress import IPv4Network
from typing import Any

from ops.aws import compute, database, identity, loadbalancer, network, policies, storage
from ops.plan import Action
from tests.unit.test_aws_plan import environment

OTHER = {"Sid": "AuditorsRead", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"},
         "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}


def test_policies_compare_by_meaning_not_spelling() -> None:
    ours = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": "arn:x"}]}
    respelled = {"Statement": {"Resource": ["arn:x"], "Effect": "Allow",
                               "Action": ["s3:GetObject", "s3:PutObject"]}}
    assert policies.same('{"Statement": []}', {"Statement": []})
    assert policies.same(ours, respelled)
    wider = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:x"}]}
    assert not policies.same(ours, wider)
    assert not policies.same(None, ours)
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com"]},
                            "Action": "sts:AssumeRole"}]}
    assert policies.same(trust, identity.TRUST)
    assert not policies.same({"Statement": [{**trust["Statement"][0], "Principal": {
        "Service": ["ec2.amazonaws.com", "lambda.amazonaws.com"]}}]}, identity.TRUST)


def test_bucket_policy_merge_keeps_other_statements_and_replaces_ours() -> None:
    env = environment()
    ours = storage.statements(env)
    stale = {**ours[0], "Resource": "arn:aws:s3:::elsewhere"}
    current = {"Version": "2008-10-17", "Statement": [OTHER, stale]}
    merged = policies.merged(current, ours)
    assert merged == {"Version": "2008-10-17", "Statement": [OTHER, *ours]}
    assert policies.merged(None, ours) == {"Version": "2012-10-17", "Statement": ours}
    assert policies.lacking(current, ours) == [storage.TLS_ONLY]
    assert policies.lacking(merged, ours) == []


def test_bucket_policy_denies_everything_without_tls_on_bucket_and_objects() -> None:
    env = environment()
    [deny] = storage.statements(env)
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == ["arn:aws:s3:::openlmis-example-backups",
                                "arn:aws:s3:::openlmis-example-backups/*"]
    done = {"tagged": True, "versioning": "Enabled", "encryption": {"Rules": []},
            "public_access_block": storage.BLOCK_ALL, "lifecycle": storage.lifecycle(env)}
    [change] = storage.diff(env, {**done, "policy": {"Statement": [OTHER]}})
    assert change.payload is storage.Op.POLICY and "other statements kept" in change.line()
    assert storage.diff(env, {**done, "policy": {"Statement": [OTHER, deny]}}) == []


def _role(env: Any, **changes: Any) -> dict[str, Any]:
    return {"role": True, "trust": identity.TRUST, "policy": identity.policy(env),
            "inline": [identity.POLICY], "managed": [], "profile": True, "attached": True,
            **changes}


def test_host_role_drift_trust_and_extra_policies() -> None:
    env = environment()
    assert identity.diff(env, _role(env)) == []
    loose = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                            "Action": "sts:AssumeRole"}]}
    found = identity.diff(env, _role(env, trust=loose, inline=[identity.POLICY, "extra"],
                                     managed=["arn:aws:iam::aws:policy/AdministratorAccess"]))
    assert [c.payload for c in found] == [
        identity.Op.TRUST, identity.DeleteInline("extra"),
        identity.Detach("arn:aws:iam::aws:policy/AdministratorAccess")]
    assert [c.action for c in found] == [Action.UPDATE, Action.DELETE, Action.DELETE]
    # Read back as a string in another spelling, the toolkit's own policy is no change.
    respelled = json.dumps({"Statement": [
        {**s, "Action": [s["Action"]], "Resource": list(reversed(policies.canonical(s)[
            "Resource"]))} for s in reversed(identity.policy(env)["Statement"])]})
    assert identity.diff(env, _role(env, policy=policies.parsed(respelled))) == []


def test_host_policy_update_says_what_the_live_host_loses() -> None:
    env = environment()
    # The policy of a host provisioned before: read, write and delete every backup.
    arn = "arn:aws:s3:::openlmis-example-backups"
    before = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
         "Resource": arn},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
         "Resource": f"{arn}/*"}]}
    [change] = identity.diff(env, _role(env, policy=before))
    assert (change.action, change.payload) == (Action.UPDATE, identity.Op.POLICY)
    assert change.line().endswith("(live: the host's next request obeys it; it loses "
                                  "s3:DeleteObject, s3:GetBucketLocation at once)")
    # Only a condition differs: nothing is lost by name, and the line does not claim it is.
    loose = json.loads(json.dumps(identity.policy(env)))
    del loose["Statement"][0]["Condition"]
    [change] = identity.diff(env, _role(env, policy=loose))
    assert change.line().endswith("(live: the host's next request obeys it)")
    [change] = identity.diff(env, _role(env, policy=None))
    assert change.action is Action.CREATE and "live" not in change.line()


def _db(**changes: Any) -> dict[str, Any]:
    return {"class": "db.t4g.micro", "encrypted": True, "public": False, "retention": 7,
            "deletion_protection": False, "parameter_group": "openlmis-example-postgres17",
            "groups": ["sg.db"], "multi_az": False, "copy_tags": True, "minor_upgrades": True,
            **changes}


def test_database_multi_az_drift_says_what_it_costs() -> None:
    env = environment(database__tier="dev", database__workload={})
    actual = {"subnet_group": database.PRIVATE,
              "parameters": {"max_connections": "200", "rds.force_ssl": "1"}}
    assert database.diff(env, {**actual, "instance": _db()}) == []
    [change] = database.diff(env, {**actual, "instance": _db(multi_az=True)})
    assert change.payload == database.Modify({"MultiAZ": False})
    assert "no failover" in change.line()
    prod = environment(database__tier="production", database__workload={})
    [change] = database.diff(prod, {**actual, "instance": _db(
        multi_az=False, deletion_protection=True)})
    assert change.payload == database.Modify({"MultiAZ": True})
    assert "no restart" in change.line() and "slows I/O" in change.line()
    [change] = database.diff(env, {**actual, "instance": _db(copy_tags=False)})
    assert change.payload == database.Modify({"CopyTagsToSnapshot": True})


def test_database_force_ssl_is_set_unless_already_one() -> None:
    env = environment(database__tier="dev", database__workload={})
    base = {"subnet_group": database.PRIVATE, "instance": _db()}
    for value in (None, "0"):
        [change] = database.diff(env, {**base, "parameters": {"max_connections": "200",
                                                              "rds.force_ssl": value}})
        assert change.payload is database.Op.FORCE_SSL and "refused at once" in change.line()


def test_database_warns_about_subnets_storage_and_subnet_group() -> None:
    env = environment(database__tier="dev", database__workload={})
    assert database.warnings(env, _db(storage_gb=env.database.storage_gb,
                                      subnet_group="openlmis-example-db"),
                             database.PRIVATE) == []
    found = database.warnings(env, _db(storage_gb=20, subnet_group="elsewhere"),
                              ["subnet.public-1", "subnet.private-2"])
    assert len(found) == 3
    assert "subnet.private-2, subnet.public-1" in found[0]
    assert "20 GB" in found[1] and "elsewhere" in found[2]


def test_metadata_drift_names_each_option() -> None:
    assert compute.metadata_drift(compute.METADATA) == ""
    # The emulator forgets HttpEndpoint after a change: absent is not a change.
    assert compute.metadata_drift({"HttpTokens": "required",
                                   "HttpPutResponseHopLimit": 1}) == ""
    assert compute.metadata_drift({**compute.METADATA, "HttpPutResponseHopLimit": 2,
                                   "HttpEndpoint": "disabled"}) == (
        "HttpEndpoint disabled → enabled, HttpPutResponseHopLimit 2 → 1")


def test_host_drift_is_planned_live_and_what_needs_a_stop_is_warned() -> None:
    env = environment()
    done = {"key": "k", "eip": {"id": "e", "instance": "i-1"},
            "instance": {"id": "i-1", "metadata": compute.METADATA, "groups": ["sg.host"]}}
    assert compute.diff(env, done, "key.pub") == []
    loose = {**done, "instance": {"id": "i-1", "groups": ["sg.host", "sg.lb"],
                                  "metadata": {**compute.METADATA, "HttpTokens": "optional"}}}
    found = compute.diff(env, loose, "key.pub")
    assert [c.payload for c in found] == [compute.Op.IMDS, compute.Op.GROUPS]
    assert all("(live:" in c.line() for c in found)
    assert "containers" not in found[0].line()
    # A host provisioned with two hops: its containers lose the role, and the line says so.
    [change] = compute.diff(env, {**done, "instance": {
        "id": "i-1", "groups": ["sg.host"],
        "metadata": {**compute.METADATA, "HttpPutResponseHopLimit": 2}}}, "key.pub")
    assert change.line().endswith("HttpPutResponseHopLimit 2 → 1 (live: the running host's next "
                                  "metadata request obeys it; nothing restarts; its containers "
                                  "lose the metadata service and the instance role)")
    assert compute.warnings(env, {"id": "i-1", "type": env.host.instance_type,
                                  "root_encrypted": True,
                                  "profile": "openlmis-example-host"}) == []
    found = compute.warnings(env, {"id": "i-1", "type": "t3.nano", "root_encrypted": False,
                                   "profile": ""})
    assert len(found) == 3
    assert "NOT encrypted" in found[1] and "profile none" in found[2]


def _lb(**changes: Any) -> dict[str, Any]:
    return {"lb": {"idle": 300, "drop_invalid": "true", "groups": ["sg.lb"],
                   "scheme": "internet-facing"},
            "tg": dict(loadbalancer.HEALTH), "registered": True, "cert": "arn:c",
            "listeners": {80: {"redirect": True},
                          443: {"forward": True, "cert": "arn:c", "target": "tg",
                                "policy": loadbalancer.TLS_POLICY}}, **changes}


def test_load_balancer_drift() -> None:
    env = environment()
    Op = loadbalancer.Op
    assert loadbalancer.diff(env, _lb(), cert_issued=True) == []
    old = _lb(listeners={80: {"redirect": True},
                         443: {"forward": True, "cert": "arn:c", "target": "tg",
                               "policy": "ELBSecurityPolicy-2016-08"}})
    [change] = loadbalancer.diff(env, old, cert_issued=True)
    assert change.payload is Op.HTTPS
    assert "ELBSecurityPolicy-2016-08 → ELBSecurityPolicy-TLS13" in change.line()
    assert "(live:" in change.line()
    elsewhere = _lb(listeners={80: {"redirect": True},
                               443: {"forward": True, "cert": "arn:c", "target": "arn:tg/x",
                                     "policy": loadbalancer.TLS_POLICY}})
    assert [c.payload for c in loadbalancer.diff(env, elsewhere, True)] == [Op.HTTPS]
    lax = _lb(lb={"idle": 300, "drop_invalid": "false", "groups": ["sg.host", "sg.lb"]})
    assert [c.payload for c in loadbalancer.diff(env, lax, True)] == [Op.HEADERS, Op.GROUPS]


def test_load_balancer_warnings() -> None:
    env = environment()
    assert loadbalancer.warnings(env, _lb()) == []
    odd = _lb(lb={"scheme": "internal"},
              listeners={80: {}, 443: {}, 8080: {"forward": True}})
    found = loadbalancer.warnings(env, odd)
    assert len(found) == 2 and "internal" in found[0] and "8080" in found[1]


def test_private_subnet_in_the_public_route_table_is_taken_out() -> None:
    complete = {"vpc": "v", "dns_hostnames": True, "igw": "i", "igw_attached": True,
                "route_table": "r", "default_route": True,
                "associated": {"public-1": "a-1", "public-2": "a-2", "private-2": "a-4"},
                "subnets": {r: {} for r in network.SUBNETS}}
    [change] = network.diff("10.40.0.0/16", ["a", "b"], complete)
    assert change.payload == network.Disassociate("private-2", "a-4")
    assert "(live:" in change.line()


def test_network_warns_about_ranges_it_cannot_change() -> None:
    zones = ["eu-west-1a", "eu-west-1b"]
    layout = network.layout(IPv4Network("10.40.0.0/16"), zones)
    subnets = {role: {"cidr": cidr, "zone": zone} for role, (cidr, zone) in layout.items()}
    assert network.warnings("10.40.0.0/16", zones,
                            {"vpc": "v", "cidr": "10.40.0.0/16", "subnets": subnets}) == []
    moved = {**subnets, "private-1": {"cidr": "10.40.128.0/18", "zone": "eu-west-1b"}}
    [found] = network.warnings("10.40.0.0/16", zones,
                               {"vpc": "v", "cidr": "10.40.0.0/16", "subnets": moved})
    assert found.startswith("subnet private-1 is 10.40.128.0/18 in eu-west-1b")
    other = network.warnings("10.50.0.0/16", zones,
                             {"vpc": "v", "cidr": "10.40.0.0/16", "subnets": subnets})
    assert len(other) == 1 and "cannot change" in other[0]
