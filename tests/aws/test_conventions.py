"""The convention every task that changes things follows, on provision against the emulator:
the plan names the account and region; --plan exits 2 while changes are pending and 0 once
none are; nobody at a terminal and no --yes is a refusal; --json carries plan and outcome."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from invoke import Context, Exit

from ops import console
from ops.aws import calls
from ops.tasks import provision as tasks
from tests.aws.provisioning import REGION, make_env

ACCOUNT = "123456789012"  # the emulator's account


def test_provision_plans_asks_and_exits_by_the_convention(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    make_env(emulator, monkeypatch, tmp_path, zone=False)
    monkeypatch.setenv("OPS_CONFIG_DIR", str(tmp_path))
    monkeypatch.setattr(console, "console", console.console)  # --json replaces it
    capsys.readouterr()

    with calls.watch() as log, pytest.raises(Exit) as planned:
        tasks.provision(Context(), env="awstest", plan=True, json_=True)
    assert planned.value.code == 2 and log.mutations == []
    shown = json.loads(capsys.readouterr().out)
    assert shown["scope"] == {"environment": "awstest", "account": ACCOUNT, "region": REGION}
    assert any(line.startswith("+ ") for line in shown["plan"]["changes"])

    with calls.watch() as log, pytest.raises(Exit) as refused:
        tasks.provision(Context(), env="awstest")  # pytest's stdin is not a terminal
    assert refused.value.code == 1 and log.mutations == []
    said = capsys.readouterr()
    assert f"environment awstest · account {ACCOUNT} · region {REGION}" in said.out
    assert "refusing to apply" in said.err and "--yes" in said.err

    tasks.provision(Context(), env="awstest", yes=True, json_=True)
    done = json.loads(capsys.readouterr().out)
    assert done["outcome"]["provisioned"] is True

    with calls.watch() as log:
        tasks.provision(Context(), env="awstest", plan=True)  # nothing pending: exit 0
    assert log.mutations == []
    assert "no changes" in capsys.readouterr().out


def test_an_error_under_json_is_in_the_record(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    make_env(emulator, monkeypatch, tmp_path, zone=False)
    monkeypatch.setenv("OPS_CONFIG_DIR", str(tmp_path))
    monkeypatch.setattr(console, "console", console.console)
    capsys.readouterr()
    with pytest.raises(Exit) as failed:
        tasks.provision(Context(), env="nosuch", json_=True)
    assert failed.value.code == 1
    said = capsys.readouterr()
    assert "nosuch" in json.loads(said.out)["outcome"]["error"]
    assert "nosuch" in said.err
