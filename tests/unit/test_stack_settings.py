"""Compose parsing, settings.env rendering, the profile guard: pure."""

from __future__ import annotations

import pytest
import yaml

from ops.config import Environment
from ops.errors import OpsError
from ops.stack import compose, health, override, settings
from ops.stack.compose import Service
from ops.targets import DatabaseTarget

DB = DatabaseTarget("db.example.internal", 5432, "open_lmis", "postgres")


def env(kind: str = "aws", **stack: object) -> Environment:
    return Environment.model_validate({
        "name": "t", "kind": kind, "domain": "openlmis.example.org",
        "database": {"master_password": "env:X"}, "mail": {"from_address": "a@b.org"},
        "stack": stack})


def test_interpolation_like_compose() -> None:
    values = {"A": "1", "E": ""}
    assert compose.interpolate("${A} ${B:-d} ${E:-d} ${E-d} ${B-d} ${B}", values) == "1 d d  d "


def test_services_merge_override_skip_profiles_and_read_limits() -> None:
    files = {"docker-compose.yml": "services:\n  a: {image: 'x:${V}', mem_limit: 1.3G,\n"
             "      healthcheck: {test: [CMD, 'true']}, ports: ['${P:-80}:80']}\n"
             "  b: {build: ., profiles: [extra]}\n  c: {image: y, mem_limit: 512m,\n"
             "      environment: {JAVA_OPTS: -Xmx256m}}\n",
             "docker-compose.override.yml": "services:\n  c: {environment: ['Z=1']}\n"}
    found = compose.services(files, {"V": "2"})
    assert [(s.name, s.image, s.healthcheck) for s in found] == [("a", "x:2", True),
                                                                  ("c", "y", False)]
    assert found[0].mem_limit == int(1.3 * 1024**3) and found[1].mem_limit == 512 * 1024**2
    assert (found[0].java_opts, found[1].java_opts) == (None, "-Xmx256m")  # merged per key


def test_settings_come_from_resources_config_and_secrets() -> None:
    e = env(settings={"TIME_ZONE_ID": "Africa/Blantyre"},
            secrets={"ADMIN_PASSWORD": "env:ADMIN"})
    values = settings.values(e, "TIME_ZONE_ID=UTC\nLOCALE=en\n", DB, {
        "database.app_password": "pw$1", "stack.secrets.ADMIN_PASSWORD": "adm"})
    assert values["DATABASE_URL"] == "jdbc:postgresql://db.example.internal:5432/open_lmis"
    assert values["BASE_URL"] == "https://openlmis.example.org"
    assert values["VIRTUAL_HOST"] == "openlmis.example.org"
    assert values["REQUIRE_SSL"] == "true"
    assert values["MAIL_HOST"] == "email-smtp.eu-west-1.amazonaws.com"
    assert values["TIME_ZONE_ID"] == "Africa/Blantyre" and values["LOCALE"] == "en"
    assert values["ADMIN_PASSWORD"] == "adm"
    rendered = settings.render(values).decode()
    assert "POSTGRES_PASSWORD='pw$1'\n" in rendered  # quoted: compose keeps the `$`
    with pytest.raises(OpsError, match="single quote"):
        settings.render({"X": "it's"})


def test_mail_credentials_are_the_provisioned_ses_ones_unless_configured() -> None:
    from ops import secrets

    e = env()
    refs = secrets.references(e)
    assert refs["mail.smtp_username"] == "secretsmanager:openlmis-t/smtp#username"
    assert refs["mail.smtp_password"] == "secretsmanager:openlmis-t/smtp#password"
    values = settings.values(e, "", DB, {"database.app_password": "p",
                                         "mail.smtp_username": "AKIA1",
                                         "mail.smtp_password": "smtp-pw"})
    assert (values["MAIL_USERNAME"], values["MAIL_PASSWORD"]) == ("AKIA1", "smtp-pw")
    assert values["MAIL_HOST"] == "email-smtp.eu-west-1.amazonaws.com"
    own = Environment.model_validate({**e.model_dump(), "mail": {
        "from_address": "a@b.org", "smtp_username": "relay-user", "smtp_password": "env:SMTP"}})
    assert secrets.references(own)["mail.smtp_password"] == "env:SMTP"
    assert "mail.smtp_username" not in secrets.references(own)
    assert settings.values(own, "", DB, {"database.app_password": "p"})["MAIL_USERNAME"] \
        == "relay-user"
    relay = Environment.model_validate({**e.model_dump(), "mail": {
        "from_address": "a@b.org", "smtp_host": "relay.example.org"}})
    assert "mail.smtp_password" not in secrets.references(relay)
    assert settings.values(relay, "", DB, {"database.app_password": "p"})["MAIL_HOST"] \
        == "relay.example.org"


def test_plain_http_without_tls_in_front() -> None:
    values = settings.values(env(https=False), "", DB, {"database.app_password": "p"})
    assert values["BASE_URL"] == "http://openlmis.example.org"
    assert values["REQUIRE_SSL"] == "false"


def test_profile_without_production_is_refused_unless_a_demo() -> None:
    with pytest.raises(OpsError, match="WIPES"):
        settings.check_profiles(env(spring_profiles_active="demo-data,refresh-db"))
    settings.check_profiles(env(spring_profiles_active="demo-data,refresh-db",
                                demo_may_be_wiped=True))
    settings.check_profiles(env(spring_profiles_active="production,demo-data"))


def test_health_assessment() -> None:
    services = [Service("nginx", "n", True, 0, ("8080:80",)), Service("svc", "s", True, 0, ()),
                Service("plain", "p", False, 0, ()), Service("once", "o", False, 0, ())]
    up = ("nginx\trunning\tUp 1 minute (healthy)\nsvc\trunning\tUp 1 minute (healthy)\n"
          "plain\trunning\tUp 1 minute\nonce\texited\tExited (0) 1 minute ago\nhttp\t200\n")
    assert health.assess(up, services).healthy
    down = up.replace("svc\trunning\tUp 1 minute (healthy)", "svc\trunning\tUp (unhealthy)") \
        .replace("http\t200", "http\t503")
    result = health.assess(down, services)
    assert not result.healthy
    assert result.waiting == {"svc": "unhealthy", "/api/health": "HTTP 503"}
    assert result.failed  # Docker judged it past its start period: stop waiting
    starting = up.replace("Up 1 minute (healthy)\nplain", "Up 2 seconds (health: starting)\nplain")
    assert not health.assess(starting, services).healthy
    assert not health.assess(starting, services).failed


@pytest.mark.parametrize("https", [True, False])
def test_the_gate_and_the_load_balancer_ask_the_health_service_as_a_user_arrives(
        https: bool) -> None:
    assert "http://127.0.0.1:8081/health" in health.command("openlmis")
    conf = override.health_conf("openlmis.example.org", https)
    assert "set $app http://nginx:80/api/health;" in conf
    assert "proxy_set_header Host openlmis.example.org;" in conf
    # openlmis-nginx answers 307 everywhere under REQUIRE_SSL=true without this header
    assert ("proxy_set_header X-Forwarded-Proto https;" in conf) is https


def test_the_stack_verifies_the_database_through_the_pool_and_the_toolkits_own_file() -> None:
    values = settings.values(env(), "", DB, {"database.app_password": "p"})
    # OpenLMIS appends `?stringtype=unspecified` to DATABASE_URL: it must carry no query
    assert "?" not in values["DATABASE_URL"]
    assert values[settings.TLS_MODE] == "verify-full"
    assert values[settings.TLS_ROOT_CERT] == override.CA_PATH
    assert values["POSTGRES_USER"] == "openlmis" and values["POSTGRES_PASSWORD"] == "p"
    files = {"docker-compose.yml": "services:\n  app: {image: a, env_file: settings.env}\n"
             "  nginx: {image: n, env_file: [other.env, settings.env]}\n  consul: {image: c}\n"
             "  fhir: {image: f, restart: always}\n"
             "  config: {build: ./config, volumes: ['conf:/config', './x:/x', '/y']}\n",
             "config/Dockerfile": "FROM alpine:3.11\nCOPY x /x\n"}
    found = compose.services(files, {})
    assert [(s.build_from, s.volumes) for s in found if s.name == "config"] == [
        (("alpine:3.11",), ("conf",))]
    raw = {k: v.encode() for k, v in files.items()}
    rendered = yaml.safe_load(override.render(found, {}, project="p", files=raw))
    digest = override.context_digest(raw, "config")
    # an edit under config/ is a new image and a fresh volume; an edit elsewhere is not
    assert digest != override.context_digest({**raw, "config/x": b"edited"}, "config")
    assert digest == override.context_digest({**raw, "docker-compose.yml": b"x"}, "config")
    assert rendered.pop("volumes") == {"conf": {"name": f"p_conf-{digest}"}}
    health_service = rendered["services"].pop("health")
    assert health_service["ports"] == ["8081:8081"] and health_service["image"].startswith("nginx:")
    mount = f"./{override.CA_FILE}:{override.CA_PATH}:ro"
    again = override.RESTART
    assert rendered == {"services": {  # the one-shot build and the stack's own policy left alone
        "app": {"volumes": [mount], "restart": again}, "consul": {"restart": again},
        "nginx": {"volumes": [mount], "restart": again},
        "config": {"image": f"p-config:{digest}"}}}
    assert override.compose_file({"docker-compose.yml": b""}) == \
        "docker-compose.yml:docker-compose.ops.yml"
    assert settings.dotenv("A=1\n", env(), "x.yml").endswith("COMPOSE_FILE=x.yml\n")


def test_consul_and_ftp_are_published_on_the_loopback_only() -> None:
    files = {"docker-compose.yml": "services:\n  consul:\n    image: c\n"
             "    ports: ['8300', '8500:8500', '53/udp']\n"
             "  ftp:\n    image: f\n    ports: ['${OL_FTP_PORT_21:-21}:21', '0.0.0.0:20:20']\n"
             "  nginx: {image: n, ports: ['80:80']}\n  redis: {image: r}\n"}
    raw = {k: v.encode() for k, v in files.items()}
    text, found = override.merged(files, {}, {}, project="p", files=raw)
    # later files' ports are appended to earlier ones' unless the list replaces them
    assert text.count("ports: !override") == 2
    assert {s.name: s.ports for s in found} == {
        "consul": ("127.0.0.1::8300", "127.0.0.1:8500:8500", "127.0.0.1::53/udp"),
        "ftp": ("127.0.0.1:21:21", "127.0.0.1:20:20"), "nginx": ("80:80",), "redis": (),
        "health": ("8081:8081",)}
    reset = {"docker-compose.yml": files["docker-compose.yml"],
             "docker-compose.override.yml": "services:\n  nginx: {ports: !reset []}\n"}
    assert [s.ports for s in compose.services(reset, {}) if s.name == "nginx"] == [()]


def test_a_host_that_cannot_give_the_open_files_asked_gets_its_ceiling() -> None:
    files = {"docker-compose.yml": "services:\n  nginx:\n    image: n\n    ulimits:\n"
             "      nofile: {soft: 20000, hard: 40000}\n  redis: {image: r}\n"}
    found = compose.services(files, {})
    assert [s.nofile for s in found] == [(20000, 40000), (0, 0)]
    raw = {k: v.encode() for k, v in files.items()}
    rendered = yaml.safe_load(override.render(found, {}, project="p", files=raw,
                                              nofile_ceiling=10000))["services"]
    assert rendered["nginx"]["ulimits"] == {"nofile": {"soft": 10000, "hard": 10000}}
    assert "ulimits" not in rendered["redis"]
    unlimited = yaml.safe_load(override.render(found, {}, project="p", files=raw))["services"]
    assert "ulimits" not in unlimited["nginx"]  # AWS: as upstream asks
