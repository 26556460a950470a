"""status: every resource with id, state and endpoint; DNS records to create; JSON only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from invoke import Context

from ops import console
from ops.aws import calls, inventory, topology
from ops.tasks import provision as tasks
from tests.aws.provisioning import make_env


def test_status_json_lists_resources_and_records_without_mutating(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    env = make_env(emulator, monkeypatch, tmp_path, zone=False)
    topology.provision(env)
    monkeypatch.setenv("OPS_CONFIG_DIR", str(tmp_path))
    monkeypatch.setattr(console, "console", console.console)  # json_mode() replaces it
    capsys.readouterr()
    with calls.watch() as log:
        tasks.status(Context(), env="awstest", json_=True)
    assert log.mutations == []
    found = json.loads(capsys.readouterr().out)
    kinds = {r["kind"]: r for r in found["resources"]}
    assert kinds["instance host"]["state"] == "running"
    assert kinds["rds instance"]["state"] == "available"
    assert kinds["rds instance"]["endpoint"].endswith(":5432")
    assert kinds["certificate"]["state"] == "ISSUED"
    assert kinds["load balancer"]["endpoint"]
    assert kinds["ses identity"]["state"]
    assert {"vpc", "subnet public-1", "sg db", "s3 bucket", "smtp secret"} <= set(kinds)
    purposes = {r["purpose"] for r in found["dns_records_to_create"]}
    assert "sends the domain to the load balancer" in purposes
    assert any(p.startswith("validates the certificate") for p in purposes)
    assert len([p for p in purposes if "DKIM" in p]) == 1


def test_without_a_zone_the_https_listener_waits_for_validation(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    env = make_env(emulator, monkeypatch, tmp_path, zone=False)
    monkeypatch.setattr("moto.settings.ACM_VALIDATION_WAIT", 3600)
    topology.provision(env)
    out = capsys.readouterr().out
    assert "awaits DNS validation" in out
    assert "DNS records to create" in out
    with calls.watch() as log:
        topology.provision(env)
    assert log.mutations == []
    assert "no changes" in capsys.readouterr().out
    found = inventory.collect(env)
    assert found["pending_changes"] == []
