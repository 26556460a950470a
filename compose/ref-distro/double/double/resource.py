"""A resource server's side of OAuth, as every upstream Java service plays it: a request's
bearer token is checked with auth's check_token, the service authenticating as
`auth.server.clientId` with `auth.server.clientSecret` (e.g. openlmis-referencedata v15.4.0
ResourceServerSecurityConfiguration.java remoteTokenServices, application.properties).

The secret is `secret` in application.properties, which an environment variable overrides as
Spring resolves `${auth.server.clientSecret}` (SystemEnvironmentPropertySource: the name, then
with `.` as `_`, then upper case). spring-security-oauth2's RemoteTokenServices takes only a
400 from check_token as an answer: a 401 (auth refusing the client's secret) is an error, so
the request fails whatever its token (500).
"""

from __future__ import annotations

import base64
import os
import urllib.error
import urllib.parse
import urllib.request

from double.service import Database
from double.web import Handler, Request, Response

CLIENT_ID = "trusted-client"
PROPERTY = "auth.server.clientSecret"
DEFAULT_SECRET = "secret"


def client_secret(environ: dict[str, str]) -> str:
    """`auth.server.clientSecret` as the service reads it."""
    underscored = PROPERTY.replace(".", "_")
    for name in (PROPERTY, underscored, PROPERTY.upper(), underscored.upper()):
        if name in environ:
            return environ[name]
    return DEFAULT_SECRET


def check_token(token: str) -> int:
    """POST auth.server.url (${BASE_URL}/api/oauth/check_token) with the client's Basic
    credentials; its status (0: no answer).

    The lab has no load balancer or DNS for BASE_URL's host: the request goes to the stack's
    nginx with the Host and X-Forwarded-Proto the load balancer would send.
    """
    base = urllib.parse.urlsplit(os.environ.get("BASE_URL", ""))
    basic = base64.b64encode(f"{CLIENT_ID}:{client_secret(dict(os.environ))}".encode()).decode()
    request = urllib.request.Request(
        "http://nginx/api/oauth/check_token", data=urllib.parse.urlencode(
            {"token": token}).encode(), method="POST",
        headers={"Host": base.netloc, "X-Forwarded-Proto": base.scheme,
                 "Authorization": f"Basic {basic}",
                 "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def authenticated(handler: Handler) -> Handler:
    """`handler` behind the token check: 401 without a bearer token or with one auth does not
    know (400 from check_token), 500 when auth does not answer 200 or 400."""
    def answer(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        token = token or request.query.get("access_token", "")
        if not token:
            return Response(401, {"error": "unauthorized",
                                  "error_description": "Full authentication is required"})
        status = check_token(token)
        if status == 400:
            return Response(401, {"error": "invalid_token", "error_description": token})
        if status != 200:
            return Response(500, {"error": "Internal Server Error",
                                  "message": f"check_token answered {status or 'nothing'}"})
        return handler(request)
    return answer


def routes(db: Database) -> list[tuple[str, str, Handler]]:
    """referencedata's GET /api/facilities (FacilityController.java getFacilities)."""
    def facilities(request: Request) -> Response:
        rows = db.query("SELECT id, code, name FROM referencedata.facilities ORDER BY code")
        content = [{"id": str(i), "code": c, "name": n} for i, c, n in rows]
        return Response(200, {"content": content, "totalElements": len(content)})
    return [("GET", r"/api/facilities", authenticated(facilities))]
