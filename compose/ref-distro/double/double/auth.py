"""openlmis/auth's token endpoint and password reset, over its own schema (auth.auth_users,
auth.oauth_client_details), so a secret changed there changes what is accepted.

As upstream (Spring Security OAuth2): clients authenticate with HTTP Basic, their secrets
compared as stored (NoOpPasswordEncoder); users' passwords are bcrypt hashes; tokens live in
memory (InMemoryTokenStore) for TOKEN_DURATION seconds.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
import uuid
from typing import Any

import bcrypt

from double.service import Database
from double.web import Handler, Request, Response

TOKENS: dict[str, dict[str, Any]] = {}
LOCK = threading.Lock()
BAD = Response(401, {"error": "unauthorized", "error_description": "Bad credentials"},
               {"WWW-Authenticate": 'Basic realm="oauth2/client"'})


# auth.server.clientId: the client whose tokens are the services' own (PermissionService.java)
SERVICE_CLIENT = "trusted-client"


def routes(db: Database) -> list[tuple[str, str, Handler]]:
    return [
        ("POST", r"/api/oauth/token", lambda r: token(db, r)),
        ("*", r"/api/oauth/check_token", lambda r: check_token(db, r)),
        ("POST", r"/api/users/auth/passwordReset", lambda r: password_reset(db, r)),
        ("POST", r"/api/users/auth/logout", logout),
    ]


def _client(db: Database, header: str) -> tuple[Any, ...] | None:
    """The client a Basic header authenticates (its id, grant types, scope, token validity),
    None when the header's credentials are wrong."""
    client_id, _, secret = _basic(header)
    rows = db.query("SELECT clientid, clientsecret, authorizedgranttypes, scope, "
                    "accesstokenvalidity FROM auth.oauth_client_details WHERE clientid = %s",
                    client_id)
    if not rows or (rows[0][1] or "") != secret:
        return None
    return rows[0][:1] + rows[0][2:]


def token(db: Database, request: Request) -> Response:
    """POST /api/oauth/token: grant_type password or client_credentials, client by Basic."""
    client = _client(db, request.headers.get("authorization", ""))
    if client is None:
        return BAD
    client_id, grants, scope, validity = client
    params = request.form()
    grant = params.get("grant_type", "")
    if grant not in (grants or "").split(","):
        return Response(400, {"error": "invalid_client",
                              "error_description": f"Unauthorized grant type: {grant}"})
    entry: dict[str, Any] = {"client_id": client_id, "scope": (scope or "").split(",")}
    if grant == "password":
        users = db.query("SELECT id, password, enabled, username FROM auth.auth_users "
                         "WHERE lower(username) = lower(%s)", params.get("username", ""))
        if not users or not _matches(params.get("password", ""), users[0][1]):
            return Response(400, {"error": "invalid_grant",
                                  "error_description": "Bad credentials"})
        if not users[0][2]:
            return Response(400, {"error": "invalid_grant",
                                  "error_description": "User is disabled"})
        entry |= {"referenceDataUserId": str(users[0][0]), "username": users[0][3]}
    elif grant != "client_credentials":
        return Response(400, {"error": "unsupported_grant_type",
                              "error_description": f"Unsupported grant type: {grant}"})
    seconds = validity or int(os.environ.get("TOKEN_DURATION") or 1800)
    value = str(uuid.uuid4())
    with LOCK:
        TOKENS[value] = entry | {"exp": time.time() + seconds}
    body = {"access_token": value, "token_type": "bearer", "expires_in": seconds - 1,
            "scope": " ".join(entry["scope"])}
    body |= {k: entry[k] for k in ("referenceDataUserId", "username") if k in entry}
    return Response(200, body)


def check_token(db: Database, request: Request) -> Response:
    """Open to all (checkTokenAccess("permitAll()")), but Basic credentials that are sent are
    checked first, and wrong ones refused (Spring Security's BasicAuthenticationFilter)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic ") and _client(db, header) is None:
        return BAD
    entry = _entry(request.form().get("token", ""))
    if entry is None:
        return Response(400, {"error": "invalid_token",
                              "error_description": "Token was not recognised"})
    body = {"active": True, "client_id": entry["client_id"], "scope": entry["scope"],
            "exp": int(entry["exp"])}
    if "username" in entry:
        body["user_name"] = entry["username"]
    return Response(200, body)


def password_reset(db: Database, request: Request) -> Response:
    """POST /api/users/auth/passwordReset {username, newPassword}, for the token's own user or
    with a service token (SERVICE_CLIENT's, without a user); others need the USERS_MANAGE
    right, which lives in referencedata: not played here."""
    entry = _bearer(request)
    if entry is None:
        return Response(401, {"error": "unauthorized",
                              "error_description": "Full authentication is required"})
    body = json.loads(request.body or b"{}")
    username, password = body.get("username") or "", body.get("newPassword") or ""
    service = "username" not in entry and entry["client_id"] == SERVICE_CLIENT
    if username != entry.get("username") and not service:
        return Response(403, {"messageKey": "auth.error.authorization.noFollowingPermission",
                              "message": "You do not have the following permission: "
                                         "USERS_MANAGE"})
    problem = password_problem(username, password)
    if problem:
        return Response(400, {"messageKey": problem, "message": problem})
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(10, b"2a")).decode()
    if not db.query("UPDATE auth.auth_users SET password = %s WHERE lower(username) = lower(%s) "
                    "RETURNING id", hashed, username):
        return Response(400, {"messageKey": "users.notFound", "message": "users.notFound"})
    return Response(200)


def password_problem(username: str, password: str) -> str | None:
    """Upstream's PasswordResetRequestDtoValidator rules (the zxcvbn strength score and the
    user's first and last names, both from elsewhere, are not checked)."""
    if not username.strip() or not password.strip():
        return "auth.error.field.required"
    if not re.fullmatch(r"(?=.*[0-9]).+", password):
        return "users.passwordReset.passwordMustContainNumber"
    if not re.fullmatch(r"(?=\S+$).+", password):
        return "users.passwordReset.passwordCannotContainSpaces"
    if not re.fullmatch(r"[a-zA-Z0-9]{8,72}", password):
        return "users.passwordReset.invalidPasswordLength"
    if username.lower() in password.lower():
        return "users.passwordReset.passwordContainsUserDetails"
    return None


def logout(request: Request) -> Response:
    value = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    with LOCK:
        if TOKENS.pop(value, None) is None:
            return Response(401, {"error": "invalid_token"})
    return Response(200, "User logged out")


def _bearer(request: Request) -> dict[str, Any] | None:
    header = request.headers.get("authorization", "")
    value = header[7:].strip() if header.lower().startswith("bearer ") else ""
    return _entry(value or request.query.get("access_token", ""))


def _entry(value: str) -> dict[str, Any] | None:
    with LOCK:
        entry = TOKENS.get(value)
        if entry is not None and entry["exp"] < time.time():
            del TOKENS[value]
            entry = None
    return entry


def _basic(header: str) -> tuple[str, str, str]:
    if not header.lower().startswith("basic "):
        return "", "", ""
    try:
        return base64.b64decode(header[6:].strip()).decode().partition(":")
    except ValueError:
        return "", "", ""


def _matches(password: str, hashed: str | None) -> bool:
    try:
        return bool(hashed) and bcrypt.checkpw(password.encode(), hashed.encode())  # type: ignore[union-attr]
    except ValueError:
        return False
