"""The command-line surface, run in-process through Invoke's own program."""

from __future__ import annotations

import pytest
from invoke import Program

from ops.tasks import namespace
from ops.tasks.common import ENV_HELP

TASKS = {
    "provision", "destroy", "status", "deploy", "rollback", "logs", "backup-db", "restore-db",
    "verify-backup", "list-backups", "tune-db", "size-db",
    "lab.up", "lab.down", "lab.status", "lab.rehearse",
}


# Invoke consumes a task's help texts when it first parses arguments: read them before that.
HELP = {name: dict(namespace()[name].help) for name in TASKS}


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    program = Program(namespace=namespace(), version="test")
    try:
        program.run(["inv", *argv], exit=True)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_help_and_list_read_well(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(["--help", "backup-db"], capsys)
    flat = " ".join(out.split())
    assert code == 0
    assert "--env=STRING environment to act on" in flat and "--reason=STRING why" in flat
    code, out = run(["--list"], capsys)
    assert code == 0
    for name in TASKS:
        assert f"  {name} " in out
    assert set(namespace().task_names) >= TASKS


def test_env_tasks_take_env_and_explain_it(capsys: pytest.CaptureFixture[str]) -> None:
    for name in TASKS - {"lab.up", "lab.down", "lab.status", "lab.rehearse"}:
        assert HELP[name].get("env") == ENV_HELP, name


def test_unknown_environment_is_one_clean_message(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(["provision", "--env", "nosuch"], capsys)
    assert code == 1
    assert "no configuration for environment 'nosuch'" in out
    assert "Traceback" not in out
