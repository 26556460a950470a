"""The Reference Distribution run from its UNEDITED compose files on a lab host, on the double.

The double's images (compose/ref-distro/double) carry the upstream names; the database is the
lab's RDS-like PostgreSQL (a database of this module's own). One stack serves every test: the
module fixture brings it up before the extensions exist, records how referencedata refused to
start, then creates them and waits for /api/health to pass.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from ops import config
from ops.host.connect import connect
from ops.host.remote import Remote, sh
from ops.lab import ca, images
from ops.lab.lab import Lab
from ops.stack import compose, override, release, settings
from ops.stack import images as stack_images
from ops.targets import DatabaseTarget

RELEASE = "3.19.2"
DIR = "/opt/refdistro-double"
PROJECT = "refdistro"
COMPOSE = f"cd {DIR} && docker compose -p {PROJECT}"
HTTPS = "-H 'X-Forwarded-Proto: https'"


@dataclass
class Stack:
    remote: Remote
    lab: Lab
    dbname: str
    settings: dict[str, str]
    images: list[str]
    refused: dict[str, str] = field(default_factory=dict)

    def compose(self, args: str, *, check: bool = True) -> str:
        return self.remote.run(f"{COMPOSE} {args}", check=check, what=f"compose {args}")

    def http(self, path: str, flags: str = HTTPS) -> tuple[int, dict[str, str], str]:
        """Status, headers and body of a request to nginx on the host; status 0 when nginx
        gives no answer (refused or reset while it starts)."""
        raw = self.remote.run(f"curl -s -i {flags} {sh('http://localhost' + path)}", check=False)
        if not raw.startswith("HTTP/"):
            return 0, {}, raw
        head, _, body = raw.partition("\r\n\r\n")
        lines = head.split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
        return int(lines[0].split()[1]), headers, body

    def put_settings(self, **changes: str) -> None:
        self.settings.update(changes)
        self.remote.put(f"{DIR}/settings.env", settings.render(self.settings), 0o600)

    def sql(self, statement: str) -> list[tuple]:
        with self.lab.db_connection(self.dbname) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []


def wait(what: str, probe: Callable[[], bool], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not probe():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(1)


def state(stack: Stack, service: str) -> dict:
    found = stack.remote.run(f"docker inspect --format '{{{{json .State}}}}' "
                             f"{PROJECT}-{service}-1")
    return json.loads(found)


def healthy(stack: Stack, service: str) -> bool:
    """The service's own /actuator/health answers (the new process, after a restart)."""
    return stack.remote.ok(f"{COMPOSE} exec -T nginx curl -sf http://{service}:8080"
                           "/actuator/health")


@pytest.fixture(scope="module")
def stack(lab: Lab) -> Iterator[Stack]:
    host = lab.host("double", docker_ready=True)
    dbname, password = f"double_{secrets.token_hex(4)}", secrets.token_urlsafe(18)
    with lab.db_connection() as conn:  # the stack's own role, as deploy makes it
        conn.execute(f"CREATE ROLE {dbname} LOGIN PASSWORD '{password}'")
        conn.execute(f"GRANT {dbname} TO postgres")
        conn.execute(f"CREATE DATABASE {dbname} OWNER {dbname}")
    example = config.load(path=config.ROOT / "config" / "example.yml")
    env = example.model_copy(update={"database": example.database.model_copy(
        update={"app_username": dbname})})
    source = compose.release_dir("ref-distro", RELEASE)
    files = release.source_files(source)
    dotenv = settings.dotenv(compose.release_env(source), env, override.compose_file(files))
    texts, pins = {k: v.decode() for k, v in files.items()}, compose.parse_env(dotenv)
    texts[override.NAME], found = override.merged(texts, pins, env.stack.memory,
                                                  project=PROJECT, files=files)
    names = release.Release(RELEASE, {}, found).images
    images.build_stack("ref-distro", names)
    db = DatabaseTarget(lab.running_database().address, 5432, dbname, "postgres",
                        ca_bundle=ca.certificate(lab.state).read_bytes())
    files |= {".env": dotenv.encode(), override.NAME: texts[override.NAME].encode(),
              override.CA_FILE: db.ca_bundle or b"",
              override.HEALTH_CONF: override.health_conf("localhost", True).encode()}
    template = (compose.stack_dir("ref-distro") / "settings.env.template").read_text()
    values = settings.values(env, template, db, {"database.app_password": password})
    with connect(host.address, user=host.user, key=host.key,
                 known_hosts=host.known_hosts) as conn:
        remote = Remote(conn, host.address)
        stack = Stack(remote, lab, dbname, values, names)
        stack_images.push(remote, names)
        remote.run(f"rm -rf {DIR} && mkdir -p {DIR}/config/log")
        for path, data in files.items():
            remote.put(f"{DIR}/{path}", data, 0o600)
        stack.put_settings(VIRTUAL_HOST="localhost", REQUIRE_SSL="true")
        stack.compose("up -d --scale buq=0")
        ended: dict = {}  # its state once it has exited (the restart policy then tries again)

        def gave_up() -> bool:
            found = state(stack, "referencedata")
            if found["Status"] in ("exited", "restarting"):
                ended.update(found)
            return bool(ended)

        wait("referencedata to give up", gave_up)
        hostname = remote.run(f"docker inspect --format '{{{{.Config.Hostname}}}}' "
                              f"{PROJECT}-referencedata-1").strip()
        health: list[int] = []

        def routed() -> bool:
            """nginx answers /api/health from diagnostics, not the 404 of reference-ui's
            `<all>` it gives until diagnostics' path is registered and rendered."""
            health[:] = [stack.http("/api/health")[0]]
            return health[0] not in (0, 404)

        wait("nginx to route /api/health", routed)
        stack.refused = {
            "exit": str(ended["ExitCode"]),
            "docker_logs": stack.compose("logs --no-log-prefix referencedata"),
            "syslog": remote.run(f"{COMPOSE} exec -T log grep -F ' {hostname} ' /var/log/messages"),
            "health": str(health[0]),
        }
        stack.sql('CREATE EXTENSION "uuid-ossp"; CREATE EXTENSION postgis')
        stack.compose("up -d referencedata")
        wait("/api/health to pass", lambda: stack.http("/api/health")[0] == 200)
        yield stack
        stack.compose("down -v", check=False)
    with lab.db_connection() as conn:
        conn.execute(f"DROP DATABASE {dbname} WITH (FORCE)")
        conn.execute(f"DROP ROLE {dbname}")


def test_referencedata_refuses_to_start_without_its_extensions(stack: Stack) -> None:
    refused = stack.refused
    assert refused["exit"] != "0"
    assert "Application run failed" in refused["syslog"]
    assert 'type "geometry" does not exist' in refused["syslog"]
    assert "geometry" in refused["docker_logs"]  # the JVM's uncaught exception, on stderr
    assert refused["health"] == "503"  # its Consul check is critical while it is down
    assert state(stack, "referencedata")["Status"] == "running"
    versions = stack.sql("SELECT version, success FROM referencedata.schema_version "
                         "ORDER BY installed_rank")
    assert versions == [("1", True), ("2", True), ("3", True)]


def test_health_answers_through_nginx_only_over_https(stack: Stack) -> None:
    code, _, body = stack.http("/api/health")
    assert code == 200
    assert [d["serviceName"] for d in json.loads(body)] == ["referencedata"]
    code, headers, _ = stack.http("/api/health", flags="")
    assert code == 307
    assert headers["location"] == "https://localhost/api/health"
    checks = stack.remote.run("docker image inspect --format '{{json .Config.Healthcheck}}' "
                              + " ".join(stack.images))
    assert set(checks.split()) == {"null"}  # the images add no HEALTHCHECK


def test_a_service_is_routed_only_once_registered(stack: Stack) -> None:
    assert stack.http("/buq")[0] == 404  # not registered: reference-ui's catch-all answers
    stack.compose("up -d buq")
    wait("buq to be routed", lambda: stack.http("/buq")[0] == 200)
    assert json.loads(stack.http("/buq")[2])["service"] == "buq"


def test_services_log_through_rsyslog_not_docker(stack: Stack) -> None:
    syslog = stack.remote.run(f"{COMPOSE} exec -T log grep -h org.openlmis.requisition "
                              "/var/log/messages")
    assert "Migrating schema requisition" in syslog
    assert "org.openlmis.requisition" not in stack.compose("logs requisition")


def test_without_production_a_restart_wipes_the_schema(stack: Stack) -> None:
    stack.sql("INSERT INTO requisition.requisitions (id, code) "
              "VALUES (gen_random_uuid(), 'KEEP')")
    codes = "SELECT code FROM requisition.requisitions ORDER BY code"
    stack.compose("restart requisition")
    wait("requisition again", lambda: healthy(stack, "requisition"))
    assert stack.sql(codes) == [("KEEP",)]
    stack.put_settings(spring_profiles_active="demo-data")
    try:
        stack.compose("up -d requisition")
        wait("requisition with demo data", lambda: healthy(stack, "requisition"))
        assert stack.sql(codes) == [("DEMO1",)]
    finally:
        stack.put_settings(spring_profiles_active="production")
        stack.compose("up -d requisition")


def _token(stack: Stack, client: str, params: str) -> int:
    return stack.http(f"/api/oauth/token?{params}", f"{HTTPS} -X POST -u {sh(client)}")[0]


def test_token_endpoint_takes_the_default_credentials_and_follows_changes(stack: Stack) -> None:
    wait("auth", lambda: healthy(stack, "auth"))
    admin = "grant_type=password&username=admin&password=password"
    assert _token(stack, "user-client:changeme", admin) == 200
    assert _token(stack, "trusted-client:secret", "grant_type=client_credentials") == 200
    assert _token(stack, "user-client:wrong", admin) == 401
    assert _token(stack, "trusted-client:secret", admin) == 400  # grant not allowed
    _, _, body = stack.http(f"/api/oauth/token?{admin}",
                            f"{HTTPS} -X POST -u user-client:changeme")
    token = json.loads(body)
    assert token["username"] == "admin" and token["token_type"] == "bearer"
    reset = json.dumps({"username": "admin", "newPassword": "Rotated42x"})
    code = stack.http("/api/users/auth/passwordReset",
                      f"{HTTPS} -X POST -H 'Authorization: Bearer {token['access_token']}' "
                      f"-H 'Content-Type: application/json' -d {sh(reset)}")[0]
    assert code == 200
    assert _token(stack, "user-client:changeme", admin) == 400
    assert _token(stack, "user-client:changeme",
                  "grant_type=password&username=admin&password=Rotated42x") == 200
    stack.sql("UPDATE auth.oauth_client_details SET clientsecret = 'rotated-secret' "
              "WHERE clientid = 'trusted-client'")
    assert _token(stack, "trusted-client:secret", "grant_type=client_credentials") == 401
    assert _token(stack, "trusted-client:rotated-secret", "grant_type=client_credentials") == 200


def test_the_config_volume_is_seeded_only_when_empty(stack: Stack) -> None:
    logback = f"{DIR}/config/log/logback.xml"
    stack.remote.run(f"echo '<!-- edited -->' >> {logback}")
    stack.compose("build service-configuration")
    # `up` recreates every service (they depend on log, which depends on this one); `down`
    # first, as upstream's deployment scripts do, so Consul holds no stale registration.
    stack.compose("down")
    stack.compose("up -d")
    wait("/api/health to pass again", lambda: stack.http("/api/health")[0] == 200)
    built = next(i for i in stack.compose("config --images").split()
                 if "service-configuration" in i)
    image = stack.remote.run(f"docker run --rm {built} cat /config/log/logback.xml")
    assert "edited" in image
    assert "edited" not in stack.compose("exec -T requisition cat /config/log/logback.xml")
