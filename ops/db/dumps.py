"""Dumps in the backups bucket: dumps/<id>/data/<file>, manifest.json (written last, so its
presence means complete) and verification.json. Files stream between host and S3 through this
process over SFTP, hashed in transit: nothing is staged on the operator's disk. A dump's files
are uploaded while pg_dump is still writing the others.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any, BinaryIO, TypeVar

from ops import console
from ops.aws.session import client
from ops.config import Environment
from ops.db.manifest import DUMP, Backup, FileEntry, Manifest, Verification
from ops.db.remote import DbHost
from ops.errors import OpsError

CHUNK = 1 << 20
POLL = 0.5  # seconds between looks at the files pg_dump has closed
T = TypeVar("T")


def s3(env: Environment) -> Any:
    return client(env, "s3")


def ensure_bucket(env: Environment) -> None:
    """The backups bucket must exist; in the lab it is created, on AWS that is provision's job."""
    bucket = s3(env)
    try:
        bucket.head_bucket(Bucket=env.bucket)
    except bucket.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket", "NotFound"):
            raise
        if env.kind != "lab":
            raise OpsError(f"the backups bucket {env.bucket} does not exist",
                           hint="run: inv provision (it creates the bucket)") from None
        bucket.create_bucket(Bucket=env.bucket)
        console.ok(f"created the lab's backups bucket {env.bucket}")


class _Hashing:
    """A read-only file wrapper that hashes and counts what passes through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw, self.digest, self.size = raw, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.digest.update(data)
        self.size += len(data)
        return data


def upload_file(env: Environment, host: DbHost, directory: str, backup_id: str,
                name: str) -> FileEntry:
    """Stream one file of `directory` on the host to the bucket; its sha256 and size."""
    with host.conn.client.open_sftp() as sftp, sftp.open(f"{directory}/{name}", "rb") as f:
        f.prefetch()
        reader = _Hashing(f)
        s3(env).upload_fileobj(reader, env.bucket, f"dumps/{backup_id}/data/{name}")
    return FileEntry(reader.digest.hexdigest(), reader.size)


def upload_while_written(env: Environment, host: DbHost, directory: str, backup_id: str,
                         jobs: int, writing: Future[Any]) -> dict[str, Future[FileEntry]]:
    """Upload each file of `directory` as soon as pg_dump has closed it, `jobs` at a time,
    until `writing` (the dump) is done; toc.dat and any file left then go last. The uploads,
    by file name, once all are done."""
    sent: dict[str, Future[FileEntry]] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while True:
            finished = writing.done()
            ready = host.closed_files(directory) - sent.keys()
            for name in sorted(ready if finished else ready - {"toc.dat"}):
                sent[name] = pool.submit(upload_file, env, host, directory, backup_id, name)
            if finished:
                return sent
            time.sleep(POLL)


def download(env: Environment, host: DbHost, manifest: Manifest, directory: str,
             jobs: int) -> list[str]:
    """Stream every file of a dump to `directory` on the host, `jobs` at a time; the
    checksum problems found."""
    bucket = s3(env)

    def one(name: str) -> str:
        entry = manifest.files[name]
        try:
            body = bucket.get_object(Bucket=env.bucket,
                                     Key=f"dumps/{manifest.id}/data/{name}")["Body"]
        except bucket.exceptions.NoSuchKey:
            return f"{name}: missing from the bucket"
        reader = _Hashing(body)
        with host.conn.client.open_sftp() as sftp, sftp.open(f"{directory}/{name}", "wb") as f:
            f.set_pipelined(True)
            while chunk := reader.read(CHUNK):
                f.write(chunk)
        if reader.size != entry.size:
            return f"{name}: {reader.size} bytes, the manifest says {entry.size}"
        if reader.digest.hexdigest() != entry.sha256:
            return f"{name}: sha256 differs from the manifest"
        return ""

    return [p for p in _parallel(one, sorted(manifest.files), jobs) if p]


def _parallel(fn: Callable[[str], T], names: list[str], jobs: int) -> list[T]:
    """fn over names with up to `jobs` threads (each opens its own SFTP channel), in order."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(fn, names))


def write_manifest(env: Environment, manifest: Manifest) -> None:
    s3(env).put_object(Bucket=env.bucket, Key=f"dumps/{manifest.id}/manifest.json",
                       Body=manifest.to_json().encode())


def manifest(env: Environment, backup_id: str) -> Manifest:
    bucket = s3(env)
    try:
        body = bucket.get_object(Bucket=env.bucket, Key=f"dumps/{backup_id}/manifest.json")["Body"]
    except bucket.exceptions.NoSuchKey:
        raise OpsError(f"{env.name} has no complete dump {backup_id} in {env.bucket}",
                       hint="see: inv list-backups") from None
    return Manifest.from_json(body.read().decode())


def record(env: Environment, backup_id: str, result: Verification) -> None:
    s3(env).put_object(Bucket=env.bucket, Key=f"dumps/{backup_id}/verification.json",
                       Body=result.to_json().encode())


def listed(env: Environment) -> list[Backup]:
    """Every complete dump in the bucket (none when the bucket does not exist)."""
    bucket = s3(env)
    try:
        pages = list(bucket.get_paginator("list_objects_v2").paginate(
            Bucket=env.bucket, Prefix="dumps/"))
    except bucket.exceptions.NoSuchBucket:
        return []
    keys = {o["Key"] for page in pages for o in page.get("Contents", [])}
    found = []
    for key in sorted(k for k in keys if k.endswith("/manifest.json")):
        backup_id = key.split("/")[1]
        m = manifest(env, backup_id)
        verification = None
        if f"dumps/{backup_id}/verification.json" in keys:
            text = bucket.get_object(Bucket=env.bucket,
                                     Key=f"dumps/{backup_id}/verification.json")["Body"].read()
            verification = Verification.from_json(text.decode())

        found.append(Backup(id=backup_id, kind=DUMP, time=datetime.fromisoformat(m.time),
                            size=m.archive_size, release=m.release, reason=m.reason,
                            verification=verification))
    return found


def delete(env: Environment, backup_id: str) -> None:
    bucket = s3(env)
    pages = bucket.get_paginator("list_objects_v2").paginate(Bucket=env.bucket,
                                                            Prefix=f"dumps/{backup_id}/")
    keys = [{"Key": o["Key"]} for page in pages for o in page.get("Contents", [])]
    for start in range(0, len(keys), 1000):
        bucket.delete_objects(Bucket=env.bucket, Delete={"Objects": keys[start:start + 1000]})
