"""The host: key pair, EC2 instance (encrypted gp3 root, IMDSv2 required), Elastic IP.

With host.count N > 1 the host is N nodes of a swarm: node 1 is the host as it always was;
node i ≥ 2 is another instance of the same launch request, tagged openlmis:node=i, in public
subnet public-1 for odd i and public-2 for even i (across the network's two availability
zones), with an Elastic IP of its own (role host-ip-i). Nodes above the count are terminated
and their addresses released.

A lost host (or node) is replaced by provision: the launch token of each host follows from
the host it replaces (its predecessor), so a retried launch finds the instance it launched while a
replacement launches anew. AWS keeps a terminated instance in DescribeInstances for about an
hour but holds its launch token for at least 24 hours after; the emulator keeps terminated
instances for good. So the predecessor is read from what outlives a host: the Elastic IP
records the instance it serves (tag HOST_TAG), and a terminated host still shown is newer
than any record.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from botocore.exceptions import ClientError

from ops import console, provider
from ops.aws import identity, tags
from ops.aws.context import Ctx
from ops.config import MAX_NODES, Environment
from ops.errors import OpsError
from ops.plan import Action, Change
from ops.stack import planned, sizing

CANONICAL = "099720109477"
UBUNTU = "ubuntu/images/hvm-ssd*/ubuntu-noble-24.04-amd64-server-*"
LIVE = ["pending", "running", "stopping", "stopped"]
GONE = ["shutting-down", "terminated"]
SPENT_TOKENS = 5  # tokens of lost hosts that one launch walks past before giving up
HOST_TAG = "openlmis:host-instance"  # on the Elastic IP: the instance it was associated with
# IMDSv2 only, and one hop: the instance role's only consumer is the host's own scheduled job,
# run by systemd on the host itself. A container is one hop further (Docker's bridge), so no
# container gets a token, nor the role, and none needs it: the stack's services call no AWS API
# (their compose files and settings name none; mail goes to SES over SMTP with credentials in
# the settings), and the operator's tasks use the operator's credentials.
HOP_LIMIT = 1
METADATA = {"HttpTokens": "required", "HttpEndpoint": "enabled",
            "HttpPutResponseHopLimit": HOP_LIMIT}


class Op(Enum):
    """The host's changes."""

    KEY = "key"
    INSTANCE = "instance"
    IMDS = "imds"
    GROUPS = "groups"
    EIP = "eip"
    ASSOCIATE = "associate"
    RECORD = "record"
    RELEASE = "release"
    TERMINATE = "terminate"


@dataclass(frozen=True)
class Node:
    """A change of node i ≥ 2 (node 1's changes are plain Ops, as before there were nodes)."""

    op: Op
    node: int


Payload = Op | Node


def subnet_role(node: int) -> str:
    """The public subnet of a node: public-1 for odd, public-2 for even (pure)."""
    return "public-1" if node % 2 else "public-2"


def key(what: str, node: int) -> str:
    """The ctx.ids key of a node's 'instance' or 'eip': node 1's as ever, node i's 'what.i'."""
    return what if node == 1 else f"{what}.{node}"


def node_instances(ctx: Ctx) -> dict[int, str]:
    """The instances of the nodes up to host.count known so far, by node index."""
    return {i: ctx.ids[key("instance", i)] for i in range(1, ctx.env.host.count + 1)
            if ctx.ids.get(key("instance", i))}


def client_token(env: Environment, subnet: str, predecessor: str | None = None,
                 node: int = 1) -> str:
    """run_instances idempotency token: one per environment, network, node and host generation
    (the instance the new host replaces; None for the first host). At most 64 characters.
    Node 1's is the host's as ever; node i's carries -n<i> and a digest that covers i too, so
    no two nodes share one."""
    if node == 1:
        if predecessor is None:
            return f"{env.prefix}-host-{subnet}"[:64]
        digest = hashlib.sha256(f"{env.prefix} {subnet} {predecessor}".encode()).hexdigest()
        return f"{env.prefix[:20]}-{digest[:12]}-after-{predecessor[:24]}"
    digest = hashlib.sha256(f"{env.prefix} {subnet} {predecessor} n{node}".encode()).hexdigest()
    after = f"-after-{predecessor}" if predecessor else ""
    return f"{env.prefix[:20]}-n{node}-{digest[:12]}{after}"[:64]


def predecessor(gone: list[dict[str, Any]], recorded: str | None) -> str | None:
    """The host instance a new launch replaces (pure): the newest terminated host instance EC2
    still shows (`gone`: InstanceId, LaunchTime), else the one the Elastic IP recorded, else
    None. A launch whose host was lost before its address was recorded is still shown then."""
    if gone:
        return str(max(gone, key=lambda i: i["LaunchTime"])["InstanceId"])
    return recorded


def diff(env: Environment, actual: dict[str, Any], key_file: str) -> list[Change[Payload]]:
    """`actual`: key (bool), node 1's instance ({} or id, type, metadata options as read,
    groups as roles where read), replaces (the lost host a new instance replaces, if any), eip
    ({} or id, ip, instance, recorded: the instance its tag records, where read); nodes: the
    same three for each node i ≥ 2 found or wanted (host.count), by index."""
    changes: list[Change[Payload]] = []
    if not actual.get("key"):
        changes.append(Change(Action.CREATE, f"key pair {env.prefix}", key_file, payload=Op.KEY))
    changes += _node(env, 1, actual)
    nodes = actual.get("nodes", {})
    for i in range(2, env.host.count + 1):
        changes += _node(env, i, nodes.get(i, {}))
    for i in sorted(n for n in nodes if n > env.host.count):
        changes += _retire(env, i, nodes[i])
    return changes


def _node(env: Environment, node: int, actual: dict[str, Any]) -> list[Change[Payload]]:
    """One node's instance and Elastic IP (node 1's worded as the host's, as ever)."""
    changes: list[Change[Payload]] = []
    name = "host" if node == 1 else f"node {node}"
    instance = actual.get("instance") or {}
    if not instance:
        lost = actual.get("replaces")
        changes.append(Change(Action.CREATE, f"instance {name}",
                              f"{env.host.instance_type}, {env.host.root_volume_gb} GB encrypted "
                              "gp3, IMDSv2 required"
                              + ("" if node == 1 else f", subnet {subnet_role(node)}")
                              + (f"; replaces {lost}, which is gone (a new SSH host key)"
                                 if lost else ""), payload=_payload(Op.INSTANCE, node)))
    else:
        if drifted := metadata_drift(instance.get("metadata", {})):
            hops = instance.get("metadata", {}).get("HttpPutResponseHopLimit") or 0
            containers = ("; its containers lose the metadata service and the instance role"
                          if hops > HOP_LIMIT else "")
            changes.append(Change(Action.UPDATE, f"instance {instance['id']}",
                                  f"metadata {drifted} (live: the running host's next metadata "
                                  f"request obeys it; nothing restarts{containers})",
                                  payload=_payload(Op.IMDS, node)))
        if instance.get("groups") is not None and instance["groups"] != ["sg.host"]:
            changes.append(Change(Action.UPDATE, f"instance {instance['id']}",
                                  f"security groups {', '.join(instance['groups'])} → sg.host "
                                  "(live: connections the old groups allowed may drop)",
                                  payload=_payload(Op.GROUPS, node)))
    eip = actual.get("eip") or {}
    if not eip:
        changes.append(Change(Action.CREATE, f"elastic ip {name}",
                              payload=_payload(Op.EIP, node)))
    if not eip or not instance or eip.get("instance") != instance.get("id"):
        changes.append(Change(Action.UPDATE, f"elastic ip {name}", "associate with the instance"
                              + (f" (from {eip['instance']})" if eip.get("instance") else ""),
                              payload=_payload(Op.ASSOCIATE, node)))
    elif eip.get("recorded", instance["id"]) != instance["id"]:
        changes.append(Change(Action.UPDATE, f"elastic ip {name}",
                              f"record {instance['id']} in tag {HOST_TAG} (a replacement host's "
                              "launch follows from it)", payload=_payload(Op.RECORD, node)))
    return changes


def _retire(env: Environment, node: int, actual: dict[str, Any]) -> list[Change[Payload]]:
    """A node above host.count: its Elastic IP released, its instance terminated."""
    changes: list[Change[Payload]] = []
    why = f"node {node} is above host.count {env.host.count}"
    if eip := actual.get("eip"):
        changes.append(Change(Action.DELETE, f"elastic ip node {node}",
                              f"{eip.get('ip') or eip['id']} released ({why})",
                              payload=Node(Op.RELEASE, node)))
    if instance := actual.get("instance"):
        changes.append(Change(Action.DELETE, f"instance node {node}",
                              f"{instance['id']} terminated ({why}; its disk goes with it)",
                              payload=Node(Op.TERMINATE, node)))
    return changes


def _payload(op: Op, node: int) -> Payload:
    return op if node == 1 else Node(op, node)


def metadata_drift(have: dict[str, Any]) -> str:
    """The metadata options that differ from METADATA, as 'name have → want' (pure). AWS always
    reports HttpEndpoint; the emulator forgets it after a change, so absent is not a change."""
    return ", ".join(f"{k} {have.get(k)} → {v}" for k, v in METADATA.items()
                     if have.get(k, v if k == "HttpEndpoint" else None) != v)


def warnings(env: Environment, instance: dict[str, Any]) -> list[str]:
    """What provision reports about the host but does not change (pure): a stop is needed, or
    changing it under a running host is not provision's call."""
    found, name = [], instance.get("id")
    if instance.get("type", env.host.instance_type) != env.host.instance_type:
        found.append(f"instance {name} is {instance['type']}, config says "
                     f"{env.host.instance_type}: run inv resize in a maintenance window (it "
                     "stops the host); provision does not stop a running host")
    if instance.get("root_encrypted") is False:
        found.append(f"instance {name}'s root volume is NOT encrypted; EBS cannot encrypt in "
                     "place: in a maintenance window terminate the instance, run provision (it "
                     "launches an encrypted one), then inv deploy")
    profile = instance.get("profile", identity.name(env))
    if profile != identity.name(env):
        found.append(f"instance {name} runs with instance profile {profile or 'none'}, not "
                     f"{identity.name(env)}: backups to s3://{env.bucket} need it; associate "
                     "it (changing a running host's credentials is not provision's call)")
    return found


def read(ctx: Ctx) -> dict[str, Any]:
    ec2, env = ctx.aws("ec2"), ctx.env
    actual: dict[str, Any] = {}
    keys = ec2.describe_key_pairs(Filters=tags.filters(env, "key"))["KeyPairs"]
    if keys:
        actual["key"] = ctx.ids["key"] = keys[0]["KeyName"]
    found = tags.by_node(env, [i for r in ec2.describe_instances(
        Filters=[*tags.filters(env, "host"),
                 {"Name": "instance-state-name", "Values": LIVE}])["Reservations"]
        for i in r["Instances"]], "terminate the extra ones, then run provision again")
    addresses = _addresses(ec2, env)
    wanted = set(range(1, env.host.count + 1))
    gone = _gone(ec2, env) if wanted - set(found) else {}
    for i in sorted(wanted | set(found) | set(addresses)):
        node = _read_node(ctx, i, found.get(i), addresses.get(i, {}), gone.get(i, []))
        if i == 1:
            actual.update(node)
        else:
            actual.setdefault("nodes", {})[i] = node
    return actual


def _read_node(ctx: Ctx, node: int, instance: dict[str, Any] | None, address: dict[str, Any],
               gone: list[dict[str, Any]]) -> dict[str, Any]:
    """One node's instance and Elastic IP as read; their ids into ctx."""
    ec2 = ctx.aws("ec2")
    actual: dict[str, Any] = {}
    if instance:
        ctx.ids[key("instance", node)] = instance["InstanceId"]
        sg_roles = {ctx.ids.get(k): k for k in ("sg.db", "sg.host", "sg.lb")}
        actual["instance"] = {
            "id": instance["InstanceId"], "type": instance["InstanceType"],
            "state": instance["State"]["Name"],
            "metadata": instance.get("MetadataOptions", {}),
            "groups": sorted(sg_roles.get(g["GroupId"], g["GroupId"])
                             for g in instance.get("SecurityGroups", [])),
            "profile": instance.get("IamInstanceProfile", {}).get("Arn", "").rpartition("/")[2],
            "root_encrypted": _root_encrypted(ec2, instance)}
        if node <= ctx.env.host.count:
            for text in warnings(ctx.env, actual["instance"]):
                ctx.warn(text)
    if address:
        ctx.ids[key("eip", node)] = address["AllocationId"]
        actual["eip"] = {"id": address["AllocationId"], "ip": address.get("PublicIp"),
                         "instance": address.get("InstanceId"), "recorded": _recorded(address)}
    if not instance and node <= ctx.env.host.count:
        actual["replaces"] = predecessor(gone, _recorded(address))
    return actual


def _addresses(ec2: Any, env: Environment) -> dict[int, dict[str, Any]]:
    """The nodes' Elastic IPs by node index (role host-ip for node 1, host-ip-i for node i)."""
    roles = {tags.node_role("host-ip", i): i for i in range(1, MAX_NODES + 1)}
    found: dict[int, dict[str, Any]] = {}
    for address in ec2.describe_addresses(Filters=tags.filters(env, *roles))["Addresses"]:
        role = {t["Key"]: t["Value"] for t in address.get("Tags", [])}.get(tags.ROLE, "")
        found.setdefault(roles[role], address)
    return found


def _recorded(address: dict[str, Any]) -> str | None:
    return next((t["Value"] for t in address.get("Tags", []) if t["Key"] == HOST_TAG), None)


def _gone(ec2: Any, env: Environment) -> dict[int, list[dict[str, Any]]]:
    """The environment's host instances that are shutting down or terminated, as still shown,
    by node index."""
    found: dict[int, list[dict[str, Any]]] = {}
    for r in ec2.describe_instances(Filters=[*tags.filters(env, "host"), {
            "Name": "instance-state-name", "Values": GONE}])["Reservations"]:
        for instance in r["Instances"]:
            found.setdefault(tags.node(instance.get("Tags", [])), []).append(instance)
    return found


def check(ctx: Ctx) -> None:
    """Before anything changes: the stack's memory fits the host (warning only; AWS is asked
    about a type the model does not know)."""
    env = ctx.env
    gib = sizing.INSTANCE_GIB.get(env.host.instance_type)
    if gib is None:
        try:
            found = ctx.aws("ec2").describe_instance_types(
                InstanceTypes=[env.host.instance_type])["InstanceTypes"]
        except ClientError as exc:
            raise OpsError(f"host.instance_type {env.host.instance_type!r} is not offered in "
                           f"{env.aws.region}: {exc}") from None
        gib = found[0]["MemoryInfo"]["SizeInMiB"] / 1024 if found else None
    if warning := sizing.fit(planned.services(env), env.host.instance_type, gib):
        ctx.warn(warning)


def public_key(env: Environment) -> str:
    """The public key the host will accept, as its provider names it."""
    path = provider.of(env).public_key(env)
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise OpsError(f"cannot read the SSH public key {path}: {exc.strerror}",
                       hint="set host.ssh_public_key to your public key file") from None


def ami(ctx: Ctx) -> dict[str, Any]:
    """host.ami, else the newest Ubuntu 24.04 LTS (or any image, where any will do)."""
    ec2, env = ctx.aws("ec2"), ctx.env
    if env.host.ami:
        found = ec2.describe_images(ImageIds=[env.host.ami])["Images"]
    else:
        found = ec2.describe_images(Owners=[CANONICAL], Filters=[
            {"Name": "name", "Values": [UBUNTU]}, {"Name": "state", "Values": ["available"]},
            {"Name": "architecture", "Values": ["x86_64"]}])["Images"]
        if not found and provider.of(env).any_image_will_do:
            found = ec2.describe_images(Owners=[CANONICAL])["Images"]
    if not found:
        raise OpsError(f"no AMI found ({env.host.ami or 'Ubuntu 24.04 LTS from Canonical'}) in "
                       f"{env.aws.region}", hint="set host.ami to an image id of the region")
    return max(found, key=lambda i: i.get("CreationDate", ""))


def plan(ctx: Ctx) -> list[Change[Payload]]:
    return diff(ctx.env, read(ctx), str(provider.of(ctx.env).public_key(ctx.env)))


def apply(ctx: Ctx, payload: Payload) -> None:
    ec2, env = ctx.aws("ec2"), ctx.env
    op, node = (payload.op, payload.node) if isinstance(payload, Node) else (payload, 1)
    instance_key, eip_key = key("instance", node), key("eip", node)
    if op is Op.KEY:
        ctx.ids["key"] = ec2.import_key_pair(
            KeyName=env.prefix, PublicKeyMaterial=public_key(env).encode(),
            TagSpecifications=tags.specifications(env, "key", "key-pair"))["KeyName"]
    elif op is Op.INSTANCE:
        ctx.ids[instance_key] = _run_instance(ctx, node)
    elif op is Op.IMDS:
        ec2.modify_instance_metadata_options(InstanceId=ctx.ids[instance_key], **METADATA)
    elif op is Op.GROUPS:
        ec2.modify_instance_attribute(InstanceId=ctx.ids[instance_key],
                                      Groups=[ctx.ids["sg.host"]])
    elif op is Op.EIP:
        ctx.ids[eip_key] = ec2.allocate_address(
            Domain="vpc", TagSpecifications=tags.specifications(
                env, tags.node_role("host-ip", node), "elastic-ip"),
        )["AllocationId"]
    elif op is Op.ASSOCIATE:
        instance = ctx.ids[instance_key]
        console.wait_for(f"instance {instance} running", lambda: _state(ec2, instance) == "running",
                         timeout=600, interval=3, status=lambda: _state(ec2, instance))
        # From the host it served, if still associated (the emulator keeps a terminated one's).
        ec2.associate_address(AllocationId=ctx.ids[eip_key], InstanceId=instance,
                              AllowReassociation=True)
        _record(ec2, ctx.ids[eip_key], instance)
    elif op is Op.RECORD:
        _record(ec2, ctx.ids[eip_key], ctx.ids[instance_key])
    elif op is Op.RELEASE:
        release(ec2, ctx.ids.pop(eip_key))
    elif op is Op.TERMINATE:
        ec2.terminate_instances(InstanceIds=[ctx.ids.pop(instance_key)])


def release(ec2: Any, allocation: str) -> None:
    """Disassociate an Elastic IP from its instance, if it has one, and release it."""
    found = ec2.describe_addresses(AllocationIds=[allocation])["Addresses"][0]
    if found.get("AssociationId"):
        ec2.disassociate_address(AssociationId=found["AssociationId"])
    ec2.release_address(AllocationId=allocation)


def _record(ec2: Any, allocation: str, instance: str) -> None:
    ec2.create_tags(Resources=[allocation], Tags=[{"Key": HOST_TAG, "Value": instance}])


def _run_instance(ctx: Ctx, node: int) -> str:
    ec2, env = ctx.aws("ec2"), ctx.env
    image = ami(ctx)
    subnet = ctx.ids[f"subnet.{subnet_role(node)}"]
    lost = predecessor(_gone(ec2, env).get(node, []),
                       _recorded(_addresses(ec2, env).get(node, {})))
    request = dict(
        ImageId=image["ImageId"], InstanceType=env.host.instance_type, MinCount=1, MaxCount=1,
        KeyName=ctx.ids.get("key", env.prefix), SubnetId=subnet,
        SecurityGroupIds=[ctx.ids["sg.host"]],
        IamInstanceProfile={"Name": identity.name(env)},
        BlockDeviceMappings=[{"DeviceName": image.get("RootDeviceName", "/dev/sda1"), "Ebs": {
            "VolumeSize": env.host.root_volume_gb, "VolumeType": "gp3", "Encrypted": True,
            "DeleteOnTermination": True}}],
        MetadataOptions=METADATA,
        TagSpecifications=tags.specifications(env, "host", "instance", "volume", node=node))
    return launch(env, subnet, lost, lambda token: _launch(ec2, {**request, "ClientToken": token}),
                  node=node)


def launch(env: Environment, subnet: str, lost: str | None,
           run: Callable[[str], dict[str, Any]], node: int = 1) -> str:
    """The id of the host launched by `run(token)` (RunInstances' instance) with the token of
    the generation after `lost`. EC2 answers a token it already used with that launch's
    instance: when that one is gone, the token was spent on a host lost since, and the next
    generation's token is tried."""
    for _ in range(SPENT_TOKENS):
        instance = run(client_token(env, subnet, lost, node))
        if instance["State"]["Name"] not in GONE:
            return str(instance["InstanceId"])
        lost = instance["InstanceId"]
    what = "host" if node == 1 else f"node {node}"
    raise OpsError(f"EC2 answered {SPENT_TOKENS} launches of {env.name}'s {what} with instances "
                   f"that are gone (the last: {lost})",
                   hint="inv status shows the host instances; run provision again")


def _launch(ec2: Any, request: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        try:
            return dict(ec2.run_instances(**request)["Instances"][0])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "IdempotentParameterMismatch":
                raise OpsError(
                    f"EC2 refused the host's launch token {request['ClientToken']}: it launched "
                    "an instance with other settings (gone since) less than 24 hours ago",
                    hint="EC2 forgets the token 24 hours after that instance was terminated: "
                    "run provision again then") from None
            # A new instance profile takes a few seconds to become usable by EC2.
            if "iamInstanceProfile" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(5)


def _root_encrypted(ec2: Any, instance: dict[str, Any]) -> bool | None:
    """Whether the root volume is encrypted; None when the instance reports no root volume."""
    root = next((m["Ebs"]["VolumeId"] for m in instance.get("BlockDeviceMappings", [])
                 if m["DeviceName"] == instance.get("RootDeviceName") and "Ebs" in m), None)
    if root is None:
        return None
    return ec2.describe_volumes(VolumeIds=[root])["Volumes"][0].get("Encrypted", False)


def _state(ec2: Any, instance: str) -> str:
    found = ec2.describe_instances(InstanceIds=[instance])["Reservations"]
    return found[0]["Instances"][0]["State"]["Name"] if found else "missing"
