"""Regenerate ops/db/pg_settings/postgresNN.tsv from a real PostgreSQL server.

    # PostgreSQL 17: the lab's server (inv lab.up first)
    .venv/bin/python -m ops.db.pg_settings.regenerate --env lab
    # the PostgreSQL whose binaries are on PATH (initdb, pg_ctl), in a throwaway cluster
    .venv/bin/python -m ops.db.pg_settings.regenerate --local

The file is named after the server's major version (server_version_num // 10000).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import tempfile
from pathlib import Path

import psycopg

from ops.db.pg_settings import COLUMNS, QUERY, path


def write(conn: psycopg.Connection) -> Path:
    """Write the table of the server behind `conn`; returns the file written."""
    with conn.cursor() as cur:
        version = cur.execute("SHOW server_version_num").fetchone()
        assert version is not None  # SHOW answers one row
        major = int(version[0]) // 10000
        rows = cur.execute(QUERY).fetchall()
    file = path(major)
    with file.open("w", newline="") as handle:
        out = csv.writer(handle, delimiter="\t", lineterminator="\n")
        out.writerow(COLUMNS)
        out.writerows(rows)
    return file


def from_env(name: str) -> Path:
    from ops import config, secrets, targets

    env = config.load(name)
    target = targets.database(env)
    password = secrets.resolve(env, "database.master_password", env.database.master_password)
    with psycopg.connect(host=target.address, port=target.port, dbname=target.name,
                         user=target.user, password=password, connect_timeout=10) as conn:
        return write(conn)


def from_local() -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        data, sock = Path(tmp, "data"), Path(tmp)
        user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if user:
            os.chown(tmp, *_postgres_ids())
        subprocess.run([*user, "initdb", "-A", "trust", "-U", "postgres", "-D", str(data)],
                       check=True, capture_output=True)
        # pg_ctl's server inherits stdout: send it to a file, or a captured pipe never closes
        subprocess.run([*user, "pg_ctl", "-D", str(data), "-w", "-l", str(data / "log"), "-o",
                        f"-c listen_addresses='' -c unix_socket_directories={sock}", "start"],
                       check=True, stdout=subprocess.DEVNULL)
        try:
            with psycopg.connect(host=str(sock), user="postgres", dbname="postgres") as conn:
                return write(conn)
        finally:
                subprocess.run([*user, "pg_ctl", "-D", str(data), "-m", "fast", "stop"],
                           check=True, stdout=subprocess.DEVNULL)


def _postgres_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--env", help="read the database of this environment (e.g. lab)")
    where.add_argument("--local", action="store_true",
                       help="start a throwaway cluster with the binaries on PATH")
    args = parser.parse_args()
    print(f"wrote {from_env(args.env) if args.env else from_local()}")


if __name__ == "__main__":
    main()
