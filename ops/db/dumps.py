"""Dumps in the backups bucket: dumps/<id>/data/<file>, manifest.json (written last, so its
presence means complete) and verification.json. The files themselves move between host and
bucket in ops.db.transfer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ops import console
from ops.aws.session import client
from ops.config import Environment
from ops.db.manifest import DUMP, Backup, Manifest, ManifestError, Verification
from ops.errors import OpsError


def s3(env: Environment) -> Any:
    return client(env, "s3")


def ensure_bucket(env: Environment) -> None:
    """The backups bucket must exist: provision's job, unless backups.create_bucket."""
    bucket = s3(env)
    try:
        bucket.head_bucket(Bucket=env.bucket)
    except bucket.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket", "NotFound"):
            raise
        if not env.backups.create_bucket:
            raise OpsError(f"the backups bucket {env.bucket} does not exist",
                           hint="run: inv provision (it creates the bucket)") from None
        bucket.create_bucket(Bucket=env.bucket)
        console.ok(f"created the backups bucket {env.bucket}")


def data_key(backup_id: str, name: str) -> str:
    return f"dumps/{backup_id}/data/{name}"


def stored_sizes(env: Environment, backup_id: str) -> dict[str, int]:
    """The size of each data file of a dump in the bucket, by file name."""
    pages = s3(env).get_paginator("list_objects_v2").paginate(
        Bucket=env.bucket, Prefix=data_key(backup_id, ""))
    return {o["Key"].rsplit("/", 1)[1]: o["Size"] for page in pages
            for o in page.get("Contents", [])}


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
    try:
        found = Manifest.from_json(body.read().decode(errors="replace"))
    except ManifestError as exc:
        exc.message = f"dump {backup_id}: {exc.message}"
        raise
    if found.id != backup_id:
        raise ManifestError([f"it names dump {found.id!r}, not {backup_id!r}"])
    return found


def record(env: Environment, backup_id: str, result: Verification) -> None:
    s3(env).put_object(Bucket=env.bucket, Key=f"dumps/{backup_id}/verification.json",
                       Body=result.to_json().encode())


def listed(env: Environment) -> list[Backup]:
    """Every complete dump in the bucket (none when the bucket does not exist)."""
    bucket, keys = s3(env), _keys(env)
    found = []
    for key in sorted(k for k in keys if k.endswith("/manifest.json")):
        backup_id = key.split("/")[1]
        try:
            m = manifest(env, backup_id)
        except ManifestError as exc:
            console.warn(f"{exc.message}: left out of the list")
            continue
        verification = None
        if f"dumps/{backup_id}/verification.json" in keys:
            text = bucket.get_object(Bucket=env.bucket,
                                     Key=f"dumps/{backup_id}/verification.json")["Body"].read()
            verification = Verification.from_json(text.decode())

        found.append(Backup(id=backup_id, kind=DUMP, time=datetime.fromisoformat(m.time),
                            size=m.archive_size, release=m.release, reason=m.reason,
                            verification=verification))
    return found


def incomplete(env: Environment, before: datetime) -> list[str]:
    """Dumps with files but no manifest, begun before `before`: dumps that died half-way (the
    host's scheduled job cannot delete what it wrote; retention does)."""
    keys = _keys(env)
    begun = {k.split("/")[1] for k in keys if k.count("/") >= 2}
    complete = {k.split("/")[1] for k in keys if k.endswith("/manifest.json")}
    return sorted(i for i in begun - complete
                  if (at := dump_time(i)) is not None and at < before)


def completed(env: Environment) -> list[Backup]:
    """Every complete dump with only what its keys tell (id, and the time its id names): one
    listing, no manifest read (status's backup age)."""
    ids = (k.split("/")[1] for k in _keys(env) if k.endswith("/manifest.json"))
    return [Backup(id=i, kind=DUMP, time=at) for i in sorted(ids)
            if (at := dump_time(i)) is not None]


def _keys(env: Environment) -> set[str]:
    """Every key under dumps/ (none when the bucket does not exist)."""
    bucket = s3(env)
    try:
        pages = list(bucket.get_paginator("list_objects_v2").paginate(
            Bucket=env.bucket, Prefix="dumps/"))
    except bucket.exceptions.NoSuchBucket:
        return set()
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def dump_time(backup_id: str) -> datetime | None:
    """When a dump began, read from its id (dump-20261128T114500Z); None for another name."""
    try:
        return datetime.strptime(backup_id, "dump-%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def delete(env: Environment, backup_id: str) -> None:
    bucket = s3(env)
    pages = bucket.get_paginator("list_objects_v2").paginate(Bucket=env.bucket,
                                                            Prefix=f"dumps/{backup_id}/")
    keys = [{"Key": o["Key"]} for page in pages for o in page.get("Contents", [])]
    for start in range(0, len(keys), 1000):
        bucket.delete_objects(Bucket=env.bucket, Delete={"Objects": keys[start:start + 1000]})
