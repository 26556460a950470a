"""The host's scheduled backup job: a scheduled dump, a restore drill, the host's metrics.

Shipped to the host by deploy (ops.host.schedule) and run there by systemd timers as root,
with no operator's machine involved. Python's standard library only: it runs on the host's own
python3. Everything about the environment comes from one root-only file deploy renders
(CONFIG): the bucket and endpoints, libpq's settings, the dump script (ops.db.backup's
dump_script), the drill's restore commands (ops.db.restore's) and docker arguments.

Credentials: the instance role's, from the instance metadata service (IMDSv2: a session token
first, then the role's temporary credentials), requests signed with Signature Version 4. The
database password is only in the root-only pgpass file libpq reads. Every object is written
with `If-None-Match: *`: the job never overwrites anything.

Each run writes a run record `runs/<kind>/<started>.json` (ok, or a one-line error) and its
metrics to CloudWatch: BackupSucceeded for a dump that landed complete, DrillFailed 1 or 0 for
a drill, DiskUsedPercent and MemoryAvailablePercent for `metrics`.

    python3 backup_job.py dump|drill|metrics [CONFIG]
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

CONFIG = "/etc/openlmis-ops/backup/config.json"
TOKEN_TTL = 21600  # seconds: IMDSv2's longest
MAX_PUT = 5 << 30  # one PUT stops at 5 GiB
TIMEOUT = 60
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class JobError(Exception):
    """An expected failure: its message becomes the run record's one-line error."""


class Exists(JobError):
    """The object is there already (If-None-Match: * refused the write)."""


# --- time, records ----------------------------------------------------------------------------

def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def stamp(at: datetime) -> str:
    """20261128T114500Z: run records' and dump ids' time."""
    return at.strftime("%Y%m%dT%H%M%SZ")


def one_line(text: str, limit: int = 300) -> str:
    """An error as one line of at most `limit` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def run_record(kind: str, started: datetime, finished: datetime, backup_id: str | None,
               error: str | None) -> bytes:
    """The run record of the contract (kind, started, finished, ok, backup_id, error)."""
    return json.dumps({"kind": kind, "started": started.isoformat(),
                       "finished": finished.isoformat(), "ok": error is None,
                       "backup_id": backup_id, "error": error},
                      indent=2, sort_keys=True).encode()


# --- Signature Version 4 ----------------------------------------------------------------------

@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def quote_path(path: str) -> str:
    """A URI path encoded as SigV4 (and S3) wants it: every byte but unreserved ones and '/'."""
    return urllib.parse.quote(path, safe="/-_.~")


def signed_headers(method: str, url: str, headers: dict[str, str], payload_sha256: str,
                   credentials: Credentials, region: str, service: str,
                   at: datetime) -> dict[str, str]:
    """`headers` plus what Signature Version 4 adds: x-amz-date, x-amz-content-sha256, the
    session token, Authorization (every header given is signed)."""
    parts = urllib.parse.urlsplit(url)
    amz_date = at.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    all_headers = {**headers, "host": parts.netloc, "x-amz-date": amz_date,
                   "x-amz-content-sha256": payload_sha256}
    if credentials.token:
        all_headers["x-amz-security-token"] = credentials.token
    lower = {k.lower(): " ".join(v.split()) for k, v in all_headers.items()}
    names = sorted(lower)
    query = sorted(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    canonical = "\n".join([
        method, parts.path or "/",
        "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
                 for k, v in query),
        "".join(f"{n}:{lower[n]}\n" for n in names), ";".join(names), payload_sha256])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{credentials.secret_key}".encode(), day), region),
                      service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {**{k: v for k, v in all_headers.items() if k != "host"},
            "Authorization": f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
                             f"SignedHeaders={';'.join(names)}, Signature={signature}"}


# --- HTTP: the metadata service, S3, CloudWatch -------------------------------------------------

def _request(method: str, url: str, headers: dict[str, str],
             body: bytes | BinaryIO | None = None) -> tuple[int, bytes]:
    """One HTTP request; its status and body (error statuses too). JobError when no answer."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        where = urllib.parse.urlsplit(url).netloc
        raise JobError(f"{where} did not answer: {getattr(exc, 'reason', exc)}") from None


def role_credentials(metadata: str) -> Credentials:
    """The instance role's temporary credentials from IMDSv2: a session token (PUT), the role's
    name, then its credentials, each asked with the token."""
    status, token = _request("PUT", f"{metadata}/latest/api/token",
                             {"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL)})
    if status != 200:
        raise JobError(f"the instance metadata service refused a session token ({status})")
    asked = {"X-aws-ec2-metadata-token": token.decode()}
    base = f"{metadata}/latest/meta-data/iam/security-credentials/"
    status, roles = _request("GET", base, asked)
    role = roles.decode().split("\n")[0].strip()
    if status != 200 or not role:
        raise JobError(f"the instance has no role ({status}): run inv provision")
    status, body = _request("GET", base + urllib.parse.quote(role), asked)
    try:
        found = json.loads(body)
        return Credentials(found["AccessKeyId"], found["SecretAccessKey"], found.get("Token"))
    except (ValueError, KeyError, TypeError):
        raise JobError(f"the instance metadata service gave no credentials for role {role} "
                       f"({status})") from None


@dataclass
class Aws:
    """Signed requests to the bucket and CloudWatch, as the instance role."""

    config: dict[str, Any]
    credentials: Credentials

    def _signed(self, method: str, url: str, service: str, payload_sha256: str,
                headers: dict[str, str] | None = None) -> dict[str, str]:
        return signed_headers(method, url, headers or {}, payload_sha256, self.credentials,
                              self.config["region"], service, now())

    def object_url(self, key: str) -> str:
        return f"{self.config['s3']}/{quote_path(key)}"

    def put(self, key: str, body: bytes | BinaryIO, sha256: str, size: int,
            content_type: str = "application/octet-stream") -> None:
        """Write a new object; JobError if it exists already or is refused. (A type of its own:
        urllib would call it a form.)"""
        url = self.object_url(key)
        headers = self._signed("PUT", url, "s3", sha256, {"If-None-Match": "*",
                                                          "Content-Type": content_type})
        status, answer = _request("PUT", url, {**headers, "Content-Length": str(size)}, body)
        if status == 412:
            raise Exists(f"s3://{self.config['bucket']}/{key} exists already: not overwritten")
        if status != 200:
            raise JobError(f"writing s3://{self.config['bucket']}/{key}: {status} "
                           f"{_s3_error(answer)}")

    def put_file(self, key: str, path: Path, sha256: str) -> None:
        size = path.stat().st_size
        if size > MAX_PUT:
            raise JobError(f"{path.name} is {size} bytes, above one PUT's 5 GiB")
        with path.open("rb") as handle:
            self.put(key, handle, sha256, size)

    def put_json(self, key: str, data: bytes) -> None:
        self.put(key, data, hashlib.sha256(data).hexdigest(), len(data), "application/json")

    def get(self, key: str) -> bytes:
        url = self.object_url(key)
        status, body = _request("GET", url, self._signed("GET", url, "s3", EMPTY_SHA256))
        if status != 200:
            raise JobError(f"reading s3://{self.config['bucket']}/{key}: {status} "
                           f"{_s3_error(body)}")
        return body

    def download(self, key: str, path: Path) -> tuple[str, int]:
        """GET an object into `path`; its sha256 and size as read."""
        url = self.object_url(key)
        request = urllib.request.Request(url, headers=self._signed("GET", url, "s3",
                                                                   EMPTY_SHA256))
        digest, size = hashlib.sha256(), 0
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response, \
                    path.open("wb") as out:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except urllib.error.HTTPError as exc:
            raise JobError(f"reading s3://{self.config['bucket']}/{key}: {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise JobError(f"reading s3://{self.config['bucket']}/{key}: "
                           f"{getattr(exc, 'reason', exc)}") from None
        return digest.hexdigest(), size

    def keys(self, prefix: str) -> list[str]:
        """Every key under `prefix` (ListObjectsV2, page by page)."""
        found: list[str] = []
        token = None
        while True:
            query = {"list-type": "2", "prefix": prefix,
                     **({"continuation-token": token} if token else {})}
            url = f"{self.config['s3']}/?{urllib.parse.urlencode(sorted(query.items()))}"
            status, body = _request("GET", url, self._signed("GET", url, "s3", EMPTY_SHA256))
            if status != 200:
                raise JobError(f"listing s3://{self.config['bucket']}/{prefix}: {status} "
                               f"{_s3_error(body)}")
            root = ElementTree.fromstring(body)
            found += [e.text or "" for e in root.iter(f"{S3_NS}Key")]
            token = root.findtext(f"{S3_NS}NextContinuationToken")
            if root.findtext(f"{S3_NS}IsTruncated") != "true" or not token:
                return found

    def metrics(self, data: list[tuple[str, float, str, dict[str, str]]]) -> None:
        """PutMetricData in the toolkit's namespace: (name, value, unit, extra dimensions),
        each with the Environment dimension."""
        form = {"Action": "PutMetricData", "Version": "2010-08-01",
                "Namespace": self.config["namespace"]}
        for i, (name, value, unit, extra) in enumerate(data, 1):
            member = f"MetricData.member.{i}"
            form |= {f"{member}.MetricName": name, f"{member}.Value": repr(float(value)),
                     f"{member}.Unit": unit}
            dimensions = {"Environment": self.config["environment"], **extra}
            for j, (key, val) in enumerate(dimensions.items(), 1):
                form |= {f"{member}.Dimensions.member.{j}.Name": key,
                         f"{member}.Dimensions.member.{j}.Value": val}
        body = urllib.parse.urlencode(form).encode()
        url = self.config["cloudwatch"] + "/"
        content = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        headers = self._signed("POST", url, "monitoring", hashlib.sha256(body).hexdigest(),
                               content)
        status, answer = _request("POST", url, headers, body)
        if status != 200:
            raise JobError(f"CloudWatch refused the metrics: {status} {_s3_error(answer)}")


def _s3_error(body: bytes) -> str:
    """An AWS error response's code and message, one line."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return ""
    code = next((e.text for e in root.iter() if e.tag.endswith("Code")), "")
    message = next((e.text for e in root.iter() if e.tag.endswith("Message")), "")
    return one_line(f"{code}: {message}" if message else code or "")


# --- local commands ---------------------------------------------------------------------------

def libpq(settings: dict[str, str]) -> dict[str, str]:
    """This process's environment with libpq's settings and the newest PostgreSQL client."""
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                  key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    path = os.pathsep.join([*(str(b) for b in bins[-1:]), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, **settings}


def shell(command: str, env: dict[str, str], what: str, stdin: str | None = None) -> str:
    """A bash command (pipefail); its stdout. JobError with the end of its output on failure."""
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], env=env, input=stdin,
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise JobError(f"{what} failed: {_said(done)}")
    return done.stdout


def run(argv: list[str], env: dict[str, str], what: str, stdin: str | None = None) -> str:
    """A command (no shell); its stdout. JobError with its last line of errors on failure."""
    try:
        done = subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True,
                              check=False)
    except FileNotFoundError:
        raise JobError(f"{what} failed: {argv[0]} is not installed (inv deploy installs "
                       "it)") from None
    if done.returncode:
        raise JobError(f"{what} failed: {_said(done)}")
    return done.stdout


def _said(done: subprocess.CompletedProcess[str]) -> str:
    """What a failed command said, its last lines joined (one_line shortens it later)."""
    lines = (done.stderr.strip() or done.stdout.strip()).splitlines()
    return "; ".join(lines[-3:]) if lines else f"exit {done.returncode}"


def parse_counts(text: str) -> dict[str, int]:
    """'schema.table|count' lines as a dict (as ops.db.remote.parse_counts)."""
    counts = {}
    for line in text.splitlines():
        if line.strip():
            name, _, count = line.rpartition("|")
            counts[name] = int(count)
    return counts


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def workdir(path: Path) -> Iterator[Path]:
    """A private, empty directory, removed afterwards (a killed run's leftover first)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700, parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- the jobs ---------------------------------------------------------------------------------

def dump(config: dict[str, Any], aws: Aws, started: datetime) -> str:
    """A dump as backup-db takes one: data files, then the manifest; the dump's id."""
    backup_id = f"dump-{stamp(started)}"
    env = libpq(config["libpq"])
    database = config["database"]
    directory = Path(config["work"]) / "dump"
    with workdir(directory):
        size = int(run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", database, "-c",
                        "SELECT pg_database_size(current_database())"], env,
                       "sizing the database").strip())
        free = shutil.disk_usage(directory).free
        if free < size:
            raise JobError(f"{free >> 20} MiB free in {directory}, the database is "
                           f"{size >> 20} MiB")
        run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", database, "-f",
             config["dump_script"]], env, "the dump (psql)")
        if not (directory / "dump.ok").exists():
            error = (directory / "dump.err").read_text(errors="replace").strip().splitlines()
            raise JobError(f"pg_dump failed: {error[-1] if error else 'no output'}")
        version, _, db_size = (directory / "info").read_text().strip().partition("|")
        tables = parse_counts((directory / "counts").read_text())
        files = {}
        for path in sorted((directory / "dump").iterdir(), key=lambda p: p.name != "toc.dat"):
            digest = sha256_of(path)
            aws.put_file(f"dumps/{backup_id}/data/{path.name}", path, digest)
            files[path.name] = {"sha256": digest, "size": path.stat().st_size}
    link = Path(config["release_link"])
    release = os.readlink(link).rstrip("/").rsplit("/", 1)[-1] if link.is_symlink() else "none"
    manifest = {"id": backup_id, "time": now().isoformat(), "environment": config["environment"],
                "database": database, "server_version": version.strip(),
                "database_size": int(db_size), "release": release or "none",
                "reason": "scheduled", "tables": tables, "files": files,
                "format": config["manifest_format"]}
    aws.put_json(f"dumps/{backup_id}/manifest.json",
                 json.dumps(manifest, indent=2, sort_keys=True).encode())
    return backup_id


def newest_dump(aws: Aws) -> str:
    """The newest complete dump's id (its manifest written)."""
    ids = sorted(key.split("/")[1] for key in aws.keys("dumps/")
                 if re.fullmatch(r"dumps/dump-[0-9A-Za-z-]+/manifest\.json", key))
    if not ids:
        raise JobError("no complete dump in the bucket to drill")
    return ids[-1]


def drill(config: dict[str, Any], aws: Aws) -> tuple[str, str | None]:
    """Restore the newest dump into a scratch server on this host, compare its row counts with
    the manifest and record the verification with the dump; its id, and what failed (None when
    it passed)."""
    backup_id = newest_dump(aws)
    manifest = json.loads(aws.get(f"dumps/{backup_id}/manifest.json"))
    settings = config["drill"]
    directory = Path(config["work"]) / "drill"
    with workdir(directory):
        problem = _fetch(aws, backup_id, manifest, directory / "dump")
        if problem is None:
            problem = _restore(config, settings, manifest, directory)
    rows = sum(manifest["tables"].values())
    detail = problem or (f"checksums ok; restored {len(manifest['tables'])} tables, {rows} rows "
                         "match the manifest (scheduled drill)")
    verification = json.dumps({"ok": problem is None, "time": now().isoformat(),
                               "detail": detail}, indent=2, sort_keys=True).encode()
    with suppress(Exists):  # verified before (verify-backup): this result is in the run record
        aws.put_json(f"dumps/{backup_id}/verification.json", verification)
    return backup_id, problem


def _fetch(aws: Aws, backup_id: str, manifest: dict[str, Any], directory: Path) -> str | None:
    """Every file of the dump into `directory`, checked against the manifest; what differs."""
    directory.mkdir(mode=0o700)
    problems = []
    for name, entry in sorted(manifest["files"].items()):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            return f"checksums: file name {name!r} is not a plain name"
        digest, size = aws.download(f"dumps/{backup_id}/data/{name}", directory / name)
        if (digest, size) != (entry["sha256"], entry["size"]):
            problems.append(f"{name}: sha256 differs from the manifest")
    return "checksums: " + "; ".join(problems) if problems else None


def _restore(config: dict[str, Any], settings: dict[str, Any], manifest: dict[str, Any],
             directory: Path) -> str | None:
    """The scratch server (as verify-backup's: ops.db.drill), the dump restored into it, its
    row counts compared; what failed, None when all matched. The server is removed after."""
    env = libpq({})
    if run(["docker", "ps", "-q", "--filter", f"label={settings['operators']}"], env,
           "looking for an operator's drill").strip():
        raise JobError(f"an operator's verify-backup is running its drill on this host, so this "
                       f"one did not run (if none is, remove it: docker rm -fv {settings['name']})")
    shell(settings["remove"], env, "removing an earlier drill's server")
    image = settings["image"].format(major=manifest["server_version"].split(".")[0])
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                      check=False).returncode:
        run(["docker", "pull", "-q", image], env, f"pulling {image}")
    available = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text()
                         .splitlines() if line.startswith("MemAvailable:"))) << 10
    memory = (settings["memory_mb"] << 20) if settings["memory_mb"] else available // 2
    password = secrets.token_urlsafe(24)
    env_file = directory / "drill.env"
    env_file.touch(mode=0o600)
    env_file.write_text(f"POSTGRES_PASSWORD={password}\n")
    try:
        run(["docker", "run", "-d", "--name", settings["name"], "--label",
             settings["label"], "--memory", str(memory), "--memory-swap", str(memory),
             "--shm-size", str(min(memory // 4, 256 << 20)),
             "--cpu-shares", str(settings["cpu_shares"]), "--publish", "127.0.0.1::5432",
             "--env-file", str(env_file), "--env", f"PGDATA={settings['volume']}/data",
             "--mount", f"type=volume,dst={settings['volume']}", image, "postgres",
             *settings["server_args"]], env, "starting the scratch server")
        env_file.unlink()
        port = run(["docker", "port", settings["name"], "5432/tcp"], env,
                   "finding the scratch server's port").split()[0].rpartition(":")[2]
        pgpass = directory / "pgpass"
        pgpass.touch(mode=0o600)
        pgpass.write_text(f"127.0.0.1:{port}:*:{settings['user']}:{password}\n")
        scratch = libpq({"PGHOST": "127.0.0.1", "PGPORT": port, "PGUSER": settings["user"],
                         "PGPASSFILE": str(pgpass), "PGSSLMODE": "disable",
                         "PGCONNECT_TIMEOUT": "10"})
        shell(settings["wait"], scratch, "waiting for the scratch server")
        run(["createdb", settings["database"]], scratch, "creating the scratch database")
        try:
            roles = shell(settings["roles"], scratch, "listing the dump's roles")
            owners, _, grantees = roles.partition("/\n")
            run(["psql", "-X", "-At", "-q", "-v", "ON_ERROR_STOP=1", "-v",
                 f"roles={owners + grantees}", "-d", settings["database"]], scratch,
                "creating the dump's roles", stdin=settings["create_roles_sql"])
            for what, command in settings["restore"]:
                shell(command, scratch, what)
            counts = parse_counts(run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d",
                                       settings["database"], "-c", config["row_counts_sql"]],
                                      scratch, "counting rows"))
        except JobError as exc:
            return one_line(f"the restore failed: {exc}")
    finally:
        subprocess.run(["bash", "-c", settings["remove"]], capture_output=True, check=False)
    expected = manifest["tables"]
    diff = [f"{t}: expected {expected.get(t, 'absent')}, found {counts.get(t, 'absent')}"
            for t in sorted(expected.keys() | counts.keys()) if expected.get(t) != counts.get(t)]
    return "; ".join(diff[:10]) or None


def host_metrics(path: str = "/") -> list[tuple[str, float, str, dict[str, str]]]:
    """DiskUsedPercent of `path` and MemoryAvailablePercent, as PutMetricData data."""
    disk = shutil.disk_usage(path)
    memory = {line.split(":")[0]: int(line.split()[1])
              for line in Path("/proc/meminfo").read_text().splitlines()
              if line.startswith(("MemTotal:", "MemAvailable:"))}
    return [("DiskUsedPercent", round(100 * disk.used / disk.total, 2), "Percent",
             {"Path": path}),
            ("MemoryAvailablePercent",
             round(100 * memory["MemAvailable"] / memory["MemTotal"], 2), "Percent", {})]


def main(argv: list[str]) -> int:
    """Run one job; 0 when it succeeded, 1 when it failed (recorded as far as possible)."""
    if len(argv) not in (2, 3) or argv[1] not in ("dump", "drill", "metrics"):
        print("usage: backup_job.py dump|drill|metrics [CONFIG]", file=sys.stderr)
        return 2
    kind = argv[1]
    started = now()
    backup_id: str | None = None
    error: str | None = None
    aws: Aws | None = None
    try:
        config = json.loads(Path(argv[2] if len(argv) == 3 else CONFIG).read_text())
        aws = Aws(config, role_credentials(config["metadata"]))
        if kind == "metrics":
            aws.metrics(host_metrics())
            return 0
        if kind == "dump":
            backup_id = dump(config, aws, started)
            aws.metrics([("BackupSucceeded", 1, "Count", {})])
        else:
            backup_id, problem = drill(config, aws)
            error = one_line(problem) if problem else None
            aws.metrics([("DrillFailed", 1 if error else 0, "Count", {})])
    except (JobError, OSError, ValueError, KeyError) as exc:
        error = one_line(str(exc) if isinstance(exc, JobError)
                         else f"{type(exc).__name__}: {exc}")
        if aws is not None and kind == "drill":
            with suppress(JobError):
                aws.metrics([("DrillFailed", 1, "Count", {})])
    if kind != "metrics" and aws is not None:
        try:
            aws.put_json(f"runs/{kind}/{stamp(started)}.json",
                         run_record(kind, started, now(), backup_id, error))
        except JobError as exc:
            print(f"the run record was not written: {exc}", file=sys.stderr)
    if error:
        print(f"{kind} failed: {error}", file=sys.stderr)
        return 1
    print(f"{kind} done: {backup_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
