"""openlmis-auth's bootstrap credentials, replaced by the environment's secrets and kept so.

Every installation starts with the login `admin`/`password` and the OAuth clients
`trusted-client`/`secret` and `user-client`/`changeme` (openlmis-auth v4.4.0
src/main/resources/db/migration/20170214123932959__initial_bootstrap_data.sql). Deploy
replaces two of them:

- **trusted-client's secret** (stack.trusted_client_secret). Its tokens are the services' own:
  auth lets them reset any user's password (openlmis-auth v4.4.0 PermissionService.java,
  checkServiceToken). Every Java service sends it with each token check and service call:
  `auth.server.clientSecret=secret` in its application.properties (e.g. openlmis-referencedata
  v15.4.0 src/main/resources/application.properties; ResourceServerSecurityConfiguration.java
  remoteTokenServices, AuthService.java). That line is a plain value, not a placeholder, but an
  environment variable overrides it (Spring Boot's relaxed binding: AUTH_SERVER_CLIENTSECRET),
  so settings.env carries it. Auth keeps the secret in auth.oauth_client_details.clientsecret,
  compared as stored (openlmis-auth v4.4.0 SecurityConfiguration.java: NoOpPasswordEncoder),
  with no API to change it: the master user updates the row.
- **admin's password** (stack.admin_password), through POST /api/users/auth/passwordReset
  (openlmis-auth v4.4.0 UserController.java) with a trusted-client token, which
  PermissionService.canEditUserPassword accepts for any user; upstream's rules
  (PasswordResetRequestDtoValidator.java) are checked here before anything changes.

**user-client's secret is left alone**: the reference UI sends it from the browser, compiled
in (openlmis-auth-ui v6.2.16 src/openlmis-login/login.service.js: `@@AUTH_SERVER_CLIENT_SECRET`,
replaced when the UI is built; its config.json: `changeme`). openlmis-reference-ui v5.2.12
run.sh substitutes only `${NAME}` placeholders at start, so settings.env cannot change it:
a new secret in auth would refuse every login, and one shipped to every browser is no secret.

Order: the services learn trusted-client's secret from the release's settings.env when
`docker compose up` recreates them; auth's row follows the live release (`follow`) once its
health gate has passed. A gate that fails rolls back to the previous release, whose secret
auth still holds; a deploy that dies in between leaves the row behind, and the next one plans
the change again. No state is kept: the plan compares auth's row with the configured secret in
SQL and checks admin's bcrypt hash here, never by logging in (auth counts failed logins and
locks the user out: openlmis-auth v4.4.0 OlmisAuthenticationProvider.java).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from enum import Enum

import bcrypt

from ops import console, secrets
from ops.config import Environment
from ops.db.approle import literal
from ops.db.remote import DbHost, attach
from ops.errors import OpsError
from ops.host.remote import Remote
from ops.plan import Action, Change
from ops.stack.compose import Service
from ops.stack.release import RELEASES

ADMIN = "admin"
# The admin's first and last names in openlmis-referencedata v15.4.0
# 20170206205310272__initial_bootstrap_data.sql, which the password may not contain either.
ADMIN_NAMES = ("Admin", "User")
DEFAULT_PASSWORD = "password"
TRUSTED_CLIENT = "trusted-client"
DEFAULT_SECRET = "secret"
SETTING = "AUTH_SERVER_CLIENTSECRET"
NGINX = "http://127.0.0.1:80"  # the stack's nginx on the host (OL_HTTP_PORT, which no release sets)

_TABLES = ("SELECT to_regclass('auth.oauth_client_details') IS NOT NULL "
           "AND to_regclass('auth.auth_users') IS NOT NULL AS ready \\gset\n")


class Payload(Enum):
    CLIENT_SECRET = "trusted-client's secret"
    ADMIN_PASSWORD = "admin's password"


def has_auth(services: list[Service]) -> bool:
    """Whether the stack runs openlmis-auth (the lab stack does not)."""
    return any(s.name == "auth" for s in services)


def check(env: Environment, resolved: dict[str, str], services: list[Service]) -> str:
    """Refuse, before anything changes, what cannot work or must not stay; the warning about
    the defaults a non-production deploy leaves live ('' for none)."""
    if not has_auth(services):
        return ""
    for key in ("settings", "secrets"):
        if SETTING in getattr(env.stack, key):
            raise OpsError(f"stack.{key}.{SETTING}: set stack.trusted_client_secret instead",
                           hint="deploy gives it to the services and to auth, in that order")
    if "stack.admin_password" in resolved:
        check_password(resolved["stack.admin_password"])
    live = [f"{what} (set stack.{key})" for key, what in (
        ("admin_password", f"the login {ADMIN}/{DEFAULT_PASSWORD}"),
        ("trusted_client_secret", f"the OAuth client {TRUSTED_CLIENT}/{DEFAULT_SECRET}"))
        if f"stack.{key}" not in resolved]
    if live and env.is_production:
        raise OpsError("a production deploy would leave openlmis-auth's bootstrap credentials "
                       f"live: {'; '.join(live)}",
                       hint="add secret references, e.g. admin_password: "
                       f"ssm:/openlmis/{env.name}/admin-password (runbook 04)")
    return ("openlmis-auth's bootstrap credentials stay LIVE: " + "; ".join(live)) if live else ""


def check_password(password: str) -> None:
    """openlmis-auth v4.4.0 PasswordResetRequestDtoValidator.java: a digit, no spaces, 8 to 72
    letters and digits, not containing the username or the user's names."""
    problems = []
    if not re.search(r"[0-9]", password):
        problems.append("contain a digit")
    if not re.fullmatch(r"[a-zA-Z0-9]{8,72}", password):
        problems.append("be 8 to 72 letters and digits (no spaces or punctuation)")
    names = sorted({name.lower() for name in (ADMIN, *ADMIN_NAMES)})
    if any(name in password.lower() for name in names):
        problems.append(f"not contain {' or '.join(repr(n) for n in names)} (any case)")
    if problems:
        raise OpsError("stack.admin_password does not meet OpenLMIS' password rules: it must "
                       + "; ".join(problems),
                       hint="generate one, e.g. openssl rand -hex 16 (auth also scores its "
                       "strength: random letters and digits pass)")


def facts_sql(secret: str) -> str:
    """psql script (on stdin: the secret is in it): 'none' before auth first started, else
    whether trusted-client's secret is `secret`, whether it is upstream's default, then
    admin's password hash ('' without that user)."""
    return (_TABLES + "\\if :ready\n"
            "SELECT coalesce(bool_or(clientsecret = " + literal(secret) + "), false), "
            f"coalesce(bool_or(clientsecret = {literal(DEFAULT_SECRET)}), false) "
            f"FROM auth.oauth_client_details WHERE clientid = {literal(TRUSTED_CLIENT)};\n"
            "SELECT coalesce(max(password), '') FROM auth.auth_users "
            f"WHERE lower(username) = {literal(ADMIN)};\n"
            "\\else\nSELECT 'none';\n\\endif\n")


@dataclass(frozen=True)
class Facts:
    """What auth holds: trusted-client's secret compared, admin's password hash."""

    secret_ok: bool  # the configured secret (upstream's default when none is)
    secret_default: bool
    admin_hash: str  # '' without that user

    def admin_is(self, password: str) -> bool:
        try:
            return bool(self.admin_hash) and bcrypt.checkpw(password.encode(),
                                                            self.admin_hash.encode())
        except ValueError:
            return False


def parse(output: str) -> Facts | None:
    """facts_sql's output; None before auth's tables exist."""
    if output.strip() == "none":
        return None
    first, _, rest = output.strip().partition("\n")
    secret_ok, _, secret_default = first.partition("|")
    return Facts(secret_ok == "t", secret_default == "t", rest.strip())


def plan(wanted: dict[str, str], facts: Facts | None) -> list[Change[Payload]]:
    """The changes to what auth holds. `wanted`: the resolved stack.trusted_client_secret and
    stack.admin_password that are configured; `facts` None: not known yet (auth never started,
    or no PostgreSQL client on the host to ask with), so every configured one."""
    changes: list[Change[Payload]] = []
    secret = wanted.get("stack.trusted_client_secret")
    if secret and not (facts and facts.secret_ok):
        now = ("upstream's default" if facts is None or facts.secret_default
               else "another secret")
        changes.append(Change(Action.UPDATE, f"OAuth client {TRUSTED_CLIENT}",
                              f"secret set to stack.trusted_client_secret (now {now}), once the "
                              "services have it", payload=Payload.CLIENT_SECRET))
    password = wanted.get("stack.admin_password")
    if password and (facts is None or (facts.admin_hash and not facts.admin_is(password))):
        now = ("upstream's default" if facts is None or facts.admin_is(DEFAULT_PASSWORD)
               else "another password")
        changes.append(Change(Action.UPDATE, f"OpenLMIS user {ADMIN}",
                              f"password set to stack.admin_password (now {now})",
                              payload=Payload.ADMIN_PASSWORD))
    return changes


def wanted_secrets(env: Environment) -> dict[str, str]:
    """The configured replacements, resolved (registered with the redactor)."""
    return {f"stack.{key}": secrets.resolve(env, f"stack.{key}", ref)
            for key in ("trusted_client_secret", "admin_password")
            if (ref := getattr(env.stack, key))}


def plan_changes(env: Environment, remote: Remote, services: list[Service], *,
                 client: bool) -> list[Change[Payload]]:
    """The changes, asked from the host when it has a PostgreSQL `client`."""
    wanted = wanted_secrets(env) if has_auth(services) else {}
    if not wanted:
        return []
    if not client:
        return plan(wanted, None)
    with attach(env, remote, install=False) as host:
        return plan(wanted, _facts(host, wanted))


def _facts(host: DbHost, wanted: dict[str, str]) -> Facts | None:
    secret = wanted.get("stack.trusted_client_secret", DEFAULT_SECRET)
    return parse(host.script(facts_sql(secret), {}, what="reading auth's credentials"))


def follow_script(release_id: str) -> str:
    """bash: make trusted-client's secret in auth the one the release's services were given
    (its settings.env's SETTING, else upstream's default), read on the host: the value never
    leaves it, nor enters a command line (printf is bash's own). Prints `default` or
    `configured` when it changed the row, nothing otherwise."""
    path = shlex.quote(f"{RELEASES}/{release_id}/settings.env")
    # settings.env's values are single-quoted and hold no quote (ops.stack.settings.render)
    return (f"v=$(sed -n \"s/^{SETTING}='\\(.*\\)'\\$/\\1/p\" {path}); "
            f"printf '%s' {shlex.quote(_TABLES)}; "
            "printf '\\\\if :ready\\n'; "
            "printf \"UPDATE auth.oauth_client_details SET clientsecret = '%s' "
            f"WHERE clientid = '{TRUSTED_CLIENT}' AND clientsecret IS DISTINCT FROM '%s' "
            f"RETURNING CASE WHEN clientsecret = '{DEFAULT_SECRET}' THEN 'default' "
            "ELSE 'configured' END;\\n\" \"${v:-" + DEFAULT_SECRET + "}\" "
            "\"${v:-" + DEFAULT_SECRET + "}\"; printf '\\\\endif\\n'")


def follow(env: Environment, remote: Remote, release_id: str) -> str:
    """Give auth the trusted-client secret of the release now live; what it changed to
    ('default', 'configured', '' for nothing)."""
    with attach(env, remote, install=False) as host:
        return _follow(host, release_id)


def _follow(host: DbHost, release_id: str) -> str:
    _, out = host.run(f"{{ {follow_script(release_id)}; }} | psql -X -At -q -v ON_ERROR_STOP=1 "
                      f"-d {shlex.quote(host.db.name)}", root=True,
                      what=f"giving auth {TRUSTED_CLIENT}'s secret of release {release_id}")
    return out.strip()


def apply(env: Environment, remote: Remote, release_id: str, payloads: list[Payload]) -> None:
    """After the release's health gate (which auth is not part of: wait for its tables):
    auth's trusted-client row follows the release, then admin's password is reset with a
    trusted-client token; what auth holds is checked afterwards."""
    if not payloads:
        return
    wanted = wanted_secrets(env)
    timeout = env.stack.health_timeout_s
    with attach(env, remote, install=False) as host:
        facts = console.wait_for("openlmis-auth's tables", lambda: _facts(host, wanted),
                                 timeout=timeout)
        if Payload.CLIENT_SECRET in payloads:
            _follow(host, release_id)
            console.ok(f"OAuth client {TRUSTED_CLIENT}: secret is stack.trusted_client_secret")
        password = wanted.get("stack.admin_password", "")
        if Payload.ADMIN_PASSWORD in payloads and facts.admin_hash \
                and not facts.admin_is(password):
            _reset_admin(env, remote, wanted)
            console.ok(f"OpenLMIS user {ADMIN}: password is stack.admin_password")
        after = _facts(host, wanted)
    if left := plan(wanted, after):
        raise OpsError("openlmis-auth still holds what deploy replaced: "
                       + "; ".join(c.line() for c in left),
                       hint=f"deploy again; if it persists, look at inv logs --env {env.name} "
                       "auth")


def _reset_admin(env: Environment, remote: Remote, wanted: dict[str, str]) -> None:
    """POST /api/users/auth/passwordReset through the stack's nginx, as a user's request
    arrives, with a trusted-client token (revoked afterwards)."""
    secret = wanted.get("stack.trusted_client_secret", DEFAULT_SECRET)
    answer: list[tuple[int, dict[str, object]]] = []

    def answered() -> bool:  # nginx routes to auth only once auth has registered
        answer[:] = [_call(env, remote, "/api/oauth/token?grant_type=client_credentials",
                           user=f"{TRUSTED_CLIENT}:{secret}")]
        return answer[0][0] not in (0, 404, 502, 503, 504)

    console.wait_for("openlmis-auth's token endpoint", answered,
                     timeout=env.stack.health_timeout_s)
    status, body = answer[0]
    token = str(body.get("access_token", "")) if status == 200 else ""
    if not token:
        raise OpsError(f"auth gave no {TRUSTED_CLIENT} token (HTTP {status}) to reset "
                       f"{ADMIN}'s password with",
                       hint=f"look at inv logs --env {env.name} auth, then deploy again")
    console.redact(token)
    try:
        status, body = _call(env, remote, "/api/users/auth/passwordReset", bearer=token,
                             data=json.dumps({"username": ADMIN,
                                              "newPassword": wanted["stack.admin_password"]}))
    finally:
        _call(env, remote, "/api/users/auth/logout", bearer=token)
    if status != 200:
        reason = body.get("messageKey") or body.get("message") or ""
        raise OpsError(f"auth refused stack.admin_password for {ADMIN} (HTTP "
                       f"{status or 'no answer'}{': ' + str(reason) if reason else ''})",
                       hint="choose another (auth also scores a password's strength), "
                       "store it, deploy again")


def _call(env: Environment, remote: Remote, path: str, *, user: str = "", bearer: str = "",
          data: str = "") -> tuple[int, dict[str, object]]:
    """POST `path` to the stack's nginx with curl, its options (credentials included) on
    stdin; the HTTP status (0: no answer) and the JSON body ({} if none)."""
    options = [f"url = {_quoted(NGINX + path)}", "request = POST", "silent",
               "max-time = 30", f"header = {_quoted('Host: ' + env.domain)}",
               'write-out = "\\n%{http_code}"']
    if env.stack.https:
        options.append(f"header = {_quoted('X-Forwarded-Proto: https')}")
    if user:
        options.append(f"user = {_quoted(user)}")
    if bearer:
        options.append(f"header = {_quoted('Authorization: Bearer ' + bearer)}")
    if data:
        options += [f"header = {_quoted('Content-Type: application/json')}",
                    f"data = {_quoted(data)}"]
    out = remote.execute("curl -K -", root=False, check=False, what=f"POST {path}",
                         stdin=["\n".join(options).encode() + b"\n"]).out
    text, _, code = out.rpartition("\n")
    try:
        body = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        body = {}
    return (int(code) if code.strip().isdigit() else 0), body if isinstance(body, dict) else {}


def _quoted(value: str) -> str:
    """A curl config file's double-quoted string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
