"""The ref-distro double's pure parts: URLs, logback routes, the nginx template, health, roles."""

from __future__ import annotations

import datetime
import logging
import sys

import pytest

from ops.config import ROOT
from ops.lab import images
from ops.stack import compose, release

sys.path.insert(0, str(ROOT / "compose" / "ref-distro" / "double"))

from double import auth, diagnostics, jdbc, logs, nginx, resource

LOGBACK = (ROOT / "compose/ref-distro/releases/3.19.2/config/log/logback.xml").read_text()


def test_pgjdbc_reads_the_url_after_upstream_appends_its_suffix() -> None:
    plain = jdbc.pgjdbc("jdbc:postgresql://db:5432/open_lmis?stringtype=unspecified")
    assert plain == {"host": "db", "port": "5432", "dbname": "open_lmis", "sslmode": "prefer"}
    ended = jdbc.pgjdbc("jdbc:postgresql://db:5432/x?sslmode=verify-full&sslrootcert=/c/ca.pem&"
                        "?stringtype=unspecified")
    assert ended["sslmode"] == "verify-full" and ended["sslrootcert"] == "/c/ca.pem"
    with pytest.raises(jdbc.UrlError, match="Invalid sslmode value: require"):
        jdbc.pgjdbc("jdbc:postgresql://db:5432/x?sslmode=require?stringtype=unspecified")


def test_the_pools_driver_properties_verify_the_server_under_the_url() -> None:
    environ = {"spring.datasource.hikari.dataSourceProperties.sslmode": "verify-full",
               "SPRING_DATASOURCE_HIKARI_DATASOURCEPROPERTIES_SSLROOTCERT": "/etc/ca.pem",
               "spring.datasource.hikari.maxLifetime": "180000"}
    properties = jdbc.datasource_properties(environ)
    assert properties == {"sslmode": "verify-full", "sslrootcert": "/etc/ca.pem"}
    found = jdbc.pgjdbc("jdbc:postgresql://db:5432/open_lmis?stringtype=unspecified", properties)
    assert (found["sslmode"], found["sslrootcert"]) == ("verify-full", "/etc/ca.pem")
    assert jdbc.pgjdbc("jdbc:postgresql://db/x?sslmode=disable", properties)["sslmode"] \
        == "disable"  # the URL's own parameter wins, as in pgjdbc


def test_wait_for_postgres_cannot_take_query_parameters() -> None:
    target = jdbc.wait_target("jdbc:postgresql://db.internal:5432/open_lmis")
    assert target == {"host": "db.internal", "port": "5432", "dbname": "open_lmis"}
    assert "dbname=open_lmis" in jdbc.psql_conninfo(target, "postgres", "pw")
    query = jdbc.wait_target("jdbc:postgresql://db:5432/open_lmis?sslmode=require")
    assert query["dbname"] == "open_lmis?sslmode=require"
    with pytest.raises(Exception, match="invalid connection option"):
        jdbc.psql_conninfo(query, "postgres", "pw")


def test_ref_distro_logback_sends_service_lines_to_syslog_only() -> None:
    own = logs.route(LOGBACK, "org.openlmis.requisition.Application")
    assert own.level == "DEBUG"
    assert [(a.kind, a.host, a.port, a.facility) for a in own.appenders] == [
        ("syslog", "log", 514, 16)]
    spring = logs.route(LOGBACK, "org.springframework.boot.SpringApplication")
    assert spring.level == "WARN"
    assert {a.kind for a in spring.appenders} == {"console", "syslog"}  # base.xml's CONSOLE
    assert logs.config_path("-server -Dlogging.config=/config/log/logback.xml") == (
        "/config/log/logback.xml")


def test_the_next_releases_logback_sends_warnings_through_its_async_appender() -> None:
    xml = (ROOT / "compose/ref-distro/releases/3.20.0-SNAPSHOT/config/log/logback.xml"
           ).read_text()
    own = logs.route(xml, "org.openlmis.requisition.web.RequisitionController")
    assert own.level == "WARN"  # no org.openlmis loggers any more: the root's level
    assert [(a.kind, a.host, a.pattern) for a in own.appenders] == [
        ("syslog", "log", "[%15.15thread] %level %logger{36} %msg"), ("console", "", "%msg")]
    record = logging.LogRecord("org.openlmis.requisition.web.RequisitionController",
                               logging.WARNING, "", 0, "slow", None, None)
    assert logs.syslog_line(own.appenders[0], record, "h").decode().endswith(
        "WARN o.o.r.web.RequisitionController slow")


def test_a_syslog_datagram_starts_as_logbacks_and_names_the_container() -> None:
    record = logging.LogRecord("org.openlmis.requisition.Application", logging.INFO, "", 0,
                               "Started", None, None)
    record.created = datetime.datetime(2026, 3, 5, 9, 7, 3).timestamp()
    record.threadName = "main"
    own = logs.route(LOGBACK, "org.openlmis.requisition.Application").appenders[0]
    assert logs.syslog_line(own, record, "3f2a9c1d0b7e") == (
        b"<134>Mar  5 09:07:03 3f2a9c1d0b7e [           main] INFO "
        b"org.openlmis.requisition.Application Started")


def test_nginx_renders_routes_for_registered_services_only() -> None:
    found = nginx.Discovered(
        services={"consul": [], "auth": ["openlmis-service"], "gone": ["openlmis-service"]},
        instances={"auth": [("10.0.0.5", 8080)], "gone": []},
        resources=sorted([("api/oauth", "auth"), ("api/oauth/<all>", "auth"),
                          ("api/users/{id}", "auth"), ("<all>", "reference-ui")]))
    text = nginx.render(found, {"SERVICE_TAG": "openlmis-service", "REQUIRE_SSL": "true",
                                "VIRTUAL_HOST": "lmis.example.org"})
    assert "upstream auth {" in text and "server 10.0.0.5:8080;" in text
    assert "upstream gone" not in text
    order = [line.strip() for line in text.splitlines() if "location" in line]
    assert order == ["location ~ /api/oauth/?$ {", r"location ~ /api/users/[\w-]+/?$ {",
                     "location ~ /api/oauth/.+/?$ {", "location ~ / {", "location ~ /.+$ {"]
    assert text.count("return 307 https://$host$request_uri;") == 5
    assert "return 307" not in nginx.render(found, {"REQUIRE_SSL": "false"})


def test_health_is_the_worst_check() -> None:
    assert diagnostics.summary([]) == (200, [])
    checks = [{"Status": "passing", "ServiceName": "a"}, {"Status": "warning"}]
    assert diagnostics.summary(checks)[0] == 429
    code, details = diagnostics.summary([*checks, {"Status": "critical", "ServiceName": "r"}])
    assert code == 503 and details[2]["status"] == "CRITICAL"


def test_the_client_secret_is_read_as_spring_resolves_the_property() -> None:
    assert resource.client_secret({}) == "secret"  # application.properties
    assert resource.client_secret({"AUTH_SERVER_CLIENTSECRET": "s1"}) == "s1"
    assert resource.client_secret({"auth_server_clientSecret": "s2",
                                   "AUTH_SERVER_CLIENTSECRET": "s1"}) == "s2"
    assert resource.client_secret({"AUTH_SERVER_CLIENT_SECRET": "x"}) == "secret"


def test_password_reset_follows_upstream_rules() -> None:
    assert auth.password_problem("admin", "Rotated42x") is None
    assert auth.password_problem("admin", "nodigits!") == (
        "users.passwordReset.passwordMustContainNumber")
    assert auth.password_problem("admin", "short1") == "users.passwordReset.invalidPasswordLength"
    assert auth.password_problem("admin", "admin1234") == (
        "users.passwordReset.passwordContainsUserDetails")


def release_roles(name: str) -> dict[str, str]:
    source = compose.release_dir("ref-distro", name)
    files = {k: v.decode(errors="replace") for k, v in release.source_files(source).items()}
    services = compose.services(files, compose.parse_env(compose.release_env(source)))
    return images.double_roles(release.Release(name, {}, services).images)


def test_every_image_each_release_needs_gets_a_role() -> None:
    roles = release_roles("3.19.2")
    assert roles["openlmis/nginx:v7.1"] == "nginx"
    assert roles["gliderlabs/consul-server"] == "consul"
    assert roles["alpine:3.11"] == "alpine"
    assert roles["openlmis/dhis2-integration:1.1.0"] == "dhis2-integration"
    assert roles["openlmis/referencedata:15.4.0"] == "referencedata"
    assert len(roles) == 19
    upgraded = release_roles("3.20.0-SNAPSHOT")  # another Consul, another config base image
    assert upgraded["hashicorp/consul:1.15"] == "consul"
    assert upgraded["alpine:3.21"] == "alpine"
    assert upgraded["openlmis/referencedata:15.5.0-SNAPSHOT"] == "referencedata"
    assert len(upgraded) == 19
    assert "HEALTHCHECK" not in images.double_dockerfile("referencedata", "15.4.0")
    assert 'ENTRYPOINT ["python3", "-m", "double", "consul"]' in images.double_dockerfile(
        "consul", "latest")
