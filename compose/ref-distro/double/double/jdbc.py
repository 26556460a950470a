"""DATABASE_URL as the upstream services read it: pgjdbc's URL, and wait-for-postgres.sh's seds.

Pure. Upstream appends a suffix to DATABASE_URL (`spring.datasource.url=${DATABASE_URL}?...`),
so query parameters in DATABASE_URL reach pgjdbc as pgjdbc splits that string, quirks included.
"""

from __future__ import annotations

import re

from psycopg import conninfo

SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# spring.datasource.hikari.data-source-properties, with relaxed binding's separators removed.
_PROPERTIES = "springdatasourcehikaridatasourceproperties"


class UrlError(ValueError):
    """A URL pgjdbc would refuse, with pgjdbc's reason."""


def datasource_properties(environ: dict[str, str]) -> dict[str, str]:
    """The driver properties Spring Boot hands HikariCP (`spring.datasource.hikari.
    data-source-properties.*`, bound from the environment in any of relaxed binding's forms;
    HikariConfig passes them to Driver.connect as its Properties)."""
    found = {}
    for name, value in environ.items():
        key = re.sub(r"[-_.]", "", name.lower())
        if key.startswith(_PROPERTIES):
            found[name.rsplit(".", 1)[-1].rsplit("_", 1)[-1].lower()] = value
    return found


def pgjdbc(url: str, properties: dict[str, str] | None = None) -> dict[str, str]:
    """libpq settings for a `jdbc:postgresql://host[:port]/db[?k=v&...]` URL, read as pgjdbc
    reads it: the first `?` starts the parameters, `&` separates them, each splits at its first
    `=`, and each overrides the same one of the driver `properties`; sslmode defaults to
    prefer (`ssl=true` alone means verify-full)."""
    prefix = "jdbc:postgresql://"
    if not url.startswith(prefix):
        raise UrlError(f"not a PostgreSQL JDBC URL: {url}")
    rest, _, query = url[len(prefix):].partition("?")
    server, _, dbname = rest.partition("/")
    host, _, port = server.partition(":")
    args = dict(properties or {})
    for part in query.split("&") if query else ():
        key, _, value = part.partition("=")
        args[key] = value
    sslmode = args.get("sslmode") or ("verify-full" if args.get("ssl") == "true" else "prefer")
    if sslmode not in SSLMODES:
        raise UrlError(f"Invalid sslmode value: {sslmode}")
    found = {"host": host or "localhost", "port": port or "5432", "dbname": dbname,
             "sslmode": sslmode}
    if "sslrootcert" in args:
        found["sslrootcert"] = args["sslrootcert"]
    return found


def wait_target(url: str) -> dict[str, str]:
    """host, port and dbname as wait-for-postgres.sh cuts them out of DATABASE_URL with sed -E
    (a pattern that does not match leaves the whole URL)."""
    return {"host": re.sub(r"^.*/{2}(.+):.*$", r"\1", url),
            "port": re.sub(r"^.*:([0-9]+)/.*$", r"\1", url),
            "dbname": re.sub(r"^.*/(.+)\?*$", r"\1", url)}


def psql_conninfo(target: dict[str, str], user: str, password: str) -> str:
    """The connection psql makes of `-h -p -U -d` (a -d holding `=` is itself a connection
    string); ProgrammingError when libpq would not parse it."""
    dbname = target["dbname"]
    if "=" in dbname or dbname.startswith(("postgresql://", "postgres://")):
        return conninfo.make_conninfo(dbname, host=target["host"], port=target["port"],
                                      user=user, password=password)
    return conninfo.make_conninfo(host=target["host"], port=target["port"], dbname=dbname,
                                  user=user, password=password)
