"""Property: no set of flags, however wrong or hostile, gets a traceback from any task.

Each example is one `inv` command line: a task, some of its own flags with hostile values
(negative, huge, NaN, shell characters, NUL, empty), maybe a flag it does not have, one left
without its value, Invoke's --dry or --help. It runs in-process against config/example.yml
with the AWS credential chain empty: boto3 refuses before it opens a connection, so a command
that gets past its checks ends in the one line saying so, with no network and no lab. The
lab's own tasks only ever get a flag they do not have: Invoke refuses them before they run.
"""

from __future__ import annotations

import shutil
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from invoke import Task

from ops.config import ROOT
from ops.tasks import namespace
from tests.unit.fuzzing import assert_clean, examples, hostile_text, offline, run

ENV = "fuzz"


def _flags(task: Task) -> list[tuple[str, bool, bool]]:
    """A task's flags: (name, takes a value, positional); its help texts kept for later."""
    kept = dict(task.help)
    try:
        return [(a.names[0], a.kind is not bool, a.positional) for a in task.get_arguments()]
    finally:
        task.help.update(kept)


NS = namespace()
TASKS = {name: _flags(NS[name]) for name in sorted(NS.task_names)}
LAB = {name for name in TASKS if name.startswith("lab.")}

numbers = st.one_of(
    st.sampled_from(["-1", "-0", "0", "1", "nan", "NaN", "inf", "-inf", "1e400", "1e-400",
                     "9" * 400, "0x10", "1_000", " 5", "5 ", "½", "١٢", "+3", "2.5"]),
    st.integers(min_value=-(2 ** 80), max_value=2 ** 80).map(str),
    st.floats().map(repr),
)
flag_values = st.one_of(numbers, hostile_text, st.sampled_from(["snapshot", "dump", "both",
                                                                 "auth", "3.19.2", ENV]))
unknown_flags = st.one_of(st.sampled_from(["--bogus", "--yes-please", "-x", "--", "---",
                                           "--env=", "-", "--plan=yes"]),
                          hostile_text.map(lambda t: f"--{t}"))


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    name = draw(st.sampled_from(sorted(TASKS)))
    argv: list[str] = []
    if name not in LAB and draw(st.integers(min_value=0, max_value=9)) == 0:
        argv.append(draw(st.sampled_from(["--dry", "--help", "--list", "-V"])))
    argv.append(name)
    flags = TASKS[name]
    if flags:
        for flag, takes_value, positional in draw(st.lists(st.sampled_from(flags), max_size=5)):
            if positional and draw(st.booleans()):
                argv.append(draw(flag_values))
                continue
            argv.append(f"--{flag}")
            if takes_value:
                argv.append(draw(flag_values))
    if "--env" not in argv and name not in LAB:  # first: exec takes all after `--` as its command
        argv[argv.index(name) + 1:argv.index(name) + 1] = ["--env", ENV]
    if name in LAB or draw(st.integers(min_value=0, max_value=4)) == 0:
        argv.insert(draw(st.integers(min_value=argv.index(name) + 1, max_value=len(argv))),
                    draw(unknown_flags) if name not in LAB else "--bogus")
    if flags and draw(st.integers(min_value=0, max_value=6)) == 0:
        argv.append(f"--{draw(st.sampled_from([f for f, value, _ in flags if value] or ['x']))}")
    return argv


# How a command that passed every check meets the empty credential chain: in a task's own line,
# or in the line of the secret it could not read.
OFFLINE = ("no usable AWS credentials", "could not be read: Unable to locate credentials")
# What a task says when the part it lacks is no flag: exec's command after `--`.
MISSING = ("no command to run",)


def names_the_problem(out: str, argv: list[str]) -> bool:
    """Whether a failure's message names a flag of the command line or of its task (the fuzz
    environment's --env aside; Invoke's own by a letter of a short cluster such as -rf),
    quotes a value given or what Invoke could not parse, or says
    the AWS credential chain (which the test empties) has nothing: what gets past every check
    meets that."""
    flags = {a.lstrip("-").partition("=")[0] for a in argv if a.startswith("-")} - {""}
    flags |= {flag for name in set(argv) & set(TASKS) for flag, _, _ in TASKS[name]}
    given = [v for a, v in pairwise(argv) if a == "--env"]
    if given + [a.partition("=")[2] for a in argv if a.startswith("--env=")] == [ENV]:
        flags.discard("env")
    values = {repr(a)[:20] for a in argv if not a.startswith("-") and a not in TASKS} - {
        repr(ENV)}
    shorts = {c for a in argv if a[:1] == "-" and a[1:2] != "-" for c in a[1:]}
    return (any(f"--{flag}" in out or f"'{flag}'" in out for flag in flags)
            or any(f"(-{c})" in out for c in shorts)
            or any(v in out for v in values) or any(f"'{a}'" in out for a in argv)
            or "No idea what" in out or any(phrase in out for phrase in (*OFFLINE, *MISSING)))


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    configs = offline(monkeypatch, tmp_path)
    shutil.copy(ROOT / "config" / "example.yml", configs / f"{ENV}.yml")
    return configs


@settings(max_examples=examples(250))
@given(argv=command_lines())
def test_no_command_line_gets_a_traceback(
        argv: list[str], environment: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(argv, capsys)
    assert_clean(code, out, argv)
    if LAB & set(argv):
        assert code == 1 and "--bogus" in out, (argv, out[:2000])  # refused before it ran
    if code:
        assert names_the_problem(out, argv), (argv, out[:2000])
