"""destroy's guards and the AWS lock: the tier the live resources carry, deletion protection,
an SES identity another environment shares, one provision or destroy at a time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ops.approval import Approval, Scope
from ops.aws import calls, lock, teardown, topology
from ops.config import Environment
from ops.errors import OpsError
from tests.aws.provisioning import boto, make_env


def tier(env: Environment, name: str) -> Environment:
    return env.model_validate({**env.model_dump(),
                               "database": {**env.database.model_dump(), "tier": name}})


def test_live_production_tags_and_protection_stop_destroy_before_any_change(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = make_env(emulator, monkeypatch, tmp_path)
    topology.provision(env)
    production = tier(env, "production")
    _, changes = topology.plan(production)
    retagged = [c.line() for c in changes if "openlmis:tier=production" in c.line()]
    assert any(line.startswith("~ db:openlmis-awstest-db") for line in retagged)
    assert any(line.startswith("~ vpc/vpc-") for line in retagged)
    topology.provision(production)  # the tags converge; RDS deletion protection goes on
    assert topology.plan(production)[1].lines() == ["no changes"]
    aws = boto(emulator)
    lb = aws("elbv2").describe_load_balancers()["LoadBalancers"][0]["LoadBalancerArn"]
    aws("elbv2").modify_load_balancer_attributes(LoadBalancerArn=lb, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "true"}])

    with calls.watch() as log, pytest.raises(OpsError) as refused:
        teardown.destroy(env)  # the file says dev now; the resources say production
    assert refused.value.message.startswith(
        "awstest is production-tier on AWS, whatever its file says (dev): "
        "openlmis:tier=production on ")
    assert " more; destroy refuses it" in refused.value.message
    assert log.mutations == []
    with calls.watch() as log, pytest.raises(OpsError) as protected:
        teardown.destroy(env, force=True)
    assert protected.value.message.startswith(
        "deletion protection is on for database openlmis-awstest-db, load balancer "
        "loadbalancer/app/openlmis-awstest-lb/")
    assert "--remove-protection" in protected.value.hint
    assert log.mutations == []

    [snapshot] = teardown.destroy(env, force=True, remove_protection=True)
    assert aws("rds").describe_db_instances()["DBInstances"] == []
    assert aws("elbv2").describe_load_balancers()["LoadBalancers"] == []
    assert snapshot.startswith("openlmis-awstest-db-final-")


def test_an_ses_identity_another_environment_names_is_kept_with_its_records(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    env = make_env(emulator, monkeypatch, tmp_path)
    topology.provision(env)
    monkeypatch.setenv("OPS_CONFIG_DIR", str(tmp_path))
    (tmp_path / "training.yml").write_text(
        (tmp_path / "awstest.yml").read_text().replace("openlmis.test.example.org",
                                                       "training.test.example.org", 1))
    (tmp_path / "broken.yml").write_text("kind: [")  # not an environment: ignored
    teardown.destroy(env)
    out = capsys.readouterr().out
    assert "ses identity openlmis.test.example.org and its DNS records: also the mail of " \
        "training" in out
    aws = boto(emulator)
    name = "openlmis.test.example.org"
    assert aws("ses").list_identities()["Identities"] == [name]
    records = aws("route53").list_resource_record_sets(
        HostedZoneId=env.route53_zone_id)["ResourceRecordSets"]
    left = {(r["Type"], r["Name"]) for r in records} - {("NS", "test.example.org."),
                                                       ("SOA", "test.example.org.")}
    assert ("TXT", f"_amazonses.{name}.") in left
    assert {t for t, n in left if n.endswith(f"._domainkey.{name}.")} == {"CNAME"}
    assert ("A", f"{name}.") not in left  # the load balancer's alias went with it
    (tmp_path / "training.yml").unlink()
    teardown.destroy(env)
    assert aws("ses").list_identities()["Identities"] == []


def test_a_second_run_is_refused_naming_the_holder_and_a_broken_or_failed_one_lets_go(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = make_env(emulator, monkeypatch, tmp_path)
    ssm = boto(emulator)("ssm")
    with lock.held(env, "provision"):
        holder = lock.parse(ssm.get_parameter(Name=lock.parameter(env))["Parameter"]["Value"])
        assert holder is not None and holder.action == "provision"
        for break_lock in (False, True):  # its process runs here: never broken
            with pytest.raises(OpsError) as refused, lock.held(env, "destroy",
                                                               break_lock=break_lock):
                pass
            assert refused.value.message.startswith(
                f"another run holds the AWS lock of awstest: {holder.who} (provision, "
                f"process {holder.pid} on {holder.machine}) since {holder.since}")
    gone = {**holder.__dict__, "pid": 2**22 + 1}  # above Linux's largest pid: no process
    ssm.put_parameter(Name=lock.parameter(env), Type="String", Value=json.dumps(gone))
    with pytest.raises(OpsError, match=r"^the AWS lock of awstest is stale"), lock.held(
            env, "provision"):
        pass
    elsewhere = {**holder.__dict__, "who": "ci@runner-7", "machine": "runner-7"}
    ssm.put_parameter(Name=lock.parameter(env), Type="String", Value=json.dumps(elsewhere),
                      Overwrite=True)
    with pytest.raises(OpsError) as refused, lock.held(env, "destroy"):
        pass
    assert "ci@runner-7 (provision" in refused.value.message
    assert "if no provision or destroy runs on runner-7 any more" in refused.value.hint
    with lock.held(env, "destroy", break_lock=True):
        value = ssm.get_parameter(Name=lock.parameter(env))["Parameter"]["Value"]
        assert json.loads(value)["action"] == "destroy"

    with calls.watch(fail_at=3), pytest.raises(calls.InjectedFailure):
        topology.provision(env)  # 1: the lock, 2: the vpc, 3: fails
    assert ssm.get_parameters_by_path(Path=f"/{env.prefix}")["Parameters"] == []


def test_a_plan_another_run_overtook_while_it_was_reviewed_is_not_applied(
        emulator: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = make_env(emulator, monkeypatch, tmp_path)

    class Meanwhile(Approval):
        def review(self, where: Scope, title: str, lines: list[str]) -> bool:
            approved = super().review(where, title, lines)
            topology.provision(env)  # another operator's run, while this one's plan is read
            return approved

    with pytest.raises(OpsError, match=r"^awstest changed since its plan was shown"):
        topology.provision(env, approval=Meanwhile(yes=True))
    assert boto(emulator)("ssm").get_parameters_by_path(Path=f"/{env.prefix}")[
        "Parameters"] == []
