"""The command-line surface, run in-process through Invoke's own program."""

from __future__ import annotations

from importlib import metadata

import pytest
from invoke import Collection, Context, Program, Task

from ops import cli
from ops.errors import OpsError
from ops.tasks import namespace
from ops.tasks.common import (
    ENV_HELP,
    JSON_HELP,
    PLAN_HELP,
    SHORT_FLAGS,
    YES_HELP,
    choice,
    operation,
    seconds,
    task,
    whole,
)

TASKS = {
    "provision", "resize", "destroy", "status", "deploy", "rollback", "logs", "backup-db",
    "restore-db", "verify-backup", "list-backups", "tune-db", "size-db",
    "ssh", "exec", "psql", "audit", "releases", "lock",
    "lab.up", "lab.down", "lab.status", "lab.rehearse",
}
# The tasks that change things: each follows the one convention.
OPERATIONS = {"provision", "resize", "destroy", "deploy", "rollback", "backup-db", "restore-db",
              "verify-backup", "tune-db"}


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


@pytest.mark.parametrize(("argv", "message"), [
    (["size-db", "--products", "-5"], "--products takes a whole number, 0 or more (got '-5')"),
    (["size-db", "--requisitions", "abc"],
     "--requisitions takes a whole number, 0 or more (got 'abc')"),
    (["deploy", "--lock-wait", "soon"], "--lock-wait takes a number of seconds, 0 or more"),
    (["rollback", "--lock-wait", "-1"], "--lock-wait takes a number of seconds, 0 or more"),
    (["logs", "auth", "--lines", "0"], "--lines takes a whole number, 1 or more (got '0')"),
    (["backup-db", "--method", "all"], "--method takes snapshot, dump or both (got 'all')"),
    (["audit", "--lines", "none"], "--lines takes a whole number, 1 or more (got 'none')"),
])
def test_a_bad_option_value_is_one_line_naming_the_option(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(argv, capsys)
    assert code == 1
    assert message in out and len(out.strip().splitlines()) == 1, out


def test_option_values_parse_within_their_bounds() -> None:
    assert whole("600", "products") == 600 and whole("1", "lines", minimum=1) == 1
    assert seconds("0", "lock-wait") == 0 and seconds("2.5", "lock-wait") == 2.5
    assert choice("dump", "method", ("snapshot", "dump", "both")) == "dump"
    for value in ("1.5", "", "x", "-1"):
        with pytest.raises(OpsError, match="--products takes a whole number"):
            whole(value, "products")
    for value in ("nan", "inf", "-0.5", "later"):
        with pytest.raises(OpsError, match="--lock-wait takes a number of seconds"):
            seconds(value, "lock-wait")


def flags(task: Task) -> list[tuple[str, ...]]:
    """A task's flag names; its help texts kept for later parses (Invoke consumes them)."""
    kept = dict(task.help)
    try:
        return [arg.names for arg in task.get_arguments()]
    finally:
        task.help.update(kept)


def test_flags_are_spelled_out_but_for_yes() -> None:
    ns = namespace()
    for name in TASKS:
        for names in flags(ns[name]):
            short = [n for n in names if len(n) == 1]
            assert short == [SHORT_FLAGS[names[0]]] if names[0] in SHORT_FLAGS else not short, (
                name, names)
    assert ("yes", "y") in flags(ns["destroy"]) and ("yes", "y") in flags(ns["restore-db"])


def test_every_task_that_changes_things_has_the_same_convention_flags() -> None:
    ns = namespace()
    for name in OPERATIONS:
        assert {("plan",), ("yes", "y"), ("json",), ("env",)} <= set(flags(ns[name])), name
        assert (HELP[name]["plan"], HELP[name]["yes"], HELP[name]["json"]) == (
            PLAN_HELP, YES_HELP, JSON_HELP), name


@pytest.mark.parametrize("flag", ["--echo", "--warn-only"])
def test_invokes_echo_and_warn_only_are_refused_not_ignored(
        flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run([flag, "size-db", "--env", "example"], capsys)
    assert code == 1 and f"{flag} has no effect" in out and "recommendation" not in out


def test_dry_refuses_a_task_that_changes_things_and_points_at_plan(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(["--dry", "provision", "--env", "nosuch"], capsys)
    assert code == 1 and "--dry cannot hold back" in out and "inv provision --plan" in out
    code, out = run(["--dry", "destroy", "--yes"], capsys)
    assert code == 1 and "inv destroy --plan" in out
    code, out = run(["--dry", "ssh"], capsys)
    assert code == 1 and "no preview: run it without --dry" in out
    code, out = run(["--dry", "lock", "--break", "--env", "nosuch"], capsys)
    assert code == 1 and "--dry cannot hold back breaking the lock" in out
    code, out = run(["--dry", "size-db", "--env", "lab"], capsys)  # looks only: runs
    assert code == 0 and "recommendation" in out


def test_ctrl_c_is_one_line_and_the_shells_exit_status(
        capsys: pytest.CaptureFixture[str]) -> None:
    @task
    @operation
    def wait(c: Context) -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exited:
        Program(namespace=Collection(wait), version="test").run(["inv", "wait"])
    assert exited.value.code == 130
    assert capsys.readouterr().err.startswith("✗ interrupted")


def test_version_is_the_toolkits(capsys: pytest.CaptureFixture[str]) -> None:
    for flag in ("-V", "--version"):
        with pytest.raises(SystemExit) as exited:
            cli.program.run(["inv", flag])
        assert exited.value.code == 0
        assert capsys.readouterr().out == f"openlmis-ops {metadata.version('openlmis-ops')}\n"


def test_size_db_json_is_data_only(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    code, out = run(["size-db", "--env", "example", "--products", "800", "--json"], capsys)
    found = json.loads(out)  # nothing else printed
    assert code == 0 and found["workload"]["products"] == 800
    assert {r["choice"] for r in found["recommendation"]} >= {"tier", "host"}


@pytest.mark.parametrize(("argv", "message"), [
    (["restore-db", "--from"], "--from needs a value and was given none"),
    (["logs", "auth", "--lines"], "--lines needs a value and was given none"),
    (["backup-db", "--", "--env", "prod"], "backup-db takes no arguments after '--' (got '--env"),
    (["deploy", "--release", "../../../tmp/x"], "--release takes a release name or id"),
    (["rollback", "--to", "-rf"], "--to takes a release name or id"),
    (["status", "--env", ""], "environment '' (--env or OPS_ENV): names are"),
    (["size-db", "--products", "9" * 40], "--products takes a whole number, at most 1000000000"),
    (["logs", "auth", "--lines", "9" * 5000], "--lines takes a whole number, 1 or more (got '99"),
])
def test_command_lines_the_fuzz_tests_found_are_one_line(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Through the toolkit's own program (ops.cli), as `inv` runs them."""
    try:
        cli.OpsProgram(namespace=namespace(), version="test").run(["inv", *argv])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = "".join(capsys.readouterr())
    assert code == 1 and message in " ".join(out.split()) and out.count("\n") <= 2, out
