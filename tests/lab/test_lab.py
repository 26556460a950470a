"""The lab itself: emulator, SSH hosts (Fabric, host keys) and PostgreSQL, for real."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest

from ops import config
from ops.aws.session import client
from ops.errors import OpsError
from ops.host.connect import ChangedHost, connect
from ops.lab import ca, hosts
from ops.lab.lab import Lab
from ops.lab.state import LabState


def test_up_is_idempotent_and_status_shows_addresses(lab: Lab) -> None:
    first = lab.up()
    assert lab.up() == first
    rows = {r["name"]: r for r in lab.status()}
    assert rows["AWS emulator"]["state"] == "running"
    assert rows["instance metadata service"]["address"] == first["metadata"]
    assert rows[f"{lab.state.name}-db"]["address"] == first["database"]


def test_fabric_runs_a_command_on_a_bare_host(lab: Lab) -> None:
    host = lab.host("bare1")
    with connect(host.address, user=host.user, key=host.key,
                 known_hosts=host.known_hosts) as conn:
        result = conn.run("cat /etc/debian_version; systemctl is-active ssh; "
                          "command -v docker || echo no-docker", hide=True)
    lines = result.stdout.split()
    assert lines[0].startswith("13.")
    assert lines[1:] == ["active", "no-docker"]


def test_unknown_host_key_is_refused_with_its_fingerprint(lab: Lab, tmp_path) -> None:
    host = lab.host("bare1")
    with pytest.raises(OpsError) as caught:
        connect(host.address, user=host.user, key=host.key, known_hosts=tmp_path / "none")
    assert f"{host.address} is not a known host: it offers ssh-ed25519 SHA256:" in str(caught.value)
    assert "ssh-keyscan" in caught.value.hint


def test_a_changed_host_key_is_refused_until_the_entry_is_replaced_as_the_hint_says(
        lab: Lab, tmp_path: Path) -> None:
    """What an operator meets after a host is replaced at the same address (runbook 08, A4)."""
    host, other = lab.host("bare1"), lab.host("bare2")
    known = tmp_path / "known_hosts"
    entries = dict(line.split(" ", 1) for line in lab.state.known_hosts.read_text().splitlines())
    known.write_text(f"{host.address} {entries[other.address]}\n")
    with pytest.raises(ChangedHost) as caught:
        connect(host.address, user=host.user, key=host.key, known_hosts=known)
    assert caught.value.message == (f"{host.address}'s host key CHANGED: it now offers "
                                    f"{caught.value.fingerprint}")
    assert caught.value.fingerprint.startswith("ssh-ed25519 SHA256:")
    accept = caught.value.hint.rpartition("replace the old entry: ")[2]
    assert accept.startswith(f"ssh-keygen -R {host.address} ")
    subprocess.run(["bash", "-euo", "pipefail", "-c", accept], check=True, capture_output=True)
    with connect(host.address, user=host.user, key=host.key, known_hosts=known) as conn:
        assert conn.run("hostname", hide=True).stdout.strip() == "bare1"


def test_each_host_has_its_own_host_key(lab: Lab) -> None:
    lab.host("bare1")
    lab.host("bare2")
    keys = [line.split()[2] for line in lab.state.known_hosts.read_text().splitlines()]
    assert len(keys) == len(set(keys)) >= 3


def test_hosts_reach_the_emulator_and_the_database(lab: Lab) -> None:
    host = lab.host("bare1")
    url = lab.up()["emulator"]
    db = lab.up()["database"]
    with connect(host.address, user=host.user, key=host.key,
                 known_hosts=host.known_hosts) as conn:
        code = conn.run(f"curl -s -o /dev/null -w '%{{http_code}}' {url}/moto-api/",
                        hide=True).stdout
        port = conn.run(f"timeout 3 bash -c '</dev/tcp/{db}/5432' && echo open", hide=True)
    assert code == "200"
    assert port.stdout.strip() == "open"


def _master(lab: Lab, dbname: str = "open_lmis", **options: str) -> psycopg.Connection:
    return lab.db_connection(dbname, connect_timeout=5, **options)


def test_lab_master_is_no_superuser_but_has_what_the_rds_master_has(lab: Lab) -> None:
    with _master(lab) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()[0]
        role = conn.execute("SELECT rolsuper, rolcreatedb, rolcreaterole, "
                            "pg_has_role('rds_superuser', 'MEMBER') FROM pg_roles "
                            "WHERE rolname = current_user").fetchone()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("ALTER SYSTEM SET work_mem = '8MB'")  # the control plane's, as on RDS
    assert int(version) >= 170000
    assert role == (False, True, True, True)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _master(lab, password="wrong")


def test_a_new_lab_database_has_no_extensions_and_the_master_creates_allowed_ones(
        lab: Lab) -> None:
    with _master(lab, "postgres") as conn:
        conn.execute("DROP DATABASE IF EXISTS extcheck")
        conn.execute("CREATE DATABASE extcheck")
    try:
        with _master(lab, "extcheck") as conn:
            assert [r[0] for r in conn.execute("SELECT extname FROM pg_extension")] \
                == ["plpgsql"]
            conn.execute('CREATE EXTENSION "uuid-ossp"; CREATE EXTENSION postgis')
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("CREATE EXTENSION file_fdw")  # untrusted, not on the allow-list
    finally:
        with _master(lab, "postgres") as conn:
            conn.execute("DROP DATABASE extcheck")


def test_a_plain_text_connection_to_the_lab_database_is_refused(lab: Lab, tmp_path) -> None:
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        _master(lab, sslmode="disable")
    other = ca.certificate(LabState(dir=tmp_path, name="other"))
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        _master(lab, sslrootcert=str(other))  # a server another CA vouches for is refused


def test_lab_environment_points_boto3_at_the_emulator(lab: Lab) -> None:
    env = config.load("lab")
    s3 = client(env, "s3")
    assert s3.meta.endpoint_url == lab.up()["emulator"]
    s3.create_bucket(Bucket="lab-tier-check")
    assert "lab-tier-check" in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_a_launched_instance_has_a_lab_host_until_it_is_terminated(lab: Lab) -> None:
    env = config.load("lab")
    ec2 = client(env, "ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    launched = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"]
    instance = launched[0]["InstanceId"]
    host = lab.instance_host(instance)
    with connect(host.address, user=host.user, key=host.key,
                 known_hosts=host.known_hosts) as conn:
        assert conn.run("hostname", hide=True).stdout.strip() == instance
    ec2.terminate_instances(InstanceIds=[instance])
    assert hosts.find(lab.client, lab.state, instance) is None
    with pytest.raises(OpsError, match=f"no host for instance {instance}"):
        lab.instance_host(instance)


def test_down_removes_what_the_lab_made_and_nothing_else(lab: Lab, tmp_path) -> None:
    name = f"{lab.state.name}-other"
    other = Lab.connect(LabState(dir=tmp_path / "other", name=name))
    other.host("solo")
    removed = other.down()
    assert f"container {name}-solo" in removed
    assert f"network {name}" in removed
    assert not hosts.listed(other.client, other.state)
    assert hosts.find(lab.client, lab.state, "bare1") is not None
    assert other.down() == []
