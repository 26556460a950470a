"""A lab stand-in for an OpenLMIS service: owns a schema in the database, reports its health.

Settings come from the environment (settings.env), as in the Reference Distribution:
DATABASE_URL (jdbc:postgresql://host:port/db), POSTGRES_USER, POSTGRES_PASSWORD, and the JDBC
driver's TLS settings as Spring Boot passes them to the pool (sslmode, sslrootcert under
spring.datasource.hikari.dataSourceProperties). SERVICE_NAME
names the service (and its schema); LAB_RELEASE is reported; a service named in LAB_BROKEN
never becomes healthy. The `diagnostics` service aggregates the others at /api/health.
Secrets are never printed.
"""

import json
import os
import re
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2

NAME = os.environ["SERVICE_NAME"]
RELEASE = os.environ.get("LAB_RELEASE", "")
BROKEN = NAME in os.environ.get("LAB_BROKEN", "").split(",")
PEERS = [p for p in os.environ.get("LAB_PEERS", "").split(",") if p]
TLS = "spring.datasource.hikari.dataSourceProperties"


def connect():
    match = re.fullmatch(r"jdbc:postgresql://([^:/]+)(?::(\d+))?/(\w+)", os.environ["DATABASE_URL"])
    if not match:
        raise SystemExit(f"{NAME}: DATABASE_URL is not jdbc:postgresql://host[:port]/database")
    host, port, db = match.groups()
    tls = {key: os.environ[f"{TLS}.{key}"] for key in ("sslmode", "sslrootcert")
           if f"{TLS}.{key}" in os.environ}
    return psycopg2.connect(host=host, port=int(port or 5432), dbname=db, connect_timeout=5,
                            user=os.environ["POSTGRES_USER"],
                            password=os.environ["POSTGRES_PASSWORD"], **tls)


def migrate():
    """Create this service's schema and record the start, as Flyway would on start."""
    for attempt in range(30):
        try:
            with connect() as conn, conn.cursor() as cur:
                cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{NAME}"')
                cur.execute(f'CREATE TABLE IF NOT EXISTS "{NAME}".starts '
                            "(at timestamptz DEFAULT now(), release text)")
                cur.execute(f'INSERT INTO "{NAME}".starts (release) VALUES (%s)', (RELEASE,))
                cur.execute(f'CREATE TABLE IF NOT EXISTS "{NAME}".items '
                            "(id serial PRIMARY KEY, code text UNIQUE NOT NULL, name text)")
                # As referencedata's migrations do: both extensions used, neither created.
                cur.execute(f'CREATE TABLE IF NOT EXISTS "{NAME}".places '
                            "(id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), location geometry)")
            return
        except psycopg2.OperationalError as exc:
            print(f"{NAME}: database not ready ({type(exc).__name__}), attempt {attempt + 1}",
                  flush=True)
            time.sleep(2)
    raise SystemExit(f"{NAME}: database unreachable")


def health():
    """UP when this service reads its own schema (and, for diagnostics, every peer is UP)."""
    if BROKEN:
        return 503, {"status": "DOWN", "reason": "broken on purpose (lab release)"}
    with connect() as conn, conn.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{NAME}".starts')
        starts = cur.fetchone()[0]
    body = {"status": "UP", "service": NAME, "release": RELEASE, "starts": starts}
    if PEERS:
        body["services"] = {p: peer(p) for p in PEERS}
        if any(s != "UP" for s in body["services"].values()):
            return 503, {**body, "status": "DOWN"}
    return 200, body


def items(method, rest, body):
    """Application data, written and read through the stack: /items, /items/CODE, /items/sum."""
    with connect() as conn, conn.cursor() as cur:
        if method == "POST" and not rest:
            cur.execute(f'INSERT INTO "{NAME}".items (code, name) VALUES (%s, %s) '
                        "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name",
                        (body["code"], body.get("name", "")))
            return 201, {"code": body["code"]}
        if method == "DELETE" and rest:
            cur.execute(f'DELETE FROM "{NAME}".items WHERE code = %s', (rest,))
            return 200, {"deleted": cur.rowcount}
        if method == "GET" and rest == "sum":
            cur.execute("SELECT count(*), coalesce(md5(string_agg(code || '=' || "
                        f"coalesce(name, ''), ',' ORDER BY code)), '') FROM \"{NAME}\".items")
            count, digest = cur.fetchone()
            return 200, {"count": count, "md5": digest}
    return 404, {"error": "not found"}


def peer(name):
    try:
        with urllib.request.urlopen(f"http://{name}:8080/actuator/health", timeout=3) as r:
            return json.load(r)["status"]
    except Exception:
        return "DOWN"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.do_GET(json.loads(self.rfile.read(length) or b"{}"))

    def do_DELETE(self):
        self.do_GET()

    def do_GET(self, body=None):
        if self.path == "/items" or self.path.startswith("/items/"):
            rest = self.path[len("/items"):].lstrip("/")
            try:
                code, body = items(self.command, rest, body or {})
            except psycopg2.Error as exc:
                code, body = 503, {"error": type(exc).__name__}
        elif self.path in ("/actuator/health", "/api/health"):
            try:
                code, body = health()
            except psycopg2.Error as exc:
                code, body = 503, {"status": "DOWN", "reason": type(exc).__name__}
        elif self.path == "/version":
            code, body = 200, {"service": NAME, "release": RELEASE}
        else:
            code, body = 404, {"error": "not found"}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        if self.path == "/actuator/health":
            return  # the healthcheck's polling would drown every other line
        print(f"{NAME}: {self.address_string()} {fmt % args}", flush=True)


if __name__ == "__main__":
    migrate()
    print(f"{NAME}: release {RELEASE} listening on :8080", flush=True)
    if BROKEN:
        print(f"{NAME}: this release is broken on purpose: never healthy", flush=True)
    ThreadingHTTPServer(("", 8080), Handler).serve_forever()
