"""wait-for-postgres.sh: cut host, port and database out of DATABASE_URL (with upstream's seds),
try to connect as psql would every 5 s until it works, then exec the command."""

from __future__ import annotations

import os
import sys
import time

import psycopg

from double import jdbc


def main(command: list[str]) -> None:
    for key in ("DATABASE_URL", "POSTGRES_USER", "POSTGRES_PASSWORD"):
        if not os.environ.get(key):
            print(f"/wait-for-postgres.sh: line 7: {key}: {key} not set in environment",
                  file=sys.stderr, flush=True)
            sys.exit(1)
    target = jdbc.wait_target(os.environ["DATABASE_URL"])
    while True:
        try:
            info = jdbc.psql_conninfo(target, os.environ["POSTGRES_USER"],
                                      os.environ["POSTGRES_PASSWORD"])
            psycopg.connect(info, connect_timeout=10).close()
            break
        except psycopg.Error as exc:
            print(f"psql: {str(exc).strip()}", file=sys.stderr)
            print("Postgres is unavailable - sleeping", file=sys.stderr, flush=True)
            time.sleep(5)
    print("Postgres is up - executing command", file=sys.stderr, flush=True)
    os.execvp(command[0], command)
