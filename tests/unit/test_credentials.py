"""Replacing openlmis-auth's bootstrap credentials: the checks before anything changes, the
facts read from auth's tables, the plan, and what travels to the host. Pure."""

from __future__ import annotations

import bcrypt
import pytest

from ops.config import Environment
from ops.errors import OpsError
from ops.plan import Action
from ops.stack import credentials, settings
from ops.stack.compose import Service
from ops.stack.credentials import Facts, Payload
from ops.targets import DatabaseTarget

AUTH = [Service("auth", "openlmis/auth:4.4.0", False, 0, ()),
        Service("nginx", "openlmis/nginx:v7.1", False, 0, ("80:80",))]
LAB_STACK = [Service("referencedata", "openlmis-ops-lab/service:1", True, 0, ())]
# "password", as openlmis-auth's bootstrap data migration stores it
BOOTSTRAP_HASH = "$2a$10$4IZfidcJzbR5Krvj87ZJdOZvuQoD/kvPAJe549rUNoP3N3uH0Lq2G"
PASSWORD = "Kq7wPz3nRt5vXy9b"
WANTED = {"stack.admin_password": PASSWORD, "stack.trusted_client_secret": "s3cr3t-\"x\\y"}


def env(tier: str = "dev", **stack: object) -> Environment:
    return Environment.model_validate({
        "name": "t", "domain": "openlmis.example.org",
        "database": {"master_password": "env:X", "tier": tier},
        "mail": {"from_address": "a@b.org"}, "stack": stack})


def hashed(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4, b"2a")).decode()


def test_configured_replacements_leave_nothing_live() -> None:
    e = env("production", admin_password="ssm:/a", trusted_client_secret="ssm:/t")
    assert credentials.check(e, WANTED, AUTH) == ""


def test_defaults_left_live_are_warned_of_and_refused_in_production() -> None:
    live = credentials.check(env(), {}, AUTH)
    assert "LIVE" in live and "admin/password" in live and "trusted-client/secret" in live
    assert "stack.admin_password" in live and "stack.trusted_client_secret" in live
    assert "admin" not in credentials.check(env(), {"stack.admin_password": PASSWORD}, AUTH)
    with pytest.raises(OpsError, match="production deploy would leave") as caught:
        credentials.check(env("production"), {"stack.trusted_client_secret": "x"}, AUTH)
    assert "admin/password" in str(caught.value)
    assert "trusted-client" not in str(caught.value)


def test_a_stack_without_auth_has_nothing_to_replace() -> None:
    assert credentials.check(env("production"), {}, LAB_STACK) == ""


def test_the_services_setting_comes_only_from_its_own_key() -> None:
    for key in ("settings", "secrets"):
        value = "env:X" if key == "secrets" else "x"
        with pytest.raises(OpsError, match=f"stack.{key}.AUTH_SERVER_CLIENTSECRET: set "
                           "stack.trusted_client_secret instead"):
            credentials.check(env(**{key: {"AUTH_SERVER_CLIENTSECRET": value}}), WANTED, AUTH)


@pytest.mark.parametrize(("password", "rule"), [
    ("abcdefghij", "contain a digit"),
    ("abc def 123", "letters and digits"),
    ("Abc1", "8 to 72"),
    ("a1" * 37, "8 to 72"),
    ("Kq7wPz3n-Rt5", "no spaces or punctuation"),
    ("myAdmin2024x", "not contain"),
    ("superUSER2024", "not contain"),
])
def test_admin_passwords_upstream_would_refuse_are_refused_first(password: str,
                                                                 rule: str) -> None:
    with pytest.raises(OpsError, match=r"stack\.admin_password does not meet") as caught:
        credentials.check(env(), {"stack.admin_password": password}, AUTH)
    assert rule in str(caught.value)
    assert password not in str(caught.value)


def test_facts_are_read_from_psql() -> None:
    assert credentials.parse("none\n") is None
    facts = credentials.parse(f"f|t\n{BOOTSTRAP_HASH}\n")
    assert facts == Facts(secret_ok=False, secret_default=True, admin_hash=BOOTSTRAP_HASH)
    assert facts.admin_is("password") and not facts.admin_is(PASSWORD)
    assert credentials.parse("t|f\n\n") == Facts(True, False, "")


def test_first_deploy_plans_both_replacements() -> None:
    changes = credentials.plan(WANTED, None)
    assert [(c.action, c.payload) for c in changes] == [
        (Action.UPDATE, Payload.CLIENT_SECRET), (Action.UPDATE, Payload.ADMIN_PASSWORD)]
    assert [c.line() for c in changes] == [
        "~ OAuth client trusted-client: secret set to stack.trusted_client_secret (now "
        "upstream's default), once the services have it",
        "~ OpenLMIS user admin: password set to stack.admin_password (now upstream's default)"]


def test_the_defaults_found_are_replaced() -> None:
    changes = credentials.plan(WANTED, Facts(False, True, BOOTSTRAP_HASH))
    assert [c.payload for c in changes] == [Payload.CLIENT_SECRET, Payload.ADMIN_PASSWORD]


def test_replaced_credentials_plan_nothing() -> None:
    assert credentials.plan(WANTED, Facts(True, False, hashed(PASSWORD))) == []


def test_other_values_are_brought_back_to_the_configured_ones() -> None:
    changes = credentials.plan(WANTED, Facts(False, False, hashed("Other2024pass")))
    assert [c.detail.split("(")[1] for c in changes] == [
        "now another secret), once the services have it", "now another password)"]


def test_only_what_is_configured_is_replaced() -> None:
    facts = Facts(True, True, BOOTSTRAP_HASH)
    assert [c.payload for c in credentials.plan({"stack.admin_password": PASSWORD}, facts)] == [
        Payload.ADMIN_PASSWORD]
    assert credentials.plan({}, None) == []


def test_no_admin_user_no_password_change() -> None:
    assert credentials.plan({"stack.admin_password": PASSWORD}, Facts(True, True, "")) == []


def test_the_secret_is_compared_in_sql_on_stdin_quoted() -> None:
    sql = credentials.facts_sql("it's")
    assert "clientsecret = 'it''s'" in sql and "\\if :ready" in sql


def test_the_secret_reaches_auth_from_the_release_file_never_a_command_line() -> None:
    script = credentials.follow_script("3.19.2-abc")
    assert "/opt/openlmis/releases/3.19.2-abc/settings.env" in script
    assert "AUTH_SERVER_CLIENTSECRET" in script and "${v:-secret}" in script


def test_settings_env_gives_the_services_the_configured_secret() -> None:
    db = DatabaseTarget("db.internal", 5432, "open_lmis", "postgres")
    base = {"database.app_password": "pw"}
    assert "AUTH_SERVER_CLIENTSECRET" not in settings.values(env(), "", db, base)
    values = settings.values(env(), "", db, {**base, "stack.trusted_client_secret": "t0k"})
    assert values["AUTH_SERVER_CLIENTSECRET"] == "t0k"


def test_curl_options_quote_what_they_carry() -> None:
    assert credentials._quoted('a"b\\c') == '"a\\"b\\\\c"'
