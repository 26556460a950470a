from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ops import config, secrets
from ops.config import ROOT
from ops.errors import OpsError

GOOD = """
kind: aws
domain: openlmis.example.org
network: {admin_cidrs: [203.0.113.0/24]}
database: {master_password: "env:TEST_DB_PASSWORD"}
mail: {from_address: noreply@example.org}
"""


def write(tmp_path: Path, text: str, name: str = "staging") -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(text)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(OpsError) as caught:
        config.load(path=path)
    return str(caught.value)


def test_example_documents_every_key_and_loads() -> None:
    env = config.load(path=ROOT / "config/example.yml")
    assert env.name == "example"
    assert env.is_production
    text = (ROOT / "config/example.yml").read_text()
    for line in text.splitlines():
        stripped = line.strip()
        leaf = stripped.split("#")[0].rstrip()
        if leaf and not leaf.startswith("-") and not leaf.endswith(":"):
            assert "#" in stripped, f"undocumented key in example.yml: {stripped}"


def test_lab_environment_loads() -> None:
    env = config.load("lab")
    assert env.kind == "lab"
    assert env.database.master_password == "lab:db_master_password"


def test_good_file_derives_names(tmp_path: Path) -> None:
    env = config.load(path=write(tmp_path, GOOD))
    assert env.prefix == "openlmis-staging"
    assert env.bucket == "openlmis-staging-backups"
    assert str(env.network.admin_cidrs[0]) == "203.0.113.0/24"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("mail:", "colour: blue\nmail:"), ["colour: unknown key"]),
        (("network: {", "network: {vpc_cidr: 10.0.0.300/16, "),
         ["network.vpc_cidr:", "10.0.0.300/16"]),
        (("admin_cidrs: [203.0.113.0/24]", "admin_cidrs: [not-a-cidr]"),
         ["network.admin_cidrs[0]:"]),
        (("admin_cidrs: [203.0.113.0/24]", "admin_cidrs: [0.0.0.0/0]"),
         ["network:", "allow_ssh_from_anywhere"]),
        (("domain: openlmis.example.org", "domain: not_a_domain"),
         ["domain:", "not a valid domain name"]),
        (("kind: aws", "kind: aws\naws: {region: europe}"), ["aws.region:", "not an AWS region"]),
        (("kind: aws", "kind: aws\nhost: {root_volume_gb: lots}"),
         ["host.root_volume_gb:", "'lots'"]),
        (("kind: aws", "kind: aws\nhost: {root_volume_gb: 8}"),
         ["host.root_volume_gb:", "greater than or equal to 30"]),
        (('"env:TEST_DB_PASSWORD"', "hunter2hunter2"),
         ["database.master_password:", "not a secret reference"]),
        (("mail: {from_address: noreply@example.org}\n", ""), ["mail: required key is missing"]),
        (('"env:TEST_DB_PASSWORD"}', '"env:TEST_DB_PASSWORD", storage_gb: 100, '
          "max_storage_gb: 109}"), ["database:", "at least 10 % above storage_gb 100: 110"]),
        (("kind: aws", "kind: aws\nbackups: {schedule: {max_age_hours: 169}}"),
         ["backups.schedule.max_age_hours:", "less than or equal to 168"]),
    ],
)
def test_bad_file_gets_one_clear_message(tmp_path: Path, edit: tuple[str, str],
                                         expected: list[str]) -> None:
    old, new = edit
    assert old in GOOD
    message = error_of(write(tmp_path, GOOD.replace(old, new)))
    assert message.startswith(f"{tmp_path / 'staging.yml'} is not valid:")
    for fragment in expected:
        assert fragment in message
    assert "Traceback" not in message and "pydantic" not in message


def test_secret_value_never_echoed_in_error(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, GOOD.replace('"env:TEST_DB_PASSWORD"', "S3cretValue!")))
    assert "database.master_password" in message


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, GOOD + "mail: [unclosed\n"))
    assert "is not valid YAML" in message and "line" in message


def test_name_comes_from_file_name(tmp_path: Path) -> None:
    assert "name: remove this key" in error_of(write(tmp_path, GOOD + "name: other\n"))
    assert "environment names" in error_of(write(tmp_path, GOOD, name="Bad_Name"))


def test_unknown_environment_lists_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(OpsError) as caught:
        config.load("nosuch")
    assert "no configuration for environment 'nosuch'" in str(caught.value)
    assert "lab" in caught.value.hint


def test_environment_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPS_ENV", raising=False)
    assert config.env_name(None) == "lab"
    monkeypatch.setenv("OPS_ENV", "prod")
    assert config.env_name(None) == "prod"
    assert config.env_name("qa") == "qa"


def test_missing_secret_is_clear_before_anything_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_DB_PASSWORD", raising=False)
    env = config.load(path=write(tmp_path, GOOD))
    with pytest.raises(OpsError) as caught:
        secrets.resolve_all(env)
    assert "database.master_password (env:TEST_DB_PASSWORD) is not set" in str(caught.value)
    assert "export TEST_DB_PASSWORD" in caught.value.hint


def test_lab_secret_refused_outside_lab(tmp_path: Path) -> None:
    env = config.load(path=write(tmp_path, GOOD.replace("env:TEST_DB_PASSWORD", "lab:db")))
    with pytest.raises(OpsError, match="has no secret source 'lab'"):
        secrets.resolve_all(env)


# Holes the fuzz tests (test_fuzz_config.py) found, each kept as one example.
@pytest.mark.parametrize(("extra", "expected"), [
    ("stack: " + "[" * 5000 + "]" * 5000 + "\n", "is not valid YAML"),
    ("backups: {bucket: 2026-13-45}\n", "is not valid YAML: a value cannot be read"),
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c, "
     "*c]\n", "more than 10000 values"),
    ("stack: &s {settings: *s}\n", "more than 10000 values"),
])
def test_hostile_yaml_gets_one_clear_message(tmp_path: Path, extra: str, expected: str) -> None:
    message = error_of(write(tmp_path, GOOD + extra))
    assert expected in message and len(message) < 500, message


@pytest.mark.parametrize(("section", "values", "expected"), [
    ("backups", {"drill_image": "x:{major.real.nope}"}, "the only placeholder it may hold"),
    ("backups", {"drill_image": "--privileged"}, "drill_image '--privileged': an image"),
    ("stack", {"settings": {"A\nB": "x"}}, "stack.settings.'A\\nB': 'A\\nB' is not a setting"),
    ("stack", {"settings": {"A": "x'; id"}}, "stack.settings.A: \"x'; id\" is not a setting value"),
    ("stack", {"spring_profiles_active": "production\nX=1"},
     "stack.spring_profiles_active: 'production\\nX=1' is not Spring profile names"),
    ("stack", {"release": "../../etc"}, "stack.release: '../../etc' is not a release name"),
    ("database", {"engine_version": "17; reboot"}, "database.engine_version: '17; reboot' is not"),
    ("database", {"name": "-x"}, "database.name: '-x' is not a name"),
    ("host", {"ssh_public_key": "~nosuchuser/key"}, "no such user's home directory"),
    ("host", {"swap_gb": True}, "host.swap_gb: True is not a whole number"),
    ("host", {"swap_gb": 10 ** 30}, "host.swap_gb: Input should be less than or equal to 1024"),
    ("network", {"vpc_cidr": 7}, "network.vpc_cidr: 7 is not a network"),
    ("mail", {"from_address": "a@b.org\n"}, "mail.from_address: 'a@b.org\\n' is not an e-mail"),
    (None, {"project": "$(id)"}, "project: '$(id)' is not a project name"),
    (None, {"domain": "a" * 5000}, f"domain: '{'a' * 27}...{'a' * 28}' is not"),
])
def test_hostile_values_get_one_clear_message(
        tmp_path: Path, section: str | None, values: dict[str, object], expected: str) -> None:
    data = yaml.safe_load(GOOD)
    (data.setdefault(section, {}) if section else data).update(values)
    message = error_of(write(tmp_path, yaml.safe_dump(data)))
    assert expected in message and len(message) < 500, message


def test_a_file_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "staging.yml"
    path.write_bytes(GOOD.encode() + b"project: \xff\n")
    assert error_of(path) == f"{path}: line 7 is not UTF-8 text"


def test_an_empty_env_is_refused_not_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_ENV", "lab")
    with pytest.raises(OpsError, match=r"environment '' \(--env or OPS_ENV\): names are"):
        config.load("")
    with pytest.raises(OpsError, match="names are lower-case letters"):
        config.load("../config/lab")
