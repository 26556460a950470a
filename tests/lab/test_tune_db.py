"""tune-db on the lab's PostgreSQL: ALTER SYSTEM, the restart a static parameter needs, SHOW.

The lab database is shared with the other lab tests: the values set here (max_connections 200,
shared_buffers 256MB for the lab's micro class) are sane for all of them, and are left in place.
"""

from __future__ import annotations

import pytest

from ops import config
from ops.approval import Approval
from ops.db.tune import tune
from ops.lab.lab import Lab
from ops.lab.params import LabParameters


def show(*names: str) -> dict[str, str]:
    with Lab.connect().db_connection() as conn:
        return {n: conn.execute(f"SHOW {n}").fetchone()[0] for n in names}


def reset(env: config.Environment) -> None:
    """Back to the server's defaults: no ALTER SYSTEM value left, restarted."""
    server = LabParameters(env)
    with server.connect() as conn:
        conn.execute("ALTER SYSTEM RESET ALL")
    server.reboot()


def test_tune_db_restarts_for_static_parameters_and_converges(
        lab: Lab, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    env = config.load("lab")
    reset(env)  # earlier lab tests (rehearsal, runbooks) may have tuned it already
    assert show("max_connections")["max_connections"] == "100"

    first = tune(env)
    assert first.pending_reboot and not first.rebooted
    assert show("max_connections", "work_mem") == {"max_connections": "100", "work_mem": "3MB"}
    assert "waits for a reboot" in capsys.readouterr().out

    with pytest.raises(Exception, match="without confirmation: nobody is at a terminal"):
        tune(env, reboot=True, approval=Approval())  # pytest's stdin is not a terminal

    second = tune(env, reboot=True)
    assert second.rebooted and len(second.plan) == 0
    assert show("max_connections", "shared_buffers") == {"max_connections": "200",
                                                         "shared_buffers": "256MB"}

    def forbidden(*args: object) -> None:
        raise AssertionError("a converged database must not be changed")

    monkeypatch.setattr(LabParameters, "apply", forbidden)
    monkeypatch.setattr(LabParameters, "reboot", forbidden)
    third = tune(env, reboot=True)
    assert len(third.plan) == 0 and not third.pending_reboot and not third.rebooted
    assert "no changes" in capsys.readouterr().out
