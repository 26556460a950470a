"""One stand-in for every OpenLMIS service image: run.sh's registration, then the "service".

The service does what upstream's Spring Boot start does that a deployment can see:
- logs through logback's configuration (`-Dlogging.config` in JAVA_OPTS), its own logger under
  org.openlmis.<service>, Spring's failures under org.springframework.boot;
- connects to DATABASE_URL as pgjdbc would after upstream appends its URL suffix;
- Flyway: without the `production` profile, clean (the schema is dropped) then migrate; the
  history table records each migration; migrations run as real SQL, so a missing extension
  (postgis's geometry, uuid-ossp's uuid_generate_v4) fails the start, and nothing creates one;
- the `demo-data` profile loads demo rows;
- answers /actuator/health, its version path, and what its module (auth, diagnostics,
  resource for referencedata) adds.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import psycopg
from psycopg import sql

from double import jdbc, logs, registration
from double.specs import SERVICES, Spec
from double.web import Handler, Request, Response, serve

FRAMEWORK = "org.springframework.boot.SpringApplication"


class MigrationError(Exception):
    """A migration failed (Flyway's FlywayMigrateException)."""


class Database:
    """The service's connection settings, from DATABASE_URL, POSTGRES_USER and _PASSWORD."""

    def __init__(self, spec: Spec) -> None:
        self.schema = spec.schema
        self.settings = jdbc.pgjdbc(os.environ["DATABASE_URL"] + spec.url_suffix,
                                    jdbc.datasource_properties(dict(os.environ)))
        self.settings |= {"user": os.environ.get("POSTGRES_USER", ""),
                          "password": os.environ.get("POSTGRES_PASSWORD", ""),
                          "options": f"-c search_path={spec.schema},public"}

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(**self.settings, connect_timeout=10, autocommit=True)

    def query(self, statement: str, *args: object) -> list[tuple[Any, ...]]:
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(statement, args)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []


def profiles() -> list[str]:
    """Spring's active profiles (the environment variable, as relaxed binding reads it)."""
    raw = os.environ.get("spring_profiles_active") or os.environ.get(  # noqa: SIM112
        "SPRING_PROFILES_ACTIVE")
    return [p.strip() for p in (raw or "").split(",") if p.strip()]


def flyway(spec: Spec, db: Database, log: logging.Logger) -> None:
    """Clean unless `production`, then migrate what the history table lacks, each migration in
    its own transaction; then the demo data under `demo-data`."""
    active = profiles()
    schema, table = sql.Identifier(spec.schema), sql.Identifier(spec.schema, spec.table)
    with db.connect() as conn:
        if "production" not in active:
            log.info("Using clean-migrate flyway strategy -- production profile not active")
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
        conn.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (installed_rank int PRIMARY KEY, version varchar(50), "
            "description varchar(200) NOT NULL, type varchar(20) NOT NULL, script varchar(1000) "
            "NOT NULL, checksum int, installed_by varchar(100) NOT NULL, installed_on timestamp "
            "NOT NULL DEFAULT now(), execution_time int NOT NULL, success boolean NOT NULL)"
        ).format(table))
        done = {r[0] for r in conn.execute(sql.SQL("SELECT version FROM {} WHERE success")
                                           .format(table))}
        for number, (description, statements) in enumerate(spec.migrations, start=1):
            if str(number) in done:
                continue
            script = f"{number}__{description.replace(' ', '_')}.sql"
            started = time.monotonic()
            try:
                with conn.transaction():
                    conn.execute(statements.encode())
                    conn.execute(sql.SQL(
                        "INSERT INTO {} (installed_rank, version, description, type, script, "
                        "installed_by, execution_time, success) VALUES (%s, %s, %s, 'SQL', %s, "
                        "current_user, %s, true)").format(table),
                        (number, str(number), description, script,
                         int((time.monotonic() - started) * 1000)))
            except psycopg.Error as exc:
                state = exc.diag.sqlstate or ""
                raise MigrationError(f"Migration {script} failed | SQL State: {state} | "
                                     f"Message: {str(exc).strip()}") from exc
            log.debug("Migrating schema %s to version %s - %s", spec.schema, number, description)
        if "demo-data" in active:
            for statement in spec.demo:
                conn.execute(statement.encode())
            log.info("Loaded demo data into schema %s", spec.schema)


def version(spec: Spec) -> Handler:
    def answer(request: Request) -> Response:
        return Response(200, {"service": spec.name, "build": "double",
                              "version": os.environ.get("DOUBLE_VERSION", "")})
    return answer


def health(db: Database | None) -> Handler:
    """Spring Boot's /actuator/health: UP, or DOWN (503) when the database does not answer."""
    def answer(request: Request) -> Response:
        if db is not None:
            try:
                db.query("SELECT 1")
            except psycopg.Error as exc:
                return Response(503, {"status": "DOWN", "details": {"db": str(exc)}})
        return Response(200, {"status": "UP"})
    return answer


def routes(spec: Spec, db: Database | None) -> list[tuple[str, str, Handler]]:
    """The service's routes: actuator and version, then its module's own."""
    found: list[tuple[str, str, Handler]] = [
        ("GET", r"/actuator/health", health(db)), ("GET", rf"/{spec.name}", version(spec))]
    if spec.name == "auth":
        from double import auth
        assert db is not None
        found += auth.routes(db)
    elif spec.name == "referencedata":
        from double import resource
        assert db is not None
        found += resource.routes(db)
    elif spec.name == "diagnostics":
        from double import diagnostics
        found += diagnostics.routes()
    elif spec.name == "reference-ui":
        found += [("GET", r"/(index\.html)?", lambda _: Response(
            200, b"<!doctype html><title>OpenLMIS</title>", {"Content-Type": "text/html"}))]
    return found


def main(role: str) -> None:
    """run.sh: register with Consul, then start the service (exit 1 when its start fails)."""
    spec = SERVICES[role]
    registration.register(spec)
    path = logs.config_path(os.environ.get("JAVA_OPTS", ""))
    try:  # Spring Boot's LoggingApplicationListener: a file it cannot load ends the start
        logs.setup(Path(path).read_text() if path else logs.EMBEDDED)
    except (OSError, ElementTree.ParseError) as exc:
        print(f"Logging system failed to initialize using configuration from '{path}': {exc}",
              file=sys.stderr, flush=True)
        sys.exit(1)
    print(f"  OpenLMIS {spec.name} (stand-in) starting, profiles {profiles()}", flush=True)
    log = logging.getLogger(f"{spec.package}.Application")
    log.info("Starting Application with profiles %s", ",".join(profiles()))
    db = None
    try:
        if spec.schema:
            db = Database(spec)
            flyway(spec, db, log)
    except (psycopg.Error, jdbc.UrlError, MigrationError) as exc:
        logging.getLogger(FRAMEWORK).error("Application run failed: %s", exc)
        print(f"Exception in thread \"main\" org.springframework.beans.factory."
              f"BeanCreationException: flywayInitializer: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    log.info("Started Application on port %s", spec.port)
    serve(spec.port, routes(spec, db))

