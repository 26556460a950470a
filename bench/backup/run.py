"""Benchmark (not a test): this toolkit's dump/restore against pg_dump | psql and the floor.

Usage (the lab must be up; a lab of its own is best, the database is overwritten):
    OPS_LAB_NAME=benchlab OPS_LAB_DIR=/tmp/benchlab .venv/bin/inv lab.up
    OPS_LAB_NAME=benchlab OPS_LAB_DIR=/tmp/benchlab .venv/bin/python bench/backup/run.py [--gb 1]
        [--rounds 3] [--reuse]

It generates an OpenLMIS-shaped database (uuid keys, foreign keys, text, bytea) of about
--gb gigabytes in the lab's PostgreSQL, then runs, from one lab host, side by side, in
--rounds rounds (the machine is noisy: medians are compared):
  (a) the toolkit: backup (pg_dump -Fd -j, zstd, each file PUT to S3 by the host as soon as
      pg_dump closes it) and restore (host GETs with checksums, a new database beside the
      live one, pg_restore -j, row counts, the swap; the kept copy is dropped after each round);
  (b) the documented way: pg_dump -c > dump.sql, then psql < dump.sql (as the master user:
      on RDS, as in the lab, pg_dumpall needs a superuser);
  (c) the floor: COPY … TO STDOUT of every table into /dev/null.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ops import config, provider
from ops.db import dumps, remote
from ops.db.backup import take_dump
from ops.db.manifest import human
from ops.db.restore import restore_dump
from ops.lab.lab import Lab
from ops.lab.provider import LabProvider

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS "uuid-ossp"; -- as deploy does: a new database has none
DROP SCHEMA IF EXISTS referencedata, requisition, stockmanagement CASCADE;
CREATE SCHEMA referencedata; CREATE SCHEMA requisition; CREATE SCHEMA stockmanagement;
CREATE TABLE referencedata.facilities (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  code text UNIQUE NOT NULL, name text NOT NULL, description text, logo bytea);
CREATE TABLE referencedata.orderables (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  code text UNIQUE NOT NULL, fullproductname text NOT NULL, netcontent bigint NOT NULL);
CREATE TABLE requisition.requisitions (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  facilityid uuid NOT NULL REFERENCES referencedata.facilities, status text NOT NULL,
  createddate timestamptz NOT NULL, modifieddate timestamptz, emergency boolean NOT NULL);
CREATE TABLE requisition.requisition_line_items (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  requisitionid uuid NOT NULL REFERENCES requisition.requisitions,
  orderableid uuid NOT NULL REFERENCES referencedata.orderables,
  beginningbalance int, totalconsumedquantity int, requestedquantity int, remarks text);
CREATE TABLE stockmanagement.stock_card_line_items (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  orderableid uuid NOT NULL REFERENCES referencedata.orderables, quantity int NOT NULL,
  occurreddate date NOT NULL, reasonfreetext text, signature text, extradata jsonb);
INSERT INTO referencedata.facilities (code, name, description, logo)
  SELECT 'F' || g, 'Centre de santé n°' || g, repeat('Établissement ', 5),
         decode(md5(g::text), 'hex') FROM generate_series(1, 5000) g;
INSERT INTO referencedata.orderables (code, fullproductname, netcontent)
  SELECT 'P' || g, 'Paracétamol 500 mg — lot ' || g, g % 100 FROM generate_series(1, 10000) g;
"""

BATCH = """
WITH f AS (SELECT array_agg(id) a FROM referencedata.facilities),
     r AS (INSERT INTO requisition.requisitions (facilityid, status, createddate, modifieddate,
                                                 emergency)
           SELECT (SELECT a FROM f)[1 + g % 5000],
                  (ARRAY['INITIATED', 'APPROVED', 'RELEASED'])[1 + g % 3],
                  now() - g * interval '1 minute', now(), g % 10 = 0
           FROM generate_series(1, 20000) g RETURNING id)
INSERT INTO requisition.requisition_line_items (requisitionid, orderableid, beginningbalance,
    totalconsumedquantity, requestedquantity, remarks)
  SELECT r.id, o.a[1 + (abs(hashtext(r.id::text)) + k) % 10000], k * 3, k * 2, k,
         CASE WHEN k % 4 = 0 THEN 'demande urgente' END
  FROM r, (SELECT array_agg(id) a FROM referencedata.orderables) o, generate_series(1, 25) k;
INSERT INTO stockmanagement.stock_card_line_items (orderableid, quantity, occurreddate,
    reasonfreetext, signature, extradata)
  SELECT o.a[1 + g % 10000], g % 1000, current_date - g % 365, 'Réception ' || g % 97,
         md5(g::text), jsonb_build_object('batch', g % 500, 'vvm', 'STAGE_' || g % 4)
  FROM (SELECT array_agg(id) a FROM referencedata.orderables) o, generate_series(1, 200000) g;
"""

FLOOR, DUMP, RESTORE, PSQL = ("floor COPY TO STDOUT", "toolkit dump", "toolkit restore",
                              "psql < dump.sql")
TABLES = ["referencedata.facilities", "referencedata.orderables", "requisition.requisitions",
          "requisition.requisition_line_items", "stockmanagement.stock_card_line_items"]


def generate(lab: Lab, target: int) -> None:
    """Fill open_lmis up to about `target` bytes."""
    lab.up()
    with lab.db_connection() as conn:
        conn.execute(SCHEMA)
        size = 0
        while size < target:
            conn.execute(BATCH)
            size = conn.execute("SELECT pg_database_size('open_lmis')").fetchone()[0]
            print(f"  generated {human(size)}", flush=True)
        conn.execute("VACUUM ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0, help="database size to generate")
    parser.add_argument("--jobs", type=int, default=2, help="pg_dump/pg_restore jobs")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians are reported)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the database a previous run generated")
    args = parser.parse_args()
    provider.register("lab", LabProvider)
    lab = Lab.connect()
    host = lab.host("bench")
    path = Path(tempfile.mkdtemp()) / "bench.yml"
    path.write_text(f"""kind: lab
domain: openlmis.lab.internal
aws: {{region: us-east-1}}
host: {{address: "{host.address}", ssh_user: root, ssh_private_key: "{host.key}",
        known_hosts: "{host.known_hosts}"}}
database: {{master_password: "lab:db_master_password"}}
mail: {{from_address: noreply@openlmis.lab.internal}}
backups: {{dump_jobs: {args.jobs}, keep_last: 100, create_bucket: true}}
""")
    env = config.load(path=path)
    if not args.reuse:
        print(f"generating ~{args.gb} GB …", flush=True)
        generate(lab, int(args.gb * 2**30))
    results: dict[str, list[float]] = {}
    with remote.session(env) as h:
        db_size = int(h.sql("SELECT pg_database_size(current_database())"))

        def timed(name: str, fn: Callable[..., object], *args: object, **kwargs: object) -> Any:
            """Wall time of one phase, each started on a settled database: vacuumed (a restore
            leaves autovacuum and hint-bit writes to do) and checkpointed."""
            h.sql("VACUUM ANALYZE")
            with lab.db_connection("postgres", admin=True) as conn:  # not the master's
                conn.execute("CHECKPOINT")
            start = time.monotonic()
            result = fn(*args, **kwargs)
            results.setdefault(name, []).append(time.monotonic() - start)
            print(f"  {name:24} {results[name][-1]:7.1f} s", flush=True)
            return result

        copy = " ".join(f"psql -X -q -d open_lmis -c {shlex.quote(f'COPY {t} TO STDOUT')} "
                        "> /dev/null &&" for t in TABLES) + " true"
        plain = f"{h.work}/dump.sql"
        for round_ in range(1, args.rounds + 1):
            print(f"round {round_} of {args.rounds}", flush=True)
            timed(FLOOR, h.run, copy, what="COPY floor")
            manifest = None

            def dump() -> None:
                nonlocal manifest
                manifest = take_dump(env, h, "benchmark")

            timed(DUMP, dump)
            assert manifest is not None
            kept = timed(RESTORE, restore_dump, env, h, manifest.id)
            h.sql(f"DROP DATABASE {kept}", database="postgres", what="dropping the kept copy")
            dumps.delete(env, manifest.id)
            timed("pg_dump -c", h.run, f"pg_dump -c --if-exists -d open_lmis > {plain}",
                  what="pg_dump")
            plain_size = int(h.run(f"stat -c %s {plain}", what="sizing")[1])
            timed(PSQL, h.run, f"psql -X -q -d open_lmis < {plain} > /dev/null 2>&1 || true",
                  what="psql")
            h.run(f"rm -f {plain}", what="cleanup")
    archive = manifest.archive_size
    median = {name: statistics.median(times) for name, times in results.items()}
    print(f"\ndatabase {human(db_size)}; jobs {args.jobs}; {sum(manifest.tables.values())} rows; "
          f"median of {args.rounds} rounds")
    for name, seconds in median.items():
        print(f"  {name:24} {seconds:7.1f} s   ({', '.join(f'{t:.1f}' for t in results[name])})")
    print(f"  toolkit archive          {human(archive)}   plain dump.sql {human(plain_size)}")
    print(f"ratios: restore (b)/(a) {median[PSQL] / median[RESTORE]:.2f}x (target >= 2); "
          f"dump (a)/(c) {median[DUMP] / median[FLOOR]:.2f}x (target <= 1.5); "
          f"archive (a)/(b) {archive / plain_size:.0%} (target < 35%)")


if __name__ == "__main__":
    main()
