"""Property: no configuration file, however broken or hostile, gets a traceback.

Each example starts from config/example.yml or config/lab.yml, mutates it (keys deleted,
values of the wrong type, huge or negative numbers, hostile strings, unknown keys) and maybe its
text (YAML tags, aliases, deep nesting, bytes that are not UTF-8, a cut), and runs a real
task on it in-process: size-db, which loads the file as every task does and then plans from
this repository's compose files, or a task that goes on to AWS with the credential chain
empty (boto3 refuses before any connection; a lab environment finds no lab). A file that
loads must also render the release's `.env` and settings.env without a value breaking out of
its line.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ops import config, errors
from ops.config import ROOT
from ops.errors import OpsError
from ops.stack import compose
from ops.stack import settings as stack_settings
from ops.targets import DatabaseTarget
from tests.unit.fuzzing import assert_clean, examples, hostile_text, hostile_values, offline, run

BASES = {name: yaml.safe_load((ROOT / "config" / f"{name}.yml").read_text())
         for name in ("example", "lab")}

# Whole-text mutations: what a hand edit or a hostile file can hold that a mapping cannot.
TEXT_EDITS = {
    "python tag": "\nhost: !!python/object/apply:os.system ['touch /tmp/pwned']\n",
    "unknown tag": "\nproject: !vault |\n  abc\n",
    "alias bomb": "\na: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, "
                  "*a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, "
                  "*c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, "
                  "*d]\nnetwork: {existing_public_subnet_ids: [*e, *e, *e, *e, *e, *e]}\n",
    "self alias": "\nstack: &s {settings: *s}\n",
    "deep": "\nstack: " + "[" * 5000 + "]" * 5000 + "\n",
    "bad date": "\nbackups: {bucket: 2026-13-45}\n",
    "tab": "\n\tkind: aws\n",
    "duplicate": "\nkind: aws\nkind: lab\n",
    "colon": "\n: :\n",
    "complex key": "\n? [a, b]\n: c\n",
}
BAD_BYTES = b"\nproject: \xff\xfe\x80\n"


def key_paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value: dict keys and list indexes."""
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from key_paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from key_paths(value, (*prefix, index))


def replace(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    data[path[0]] = replace(data[path[0]], path[1:], value) if len(path) > 1 else value
    return data


def delete(data: Any, path: tuple[Any, ...]) -> Any:
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    return data


@st.composite
def mutated_files(draw: st.DrawFn) -> tuple[bytes, set[str]]:
    """A mutated configuration file and the names of the keys it touched."""
    data = copy.deepcopy(BASES[draw(st.sampled_from(sorted(BASES)))])
    touched: set[str] = set()
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        paths = list(key_paths(data))
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "replace", "edge", "edge", "delete",
                                       "unknown"]))
        if action == "edge" and isinstance(_at(data, path), str | int) and path:
            data = replace(data, path, draw(near(_at(data, path))))
        elif action == "delete" and path:
            data = delete(data, path)
        elif action == "unknown" and isinstance(_at(data, path), dict):
            key = draw(hostile_text)
            _at(data, path)[key] = draw(hostile_values)
            path = (*path, key)
        else:
            data = replace(data, path, draw(hostile_values))
        # the whole file replaced: its name is all a message can point at
        touched |= {str(p) for p in path if not isinstance(p, int)} or {"fuzz.yml"}
        if not isinstance(data, dict):
            break
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode()
    edit = draw(st.one_of(st.none(), st.none(), st.none(),
                          st.sampled_from(["cut", "bytes", *TEXT_EDITS])))
    if edit == "cut":
        text = text[:draw(st.integers(min_value=0, max_value=len(text)))]
    elif edit == "bytes":
        text += BAD_BYTES
    elif edit:
        text += TEXT_EDITS[edit].encode()
    if edit:
        touched.add("fuzz.yml")  # the whole text: naming the file is naming what is wrong
    return text, touched


def near(value: str | int) -> st.SearchStrategy[Any]:
    """A value just beside a valid one: a string with a hostile character added, a number at a
    boundary or far past it."""
    if isinstance(value, bool):
        return st.sampled_from([not value, "yes", "no", 1, 0, "", None])
    if isinstance(value, int):
        fraction = value + 0.5 if abs(value) < 2 ** 53 else 0.5
        return st.sampled_from([0, -1, 1, value - 1, value + 1, value * 1000, 2 ** 31, 2 ** 63,
                                10 ** 400, str(value), fraction])
    return st.one_of(
        st.tuples(hostile_text, st.sampled_from(["prefix", "suffix", "inside"])).map(
            lambda edit: {"prefix": edit[0] + value, "suffix": value + edit[0],
                          "inside": value[:1] + edit[0] + value[1:]}[edit[1]]),
        st.sampled_from([value.upper(), value * 100, value + "\n", value + "\x00"]))


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        data = data[step]
    return data


# Tasks that load the file first: size-db then plans from this repository alone; the others go
# on to AWS (or the lab's emulator), which the test leaves out of reach.
TASKS = [["size-db"], ["size-db"], ["list-backups"], ["status", "--json"], ["tune-db", "--plan"],
         ["provision", "--plan"], ["backup-db", "--method", "dump"]]
# How a valid file meets that: no credentials, or no lab.
OFFLINE = ("no usable AWS credentials", "could not be read: Unable to locate credentials",
           "the lab's AWS emulator is not running", "no Docker engine is reachable")


@settings(max_examples=examples(300))
@given(case=mutated_files(), task=st.sampled_from(TASKS))
def test_no_config_file_gets_a_traceback(
        case: tuple[bytes, set[str]], task: list[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    text, touched = case
    path = offline(monkeypatch, tmp_path) / "fuzz.yml"
    path.write_bytes(text)
    argv = [*task, "--env", "fuzz"]
    code, out = run(argv, capsys)
    assert_clean(code, out, argv)
    try:
        env = config.load(path=path)
    except OpsError:
        assert code == 1 and any(mentions(out, name) for name in touched), (touched, out[:2000])
        return
    if task == ["size-db"] and code == 0:
        assert "recommendation" in out
    else:  # a value the loader let by, refused later, still names its key; else AWS is out
        assert code in (errors.FAILED, errors.AWS_LOGIN), out[:2000]
        assert any(mentions(out, text) for text in (*touched, *OFFLINE)), (touched, out[:2000])
    assert_lines_hold(env)


def mentions(out: str, name: str) -> bool:
    """Whether the output names `name`, as is or quoted the way messages quote odd keys."""
    flat = " ".join(out.split())
    return any(" ".join(form.split()) in flat for form in (name, config.shown(name)[:30]))


def assert_lines_hold(env: config.Environment) -> None:
    """The release's `.env` and settings.env carry every configured value on its own line
    (when the configured release is one this repository has)."""
    try:
        source = compose.release_dir(env.stack.name, env.stack.release, env.stack.releases_dir)
    except OpsError:
        return
    dotenv = stack_settings.dotenv(compose.release_env(source), env, "compose.yml")
    assert compose.parse_env(dotenv)["spring_profiles_active"] == env.stack.spring_profiles_active
    template = (compose.stack_dir(env.stack.name) / "settings.env.template").read_text()
    db = DatabaseTarget("db.internal", 5432, env.database.name, env.database.master_username)
    secrets = {"database.app_password": "app-password",
               **{f"stack.secrets.{k}": "secret" for k in env.stack.secrets}}
    values = stack_settings.values(env, template, db, secrets)
    rendered = stack_settings.render(values).decode()
    lines = [line for line in rendered.splitlines() if not line.startswith("#")]
    assert len(lines) == len(values)
    assert {line.partition("=")[0] for line in lines} == set(values)
