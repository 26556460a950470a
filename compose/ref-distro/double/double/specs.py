"""What each stand-in service is: its Consul name and paths, schema, migrations and demo data.

Names, paths, schemas, history tables and datasource URLs are those of the upstream services at
the versions the release pins (README.md cites each); the tables are small stand-ins.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The admin's bcrypt hash ("password") from openlmis-auth's initial bootstrap data migration.
ADMIN_HASH = "$2a$10$4IZfidcJzbR5Krvj87ZJdOZvuQoD/kvPAJe549rUNoP3N3uH0Lq2G"
ADMIN_ID = "a337ec45-31a0-4f2b-9b2e-a105c4b669bb"

AUTH_MIGRATIONS = (
    ("initial schema",
     "CREATE TABLE auth_users (id uuid PRIMARY KEY, enabled boolean, password varchar(255), "
     "username varchar(255) NOT NULL, lockedout boolean DEFAULT false);"
     "CREATE UNIQUE INDEX username_unq_idx ON auth_users (lower(username));"
     "CREATE TABLE oauth_client_details (clientid varchar(255) PRIMARY KEY, "
     "accesstokenvalidity integer, additionalinformation varchar(255), "
     "authorities varchar(255), authorizedgranttypes varchar(255), autoapprove varchar(255), "
     "clientsecret varchar(255), refreshtokenvalidity integer, redirecturi varchar(255), "
     "resourceids varchar(255), scope varchar(255), webserverredirecturi varchar(255));"),
    ("initial bootstrap data",
     "INSERT INTO oauth_client_details (clientid, clientsecret, authorities, "
     "authorizedgranttypes, resourceids, scope) VALUES "
     "('trusted-client', 'secret', 'TRUSTED_CLIENT', 'client_credentials', '', 'read,write'),"
     "('user-client', 'changeme', 'TRUSTED_CLIENT', 'password', '', 'read,write');"
     f"INSERT INTO auth_users (id, enabled, password, username) VALUES "
     f"('{ADMIN_ID}', true, '{ADMIN_HASH}', 'admin');"),
)


@dataclass(frozen=True)
class Spec:
    """One upstream service as the stand-in plays it."""

    name: str  # registered in Consul under this name
    package: str  # its logger (logback's org.openlmis.* names)
    paths: tuple[str, ...]  # consul/config.json "path" plus a few of its RAML resources
    schema: str = ""  # empty: no database
    table: str = "schema_version"  # spring.flyway.table (Flyway's default otherwise)
    url_suffix: str = "?stringtype=unspecified"  # appended to DATABASE_URL by upstream
    port: int = 8080
    check: bool = False  # a Consul HTTP check on /actuator/health
    migrations: tuple[tuple[str, str], ...] = field(default=())
    demo: tuple[str, ...] = ()  # SQL run under the demo-data profile


def _own(path: str) -> tuple[str, ...]:
    return (path, f"{path}/docs", f"{path}/docs/<all>", f"{path}/webjars",
            f"{path}/webjars/<all>")


def _items(table: str) -> tuple[tuple[str, str], ...]:
    return ((f"create {table}", f"CREATE TABLE {table} (id uuid PRIMARY KEY, code text NOT NULL, "
             "name text);"),)


def _demo(table: str, code: str, name: str) -> tuple[str, ...]:
    return (f"INSERT INTO {table} (id, code, name) VALUES (md5('{code}')::uuid, '{code}', "
            f"'{name}');",)


def _generic(name: str, items: str, resources: tuple[str, ...], *,
             history: str = "schema_version", url_suffix: str = "?stringtype=unspecified") -> Spec:
    """A service whose schema is named after it, holding one table of `items`."""
    return Spec(name=name, package=f"org.openlmis.{name}", schema=name, table=history,
                url_suffix=url_suffix, paths=(*_own(name), *resources),
                migrations=_items(items), demo=_demo(items, "DEMO1", f"demo {items}"))


SERVICES: dict[str, Spec] = {
    "auth": Spec(
        name="auth", package="org.openlmis.auth", schema="auth",
        paths=(*_own("auth"), "api/oauth", "api/oauth/<all>", "api/users/auth",
               "api/users/auth/passwordReset"),
        migrations=AUTH_MIGRATIONS),
    "referencedata": Spec(
        name="referencedata", package="org.openlmis.referencedata", schema="referencedata",
        url_suffix="?stringtype=unspecified&reWriteBatchedInserts=true", check=True,
        paths=(*_own("referencedata"), "togglz-console", "togglz-console/<all>",
               "actuator/togglz", "api/facilities", "api/facilities/{id}", "api/programs"),
        migrations=(
            ("initial schema", "CREATE TABLE facilities (id uuid PRIMARY KEY, code text NOT NULL, "
             "name text);"),
            ("add location to facilities", "ALTER TABLE facilities ADD COLUMN location geometry;"),
            ("facility ids by default", "ALTER TABLE facilities ALTER COLUMN id "
             "SET DEFAULT uuid_generate_v4();"),
        ),
        demo=("INSERT INTO facilities (code, name) VALUES ('HC01', 'Comfort Health Clinic');",)),
    "requisition": _generic("requisition", "requisitions",
                            ("api/requisitions", "api/requisitions/{id}")),
    "fulfillment": _generic("fulfillment", "orders",
                            ("api/orders", "api/orders/{id}")),
    "cce": _generic("cce", "inventory_items", ("api/inventoryItems",)),
    "stockmanagement": _generic("stockmanagement", "stock_cards",
                                ("api/stockCards", "api/stockCards/{id}")),
    "report": _generic("report", "reports", ("api/reports",), url_suffix=""),
    "buq": _generic("buq", "bottom_up_quantifications",
                    ("api/bottomUpQuantifications",), history="flyway_schema_history"),
    "notification": _generic("notification", "notifications",
                             ("api/notifications",)),
    "hapifhir": Spec(
        name="hapifhir", package="org.openlmis.hapifhir", schema="hapifhir",
        table="flyway_schema_history",
        paths=("hapifhir", "hapifhir/<all>", "hapifhir/docs", "hapifhir/docs/<all>",
               "hapifhir/webjars", "hapifhir/webjars/<all>"),
        migrations=_items("resources"), demo=_demo("resources", "DEMO1", "demo")),
    "dhis2-integration": Spec(
        name="dhis2", package="org.openlmis.integration.dhis2", schema="dhis2",
        table="flyway_schema_history",
        paths=(*_own("dhis2"), "api/serverConfiguration"),
        migrations=_items("server_configurations"),
        demo=_demo("server_configurations", "DEMO1", "demo")),
    "diagnostics": Spec(name="diagnostics", package="org.openlmis.diagnostics",
                        paths=(*_own("diagnostics"), "api/health")),
    "reference-ui": Spec(name="reference-ui", package="org.openlmis.ui", port=80,
                         paths=("", "<all>")),
}
