"""What the host does by itself, by systemd timer: scheduled dumps and drills, its metrics.

Deploy installs one stdlib-only program (ops/host/backup_job.py) and its root-only
configuration, rendered here from the environment with the builders backup-db and
verify-backup use (the dump script, the restore commands, the scratch server's settings), and
a service + timer for each of `backups.schedule.dump`, `.drill` (a schedule set to null has no
timer: one found is removed) and the host's metrics every 5 minutes. Each expression is checked
with the host's own `systemd-analyze calendar` before anything changes.

The database password reaches the host only in a root-only 0600 pgpass file (never a command
line, never a unit's Environment=); the job's AWS credentials are the instance role's, from
the instance metadata service the provider names.

`wanted` and `changes` are pure; `plan` reads the host's facts with one command.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ops import provider, secrets, targets
from ops.aws.alarms import NAMESPACE
from ops.config import Environment
from ops.db import backup, drill, remote, swap
from ops.db.manifest import Manifest
from ops.errors import OpsError
from ops.host.bootstrap import HostSteps
from ops.host.remote import Remote, Step, sh
from ops.plan import Action, Change
from ops.stack.release import CURRENT

JOB = "/usr/local/lib/openlmis-ops/backup_job.py"
CONF_DIR = "/etc/openlmis-ops/backup"
CONFIG = f"{CONF_DIR}/config.json"
PGPASS = f"{CONF_DIR}/pgpass"
CA = f"{CONF_DIR}/ca.pem"
DUMP_SQL = f"{CONF_DIR}/dump.sql"
WORK = "/var/lib/openlmis-ops/backup"
UNITS = "/etc/systemd/system"
METRICS_EVERY = "*:0/5"  # every 5 minutes
# The timers' units, by job: (unit name, what it does)
JOBS = {"dump": ("openlmis-backup-dump", "scheduled dump"),
        "drill": (drill.SCHEDULED_UNIT, "scheduled restore drill"),
        "metrics": ("openlmis-host-metrics", "disk and memory metrics")}


@dataclass(frozen=True)
class Wanted:
    """The job's files (path: content, mode) and each job's calendar (None: no timer)."""

    files: dict[str, tuple[bytes, int]]
    calendars: dict[str, str | None]
    spread_s: int

    def units(self, job: str) -> dict[str, bytes]:
        """The service and timer files of a scheduled job, by path."""
        calendar = self.calendars[job]
        assert calendar is not None
        name, what = JOBS[job]
        return {f"{UNITS}/{name}.service": service_unit(job, what),
                f"{UNITS}/{name}.timer": timer_unit(what, calendar, self.spread_s)}


def service_unit(job: str, what: str) -> bytes:
    """A oneshot service running the job as root, its output in the journal."""
    return (f"# openlmis-ops: {what} (deploy installs it)\n[Unit]\nDescription=OpenLMIS {what}\n"
            "Wants=network-online.target\nAfter=network-online.target docker.service\n\n"
            f"[Service]\nType=oneshot\nExecStart=/usr/bin/python3 {JOB} {job} {CONFIG}\n"
            "Nice=10\nIOSchedulingClass=best-effort\nIOSchedulingPriority=7\n").encode()


def timer_unit(what: str, calendar: str, spread_s: int) -> bytes:
    """A timer: `calendar` (UTC), a run missed while the host was off taken at boot
    (Persistent), spread by up to `spread_s` seconds."""
    return (f"# openlmis-ops: {what} (deploy installs it)\n[Unit]\nDescription=OpenLMIS {what}"
            f"\n\n[Timer]\nOnCalendar={utc(calendar)}\nPersistent=true\nAccuracySec=1s\n"
            f"RandomizedDelaySec={spread_s}\n\n[Install]\nWantedBy=timers.target\n").encode()


def utc(calendar: str) -> str:
    """A calendar expression in UTC, as backups.schedule's are (unless one names its zone)."""
    return calendar if calendar.split()[-1] == "UTC" else f"{calendar} UTC"


def endpoints(env: Environment) -> tuple[str, str]:
    """Where the host reaches the bucket (its base URL) and CloudWatch."""
    base = provider.of(env).aws_endpoint()
    if base:
        return f"{base}/{env.bucket}", base
    region = env.aws.region
    s3 = (f"https://s3.{region}.amazonaws.com/{env.bucket}" if "." in env.bucket
          else f"https://{env.bucket}.s3.{region}.amazonaws.com")
    return s3, f"https://monitoring.{region}.amazonaws.com"


def config(env: Environment, db: targets.DatabaseTarget, s3: str, cloudwatch: str,
           metadata: str, drill_image: str) -> dict[str, object]:
    """The job's configuration: no secret in it."""
    from ops.db import restore  # it imports the deploy that imports this module

    scratch = f"{WORK}/drill/dump"
    return {
        "environment": env.name, "region": env.aws.region, "bucket": env.bucket, "s3": s3,
        "cloudwatch": cloudwatch, "metadata": metadata, "namespace": NAMESPACE,
        "database": db.name, "work": WORK, "dump_script": DUMP_SQL, "release_link": CURRENT,
        "manifest_format": Manifest.__dataclass_fields__["format"].default,
        "row_counts_sql": remote.ROW_COUNTS_SQL,
        "libpq": {"PGHOST": db.address, "PGPORT": str(db.port), "PGUSER": db.user,
                  "PGSSLMODE": "verify-full", "PGSSLROOTCERT": CA, "PGPASSFILE": PGPASS,
                  "PGCONNECT_TIMEOUT": "10"},
        "drill": {
            "image": drill_image, "memory_mb": env.backups.drill_memory_mb,
            "name": drill.NAME, "label": f"{drill.LABEL}={drill.SCHEDULED}",
            "operators": f"{drill.LABEL}={drill.OPERATOR}", "volume": drill.VOLUME,
            "user": drill.USER, "database": drill.DATABASE, "cpu_shares": drill.CPU_SHARES,
            "server_args": [w for s in drill.SETTINGS for w in ("-c", s)],
            "remove": drill.REMOVE, "wait": drill.wait_command(),
            "roles": restore.roles_command(scratch), "create_roles_sql": swap.CREATE_ROLES_SQL,
            "restore": [[what, command] for what, command, _ in restore.load_commands(
                scratch, drill.DATABASE, env.backups.dump_jobs)],
        },
    }


def wanted(env: Environment, db: targets.DatabaseTarget, password: str, metadata: str,
           spread_s: int, endpoints_: tuple[str, str], drill_image: str) -> Wanted:
    """Everything the host should have (pure)."""
    files = {
        JOB: ((Path(__file__).parent / "backup_job.py").read_bytes(), 0o644),
        CONFIG: (json.dumps(config(env, db, *endpoints_, metadata, drill_image), indent=2,
                            sort_keys=True).encode() + b"\n", 0o600),
        PGPASS: (remote.pgpass_line(db, password).encode(), 0o600),
        CA: (db.ca_bundle or b"", 0o644),
        DUMP_SQL: (backup.dump_script(db.name, f"{WORK}/dump", env.backups.dump_jobs).encode(),
                   0o600),
    }
    schedule = env.backups.schedule
    return Wanted(files, {"dump": schedule.dump, "drill": schedule.drill,
                          "metrics": METRICS_EVERY}, spread_s)


def metrics(w: Wanted) -> Wanted:
    """Of `w`, the metrics alone: the program and its configuration (no secret in it), the
    metrics timer, the dump's and the drill's removed if found. Pure."""
    return Wanted({path: w.files[path] for path in (JOB, CONFIG)},
                  {job: calendar if job == "metrics" else None
                   for job, calendar in w.calendars.items()}, w.spread_s)


def facts_command(w: Wanted) -> str:
    """Each managed file's sha256 (empty when absent), each timer's state, and what the host's
    systemd says of each calendar (`ok`, or its first line of complaint). Read-only."""
    paths = [*w.files, *(f"{UNITS}/{name}.{kind}" for name, _ in JOBS.values()
                         for kind in ("service", "timer"))]
    lines = [f"for f in {' '.join(sh(p) for p in paths)}; do "
             'echo "file=$f $([ -f "$f" ] && sha256sum < "$f" | cut -c1-64)"; done']
    for job, (name, _) in JOBS.items():
        lines.append(f"echo timer={job} $(systemctl is-enabled {name}.timer 2>/dev/null)/"
                     f"$(systemctl is-active {name}.timer 2>/dev/null)")
        if calendar := w.calendars[job]:
            check = sh("systemd-analyze", "calendar", utc(calendar))
            lines.append(f"if out=$({check} 2>&1); then echo calendar={job} ok; else "
                         f"echo calendar={job} \"$(echo \"$out\" | head -1)\"; fi")
    return "; ".join(lines)


@dataclass(frozen=True)
class Facts:
    sha256: dict[str, str]  # by path; "" when absent
    timers: dict[str, str]  # by job: enabled/active
    calendars: dict[str, str]  # by job: "ok" or systemd's complaint


def parse_facts(output: str) -> Facts:
    found: dict[str, dict[str, str]] = {"file": {}, "timer": {}, "calendar": {}}
    for line in output.splitlines():
        key, _, value = line.partition("=")
        if key in found:
            name, _, rest = value.partition(" ")
            found[key][name] = rest.strip()
    return Facts(found["file"], found["timer"], found["calendar"])


def changes(w: Wanted, facts: Facts, address: str) -> list[Change[HostSteps]]:
    """What brings the host to `w` (pure); OpsError, before any change, for a calendar the
    host's systemd refuses."""
    for job, calendar in w.calendars.items():
        said = facts.calendars.get(job, "ok")
        if calendar and said != "ok":
            raise OpsError(f"backups.schedule.{job} {calendar!r} is not a calendar the systemd "
                           f"on {address} accepts: {said}",
                           hint="fix it in the environment's file (see systemd.time(7), e.g. "
                           "\"*-*-* 02:00:00\"), then deploy again; nothing was changed")
    found: list[Change[HostSteps]] = []
    stale = [p for p, (data, _) in w.files.items() if facts.sha256.get(p) != _sha(data)]
    if stale:
        steps: list[Step] = [("run", f"install -d -m 0755 {sh(JOB.rsplit('/', 1)[0])} && "
                                     f"install -d -m 0700 {sh(CONF_DIR)} {sh(WORK)}")]
        steps += [("put", path, *w.files[path]) for path in stale]
        new = not any(facts.sha256.get(p) for p in w.files)
        found.append(Change(Action.CREATE if new else Action.UPDATE, CONF_DIR,
                            "the scheduled job, its configuration and database credentials "
                            "(root only)" if PGPASS in w.files else
                            "the scheduled job and its configuration (root only)",
                            payload=HostSteps(tuple(steps))))
    for job, calendar in w.calendars.items():
        name, what = JOBS[job]
        timer = f"{name}.timer"
        present = {p for kind in ("service", "timer")
                   if facts.sha256.get(p := f"{UNITS}/{name}.{kind}")}
        if calendar is None:
            enabled, _, active = facts.timers.get(job, "/").partition("/")
            if present or enabled == "enabled" or active == "active":
                found.append(Change(Action.DELETE, timer, f"{what}: not scheduled any more",
                                    payload=HostSteps((("run", remove_command(name)),))))
            continue
        units = w.units(job)
        if all(facts.sha256.get(p) == _sha(d) for p, d in units.items()) \
                and facts.timers.get(job) == "enabled/active":
            continue
        every = "every 5 minutes" if job == "metrics" else f"OnCalendar={utc(calendar)}"
        found.append(Change(Action.UPDATE if present else Action.CREATE, timer,
                            f"{what}, {every}", payload=HostSteps((
                                *(("put", p, d, 0o644) for p, d in units.items()),
                                ("run", f"systemctl daemon-reload && systemctl enable --now "
                                        f"{timer} && systemctl restart {timer}")))))
    return found


def remove_command(name: str) -> str:
    """Stop and remove a job's timer and service."""
    return (f"systemctl disable --now {name}.timer 2>/dev/null; "
            f"rm -f {UNITS}/{name}.timer {UNITS}/{name}.service && systemctl daemon-reload")


def plan(env: Environment, remote_: Remote, *, metrics_only: bool = False
         ) -> list[Change[HostSteps]]:
    """The host's scheduled jobs as changes, its facts read with one command. `metrics_only`
    (a swarm's nodes beyond the first, whose disks and memory the same alarms watch): the
    program, its configuration and the metrics timer, no database credentials, no dump or
    drill."""
    seam = provider.of(env)
    password = secrets.resolve(env, "database.master_password", env.database.master_password)
    w = wanted(env, targets.database(env), password, seam.metadata_url(), seam.timer_spread_s,
               endpoints(env), seam.scheduled_drill_image(env))
    if metrics_only:
        w = metrics(w)
    facts = parse_facts(remote_.run(facts_command(w), what="reading the scheduled jobs"))
    return changes(w, facts, remote_.address)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
