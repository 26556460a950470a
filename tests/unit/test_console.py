from __future__ import annotations

import pytest

from ops import config, console, secrets
from ops.config import ROOT
from ops.plan import Action, Change, Plan


def test_resolved_secret_is_masked_everywhere(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = config.load(path=ROOT / "config/example.yml")
    env = env.model_copy(update={"database": env.database.model_copy(
        update={"master_password": "env:UNIT_SECRET"})})
    monkeypatch.setenv("UNIT_SECRET", "pa55-w0rd-xyz")
    assert secrets.resolve(env, "database.master_password", "env:UNIT_SECRET") == "pa55-w0rd-xyz"
    console.say("connecting with pa55-w0rd-xyz")
    console.table("t", ["k"], [["url postgres://u:pa55-w0rd-xyz@h"]])
    console.emit_json({"password": "pa55-w0rd-xyz"})
    out = capsys.readouterr().out
    assert "pa55-w0rd-xyz" not in out
    assert out.count("****") == 3


def test_plan_renders_one_line_per_change() -> None:
    plan = Plan()
    assert plan.lines() == ["no changes"] and not plan
    plan.add(Change(Action.CREATE, "security group app", "HTTP from the load balancer",
                    payload=None))
    plan.add(Change(Action.UPDATE, "parameter max_connections", "100 → 200 (static)",
                    payload=None))
    assert plan.lines() == [
        "+ security group app: HTTP from the load balancer",
        "~ parameter max_connections: 100 → 200 (static)",
    ]
    assert len(plan) == 2


def test_ask_without_input_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from ops.errors import OpsError

    monkeypatch.setattr("sys.stdin", io.StringIO("prod\n"))
    assert console.ask("type the name: ") == "prod"
    with pytest.raises(OpsError, match="standard input is closed") as caught:
        console.ask("type the name: ")
    assert "--yes" in caught.value.hint
